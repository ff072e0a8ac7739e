"""``avsal evaluate`` on a DHF1K-layout root (DHF1K, Hollywood-2, UCF-Sports).

* A tiny synthetic root (3 videos, maps at 36x64, fixation PNGs for two videos and ``fixation/maps/*.mat``
  for the third, predictions in avsal's ``maps/%06d.png`` layout at another size): every per-frame value equals
  a direct :func:`avsal.metrics.compute_metrics` call on the prediction resized to the map size; layout
  detection, ``--pattern``, a one-video root and bad input.
* The real 20-frame sample ``../shared/data/eyetracking/video_dhf1k_0601`` (images 320x256, maps 640x360):
  an mp4 made from its images, ``avsal predict`` with classic-av, scored at the map size (skipped without the
  shared data).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from avsal import metrics as M
from avsal.evaluate import command
from avsal.evaluate import protocol as P
from avsal.evaluate import readers as R
from conftest import SHARED

H, W = 36, 64  # ground-truth map size
PH, PW = 24, 40  # prediction size
VIDEOS = {"0001": 5, "0002": 4, "0103": 6}


def _blob(h, w, cx, cy, s):
    y, x = np.mgrid[0:h, 0:w]
    return np.exp(-((x - cx * w) ** 2 + (y - cy * h) ** 2) / (2 * (s * w) ** 2))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """DHF1K root and avsal-layout predictions; 0103's fixations only as fixation/maps/*.mat (variable I)."""
    base = tmp_path_factory.mktemp("dhf1k_eval")
    root, pred = base / "root", base / "pred"
    rng = np.random.default_rng(1)
    for v, n in VIDEOS.items():
        d = root / v
        for sub in ("images", "maps", "fixation/maps"):
            (d / sub).mkdir(parents=True)
        (pred / v / "maps").mkdir(parents=True)
        for k in range(1, n + 1):
            cv2.imwrite(str(d / "images" / f"{k:04d}.jpg"), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
            cx, cy = rng.uniform(0.2, 0.8, 2)
            cv2.imwrite(str(d / "maps" / f"{k:04d}.png"), (255 * _blob(H, W, cx, cy, 0.08)).astype(np.uint8))
            fix = np.zeros((H, W), np.uint8)
            fix[rng.integers(0, H, 6), rng.integers(0, W, 6)] = 1
            if v == "0103":
                scipy.io.savemat(d / "fixation" / "maps" / f"{k:04d}.mat", {"I": fix})
            else:
                cv2.imwrite(str(d / "fixation" / f"{k:04d}.png"), fix * 255)
            px, py = cx + rng.normal(0, 0.1), cy + rng.normal(0, 0.1)
            p = 0.8 * _blob(PH, PW, px, py, 0.12) + 0.2 * rng.random((PH, PW))
            cv2.imwrite(str(pred / v / "maps" / f"{k:06d}.png"), np.round(255 * p / p.max()).astype(np.uint8))
    (root / "notes").mkdir()  # a stray folder: skipped
    return root, pred


def run_cli(argv):
    p = argparse.ArgumentParser(prog="avsal")
    command.add_parser(p.add_subparsers(dest="command"))
    return command.run(p.parse_args(["evaluate", *argv]))


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def direct_values(root: Path, pred: Path, video: str, n: int, metrics, seed=0):
    """Per-frame values by direct metric calls: prediction / 255 resized (MATLAB bicubic) to the map size."""
    from avsal.evaluate import imresize

    fix_files = ([root / video / "fixation" / "maps" / f"{k:04d}.mat" for k in range(1, n + 1)] if video == "0103"
                 else [root / video / "fixation" / f"{k:04d}.png" for k in range(1, n + 1)])
    fixes = [(scipy.io.loadmat(f)["I"] if f.suffix == ".mat" else cv2.imread(str(f), 0)) > 0 for f in fix_files]
    union = np.any(fixes, axis=0)
    gen = P.video_rng(seed, video, 0)
    rows = []
    for k in range(1, n + 1):
        s = cv2.imread(str(pred / video / "maps" / f"{k:06d}.png"), 0) / 255.0
        s = imresize(s, (H, W))
        dens = cv2.imread(str(root / video / "maps" / f"{k:04d}.png"), 0) / 255.0
        fix = fixes[k - 1].astype(np.uint8)
        other = union & ~fixes[k - 1]
        rows.append(M.compute_metrics(s, fix=fix, dens=dens, other=other, names=metrics, rng=gen))
    return rows


def test_reader_lists_videos_and_checks_numbering(data, tmp_path):
    root, _ = data
    vids = R.read_dhf1k_root(root)
    assert [v.name for v in vids] == sorted(VIDEOS) and [v.nframes for v in vids] == [5, 4, 6]
    assert vids[2].fixations[0].name == "0001.mat" and vids[0].fixations[-1].name == "0005.png"
    assert vids[0].images == []  # only the parts asked for
    one = R.read_dhf1k_root(root / "0002", ("images", "maps", "fixation"))
    assert len(one) == 1 and len(one[0].images) == 4
    bad = tmp_path / "bad"
    shutil.copytree(root / "0001", bad / "0001")
    (bad / "0001" / "maps" / "0003.png").unlink()
    with pytest.raises(R.InputError, match="without gaps"):
        R.read_dhf1k_root(bad)
    (bad / "0001" / "fixation" / "0003.png").unlink()
    (bad / "0001" / "maps" / "0005.png").unlink()
    with pytest.raises(R.InputError, match="numbered 1..N"):
        R.read_dhf1k_root(bad)
    with pytest.raises(R.InputError, match="no <video>/maps"):
        R.read_dhf1k_root(tmp_path / "bad" / "0001" / "images")
    fx = R.read_dhf1k_fixation(root / "0103" / "fixation" / "maps" / "0002.mat")
    assert fx.dtype == np.uint8 and set(np.unique(fx)) <= {0, 1} and fx.shape == (H, W)


def test_scores_equal_direct_metric_calls(data, tmp_path):
    root, pred = data
    metrics = ("cc", "nss", "auc_j", "sim", "sauc", "kld")
    out = tmp_path / "rep"
    rc = run_cli(["--data-root", str(root), "--pred", str(pred), "--out", str(out), "--metrics", ",".join(metrics),
                  "--no-plots", "--quiet"])  # layout detected: DHF1K
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset_layout"] == "dhf1k" and summary["config"]["protocol"] == "vinet"
    assert summary["config"]["frames"] == "all" and summary["dataset"] == "root"
    rows = read_csv(out / "per_frame.csv")
    assert len(rows) == sum(VIDEOS.values())  # every frame of every video
    means = {}
    for v, n in VIDEOS.items():
        ref = direct_values(root, pred, v, n, metrics)
        got = [r for r in rows if r["video"] == v]
        assert [int(r["frame"]) for r in got] == list(range(1, n + 1))
        for r, e in zip(got, ref):
            for m in metrics:
                assert float(r[m]) == pytest.approx(e[m], rel=1e-9, abs=1e-12), (v, r["frame"], m)
        means[v] = {m: float(np.mean([e[m] for e in ref])) for m in metrics}
    for m in metrics:
        assert summary["scores"][m] == pytest.approx(np.mean([means[v][m] for v in VIDEOS]), rel=1e-9)
    assert summary["scores"]["cc"] > 0.3  # the predictions follow the maps
    assert (out / "summary.md").is_file() and (out / "per_video.csv").is_file()


def test_pattern_single_video_and_bad_input(data, tmp_path, capsys):
    root, pred = data
    # one-video root, predictions renamed to a pattern directly in PRED
    flat = tmp_path / "flat"
    flat.mkdir()
    for k in range(1, 5):
        shutil.copy(pred / "0002" / "maps" / f"{k:06d}.png", flat / f"frame_{k - 1:03d}.png")
    out = tmp_path / "one"
    rc = run_cli(["--data-root", str(root / "0002"), "--dataset-layout", "dhf1k", "--pred", str(flat),
                  "--pattern", "frame_%03d.png", "--first-index", "0", "--out", str(out), "--metrics", "cc,nss",
                  "--no-plots", "--quiet"])
    assert rc == 0
    got = [float(r["cc"]) for r in read_csv(out / "per_frame.csv")]
    ref = [e["cc"] for e in direct_values(root, pred, "0002", 4, ("cc",))]
    assert got == pytest.approx(ref, rel=1e-9)
    # a missing prediction frame: partial (exit 1), listed
    part = tmp_path / "part"
    shutil.copytree(pred, part)
    (part / "0001" / "maps" / "000003.png").unlink()
    rc = run_cli(["--data-root", str(root), "--pred", str(part), "--out", str(tmp_path / "p"), "--metrics", "cc",
                  "--no-plots", "--quiet"])
    assert rc == 1
    row = next(r for r in read_csv(tmp_path / "p" / "per_video.csv") if r["video"] == "0001")
    assert row["n_missing"] == "1" and row["n_scored"] == "4"
    # not a DHF1K root when forced: exit 2 naming the folder
    capsys.readouterr()
    rc = run_cli(["--data-root", str(tmp_path / "flat"), "--dataset-layout", "dhf1k", "--pred", str(pred),
                  "--out", str(tmp_path / "x"), "--quiet"])
    assert rc == 2 and "no <video>/maps + <video>/fixation" in capsys.readouterr().err


@pytest.mark.skipif(SHARED is None or not (SHARED / "eyetracking" / "video_dhf1k_0601").is_dir(),
                    reason="../shared/data/eyetracking/video_dhf1k_0601 is not present")
def test_real_0601_sample_scored_at_map_size(tmp_path):
    from avsal.cli import main
    from avsal.synth import write_clip

    sample = SHARED / "eyetracking" / "video_dhf1k_0601"
    images = sorted((sample / "images").glob("*.jpg"))
    assert len(images) == 20
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in images]
    assert frames[0].shape == (256, 320, 3)
    clip = write_clip(tmp_path / "0601.mp4", lambda i: frames[i], len(frames), 30.0)
    pred = tmp_path / "pred"
    assert main(["predict", clip, "--model", "classic-av", "--out", str(pred), "--no-overlay"]) == 0
    (pred_dir,) = [d for d in pred.iterdir() if d.is_dir()]
    pred_dir.rename(pred / "video_dhf1k_0601")  # PRED/<video> as the root's video folder is named
    m0 = cv2.imread(str(pred / "video_dhf1k_0601" / "maps" / "000001.png"), 0)
    assert m0.shape == (256, 320)
    out = tmp_path / "rep"
    rc = run_cli(["--data-root", str(sample), "--pred", str(pred), "--out", str(out), "--metrics", "cc,nss,sim,kld",
                  "--no-plots", "--quiet"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = read_csv(out / "per_frame.csv")
    assert [int(r["frame"]) for r in rows] == list(range(1, 21))
    # frame 7 by hand, at the 640x360 map size
    from avsal.evaluate import imresize

    s = imresize(cv2.imread(str(pred / "video_dhf1k_0601" / "maps" / "000007.png"), 0) / 255.0, (360, 640))
    dens = cv2.imread(str(sample / "maps" / "0007.png"), 0) / 255.0
    fix = (cv2.imread(str(sample / "fixation" / "0007.png"), 0) > 0).astype(np.uint8)
    ref = M.compute_metrics(s, fix=fix, dens=dens, names=("cc", "nss", "sim", "kld"))
    for m in ("cc", "nss", "sim", "kld"):
        assert float(rows[6][m]) == pytest.approx(ref[m], rel=1e-9)
    assert 0.0 < summary["scores"]["cc"] < 1.0 and summary["scores"]["nss"] > 0.0
