#!/usr/bin/env python3
"""Per-frame run time of the STAViS evaluation pipeline, and the speed-up over Octave.

Per frame, as STAViS's ``eval_<db>.m`` does it: post-processing of a 112x112 prediction
(``postprocessMap``: min-max + 13x13 Gaussian, sigma 2), MATLAB-bicubic resize to the 360x640
ground truth, then CC, NSS, AUC-Judd (jitter), SIM and sAUC (100 splits) on one generator.
The ground truth is ``bench_metrics.make_frame`` (60 and 600 fixated pixels; other map with 7x as
many pixels).  Single thread (BLAS/OpenMP thread counts set to 1 before numpy is imported).

Timed (median over repeats, or the minimum with ``--stat min``, ms):

* ``postprocess``: :func:`avsal.evaluate.protocol.postprocess_map` at 112x112;
* ``resize``: :func:`avsal.evaluate.resize.resize_to` 112x112 -> 360x640
  (and, for reference, :func:`avsal.evaluate.imresize`, the tap-by-tap transcription);
* ``metrics``: :func:`avsal.metrics.compute_metrics` with the five metrics;
* ``pipeline``: the three together (``prepare_prediction`` + ``compute_metrics``), the figure
  compared with Octave;
* ``end_to_end``: :func:`avsal.evaluate.runner.evaluate_video` on a synthetic STAViS-layout video
  written to a temporary folder (eyeMap JPEGs, fixMap .mat files, pred_sal JPEGs), divided by the
  frames scored (3 runs): includes the file reading and the video's other-map union.

Octave reference (``docs/evaluation.md`` §6, Octave 7.3, 2-vCPU EPYC VM): the five
metrics cost 0.074 s per frame with 60 fixated pixels (AUC_Judd 0.031, AUC_shuffled 0.025, NSS 0.002,
CC 0.009, SIM 0.007) and 0.293 s with 600 (AUC_Judd 0.245, ...), plus 0.013 s preprocessing
(postprocessMap + imresize), excluding file reading.

glibc's malloc thresholds are fixed first (see :func:`tune_malloc`; ``--no-malloc-tune`` to skip).

Usage: ``python benchmarks/bench_evaluate.py [--repeats N] [--frames F] [--stat median|min] [--json FILE]``
"""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import resource  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metrics import H, W, make_frame  # noqa: E402

from avsal import metrics  # noqa: E402
from avsal.evaluate import imresize  # noqa: E402
from avsal.evaluate import protocol as P  # noqa: E402
from avsal.evaluate import runner  # noqa: E402
from avsal.evaluate.resize import resize_to  # noqa: E402

#: Octave seconds per frame: five metrics (``docs/evaluation.md`` §6) + 0.013 s preprocessing.
OCTAVE_S = {60: 0.031 + 0.025 + 0.002 + 0.009 + 0.007 + 0.013,
            600: 0.245 + 0.027 + 0.004 + 0.010 + 0.007 + 0.013}

PRED = 112

STAT = {"median": np.median, "min": np.min}
_stat = np.median


FAULTS = {}  # minor page faults per call, by step


def _median_ms(fn, repeats, name=None):
    """ms per call: the chosen statistic (median, or min with --stat min) over ``repeats`` calls."""
    fn()  # warm-up
    ts = []
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    if name:
        FAULTS[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / repeats
    return 1e3 * float(_stat(ts))


def tune_malloc() -> bool:
    """Keep freed memory in glibc's heap (no mmap / trim per multi-MB array).

    The synthetic frame loop frees and re-allocates the same few 1.8 MB arrays every frame; with
    glibc's dynamic thresholds the heap top can then be trimmed and re-faulted every call (~940
    minor page faults, ~2 ms per frame here), depending on what ran before.  The real
    ``evaluate_video`` loop (JPEG and .mat reading in between) shows no such faults, so this
    makes the synthetic numbers represent it.  Returns False where glibc's mallopt is unavailable.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, 32 << 20)) and bool(libc.mallopt(-1, 128 << 20))  # M_MMAP_, M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def make_pred(seed=0):
    """A 112x112 prediction as STAViS stores it: uint8 after min-max, read back / 255."""
    x = ndimage.gaussian_filter(np.random.default_rng(seed).random((PRED, PRED)), 6)
    return np.floor((x - x.min()) / (x.max() - x.min()) * 255).astype(np.uint8) / 255.0


def bench_frame(n_fix, repeats):
    _, fix, dens, other = make_frame(n_fix)
    other = other > 0
    pred = make_pred()
    cfg = P.ProtocolConfig()
    gen = np.random.default_rng(1)
    post = P.postprocess_map(pred)
    S = resize_to(post, (H, W))

    def pipeline():
        S2 = P.prepare_prediction(pred, (H, W), cfg)
        metrics.compute_metrics(S2, fix=fix, dens=dens, other=P.other_map(other, fix), rng=gen)

    res = {
        "postprocess": _median_ms(lambda: P.postprocess_map(pred), repeats),
        "resize": _median_ms(lambda: resize_to(post, (H, W)), repeats),
        "metrics": _median_ms(lambda: metrics.compute_metrics(S, fix=fix, dens=dens, other=other, rng=gen),
                              repeats),
        "pipeline": _median_ms(pipeline, repeats, "pipeline"),
    }
    return {"n_fix": int(fix.sum()), "ms": res, "pipeline_page_faults": FAULTS["pipeline"]}


def bench_imresize(repeats):
    """The tap-by-tap transcription, for reference.  Timed last: its many large temporaries leave
    glibc's heap in a state where later fresh allocations page-fault (~1000 faults per frame)."""
    post = P.postprocess_map(make_pred())
    return _median_ms(lambda: imresize(post, (H, W)), repeats)


def bench_end_to_end(n_fix, nframes, tmp):
    """evaluate_video on a synthetic STAViS-layout video; ms per scored frame."""
    import scipy.io
    from PIL import Image

    from avsal.evaluate.readers import PredictionSpec

    ann = Path(tmp) / f"annotations/AVAD/v{n_fix}"
    (ann / "maps").mkdir(parents=True)
    pdir = Path(tmp) / f"pred/v{n_fix}"
    pdir.mkdir(parents=True)
    for k in range(1, nframes + 1):
        _, fix, dens, _ = make_frame(n_fix, seed=k)
        Image.fromarray(np.round(255 * dens).astype(np.uint8)).save(ann / "maps" / f"eyeMap_{k:05d}.jpg")
        scipy.io.savemat(ann / f"fixMap_{k:05d}.mat", {"eyeMap": fix.astype(np.float64)})
    for k in range(9, nframes + 8):
        Image.fromarray(np.round(255 * make_pred(k)).astype(np.uint8)).save(pdir / f"pred_sal_{k:06d}.jpg")
    job = runner.VideoJob("AVAD", 1, f"v{n_fix}", nframes, str(ann), str(pdir),
                          PredictionSpec(str(Path(tmp) / "pred")), P.ProtocolConfig(), 0)
    runner.evaluate_video(job)  # warm-up (imports, caches)
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = runner.evaluate_video(job)
        ts.append(time.perf_counter() - t0)
        assert r.status == "ok", r.error
    return 1e3 * float(_stat(ts)) / len(r.frames)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--frames", type=int, default=60, help="frames of the end-to-end video (default 60)")
    ap.add_argument("--stat", choices=sorted(STAT), default="median",
                    help="statistic over the repeats (min is robust to other load on the machine)")
    ap.add_argument("--no-malloc-tune", action="store_true", help="leave glibc's malloc thresholds alone")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    global _stat
    _stat = STAT[args.stat]
    tuned = tune_malloc() if not args.no_malloc_tune else False

    runs = [bench_frame(n, args.repeats) for n in (60, 600)]
    with tempfile.TemporaryDirectory() as tmp:
        for r in runs:
            r["ms"]["end_to_end"] = bench_end_to_end(r["n_fix"], args.frames, tmp)
    t_imresize = bench_imresize(args.repeats)
    for r in runs:
        r["ms"]["resize_imresize"] = t_imresize
    print(f"{args.stat} ms per frame: {PRED}x{PRED} prediction -> {H}x{W} ground truth, single thread, "
          f"{args.repeats} repeats; end_to_end over {args.frames - 8} scored frames")
    print(f"{'step':<18}" + "".join(f"{r['n_fix']:>7} fix" for r in runs))
    for c in ("postprocess", "resize", "resize_imresize", "metrics", "pipeline", "end_to_end"):
        print(f"{c:<18}" + "".join(f"{r['ms'][c]:>11.3f}" for r in runs))
    print(f"{'Octave (docs §6)':<18}" + "".join(f"{1e3 * OCTAVE_S[r['n_fix']]:>11.1f}" for r in runs))
    for c in ("pipeline", "end_to_end"):
        print(f"{'speed-up ' + c:<18}" + "".join(f"{1e3 * OCTAVE_S[r['n_fix']] / r['ms'][c]:>10.1f}x" for r in runs))
    print(f"malloc thresholds fixed: {tuned}; pipeline minor page faults per frame: "
          + ", ".join(f"{r['pipeline_page_faults']:.0f}" for r in runs) + f"; load average {os.getloadavg()[0]:.2f}")
    if args.json:
        out = {"pred_shape": [PRED, PRED], "gt_shape": [H, W], "repeats": args.repeats, "threads": 1,
               "stat": args.stat, "load_average": os.getloadavg(), "malloc_tuned": tuned,
               "octave_s_per_frame": OCTAVE_S, "python": sys.version.split()[0], "numpy": np.__version__,
               "machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
               "runs": runs,
               "speedup": {r["n_fix"]: {c: OCTAVE_S[r["n_fix"]] * 1e3 / r["ms"][c] for c in ("pipeline", "end_to_end")}
                           for r in runs}}
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
