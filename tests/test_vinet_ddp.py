"""``avsal train vinet`` under torchrun with 2 CPU (gloo) processes: world size 2 recorded, and a run stopped
after one iteration and resumed ends where an uninterrupted 2-process run ends."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from safetensors.torch import load_file


def _root(root):
    """Two 32-frame DHF1K-layout videos (one clip each): 2 ranks x batch 1 = one iteration per epoch."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:60, 0:80]
    blob = (255 * np.exp(-((x - 56) ** 2 + (y - 18) ** 2) / (2 * 8 ** 2))).astype(np.uint8)
    for v in ("0001", "0002"):
        os.makedirs(root / v / "images")
        os.makedirs(root / v / "maps")
        for i in range(1, 33):
            cv2.imwrite(str(root / v / "images" / f"{i:04d}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
            cv2.imwrite(str(root / v / "maps" / f"{i:04d}.png"), blob)
    return str(root)


def _train(root, run, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "avsal.cli", "train", "vinet", "--data", root, "--out", str(run), "--tiny",
                        "--epochs", "3", "--batch-size", "1", "--device", "cpu", "--quiet", *extra],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def _log(run):
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_torchrun_two_processes_train_and_resume(tmp_path):
    root = _root(tmp_path / "root")
    run, full = tmp_path / "run", tmp_path / "full"
    _train(root, run, "--max-iters", "1")
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    first = _log(run)
    assert [r["step"] for r in first] == ["1"]
    assert (run / "checkpoints" / "last.pt").exists()

    _train(root, run, "--resume")
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    rows = _log(run)
    assert [(r["step"], r["epoch"]) for r in rows] == [("1", "0"), ("2", "1"), ("3", "2")]  # continued
    assert rows[0] == first[0]  # the first iteration's row kept, not rerun

    _train(root, full)  # uninterrupted
    ref = _log(full)
    assert [float(r["loss"]) for r in rows] == pytest.approx([float(r["loss"]) for r in ref], rel=1e-6)
    a, b = load_file(run / "model.safetensors"), load_file(full / "model.safetensors")
    assert a.keys() == b.keys()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) <= 1e-6
