"""Does ``avsal predict`` cost grow linearly with the video's length? Frames/s and peak RSS per length.

For each length (minutes) it writes a synthetic 640x360, 25 fps clip with a soundtrack
(:func:`avsal.synth.write_clip`: two moving squares on a gradient, a 440 Hz tone gated at 0.5 Hz), then runs
the whole ``avsal predict`` job on it (``classic-av``; PNG maps, saliency.h5, overlay.mp4) in a fresh
subprocess, so that the peak RSS is that run's alone. Linear cost means frames/s within ~10 % across the
lengths and a flat peak RSS; the CPU time per frame (all threads) is reported too, as it depends less
than wall time on other jobs sharing the machine.

Usage::

    python benchmarks/bench_long.py [--minutes 1 4 16] [--threads 1] [--json OUT.json]

``--minutes 0.5 2`` runs shorter. The machine should be otherwise idle: on a shared machine the numbers
measure the other jobs too (run old and new code back to back and compare).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _frame(i: int, h: int = 360, w: int = 640) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 200, w, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 120, h, dtype=np.uint8)[:, None]
    x, y = (5 + 7 * i) % (w - 80), (20 + 3 * i) % (h - 80)
    img[y:y + 60, x:x + 60] = (250, 250, 40)
    yb = (200 + i) % (h - 40)
    img[yb:yb + 30, 300:340] = (40, 40, 250)
    return img


def make_clip(path: str, minutes: float, fps: int = 25, rate: int = 16000) -> None:
    """Write the synthetic 640x360 clip of ``minutes`` (H.264 + AAC mono)."""
    from avsal.synth import write_clip

    secs = minutes * 60
    t = np.arange(int(secs * rate)) / rate
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)[None]
    write_clip(path, _frame, int(round(secs * fps)), fps, audio, rate)


def _child(clip: str) -> None:
    from avsal.predict import PredictOptions, predict_many
    from memory import peak_rss_mb  # benchmarks/memory.py

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = predict_many([clip], out, PredictOptions(), progress=False, log=lambda m: None)
        dt = time.perf_counter() - t0
        assert res.done, res.failed
        meta = json.load(open(os.path.join(out, os.path.splitext(os.path.basename(clip))[0], "meta.json")))
    n = meta["frames_predicted"]
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime  # all threads; less sensitive than wall time to other jobs on the machine
    print(json.dumps({"frames": n, "seconds": dt, "fps": n / dt, "cpu_ms_per_frame": 1000 * cpu / n,
                      "peak_rss_mb": peak_rss_mb()}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 4.0, 16.0], help="clip lengths")
    ap.add_argument("--threads", type=int, default=1, help="OMP/BLAS threads of the run (default 1)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child)
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.minutes:
            clip = os.path.join(tmp, f"clip_{m:g}min.mp4")
            make_clip(clip, m)
            r = subprocess.run([sys.executable, __file__, "--child", clip], capture_output=True, text=True, env=env)
            os.remove(clip)
            if r.returncode != 0:
                print(r.stderr, file=sys.stderr)
                return 1
            row = {"minutes": m, **json.loads(r.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(f"{m:6g} min  {row['frames']:6d} frames  {row['seconds']:8.1f} s  {row['fps']:6.1f} frames/s  "
                  f"{row['cpu_ms_per_frame']:6.1f} CPU ms/frame  peak RSS {row['peak_rss_mb']:6.0f} MB", flush=True)
    if len(rows) > 1:
        f = [r["fps"] for r in rows]
        c = [r["cpu_ms_per_frame"] for r in rows]
        print(f"frames/s spread: {100 * (max(f) - min(f)) / max(f):.1f} %, CPU time per frame spread: "
              f"{100 * (max(c) - min(c)) / min(c):.1f} % (linear cost: within ~10 %)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cpu_count": os.cpu_count(), "results": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
