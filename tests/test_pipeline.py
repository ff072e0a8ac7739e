"""`avsal pipeline weak` end to end on a tiny AVE-format set (real AVE clips when present + generated clips)."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from avsal.cli import main
from avsal.synth import write_clip

from conftest import SHARED, gradient_frame, tone

REAL = {"ave_0lFf-HP86Q0_female_speech.mp4": ("Female speech, woman speaking", "0lFf-HP86Q0", 5, 10),
        "ave_16eUxQwxxbs_ukulele.mp4": ("Ukulele", "16eUxQwxxbs", 0, 10),
        "ave_22olCB3wQaA_race_car.mp4": ("Race car, auto racing", "22olCB3wQaA", 5, 10)}


def _dataset(tmp, real: bool = True):
    videos = tmp / "videos"
    videos.mkdir()
    lines = []
    if SHARED is not None and real:
        for name, (cat, vid, start, end) in REAL.items():
            src = SHARED / "videos" / "research_only" / name
            if src.exists():
                shutil.copy(src, videos / f"{vid}.mp4")
                lines.append(f"{cat}&{vid}&good&{start}&{end}")
    rng = np.random.default_rng(0)
    for i, cat in enumerate(["Accordion", "Banjo", "Accordion", "Banjo"]):
        colour = (220, 60, 60) if cat == "Accordion" else (60, 60, 220)
        cy, cx = rng.integers(30, 90, 2)

        def frame(j, colour=colour, cy=cy, cx=cx):
            img = gradient_frame(j, 120, 160)
            img[cy - 12 + j % 5:cy + 12 + j % 5, cx - 12:cx + 12] = colour
            return img

        write_clip(videos / f"gen{i}.mp4", frame, 7 * 10, 10, tone(7.0, 16000, freq=300 + 200 * (cat == "Banjo")),
                   16000)
        lines.append(f"{cat}&gen{i}&good&0&7")
    (tmp / "Annotations.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\n" + "\n".join(lines) + "\n")
    splits = tmp / "splits"
    splits.mkdir()
    (splits / "trainSet.txt").write_text("\n".join(lines) + "\n")
    (splits / "valSet.txt").write_text("")
    (splits / "testSet.txt").write_text("")
    return videos, lines


def _config(tmp_path):
    return {"work": "work", "videos": "videos", "annotations": "Annotations.txt", "splits": "splits", "tiny": True,
           "selective_cams": False, "progress": False,
           "scam": {"epochs": 1, "batch_size": 3, "device": "cpu", "lr": 1e-3},
           "sta": {"epochs": 4, "batch_size": 2, "device": "cpu", "lr": 1e-3},
           "scam_task": {"resize": 72, "crop": 64}, "fine_task": {"resize": 64, "crop": 64},
           "sta_task": {"size": 64}, "crop": {"empty_box": "full"}}


@pytest.mark.slow
def test_pipeline_weak_end_to_end(tmp_path):
    videos, lines = _dataset(tmp_path)
    n_frames = sum(int(line.split("&")[4]) - int(line.split("&")[3]) for line in lines)
    (tmp_path / "ave.yaml").write_text(json.dumps(_config(tmp_path)))  # JSON is valid YAML
    assert main(["pipeline", "weak", "--config", str(tmp_path / "ave.yaml")]) == 0
    w = tmp_path / "work"
    with open(w / "prepared" / "manifest.csv") as f:
        assert len(list(csv.DictReader(f))) == n_frames
    # no VGGSound weights: no audio-relevance list, SA trains on every frame and its config says so
    assert not (w / "prepared" / "audio_relevance.csv").exists()
    assert json.loads((w / "runs" / "coarse_SA" / "config.json").read_text())["task"]["sa_frames"].startswith("all")
    with open(w / "crops" / "boxes.csv") as f:
        n_boxes = len(list(csv.DictReader(f)))
    with open(w / "crops" / "skipped.csv") as f:
        skipped = list(csv.DictReader(f))  # frames whose fused coarse CAM is flat have no box
    assert n_boxes > 0 and n_boxes + len(skipped) == n_frames
    for stage, count in (("coarse", n_frames), ("fine", n_boxes)):
        for b in ("S", "SA", "ST"):
            assert (w / "runs" / f"{stage}_{b}" / "model.safetensors").exists()
            with open(w / "cams" / f"{stage}_{b}" / "cams.csv") as f:
                assert len(list(csv.DictReader(f))) == count
    with open(w / "pseudo_gt" / "pseudo_gt.csv") as f:
        pgt = list(csv.DictReader(f))
    assert pgt
    maps = [np.asarray(Image.open(w / "pseudo_gt" / r["path"])) for r in pgt]
    assert all(m.shape == (356, 356) for m in maps) and sum(m.max() > 0 for m in maps) >= len(maps) // 2
    with open(w / "runs" / "sta" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    first = [float(r["loss"]) for r in rows if r["epoch"] == "0"]
    last = [float(r["loss"]) for r in rows if r["epoch"] == rows[-1]["epoch"]]
    assert np.mean(last) < np.mean(first), (first, last)  # same triplets each epoch: the STA loss decreases
    assert (w / "runs" / "sta" / "model.safetensors").exists()
    # a second run finds every stage finished
    mtime = (w / "runs" / "sta" / "model.safetensors").stat().st_mtime_ns
    assert main(["pipeline", "weak", "--config", str(tmp_path / "ave.yaml")]) == 0
    assert (w / "runs" / "sta" / "model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_pipeline_weak_under_torchrun(tmp_path):
    """The whole pipeline with 2 processes: training stages in DDP, data stages on rank 0."""
    import subprocess
    import sys

    from train_fixtures import make_vggsound_weights

    _dataset(tmp_path, real=False)
    cfg = _config(tmp_path)
    # tiny VGGSound weights that hear "playing accordion" everywhere: SA trains on the Accordion clips only
    cfg["audio_weights"] = make_vggsound_weights(tmp_path / "vgg.pth.tar", "playing accordion")
    cfg["scam"]["batch_size"] = 2
    cfg["sta"]["batch_size"] = 1
    (tmp_path / "ave.yaml").write_text(json.dumps(cfg))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "avsal.cli", "pipeline", "weak", "--config", str(tmp_path / "ave.yaml")],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    w = tmp_path / "work"
    assert json.loads((w / "runs" / "sta" / "config.json").read_text())["world_size"] == 2
    assert (w / "runs" / "sta" / "model.safetensors").exists()
    with open(w / "prepared" / "manifest.csv") as f:
        manifest = list(csv.DictReader(f))
        assert len(manifest) == 28
    with open(w / "prepared" / "audio_relevance.csv") as f:
        relevant = {(r["clip"], r["second"]) for r in csv.DictReader(f) if r["relevant"] == "1"}
    assert relevant == {(r["clip"], r["second"]) for r in manifest if r["class_name"] == "Accordion"}
    for stage in ("coarse", "fine"):
        sa = json.loads((w / "runs" / f"{stage}_SA" / "config.json").read_text())["task"]
        assert sa["switch_list"].endswith("audio_relevance.csv") and sa["sa_frames"].startswith("audio-relevant")
    assert "sa_frames" not in json.loads((w / "runs" / "coarse_ST" / "config.json").read_text())["task"]
