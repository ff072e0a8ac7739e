"""SA uses the audio (small version of experiments/sa_audio.py): two objects per frame, the label is the one
whose sound plays, so vision alone is at chance between the two."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "sa_audio.py"


def _load():
    spec = importlib.util.spec_from_file_location("sa_audio", EXPERIMENT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_two_object_task_is_ambiguous_for_vision():
    e = _load()
    s = e.make_set(200, size=64, seed=3)
    assert bool((s.sounding != s.silent).all())
    # which object sounds is a coin flip: the sounding class is the smaller id about half of the time
    assert 0.4 < float((s.sounding < s.silent).float().mean()) < 0.6
    assert s.frames.shape == (200, 3, 64, 64) and s.audio.shape == (200, 81, 199)


@pytest.mark.slow
def test_sa_with_audio_query_fusion_follows_the_sound(tmp_path):
    torch.set_num_threads(1)
    res = _load().run(str(tmp_path), n_train=256, n_test=64, epochs=10, size=64, fusions=("audio_query",))
    s, sa = res["S"], res["SA/audio_query"]
    assert s["accuracy"] <= 0.65, s  # vision only: chance between the two objects (0.5)
    assert sa["accuracy"] >= 0.7 and sa["accuracy"] >= s["accuracy"] + 0.2, (s, sa)
    assert sa["muted"]["accuracy"] <= sa["accuracy"] - 0.3, sa  # without the sound SA falls back
    # with the silent object's sound SA names the silent object far more often than with the true sound
    assert sa["swapped"]["picks_silent"] >= sa["picks_silent"] + 0.3, sa
