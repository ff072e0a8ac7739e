"""``avsal train stavis`` under torchrun with 2 CPU (gloo) processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from stavis_fixtures import make_stavis_root  # noqa: E402


@pytest.mark.slow
def test_torchrun_two_processes_av(tmp_path):
    root = make_stavis_root(tmp_path / "root")
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "avsal.cli", "train", "stavis", "--variant", "av", "--data", root, "--split", "1",
                        "--out", str(run), "--tiny", "--epochs", "1", "--batch-size", "1", "--device", "cpu",
                        "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    with open(run / "log.csv") as f:
        assert len(list(csv.DictReader(f))) == 3  # 6 clips / (2 ranks × batch 1)
    assert (run / "model.safetensors").exists()
