"""``avsal train liu20`` on a tiny synthetic STAViS-layout dataset: items, loss, exact resume, the CLI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from avsal.errors import InputError
from avsal.train.engine import fit
from avsal.train.liu20 import Liu20Task, liu20_losses, liu20_train_config

sys.path.insert(0, str(Path(__file__).parent))
import liu20_reference as ref  # noqa: E402

FRAMES = {"clip_a": 10, "clip_b": 6}
FPS = 24.0


def make_stavis_root(root: Path) -> Path:
    """``TOY`` dataset: two clips (10 and 6 frames, 48×64), a moving blob as the eye map, a chirp as audio."""
    rng = np.random.default_rng(0)
    lines = []
    for name, n in FRAMES.items():
        fdir = root / "video_frames" / "TOY" / name
        mdir = root / "annotations" / "TOY" / name / "maps"
        adir = root / "video_audio" / "TOY" / name
        for d in (fdir, mdir, adir):
            d.mkdir(parents=True)
        for k in range(1, n + 1):
            cv2.imwrite(str(fdir / f"img_{k:05d}.jpg"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
            yy, xx = np.mgrid[0:48, 0:64]
            eye = np.exp(-((xx - 5 * k) ** 2 + (yy - 24) ** 2) / 50.0)
            cv2.imwrite(str(mdir / f"eyeMap_{k:05d}.jpg"), np.round(eye * 255).astype(np.uint8))
        ref.write_wav(adir / f"{name}.wav", ref.make_signal(22050, seconds=n / FPS), 22050)
        lines.append(f"{name} {n} {FPS}")
    (root / "fold_lists").mkdir()
    (root / "fold_lists" / "TOY_list_train_1_fps.txt").write_text("\n".join(lines) + "\n")
    (root / "annotations" / "TOY").mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    return make_stavis_root(tmp_path_factory.mktemp("liu20_train") / "data")


def _task(root, **kw):
    return Liu20Task(data=str(root), db="TOY", seq_len=4, input_size=32, face_source="none", **kw)


def test_items_and_sequences(toy_root):
    data = _task(toy_root).dataset()
    # clip_a: frames 1-4, 5-8 (9-10 dropped); clip_b: 1-4 (5-6 dropped)
    assert data.sequences == [(0, 1), (0, 5), (1, 1)]
    x1, x2, mel, face, gt, idx = data[1]
    assert x1.shape == x2.shape == (4, 3, 32, 32) and mel.shape == (4, 1, 16, 8, 8)
    assert face.shape == gt.shape == (4, 1, 4, 4) and int(idx) == 1
    assert torch.allclose(gt.sum((1, 2, 3)), torch.ones(4), atol=1e-5)
    assert torch.equal(x1[0], data[0][1][0])  # frame 5's x1 is frame 1 = the first x2 of sequence 0
    assert 0 <= float(mel.min()) and float(mel.max()) <= 255 and float(mel.std()) > 1
    assert not face.any()  # face_source="none"


def test_losses():
    gt = torch.zeros(2, 1, 4, 4)
    gt[0, 0, 1, 2] = 1.0
    perfect = torch.full((1, 1, 4, 4), -30.0)
    perfect[0, 0, 1, 2] = 30.0
    kld, cc = liu20_losses(perfect, gt[:1])
    assert float(kld) < 1e-6 and float(cc) > 0.999
    kld_u, cc_u = liu20_losses(torch.zeros(1, 1, 4, 4), gt[:1])
    assert float(kld_u) == pytest.approx(np.log(16), rel=1e-5) and abs(float(cc_u)) < 1e-6
    kld2, _ = liu20_losses(torch.zeros(2, 1, 4, 4), gt)  # the empty second map is skipped
    assert float(kld2) == pytest.approx(np.log(16), rel=1e-5)


def _cfg(**kw):
    return liu20_train_config(**{"epochs": 2, "lr": 1e-3, "save_every": 0, "device": "cpu", **kw})


def test_training_reduces_the_loss_and_resumes_exactly(toy_root, tmp_path):
    a = str(tmp_path / "a")
    res = fit(_task(toy_root), _cfg(max_iters=4), a, progress=False)
    assert res["step"] == 4 and all(np.isfinite(res["losses"]))
    b = str(tmp_path / "b")
    fit(_task(toy_root), _cfg(max_iters=2), b, progress=False)  # "killed" after 2 iterations
    fit(_task(toy_root), _cfg(max_iters=4), b, resume=True, progress=False)
    wa = torch.load(os.path.join(a, "checkpoints", "last.pt"), weights_only=True)["model"]
    wb = torch.load(os.path.join(b, "checkpoints", "last.pt"), weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # a few epochs on the 3 sequences: the loss goes down
    c = str(tmp_path / "c")
    res = fit(_task(toy_root), _cfg(epochs=4, lr=3e-3), c, progress=False)
    first, last = np.mean(res["losses"][:3]), np.mean(res["losses"][-3:])
    assert last < first
    from avsal.models import create_model

    net = create_model("liu20", weights=os.path.join(c, "model.safetensors"))  # the engine's final weights
    assert sum(p.numel() for p in net.parameters()) == 7_274_113


def test_cli_and_bad_input(toy_root, tmp_path):
    from avsal.cli import main

    out = tmp_path / "run"
    assert main(["train", "liu20", "--data", str(toy_root), "--dataset", "TOY", "--out", str(out),
                 "--max-iters", "1", "--device", "cpu", "--quiet", "--config", str(_write_cfg(tmp_path))]) == 0
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "config.json").is_file()
    assert main(["train", "liu20", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r2"),
                 "--quiet"]) == 2
    with pytest.raises(InputError, match="no video has 12 frames"):
        Liu20Task(data=str(toy_root), db="TOY", face_source="none").dataset()


def _write_cfg(tmp_path) -> Path:
    import json

    p = tmp_path / "cfg.json"
    p.write_text(json.dumps({"seq_len": 4, "input_size": 32, "face_source": "none"}))
    return p
