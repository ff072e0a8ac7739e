#!/usr/bin/env python3
"""Per-frame run time of the five STAViS metrics (CC, NSS, AUC-Judd, SIM, sAUC).

Synthetic 360x640 frame (smooth saliency map, centre-biased fixations, Gaussian density,
other-fixation map of the same video with 7x as many pixels as the frame's fixations), with
60 and with 600 fixated pixels.  Single thread: the BLAS/OpenMP thread counts are set to 1
before numpy is imported.  Reports the median over repeats of

* each metric function called on its own, repeatedly (``avsal.metrics.cc`` etc., defaults:
  AUC-Judd with jitter, sAUC with 100 splits, step 0.1),
* ``five_calls``: the five functions called one after the other (the per-frame cost),
* ``compute_metrics``: the five computed by one call (shared normalisation).

Usage: ``python benchmarks/bench_metrics.py [--repeats N] [--json FILE]``
"""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from avsal import metrics  # noqa: E402

H, W = 360, 640


def _points(rng, n, sd):
    pts = set()
    while len(pts) < n:
        y = int(round(rng.normal(H / 2, sd * H)))
        x = int(round(rng.normal(W / 2, sd * W)))
        if 0 <= y < H and 0 <= x < W:
            pts.add((y, x))
    return np.array(sorted(pts))


def make_frame(n_fix, seed=0):
    rng = np.random.default_rng(seed)
    fix = np.zeros((H, W), dtype=np.uint8)
    p = _points(rng, n_fix, 0.18)
    fix[p[:, 0], p[:, 1]] = 1
    dens = ndimage.gaussian_filter(fix.astype(np.float64), sigma=19, mode="constant")
    dens /= dens.max()
    other = np.zeros((H, W))
    q = _points(rng, 7 * n_fix, 0.22)
    other[q[:, 0], q[:, 1]] = 1.0
    other[fix > 0] = 0.0
    yy = (np.arange(H) - (H - 1) / 2) / H
    xx = (np.arange(W) - (W - 1) / 2) / W
    cb = np.exp(-(yy[:, None] ** 2) / 0.125 - (xx[None, :] ** 2) / 0.125)
    sal = ndimage.gaussian_filter(rng.random((H, W)), sigma=12, mode="reflect")
    sal = 0.6 * (sal - sal.min()) / (sal.max() - sal.min()) + 0.4 * cb
    return sal, fix, dens, other


def _median_ms(fn, repeats):
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts))


def bench(n_fix, repeats):
    sal, fix, dens, other = make_frame(n_fix)
    gen = np.random.default_rng(1)
    calls = {
        "cc": lambda: metrics.cc(sal, dens),
        "nss": lambda: metrics.nss(sal, fix),
        "auc_judd": lambda: metrics.auc_judd(sal, fix, rng=gen),
        "sim": lambda: metrics.sim(sal, dens),
        "auc_shuffled": lambda: metrics.auc_shuffled(sal, fix, other, rng=gen),
    }
    res = {name: _median_ms(fn, repeats) for name, fn in calls.items()}

    def five():
        for fn in calls.values():
            fn()

    res["five_calls"] = _median_ms(five, repeats)
    res["compute_metrics"] = _median_ms(
        lambda: metrics.compute_metrics(sal, fix=fix, dens=dens, other=other, rng=gen), repeats)
    return {"n_fix": int(fix.sum()), "n_other": int((other > 0).sum()), "ms": res}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)

    runs = [bench(n, args.repeats) for n in (60, 600)]
    cols = ["cc", "nss", "auc_judd", "sim", "auc_shuffled", "five_calls", "compute_metrics"]
    print(f"median ms per frame, {H}x{W}, single thread, {args.repeats} repeats")
    print(f"{'metric':<16}" + "".join(f"{r['n_fix']:>6} fix" for r in runs))
    for c in cols:
        print(f"{c:<16}" + "".join(f"{r['ms'][c]:>10.3f}" for r in runs))
    if args.json:
        out = {
            "shape": [H, W],
            "repeats": args.repeats,
            "threads": 1,
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "machine": platform.machine(),
            "processor": platform.processor(),
            "runs": runs,
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
