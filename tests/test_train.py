"""Training: exact resume, losses, CAMs, the CLI, and DDP with two processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avsal.cli import main
from avsal.train.engine import TrainConfig, epoch_batches, fit
from avsal.train.losses import KLD_EPS, kld
from avsal.train.tasks import ScamTask

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import make_prepared_root  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(make_prepared_root(tmp_path_factory.mktemp("prep") / "root"))


def _cfg(**kw):
    return TrainConfig(**{"epochs": 2, "batch_size": 2, "lr": 1e-3, "save_every": 0, "device": "cpu", **kw})


def _weights(run):
    ck = torch.load(os.path.join(run, "checkpoints", "last.pt"), weights_only=True)
    return ck["model"], ck["optimizer"]


@pytest.mark.parametrize("branch", ["S", "ST"])
def test_resume_gives_the_same_weights(root, tmp_path, branch):
    task = lambda: ScamTask(branch=branch, stage="coarse", data=root, tiny=True, resize=72, crop=64)  # noqa: E731
    a = str(tmp_path / "a")
    fit(task(), _cfg(max_iters=4), a, progress=False)
    b = str(tmp_path / "b")
    fit(task(), _cfg(max_iters=2), b, progress=False)  # "killed" after 2 iterations
    fit(task(), _cfg(max_iters=4), b, resume=True, progress=False)
    wa, oa = _weights(a)
    wb, ob = _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert oa["state"].keys() == ob["state"].keys()


def test_resume_across_an_epoch_boundary(root, tmp_path):
    # 6 clips x 4 s = 24 frames, batch 4 -> 6 iterations per epoch; stop at 7 = inside epoch 2
    task = lambda: ScamTask(branch="S", stage="coarse", data=root, tiny=True, resize=72, crop=64)  # noqa: E731
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    fit(task(), _cfg(batch_size=4, max_iters=9), a, progress=False)
    fit(task(), _cfg(batch_size=4, max_iters=7), b, progress=False)
    fit(task(), _cfg(batch_size=4, max_iters=9), b, resume=True, progress=False)
    for k, v in _weights(a)[0].items():
        assert torch.equal(v, _weights(b)[0][k]), k


def test_epoch_batches_split_and_order():
    b0 = epoch_batches(10, 2, epoch=0, seed=1, rank=0, world=2)
    b1 = epoch_batches(10, 2, epoch=0, seed=1, rank=1, world=2)
    flat0, flat1 = sum(b0, []), sum(b1, [])
    assert len(b0) == len(b1) == 2 and not set(flat0) & set(flat1)
    assert epoch_batches(10, 2, 0, 1, 0, 1) != epoch_batches(10, 2, 1, 1, 0, 1)  # a new order each epoch
    assert epoch_batches(10, 2, 0, 1, 0, 1) == epoch_batches(10, 2, 0, 1, 0, 1)
    with pytest.raises(ValueError):
        epoch_batches(3, 2, 0, 0, 0, 2)


def test_kld_normalisations():
    p = torch.rand(2, 1, 8, 8)
    g = torch.rand(2, 1, 8, 8)
    g[1] *= 10  # more mass in sample 1: matters for upstream's whole-batch normalisation only
    per = kld(p, g, "sample")
    manual = 0
    for i in range(2):
        pi, gi = p[i] / p[i].sum(), g[i] / g[i].sum()
        manual += (gi * torch.log(KLD_EPS + gi / (pi + KLD_EPS))).sum() / 2
    torch.testing.assert_close(per, manual)
    assert kld(g, g, "sample").abs() < 1e-5
    pb, gb = p / p.sum(), g / g.sum()
    torch.testing.assert_close(kld(p, g, "batch"), (gb * torch.log(KLD_EPS + gb / (pb + KLD_EPS))).sum())
    with pytest.raises(ValueError):
        kld(p, g, "x")


def test_cli_train_and_cams(root, tmp_path):
    run = tmp_path / "run_s"
    rc = main(["train", "scam", "--branch", "S", "--stage", "coarse", "--data", root, "--out", str(run), "--tiny",
               "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--quiet"])
    assert rc == 0
    assert (run / "model.safetensors").exists() and (run / "checkpoints" / "epoch_001.pt").exists()
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"]["branch"] == "S" and cfg["train"]["lr"] == 1e-4 and cfg["train"]["milestones"] == [5, 10]
    with open(run / "log.csv") as f:
        assert len(list(csv.DictReader(f))) == 6
    out = tmp_path / "cams"
    assert main(["cams", "--run", str(run), "--data", root, "--out", str(out), "--all", "--quiet"]) == 0
    with open(out / "cams.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24
    from PIL import Image

    im = Image.open(out / rows[0]["cam"])
    assert im.size == (256, 256) and im.mode == "L"
    assert 0 <= float(rows[0]["prob"]) <= 1
    assert main(["train", "scam", "--branch", "S", "--stage", "coarse", "--data", str(tmp_path), "--out",
                 str(tmp_path / "x"), "--quiet"]) == 2  # not a prepared root


def test_torchrun_two_processes(root, tmp_path):
    """torchrun with 2 gloo processes trains and writes one run folder (rank 0)."""
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "avsal.cli", "train", "scam", "--branch", "S", "--stage", "coarse", "--data", root,
                        "--out", str(run), "--tiny", "--epochs", "1", "--batch-size", "2", "--device", "cpu",
                        "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2
    with open(run / "log.csv") as f:
        assert len(list(csv.DictReader(f))) == 6  # 24 frames / (2 ranks x batch 2)
    assert (run / "model.safetensors").exists()
