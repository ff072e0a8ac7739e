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
