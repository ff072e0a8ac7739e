"""The method learns *where* from category labels only (small version of experiments/weak_learning.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "weak_learning.py"


def _load():
    spec = importlib.util.spec_from_file_location("weak_learning", EXPERIMENT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_s_branch_localises_the_labelled_object(tmp_path):
    res = _load().run(str(tmp_path), train_clips=40, test_clips=10, epochs=12, size=128, modes=("S",))["S-task/S"]
    # chance: accuracy 0.25; object > distractor 0.5; peak inside the object (25% of the side) ≈ 0.06
    assert res["accuracy"] >= 0.7, res
    assert res["object_over_distractor"] >= 0.8, res
    assert res["peak_inside_object"] >= 0.4, res
