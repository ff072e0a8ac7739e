"""The STANet training recipe as upstream runs it (issue 12): one test per audited step."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avsal.train.engine import TrainConfig, fit
from avsal.train.tasks import ScamTask, scam_train_config

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import make_prepared_root  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(make_prepared_root(tmp_path_factory.mktemp("prep") / "root"))


def _lrs(run):
    import csv

    with open(Path(run) / "log.csv") as f:
        return [float(r["lr"]) for r in csv.DictReader(f)]


def test_only_s_decays_its_learning_rate(root, tmp_path):
    """Row 2: upstream S/train.py calls reduce_lr; SA/ST keep a constant rate."""
    assert scam_train_config("S").milestones == (5, 10)
    assert scam_train_config("SA").milestones == () and scam_train_config("ST").milestones == ()
    assert scam_train_config("SA", milestones=(5, 10)).milestones == (5, 10)  # the switch
    for branch in ("S", "SA"):
        cfg = scam_train_config(branch, epochs=2, batch_size=12, save_every=0, device="cpu", milestones=None)
        cfg.milestones = (1,) if branch == "S" else scam_train_config(branch).milestones
        fit(ScamTask(branch=branch, stage="coarse", data=root, tiny=True, resize=40, crop=32), cfg,
            str(tmp_path / branch), progress=False)
        lrs = _lrs(tmp_path / branch)
        assert len(lrs) == 4
        if branch == "S":
            assert lrs[2] == pytest.approx(lrs[0] * 0.1)
        else:
            assert lrs[2] == lrs[0] == 1e-4


def _rows(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


def test_s_cams_are_selected_by_the_raw_head(root, tmp_path):
    """Row 4: S/test.py ranks softmax(x11), the raw head; SA/ST their fused logits."""
    from avsal.data.datasets import FrameDataset, read_manifest
    from avsal.train.cams import compute_cams, load_run

    run = tmp_path / "s"
    fit(ScamTask(branch="S", stage="coarse", data=root, tiny=True, resize=40, crop=32),
        TrainConfig(epochs=1, batch_size=12, save_every=0, device="cpu", lr=1e-2), str(run), progress=False)
    task, net = load_run(str(run))
    samples = read_manifest(root, "train")
    ds = FrameDataset(samples, task.transform(False), len(task.classes))
    frames = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        raw, fused, _, _ = net(frames)
    for mode, logits in (("auto", raw), ("raw", raw), ("fused", fused)):
        out = tmp_path / f"cams_{mode}"
        compute_cams(str(run), root, str(out), selective=False, progress=False, cam_logits=mode)
        rows = _rows(out / "cams.csv")
        assert len(rows) == len(samples)
        prob = torch.softmax(logits, 1)
        for r, s in zip(rows, samples):
            i = samples.index(s)
            assert int(r["pred"]) == int(prob[i].argmax())
            assert float(r["prob"]) == pytest.approx(float(prob[i, int(r["cam_class"])]), abs=1e-5)
    p_raw = [float(r["prob"]) for r in _rows(tmp_path / "cams_auto" / "cams.csv")]
    p_fused = [float(r["prob"]) for r in _rows(tmp_path / "cams_fused" / "cams.csv")]
    assert max(abs(a - b) for a, b in zip(p_raw, p_fused)) > 1e-4  # the two heads do differ
    with pytest.raises(ValueError):
        compute_cams(str(run), root, str(tmp_path / "x"), progress=False, cam_logits="x")


def test_kld_guard_is_the_float_epsilon():
    """Row 5: upstream loss.py guards with sys.float_info.epsilon, so a confident miss costs log(1/eps) ≈ 36."""
    from avsal.train.losses import KLD_EPS, kld, saliency_loss

    assert KLD_EPS == sys.float_info.epsilon
    gt = torch.zeros(1, 1, 4, 4)
    gt[0, 0, 0, 0] = 1.0
    pred = torch.full((1, 1, 4, 4), 0.5)
    pred[0, 0, 0, 0] = 0.0
    assert float(kld(pred, gt)) == pytest.approx(np.log(1 / sys.float_info.epsilon), rel=1e-5)  # 36.04
    assert float(kld(pred, gt, eps=1e-7)) == pytest.approx(np.log(1e7), rel=1e-4)  # 16.1 with the old guard
    logits = torch.full((1, 1, 4, 4), 5.0)
    logits[0, 0, 0, 0] = -200.0
    assert float(saliency_loss(logits, gt)) - float(saliency_loss(logits, gt, kld_eps=1e-7)) > 15


def _static_root(tmp_path, seconds=5):
    """One clip whose frames are all the same image, with a pseudo-GT for every second."""
    import csv
    import json
    import os

    from PIL import Image

    from avsal.io.audio import write_features_h5

    root = tmp_path / "static"
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)
    rows = []
    for d in ("frames/c", "audio/c", "pgt/c"):
        os.makedirs(root / d, exist_ok=True)
    with open(root / "pgt" / "pseudo_gt.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "second", "path"])
        for s in range(seconds):
            Image.fromarray(img).save(root / "frames" / "c" / f"{s:02d}.png")
            write_features_h5(root / "audio" / "c" / f"{s:02d}.h5", rng.normal(0, 1, (81, 199)).astype(np.float32))
            Image.fromarray(np.full((32, 32), 128, np.uint8)).save(root / "pgt" / "c" / f"{s:02d}.png")
            w.writerow(["c", s, f"c/{s:02d}.png"])
            rows.append({"clip": "c", "second": s, "frame": f"frames/c/{s:02d}.png", "audio": f"audio/c/{s:02d}.h5",
                         "class_id": 0, "class_name": "class0", "split": "train"})
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (root / "classes.json").write_text(json.dumps(["class0"]))
    return str(root)


def test_sta_triplet_frames_are_jittered_independently(tmp_path):
    """Row 7: upstream STA transforms each frame of a triplet separately (own jitter draw)."""
    from avsal.data.datasets import STADataset, read_manifest, read_pseudo_gt
    from avsal.data.transforms import ColorJitter
    from avsal.train.tasks import STATask

    root = _static_root(tmp_path)
    samples, pgt = read_manifest(root, "train"), read_pseudo_gt(str(Path(root) / "pgt"))
    assert STATask(data=root, pseudo_gt=str(Path(root) / "pgt")).dataset().shared_jitter is False
    own = STADataset(samples, pgt, 32, ColorJitter(), seed=1)
    shared = STADataset(samples, pgt, 32, ColorJitter(), seed=1, shared_jitter=True)
    assert len(own) == 3  # seconds 1..3 have both neighbours
    for i in range(len(own)):
        f = own[i][0]
        assert (f[0] - f[1]).abs().max() > 0.05 and (f[0] - f[2]).abs().max() > 0.05
        g = shared[i][0]
        torch.testing.assert_close(g[0], g[1])
        torch.testing.assert_close(g[0], g[2])


def test_st_skips_the_first_and_last_second(root):
    """Row 8: upstream ST/utils/LoadData.py trains on frames 1 … N−2 of a clip (both neighbours exist)."""
    from avsal.data.datasets import TripletDataset, read_manifest

    task = ScamTask(branch="ST", stage="coarse", data=root, tiny=True, resize=40, crop=32, jitter=False)
    ds = task.dataset()
    samples = read_manifest(root, "train")
    assert len(samples) == 24 and len(ds) == 12  # 6 clips × seconds 1, 2
    for i in range(len(ds)):
        t, prev, nxt = (samples[j] for j in ds.neighbours[i])
        assert t.clip == prev.clip == nxt.clip and (prev.second, nxt.second) == (t.second - 1, t.second + 1)
        assert 1 <= t.second <= 2 and ds[i][3] == ds.neighbours[i][0]
    rep = ScamTask(branch="ST", stage="coarse", data=root, tiny=True, resize=40, crop=32,
                   st_edges="repeat").dataset()
    assert len(rep) == 24 and rep.neighbours[0] == (0, 0, 1)  # second 0: t stands in for t−1
    with pytest.raises(ValueError):
        TripletDataset(samples, task.transform(), 3, edges="x")
    with pytest.raises(ValueError, match="both neighbours"):
        TripletDataset(samples[:2], task.transform(), 3)


def test_stanet_audio_is_the_channel_mean_resampled_by_resampy(tmp_path):
    """Rows 3 and 9: upstream audiostft.py averages the channels, then resampy (kaiser_best) to 16 kHz."""
    import resampy

    from avsal.io.audio import load_audio, load_stanet_audio
    from avsal.synth import write_clip

    rate = 44100
    t = np.arange(int(1.5 * rate)) / rate
    left = (0.9 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    right = (0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    path = write_clip(tmp_path / "stereo.wav", None, 0, 25.0, np.stack([left, right]), rate,
                      audio_codec="pcm_f32le")
    got = load_stanet_audio(path)
    native = load_audio(path, None, mix="mean").samples  # the file holds 16-bit PCM
    np.testing.assert_allclose(native, (left + right) / 2, atol=1e-4)
    want = resampy.resample(native.astype(np.float64), rate, 16000, filter="kaiser_best")
    assert got.sample_rate == 16000 and got.samples.dtype == np.float32
    np.testing.assert_allclose(got.samples, want, atol=1e-6)
    old = load_audio(path, 16000)  # FFmpeg's down-mix and resampler: what prepare used before
    n = min(len(old.samples), len(want))
    assert np.abs(old.samples[:n] - want[:n]).max() > 0.1  # (L+R)/√2 is louder than the mean
    swr = load_stanet_audio(path, resampler="swr")
    assert 1e-6 < np.abs(swr.samples[:n] - want[:n]).max() < 0.05
    with pytest.raises(ValueError):
        load_stanet_audio(path, resampler="x")


def test_stanet_resizes_with_pil_bilinear(tmp_path):
    """Row 6: upstream resizes PIL images (bilinear, antialiased when shrinking), not cv2 INTER_LINEAR."""
    from PIL import Image

    from avsal.data.transforms import TrainTransform, resize_square, to_tensor
    from avsal.models.stanet.predictor import STAInferenceConfig, preprocess

    yy, xx = np.mgrid[0:180, 0:320]
    checker = (((yy + xx) % 2) * 255).astype(np.uint8)
    rgb = np.stack([checker, 255 - checker, np.full_like(checker, 90)], -1)
    want = np.asarray(Image.fromarray(rgb).resize((64, 64), Image.BILINEAR))
    np.testing.assert_array_equal(resize_square(rgb, 64), want)
    assert np.abs(want[..., 0].astype(float) - 127.5).max() < 3  # PIL averages the 1-px checkerboard
    assert np.abs(resize_square(rgb, 64, "cv2")[..., 0].astype(float) - 127.5).max() > 100  # cv2 aliases
    torch.testing.assert_close(TrainTransform(72, 64, None, train=False)(rgb, np.random.default_rng(0)),
                               to_tensor(want.astype(np.float32) / 255))
    torch.testing.assert_close(preprocess(rgb, 64), to_tensor(want.astype(np.float32) / 255))
    assert STAInferenceConfig().resize == "pil"
    gray = checker.astype(np.float32) / 255
    want_f = np.asarray(Image.fromarray(gray, mode="F").resize((64, 64), Image.BILINEAR))
    np.testing.assert_allclose(resize_square(gray, 64), want_f)
    with pytest.raises(ValueError):
        resize_square(rgb, 64, "x")


def test_sta_pseudo_gt_is_resized_as_an_8_bit_image(tmp_path):
    """Row 6: upstream STA: Resize(356) on the 8-bit pseudo-GT image, then ToTensor."""
    from PIL import Image

    from avsal.data.datasets import STADataset, read_manifest, read_pseudo_gt

    root = _static_root(tmp_path)
    rng = np.random.default_rng(3)
    g = (rng.random((32, 32)) * 255).astype(np.uint8)
    for s in range(5):
        Image.fromarray(g).save(Path(root) / "pgt" / "c" / f"{s:02d}.png")
    ds = STADataset(read_manifest(root, "train"), read_pseudo_gt(str(Path(root) / "pgt")), 20)
    want = np.asarray(Image.fromarray(g).resize((20, 20), Image.BILINEAR)).astype(np.float32) / 255
    np.testing.assert_array_equal(ds[0][2][0, 0].numpy(), want)


def test_vggsound_class_list_and_keyword_table():
    """Row 1 data: the 309 VGGSound classes (sorted, hche11/VGGSound data/stat.csv) and the keyword table."""
    from avsal.data.relevance import ave_keywords, is_relevant, vggsound_classes
    from avsal.models.stanet.networks import AVE_CLASSES

    names = vggsound_classes()
    assert len(names) == len(set(names)) == 309 and list(names) == sorted(names)
    assert names[0] == "air conditioning noise" and "playing ukulele" in names
    table = ave_keywords()
    assert set(table) == set(AVE_CLASSES)
    assert sum(k != c.lower() for c, k in table.items()) == 12  # hand-made keywords, the rest lowercased names
    assert table["Bark"] == "dog" and table["Violin, fiddle"] == "violin" and table["Ukulele"] == "ukulele"
    for c in AVE_CLASSES:  # every category can be matched by some VGGSound class
        assert any(is_relevant(n, c) for n in names), c
    assert is_relevant("dog barking", "Bark") and not is_relevant("cat meowing", "Bark")
    assert is_relevant("female speech, woman speaking", "Male speech, man speaking")  # upstream's substring test
    assert is_relevant("playing kazoo", "Kazoo")  # a category outside the table: its lowercased name


def test_audio_relevance_list_selects_sa_frames(root, tmp_path):
    """Row 1: the VGGSound classifier labels every second; SA trains on the audio-relevant ones only."""
    from avsal.data.datasets import read_manifest
    from avsal.data.relevance import load_vggsound_classifier, vggsound_classes, write_audio_relevance
    from avsal.errors import InputError
    from avsal.io.audio import read_features_h5
    from train_fixtures import make_vggsound_weights

    w = make_vggsound_weights(tmp_path / "vgg.pth.tar", seed=1)
    path = write_audio_relevance(root, w, tiny=True, progress=False)
    rows = _rows(path)
    samples = read_manifest(root)
    assert [(r["clip"], int(r["second"])) for r in rows] == [(s.clip, s.second) for s in samples]
    net = load_vggsound_classifier(w, tiny=True)
    x = torch.from_numpy(np.stack([read_features_h5(s.audio) for s in samples]))[:, None]
    with torch.no_grad():
        pred = net(x).argmax(1).tolist()
    assert [r["vggsound_class"] for r in rows] == [vggsound_classes()[p] for p in pred]
    # classes of the fixture are "class0..2": relevant iff the predicted name contains "classk"
    assert all(r["relevant"] == "0" for r in rows)

    # a classifier that hears "playing accordion" everywhere: only the clips labelled Accordion are relevant
    w2 = make_vggsound_weights(tmp_path / "vgg2.pth.tar", favour="playing accordion")
    prep = tmp_path / "prep2"
    import shutil

    shutil.copytree(root, prep)
    lines = (prep / "manifest.csv").read_text().splitlines()
    lines = [lines[0]] + [ln.replace(",class0,", ",Accordion,") for ln in lines[1:]]
    (prep / "manifest.csv").write_text("\n".join(lines) + "\n")
    path2 = write_audio_relevance(prep, w2, tiny=True, progress=False)
    rel = {(r["clip"], int(r["second"])) for r in _rows(path2) if r["relevant"] == "1"}
    want = {(s.clip, s.second) for s in read_manifest(prep) if s.class_id == 0}
    assert rel == want and len(want) == 8
    task = ScamTask(branch="SA", stage="coarse", data=str(prep), tiny=True, switch_list=path2)
    assert {(s.clip, s.second) for s in task.samples()} == want
    assert task.config_dict()["sa_frames"].startswith("audio-relevant only")
    everything = ScamTask(branch="SA", stage="coarse", data=str(prep), tiny=True)
    assert len(everything.samples()) == 24 and everything.config_dict()["sa_frames"].startswith("all")
    with pytest.raises(InputError, match="classifier head"):
        sd = torch.load(w, weights_only=True)
        del sd["model_state_dict"]["audnet.fc_.weight"]
        torch.save(sd, tmp_path / "nohead.pth.tar")
        load_vggsound_classifier(str(tmp_path / "nohead.pth.tar"), tiny=True)


def test_sa_fusion_switch():
    """The audio-conditioned SA fusion is a switch; the default stays upstream's AVfusion."""
    from avsal.models.stanet.layers import AudioQueryMask, AVFusion
    from avsal.models.stanet.networks import SANet, STANetConfig

    assert STANetConfig().sa_fusion == "avfusion"
    assert isinstance(SANet(tiny=True, num_classes=4).av_fusion, AVFusion)
    torch.manual_seed(0)
    net = SANet(tiny=True, num_classes=4, sa_fusion="audio_query", st_channels=16).eval()
    assert isinstance(net.av_fusion, AudioQueryMask)
    frames, audio = torch.randn(2, 3, 64, 64), torch.randn(2, 81, 199)
    with torch.no_grad():
        raw, fused, m1, m2 = net(frames, audio)
        raw2, fused2, _, _ = net(frames, audio.flip(0))
    assert raw.shape == fused.shape == (2, 4) and m1.shape == m2.shape == (2, 4, 2, 2)
    torch.testing.assert_close(raw, raw2)  # the raw head is visual only
    assert (fused - fused2).abs().max() > 0  # the fused logits follow the audio
    # the mask is high where the (class-map) features point the way of the sound
    m = AudioQueryMask(2, 3, dim=2).eval()  # eval: the audio BatchNorm uses its (initial) running statistics
    with torch.no_grad():
        m.visual_proj.weight.copy_(torch.eye(2)[:, :, None, None])
        m.visual_proj.bias.zero_()
        m.audio_fc.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
        m.audio_fc.bias.zero_()
    visual = torch.zeros(1, 2, 1, 2)
    visual[0, 0, 0, 0] = 1.0  # class 0 evidence on the left
    visual[0, 1, 0, 1] = 1.0  # class 1 on the right
    left = m(torch.tensor([[1.0, 0, 0]]), visual)[0, 0, 0]
    right = m(torch.tensor([[0, 1.0, 0]]), visual)[0, 0, 0]
    assert left[0] > 0.99 and left[1] <= 0.5 and right[1] > 0.99 and right[0] <= 0.5  # cos 1 vs 0
    with pytest.raises(ValueError):
        SANet(tiny=True, sa_fusion="x")


def test_prepare_cli_writes_the_audio_relevance_list(tmp_path):
    """Row 1: ``avsal prepare … --vggsound-weights`` adds ROOT/audio_relevance.csv."""
    from avsal.cli import main
    from avsal.synth import write_clip
    from conftest import gradient_frame, tone
    from train_fixtures import make_vggsound_weights

    vids = tmp_path / "videos"
    vids.mkdir()
    write_clip(vids / "a.mp4", gradient_frame, 25, 10, tone(2.5, 16000, freq=440.0), 16000)
    (tmp_path / "labels.csv").write_text("video,label\na.mp4,Ukulele\n")
    w = make_vggsound_weights(tmp_path / "vgg.pth.tar", favour="playing ukulele")
    out = tmp_path / "root"
    assert main(["prepare", "folder", "--videos", str(vids), "--labels", str(tmp_path / "labels.csv"),
                 "--out", str(out), "--vggsound-weights", w, "--quiet"]) == 0
    rows = _rows(out / "audio_relevance.csv")
    assert [(r["clip"], r["second"], r["keyword"], r["vggsound_class"], r["relevant"]) for r in rows] == [
        ("a", "0", "ukulele", "playing ukulele", "1"), ("a", "1", "ukulele", "playing ukulele", "1")]
    assert main(["prepare", "folder", "--videos", str(vids), "--labels", str(tmp_path / "labels.csv"),
                 "--out", str(tmp_path / "r2"), "--vggsound-weights", str(tmp_path / "missing.pth"),
                 "--quiet"]) == 2
