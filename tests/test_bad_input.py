"""Bad input: a clear error naming the file and the problem, exit code != 0, nothing half-written.

Also the unusual-but-valid inputs (odd sizes, VFR, near-silent audio, 8/48 kHz stereo) that must just work.
"""

from __future__ import annotations

import json
import os

import av
import numpy as np
import pytest

from avsal.cli import main
from avsal.errors import OutputError
from avsal.io import iter_frames, probe
from avsal.synth import write_clip

from conftest import SHARED, gradient_frame, tone, write_vfr_clip


def _fails(capsys, path, out, problem):
    """Run the CLI on one input; it must fail with exit 1, name the file and the problem, write nothing."""
    rc = main(["predict", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert str(path) in err and problem in err, err
    assert os.listdir(out) == [], os.listdir(out)  # nothing half-written, no temporary folder left
    return err


def test_missing_file(tmp_path, capsys):
    _fails(capsys, tmp_path / "nope.mp4", tmp_path / "out", "file not found")


def test_text_file_named_mp4(tmp_path, capsys):
    p = tmp_path / "notes.mp4"
    p.write_text("Meeting notes: this is not a video.\n" * 20)
    _fails(capsys, p, tmp_path / "out", "not a readable video file")


def test_empty_file(tmp_path, capsys):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    _fails(capsys, p, tmp_path / "out", "empty")


def _truncate(src, dst, frac=0.3):
    data = open(src, "rb").read()
    open(dst, "wb").write(data[: int(len(data) * frac)])


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_mp4(tmp_path, capsys, faststart):
    full = tmp_path / "full.mp4"
    write_clip(full, lambda i: gradient_frame(i, 120, 160), 60, 25, tone(2.4, 16000), 16000,
               container_options={"movflags": "faststart"} if faststart else None)
    cut = tmp_path / "cut.mp4"
    _truncate(full, cut)
    err = _fails(capsys, cut, tmp_path / "out", "truncated")
    assert "cut.mp4" in err


def test_truncated_real_mp4(tmp_path, capsys):
    if SHARED is None:
        pytest.skip("../shared/data is not present")
    src = SHARED / "videos" / "research_only" / "chaplin.mp4"
    if not src.exists():
        pytest.skip("chaplin.mp4 not present")
    cut = tmp_path / "chaplin_30pct.mp4"
    _truncate(src, cut)
    _fails(capsys, cut, tmp_path / "out", "truncated")


def test_zero_frame_file(tmp_path, capsys):
    p = tmp_path / "zero.mkv"
    write_clip(p, gradient_frame, 0, 25, tone(1.0, 16000), 16000)
    assert [s.type for s in av.open(str(p)).streams] == ["video", "audio"]
    _fails(capsys, p, tmp_path / "out", "no decodable video frame")


def test_audio_only_file(tmp_path, capsys):
    p = tmp_path / "song.m4a"
    write_clip(p, None, 0, 25, tone(1.0, 16000), 16000)
    _fails(capsys, p, tmp_path / "out", "has no video stream")


def test_one_pixel_video(tmp_path, capsys):
    p = tmp_path / "dot.mkv"
    write_clip(p, lambda i: np.full((1, 1, 3), 128, np.uint8), 5, 25, None, video_codec="ffv1", pix_fmt="yuv444p")
    _fails(capsys, p, tmp_path / "out", "too small")


def test_output_folder_not_writable(small_clip, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc = main(["predict", str(small_clip), "--out", str(blocker / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and str(blocker / "out") in err and "not a folder" in err
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        rc = main(["predict", str(small_clip), "--out", str(ro), "--quiet"])
        assert rc == 2 and "not writable" in capsys.readouterr().err
    with pytest.raises(OutputError):
        from avsal.io.write import ensure_writable_dir

        ensure_writable_dir(blocker)


def _ok(tmp_path, path, **checks):
    out = tmp_path / "out"
    assert main(["predict", str(path), "--out", str(out), "--quiet"]) == 0
    d = out / os.path.splitext(os.path.basename(path))[0]
    meta = json.loads((d / "meta.json").read_text())
    with av.open(str(d / "overlay.mp4")) as c:
        types = sorted(s.type for s in c.streams)
        dur = c.duration / av.time_base
    return d, meta, types, dur


def test_odd_size_video(tmp_path):
    p = tmp_path / "odd.mkv"
    write_clip(p, lambda i: gradient_frame(i, 241, 321), 10, 25, tone(0.4, 16000), 16000,
               video_codec="ffv1", pix_fmt="yuv444p")
    d, meta, types, _ = _ok(tmp_path, p)
    from PIL import Image

    assert Image.open(d / "maps" / "000001.png").size == (321, 241)
    assert meta["frame_size"] == [241, 321] and types == ["audio", "video"]


def test_synthetic_vfr_overlay_keeps_timing(tmp_path):
    pts_ms = [0, 40, 100, 110, 300, 333, 700, 1000, 1010, 1500]
    p = write_vfr_clip(tmp_path / "vfr.mkv", pts_ms)
    d, meta, types, _ = _ok(tmp_path, p)
    ov = [f.time for f in iter_frames(d / "overlay.mp4")]
    np.testing.assert_allclose(ov, np.array(pts_ms) / 1000, atol=2e-3)


def test_near_silent_mono_audio(tmp_path):
    p = tmp_path / "quiet.mp4"
    write_clip(p, gradient_frame, 25, 25, tone(1.0, 48000, 1, amp=3e-4), 48000)
    _, meta, types, _ = _ok(tmp_path, p)
    assert meta["has_audio"] and any("near-silent" in w for w in meta["warnings"]) and types == ["audio", "video"]


@pytest.mark.parametrize("rate", [8000, 48000])
def test_stereo_audio_rates(tmp_path, rate):
    p = tmp_path / f"st{rate}.mp4"
    write_clip(p, gradient_frame, 25, 25, tone(1.0, rate, 2), rate)
    _, meta, types, dur = _ok(tmp_path, p)
    assert meta["streams"]["audio_rate"] == rate and meta["streams"]["audio_channels"] == 2
    assert types == ["audio", "video"] and dur == pytest.approx(probe(p).duration, abs=0.1)
