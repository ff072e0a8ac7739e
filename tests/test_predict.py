"""`avsal predict` end to end: outputs, metadata, resumability, atomic writes, Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import av
import h5py
import numpy as np
import pytest
from PIL import Image

import avsal
from avsal.cli import main
from avsal.io import iter_frames, probe
from avsal.io.write import sha256_file
from avsal.synth import write_clip

from conftest import gradient_frame, tone


def _streams(path):
    with av.open(str(path)) as c:
        return [s.type for s in c.streams], c.duration / av.time_base


def test_predict_cli_outputs(small_clip, tmp_path):
    out = tmp_path / "out"
    rc = main(["predict", str(small_clip), "--out", str(out), "--every", "5", "--quiet"])
    assert rc == 0
    d = out / "small"
    pngs = sorted(os.listdir(d / "maps"))
    assert pngs == [f"{i + 1:06d}.png" for i in range(0, 50, 5)]  # 1-based decoded frame index
    im = Image.open(d / "maps" / pngs[0])
    assert im.mode == "L" and im.size == (128, 96)
    with h5py.File(d / "saliency.h5") as f:
        assert f["saliency"].dtype == np.float16 and f["saliency"].shape == (10, 96, 128)
        np.testing.assert_array_equal(f["frame_indices"][:], np.arange(0, 50, 5))
        np.testing.assert_allclose(f["times"][:], np.arange(0, 50, 5) / 25.0, atol=1e-6)
        sal = f["saliency"][3].astype(np.float32)
    png = np.asarray(Image.open(d / "maps" / pngs[3]), np.float32) / 255
    assert np.abs(png - sal).max() < 3 / 255  # PNG and HDF5 hold the same map
    types, dur = _streams(d / "overlay.mp4")
    assert sorted(types) == ["audio", "video"]
    assert dur == pytest.approx(probe(small_clip).duration, abs=0.1)
    ov = list(iter_frames(d / "overlay.mp4"))
    assert len(ov) == 50  # every frame, same timing
    np.testing.assert_allclose([f.time for f in ov], np.arange(50) / 25.0, atol=1e-3)
    meta = json.loads((d / "meta.json").read_text())
    assert meta["avsal_version"] == avsal.__version__ and meta["model"] == "classic-av"
    assert meta["input"] == "small.mp4" and meta["input_sha256"] == sha256_file(small_clip)
    assert meta["frames_decoded"] == 50 and meta["frames_predicted"] == 10
    assert meta["has_audio"] is True and meta["streams"]["audio"] == 1 and meta["fps"] == pytest.approx(25)
    assert meta["weights_sha256"] is None and meta["warnings"] == [] and meta["wall_time_s"] > 0
    assert meta["model_config"]["w_sync"] > 0 and meta["sampling"]["every"] == 5
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no temporary folder left


def test_resume_skip_and_overwrite(small_clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(small_clip), "--out", str(out), "--every", "25", "--no-overlay", "--quiet"]) == 0
    meta = out / "small" / "meta.json"
    first = meta.stat().st_mtime_ns
    assert not (out / "small" / "overlay.mp4").exists()
    assert main(["predict", str(small_clip), "--out", str(out), "--every", "25", "--no-overlay", "--quiet"]) == 0
    assert meta.stat().st_mtime_ns == first and "skip" in capsys.readouterr().err
    assert main(["predict", str(small_clip), "--out", str(out), "--every", "25", "--quiet", "--overwrite"]) == 0
    assert meta.stat().st_mtime_ns != first and (out / "small" / "overlay.mp4").exists()


def test_interrupted_run_leaves_nothing_that_looks_complete(small_clip, tmp_path, monkeypatch):
    import avsal.predict as P

    calls = {"n": 0}
    real = P.write_png

    def failing_png(path, sal):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the user presses Ctrl-C in the middle of a video
        real(path, sal)

    monkeypatch.setattr(P, "write_png", failing_png)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        P.predict_many([str(small_clip)], str(out), P.PredictOptions(every=5), progress=False, log=lambda m: None)
    assert os.listdir(out) == []  # neither a final folder nor a temporary one
    monkeypatch.setattr(P, "write_png", real)
    res = P.predict_many([str(small_clip)], str(out), P.PredictOptions(every=5), progress=False, log=lambda m: None)
    assert res.done == [str(small_clip)] and len(os.listdir(out / "small" / "maps")) == 10


def test_batch_folder_with_a_bad_video(small_clip, tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    (src / "a.mp4").write_bytes(small_clip.read_bytes())
    (src / "b_bad.mp4").write_text("this is not a video\n")
    write_clip(src / "c.mkv", gradient_frame, 12, 25, tone(0.5, 16000), 16000, audio_codec="libopus")
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "avsal.cli", "predict", str(src), "--out", str(out), "--every", "6",
                        "--quiet"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "b_bad.mp4" in r.stderr and "not a readable video" in r.stderr
    assert sorted(os.listdir(out)) == ["a", "c"]
    assert (out / "c" / "meta.json").exists() and len(os.listdir(out / "c" / "maps")) == 2


def test_python_api(small_clip, tmp_path):
    res = avsal.predict_video(small_clip, fps=2)
    assert res.maps.shape == (4, 96, 128) and res.maps.dtype == np.float32
    assert 0 <= res.maps.min() and res.maps.max() <= 1
    np.testing.assert_allclose(res.times, [0.24, 0.76, 1.24, 1.76], atol=0.021)
    assert res.out_dir is None and res.meta["frames_predicted"] == 4
    res2 = avsal.predict_video(small_clip, out_dir=tmp_path / "o", times=[1.0], overlay=False)
    assert list(res2.frame_indices) == [25] and os.path.exists(os.path.join(res2.out_dir, "maps", "000026.png"))
    with pytest.raises(FileExistsError):
        avsal.predict_video(small_clip, out_dir=tmp_path / "o", times=[1.0])
    with pytest.raises(ValueError):
        avsal.predict_video(small_clip, every=2, fps=1)


def test_no_audio_is_valid_input(tmp_path):
    p = tmp_path / "mute.mp4"
    write_clip(p, gradient_frame, 20, 25, None)
    out = tmp_path / "out"
    assert main(["predict", str(p), "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "mute" / "meta.json").read_text())
    assert meta["has_audio"] is False and any("no audio" in w for w in meta["warnings"])
    types, _ = _streams(out / "mute" / "overlay.mp4")
    assert types == ["video"] and meta["frames_predicted"] == 20


def test_models_command(capsys):
    assert main(["models"]) == 0
    assert "classic-av" in capsys.readouterr().out


def test_unknown_model_and_bad_override(small_clip, tmp_path):
    assert main(["predict", str(small_clip), "--out", str(tmp_path / "o"), "--model", "nope", "--quiet"]) == 2
    assert main(["predict", str(small_clip), "--out", str(tmp_path / "o"), "--set", "bogus=1", "--quiet"]) == 2
    assert main(["predict", str(small_clip), "--out", str(tmp_path / "o"), "--device", "tpu", "--quiet"]) == 2
