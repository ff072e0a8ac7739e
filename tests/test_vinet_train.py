"""ViNet / AViNet training: upstream losses, the DHF1K-layout reader, a tiny run whose loss falls, exact resume."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch

from avsal.cli import main as cli_main
from avsal.errors import InputError
from avsal.models.checkpoints import read_checkpoint
from avsal.models.vinet.training import (KL_EPS, LossConfig, ViNetTask, cc, kldiv, read_dhf1k_layout,
                                         saliency_loss, similarity, vinet_train_config)
from avsal.train.engine import fit


def test_losses_match_their_definitions():
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(3, 8, 12, generator=g) + 0.01, torch.rand(3, 8, 12, generator=g)
    pn = p / p.sum((1, 2), keepdim=True)
    tn = t / t.sum((1, 2), keepdim=True)
    kl = np.mean([(tn[i] * torch.log(KL_EPS + tn[i] / (pn[i] + KL_EPS))).sum().item() for i in range(3)])
    assert kldiv(p, t).item() == pytest.approx(kl, rel=1e-5)
    assert kldiv(t, t).item() == pytest.approx(0.0, abs=1e-6)
    ccs = [np.corrcoef(p[i].flatten(), t[i].flatten())[0, 1] for i in range(3)]
    assert cc(p, t).item() == pytest.approx(np.mean(ccs), rel=1e-5)
    assert cc(p, p).item() == pytest.approx(1.0, abs=1e-6)
    assert similarity(t, t).item() == pytest.approx(1.0, abs=1e-6)
    assert 0 < similarity(p, t).item() < 1
    total, terms = saliency_loss(p, t, LossConfig(kldiv=True, cc=True, sim=True, l1=True))
    assert set(terms) == {"kldiv", "cc", "sim", "l1"}
    assert total.item() == pytest.approx(kl - np.mean(ccs) - similarity(p, t).item() + (p - t).abs().mean().item(),
                                         rel=1e-5)
    with pytest.raises(ValueError, match="no loss term"):
        saliency_loss(p, t, LossConfig(kldiv=False))


def _blob(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return (255 * np.exp(-((x - 0.7 * w) ** 2 + (y - 0.3 * h) ** 2) / (2 * (0.1 * w) ** 2))).astype(np.uint8)


@pytest.fixture(scope="module")
def dhf1k_root(tmp_path_factory):
    """Two 34-frame videos and one 20-frame video (too short) in the DHF1K layout; maps are one fixed blob."""
    root = tmp_path_factory.mktemp("dhf1k")
    rng = np.random.default_rng(0)
    for v, n in (("0001", 34), ("0002", 34), ("0003", 20)):
        os.makedirs(root / v / "images")
        os.makedirs(root / v / "maps")
        for i in range(1, n + 1):
            cv2.imwrite(str(root / v / "images" / f"{i:04d}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
            cv2.imwrite(str(root / v / "maps" / f"{i:04d}.png"), _blob(60, 80))
    return str(root)


def _task(root, **kw):
    return ViNetTask(data=root, model="vinet", tiny=True, input_hw=(32, 64), **kw)


def _cfg(**kw):
    return vinet_train_config(**{"batch_size": 1, "epochs": 100, "lr": 2e-3, "device": "cpu", "save_every": 0,
                                 **kw})


def test_dhf1k_reader(dhf1k_root, tmp_path):
    items = read_dhf1k_layout(dhf1k_root)
    assert [it.name for it in items] == ["0001", "0002"]  # 0003 has fewer than 32 frames
    assert len(items[0].frames) == 34 and items[0].maps[-1].endswith("0034.png")
    ds = _task(dhf1k_root).dataset()
    clip, gt, audio, idx = ds[1]
    assert clip.shape == (3, 32, 32, 64) and gt.shape == (32, 64) and audio.numel() == 0 and idx == 1
    assert 0.9 < float(gt.max()) <= 1.0
    assert 0 <= ds.start(1) <= 2
    with pytest.raises(InputError, match="no <video>/images"):
        read_dhf1k_layout(str(tmp_path))


def test_training_loss_falls_and_resume_is_exact(dhf1k_root, tmp_path):
    a = str(tmp_path / "a")
    res = fit(_task(dhf1k_root), _cfg(max_iters=6), a, progress=False)
    losses = res["losses"]
    assert len(losses) == 6 and np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
    cfg = read_checkpoint(os.path.join(a, "checkpoints", "last.pt"))
    assert "exp_avg" in str(cfg["optimizer"]["state"][0].keys())  # Adam, as upstream
    b = str(tmp_path / "b")
    fit(_task(dhf1k_root), _cfg(max_iters=3), b, progress=False)  # "killed" inside epoch 2
    fit(_task(dhf1k_root), _cfg(max_iters=6), b, resume=True, progress=False)
    wa = read_checkpoint(os.path.join(a, "checkpoints", "last.pt"))["model"]
    wb = read_checkpoint(os.path.join(b, "checkpoints", "last.pt"))["model"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_cli_train_vinet_and_avinet_options(dhf1k_root, tmp_path):
    out = str(tmp_path / "run")
    rc = cli_main(["train", "vinet", "--data", dhf1k_root, "--out", out, "--tiny", "--max-iters", "1",
                   "--batch-size", "1", "--cc", "--no-kldiv", "--quiet", "--device", "cpu",
                   "--config", _config(tmp_path, {"input_hw": [64, 96]})])
    assert rc == 0
    import json

    with open(os.path.join(out, "config.json")) as f:
        conf = json.load(f)
    assert conf["task"]["losses"] == {"cc": True, "kldiv": False}
    assert conf["train"]["lr"] == 1e-4 and conf["train"]["epochs"] == 40 and conf["train"]["weight_decay"] == 0
    with pytest.raises(ValueError, match="only runs at 224"):
        ViNetTask(data=dhf1k_root, model="avinet", input_hw=(64, 96))


def _config(tmp_path, d) -> str:
    import json

    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(d))
    return str(p)


def test_avinet_on_the_stavis_layout(tmp_path):
    """AV sets: frames, eyeMaps, the wav and the fold list's fps give AViNet's audio buffer; one training step."""
    from scipy.io import wavfile

    from avsal.io.audio import load_audio
    from avsal.models.vinet.audio import clip_audio

    root = tmp_path / "av"
    rng = np.random.default_rng(0)
    os.makedirs(root / "fold_lists")
    (root / "fold_lists" / "DIEM_list_train_1_fps.txt").write_text("clipA 33 25\n")
    for sub in ("video_frames/DIEM/clipA", "annotations/DIEM/clipA/maps", "video_audio/DIEM/clipA"):
        os.makedirs(root / sub)
    for i in range(1, 34):
        cv2.imwrite(str(root / "video_frames/DIEM/clipA" / f"img_{i:05d}.jpg"),
                    rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
        cv2.imwrite(str(root / "annotations/DIEM/clipA/maps" / f"eyeMap_{i:05d}.jpg"), _blob(24, 32))
    wav = root / "video_audio/DIEM/clipA/clipA.wav"
    wavfile.write(str(wav), 16000, (rng.normal(0, 0.2, (16000 * 2, 2)) * 32767).clip(-32767, 32767).astype(np.int16))
    task = ViNetTask(data=str(root), model="avinet", layout="stavis", datasets=("DIEM",), tiny=True)
    ds = task.dataset()
    clip, gt, audio, _ = ds[0]
    s = ds.start(0)
    assert clip.shape == (3, 32, 224, 384) and gt.shape == (224, 384) and audio.shape == (1, 70560, 1)
    track = load_audio(str(wav), sample_rate=None, mix="mean")
    assert track.sample_rate == 16000
    expect = clip_audio(track, np.arange(s, s + 32) / 25.0, 1 / 25.0)
    assert np.array_equal(audio[0, :, 0].numpy(), expect) and np.abs(expect).max() > 1
    res = fit(task, _cfg(max_iters=1), str(tmp_path / "run"), progress=False)
    assert res["step"] == 1 and np.isfinite(res["last_loss"])
    with pytest.raises(InputError, match="fold list not found"):
        ViNetTask(data=str(root), model="avinet", layout="stavis", datasets=("AVAD",), tiny=True).dataset()
