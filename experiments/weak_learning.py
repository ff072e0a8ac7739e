"""Does weak supervision learn *where*? A generated task for the S and SA branches.

Each frame (``size``²) shows a textured square of class k (K classes: stripes at a class-specific
orientation and colour) at a random place, plus a distractor square elsewhere; the audio features carry a
class-specific band (a stand-in for the class's sound). Networks are trained from scratch (tiny backbones)
on the **category labels only**, through the real pipeline (prepared root on disk → ``avsal.train`` →
CAMs).

* **S**: the distractor has a neutral texture (rings, no class). On held-out frames we count how often the
  CAM peak (of the ground-truth class) falls inside the object.
* **SA**: the distractor is a square of *another* class drawn the same way (same shape, size and texture
  family) but silent; the audio and the label are those of the sounding object. We count how often the
  CAM is higher on the sounding object than on the silent one, and compare with S trained on the same frames.

Result (seed 0, defaults): S 0.93 of CAM peaks inside the object; SA's CAM higher on the sounding object in 0.90
of the frames — but S trained on the same frames without audio scores 1.00 there, because the label's class
appearance already singles out the sounding object. Whether SA *uses* the audio is not shown by this set-up:
upstream's AVfusion ``softmax_j(q_i p_j)`` gives each row a one-parameter family over the global visual
embedding ``p``, so the audio can only re-weight channels ranked by the whole frame.

Usage::

    python experiments/weak_learning.py [--out DIR] [--train-clips 150] [--epochs 25] [--json results.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

from avsal.io.audio import write_features_h5

OBJ = 0.25  # object side as a fraction of the frame


def _texture(k: int, n_classes: int, side: int) -> np.ndarray:
    """Class k's texture: stripes at angle π·k/K, colour from a fixed palette. uint8 [side, side, 3]."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    theta = np.pi * k / n_classes
    stripes = (np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / 6) > 0).astype(np.float32)
    hue = np.array([[230, 60, 60], [60, 200, 60], [70, 90, 240], [230, 200, 40], [200, 60, 220], [40, 210, 210]])[k % 6]
    return (stripes[..., None] * hue + (1 - stripes[..., None]) * 30).astype(np.uint8)


def _rings(side: int) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) - side / 2
    r = (np.sin(np.hypot(yy, xx) * 2 * np.pi / 5) > 0).astype(np.float32)
    return (r[..., None] * 200 + 30).astype(np.uint8).repeat(3, 2)


def _place(rng, size, side, avoid=None):
    for _ in range(100):
        y, x = rng.integers(0, size - side, 2)
        if avoid is None or abs(y - avoid[0]) >= side or abs(x - avoid[1]) >= side:
            return int(y), int(x)
    raise RuntimeError("no room for the distractor")


def make_task(root: str, mode: str, n_clips: int, seconds: int = 3, size: int = 128, n_classes: int = 4,
              seed: int = 0, split: str = "train") -> list[dict]:
    """Write a prepared root for ``mode`` ("S" or "SA"); returns per-frame ground truth boxes."""
    rng = np.random.default_rng(seed)
    side = int(size * OBJ)
    os.makedirs(root, exist_ok=True)
    rows, truth = [], []
    for c in range(n_clips):
        k = int(rng.integers(n_classes))
        clip = f"{split}{c:04d}"
        for d in ("frames", "audio"):
            os.makedirs(os.path.join(root, d, clip), exist_ok=True)
        for s in range(seconds):
            img = rng.integers(70, 130, (size, size, 3)).astype(np.uint8)
            oy, ox = _place(rng, size, side)
            img[oy:oy + side, ox:ox + side] = _texture(k, n_classes, side)
            dy, dx = _place(rng, size, side, (oy, ox))
            other = int((k + rng.integers(1, n_classes)) % n_classes)
            img[dy:dy + side, dx:dx + side] = _rings(side) if mode == "S" else _texture(other, n_classes, side)
            Image.fromarray(img).save(os.path.join(root, "frames", clip, f"{s:02d}.jpg"), quality=95)
            feat = rng.normal(0, 1, (81, 199)).astype(np.float32)
            feat[5 + 18 * k: 15 + 18 * k] += 1.5
            write_features_h5(os.path.join(root, "audio", clip, f"{s:02d}.h5"), feat)
            rows.append({"clip": clip, "second": s, "frame": f"frames/{clip}/{s:02d}.jpg",
                         "audio": f"audio/{clip}/{s:02d}.h5", "class_id": k, "class_name": f"class{k}",
                         "split": split})
            truth.append({"clip": clip, "second": s, "object": (oy, ox, side), "distractor": (dy, dx, side)})
    path = os.path.join(root, "manifest.csv")
    old = []
    if os.path.exists(path):
        with open(path, newline="") as f:
            old = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(old + rows)
    with open(os.path.join(root, "classes.json"), "w") as f:
        json.dump([f"class{k}" for k in range(n_classes)], f)
    return truth


def _box_mean(cam: np.ndarray, box, size: int) -> float:
    y, x, side = box
    s = cam.shape[0] / size
    return float(cam[int(y * s):int((y + side) * s) + 1, int(x * s):int((x + side) * s) + 1].mean())


def evaluate_cams(cam_dir: str, truth: list[dict], size: int) -> dict:
    """Fraction of frames whose CAM peak is inside the object, and whose CAM is higher on it than on the
    distractor (CAMs of all frames, ``avsal cams --all --cam-class label``)."""
    with open(os.path.join(cam_dir, "cams.csv"), newline="") as f:
        cams = {(r["clip"], int(r["second"])): r for r in csv.DictReader(f)}
    inside = prefer = correct = 0
    for t in truth:
        r = cams[(t["clip"], t["second"])]
        cam = np.asarray(Image.open(os.path.join(cam_dir, r["cam"])), np.float32)
        s = cam.shape[0] / size
        py, px = np.unravel_index(np.argmax(cam), cam.shape)
        oy, ox, side = t["object"]
        inside += (oy * s <= py <= (oy + side) * s) and (ox * s <= px <= (ox + side) * s)
        prefer += _box_mean(cam, t["object"], size) > _box_mean(cam, t["distractor"], size)
        correct += int(r["correct"])
    n = len(truth)
    return {"frames": n, "peak_inside_object": inside / n, "object_over_distractor": prefer / n,
            "accuracy": correct / n}


def run(out: str, train_clips: int = 60, test_clips: int = 20, epochs: int = 15, size: int = 128,
        batch_size: int = 16, lr: float = 0.003, lr_mult=(1, 2, 10, 20), seed: int = 0, progress: bool = False,
        modes=("S", "SA"), sa_size: int | None = None, sa_epochs: int | None = None) -> dict:
    """Train S (and SA, and S on SA's frames) and evaluate their CAMs on held-out clips.

    ``sa_size`` / ``sa_epochs`` override ``size`` / ``epochs`` for the SA task (SA reads layer4, stride 32,
    so it needs a larger input than S, which reads layer3, for the same CAM resolution).
    """
    from avsal.train.cams import compute_cams
    from avsal.train.engine import TrainConfig, fit
    from avsal.train.tasks import ScamTask

    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = {}
    for mode in modes:
        m_size = (sa_size or size) if mode == "SA" else size
        m_epochs = (sa_epochs or epochs) if mode == "SA" else epochs
        root = os.path.join(out, f"data_{mode}")
        make_task(root, mode, train_clips, size=m_size, seed=seed, split="train")
        truth = make_task(root, mode, test_clips, size=m_size, seed=seed + 1000, split="test")
        branches = ["S"] if mode == "S" else ["SA", "S"]
        for branch in branches:
            run_dir = os.path.join(out, f"run_{mode}_{branch}")
            task = ScamTask(branch=branch, stage="coarse", data=root, tiny=True, resize=m_size, crop=m_size,
                            jitter=False, seed=seed)
            cfg = TrainConfig(epochs=m_epochs, batch_size=batch_size, lr=lr, milestones=(int(m_epochs * 0.75),),
                              save_every=0, device="cpu", seed=seed, weight_decay=1e-4, lr_mult=tuple(lr_mult))
            fit(task, cfg, run_dir, progress=progress)
            cams = os.path.join(out, f"cams_{mode}_{branch}")
            compute_cams(run_dir, root, cams, split="test", cam_class="label", selective=False, progress=progress)
            results[f"{mode}-task/{branch}"] = evaluate_cams(cams, truth, m_size)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="work folder (default: a temporary one)")
    ap.add_argument("--train-clips", type=int, default=150)
    ap.add_argument("--test-clips", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--lr-mult", type=float, nargs=4, default=(1, 2, 10, 20))
    ap.add_argument("--modes", nargs="+", default=["S", "SA"])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--sa-size", type=int, default=256)
    ap.add_argument("--sa-epochs", type=int, default=40)
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        res = run(args.out or tmp, args.train_clips, args.test_clips, args.epochs, size=args.size, lr=args.lr,
                  lr_mult=args.lr_mult, sa_size=args.sa_size, sa_epochs=args.sa_epochs,
                  seed=args.seed, modes=args.modes)
    for k, v in res.items():
        print(f"{k:12s} accuracy {v['accuracy']:.2f}  CAM peak inside object {v['peak_inside_object']:.2f}  "
              f"object > distractor {v['object_over_distractor']:.2f}  ({v['frames']} held-out frames)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
