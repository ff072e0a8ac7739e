"""Real clips with sound from ../shared/data/videos (skipped when that folder is absent)."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from avsal.cli import main
from avsal.io import iter_frames, load_audio, probe

from conftest import shared_videos

CLIPS = shared_videos()
pytestmark = pytest.mark.skipif(not CLIPS, reason="../shared/data/videos is not present")


def _pyav_reference(path):
    """What PyAV's own metadata says: frame count (declared, or counted from packets), duration, audio rate."""
    with av.open(str(path)) as c:
        vs = max(c.streams.video, key=lambda s: s.codec_context.width * s.codec_context.height)
        n = vs.frames
        if not n:
            n = sum(1 for p in c.demux(vs) if p.size and p.pts is not None)
        dur = c.duration / av.time_base
        rate = c.streams.audio[0].codec_context.sample_rate if c.streams.audio else None
    return n, dur, rate


@pytest.mark.parametrize("path", CLIPS, ids=[p.name for p in CLIPS])
def test_real_clip_decodes_as_pyav_says(path):
    n, dur, rate = _pyav_reference(path)
    info = probe(path)
    frames = [(f.index, f.time) for f in iter_frames(path, info=info)]
    assert len(frames) == n
    times = np.array([t for _, t in frames])
    assert np.all(np.diff(times) > 0)
    assert times[-1] < dur + 1e-6 and times[-1] > dur - 0.5  # last frame within the last half second
    assert info.audio_rate == rate
    audio = load_audio(path)
    assert audio.sample_rate == 16000 and abs(audio.duration - dur) < 0.2


@pytest.mark.parametrize("path", CLIPS, ids=[p.name for p in CLIPS])
def test_real_clip_predict(path, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", str(path), "--out", str(out), "--every", "10", "--quiet"]) == 0
    d = out / path.stem
    meta = json.loads((d / "meta.json").read_text())
    n_pred = len(range(0, meta["frames_decoded"], 10))
    assert meta["frames_predicted"] == n_pred == len(list((d / "maps").glob("*.png")))
    with av.open(str(d / "overlay.mp4")) as c:
        assert sorted(s.type for s in c.streams) == ["audio", "video"]
        out_dur = c.duration / av.time_base
    with av.open(str(path)) as c:
        in_dur = c.duration / av.time_base
    assert abs(out_dur - in_dur) <= 0.1, (out_dur, in_dur)
