"""``avsal evaluate``: score saliency predictions on a STAViS-layout dataset.

Usage::

    avsal evaluate --data-root ROOT --dataset AVAD --pred DIR --out REPORT_DIR
                   [--split 1|2|3|all] [--protocol stavis|vinet] [--frames stavis|all]
                   [--metrics cc,nss,auc_j,sim,sauc] [--jobs N] [--seed S]
                   [--layout auto|stavis|avsal|numbered] [--pattern %04d.png] [--first-index 1]
                   [--fold-lists DIR] [--uint8] [--strict] [--no-plots] [--quiet]

Writes ``per_frame.csv``, ``per_video.csv``, ``summary.json``, ``summary.md``, ``per_video.png``
and ``examples.png`` into ``REPORT_DIR`` (see :mod:`avsal.evaluate.report`).

Exit codes: 0 every listed video scored on every selected frame; 1 some videos failed or some
frames had no prediction (all reported; the scores cover the rest); 2 bad usage or bad input
(wrong root, unknown dataset, missing/malformed fold list, no prediction folder, report folder
not writable), or, with ``--strict``, any problem of exit code 1.

The module exposes :func:`add_parser` (adds the ``evaluate`` sub-command to an
``argparse`` sub-parsers object) and :func:`run` (runs it from the parsed arguments).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from avsal.errors import InputError, OutputError
from avsal.evaluate.protocol import (FRAME_MODES, METRIC_LABELS, PAPER_METRICS, PROTOCOLS, STAVIS_FIRST_FRAME,
                                     ProtocolConfig, VideoJob, VideoResult, aggregate, evaluate_video,
                                     parse_metrics)
from avsal.evaluate.readers import PredictionSpec, StavisLayout, check_pattern, find_prediction_dir
from avsal.parallel import run_pool

__all__ = ["add_parser", "run", "run_jobs"]

_DESCRIPTION = """\
Score saliency predictions against a dataset in the STAViS release layout
(ROOT/annotations/<DB>/<video>/maps/eyeMap_%05d.jpg, fixMap_%05d.mat, ROOT/fold_lists/*.txt)
with the STAViS protocol: per-frame min-max + 13x13 Gaussian (sigma 2) at prediction size,
MATLAB bicubic resize to the ground-truth size, cvzoya CC / NSS / AUC-Judd / SIM / shuffled AUC
(other map: the same video's fixations), frames 9..nframes, NaN-dropped per-video means,
dataset = mean over the test videos of the 3 folds (DIEM: mean of the split means).

Predictions are looked for in PRED/split<s>_results/<db>/<video>/ (STAViS: pred_sal_%06d.jpg),
PRED/<db>/<video>/ or PRED/<video>/ (e.g. avsal predict output: maps/%06d.png, 1-based frame).

Exit codes: 0 all scored; 1 some videos failed or frames were missing (reported); 2 bad usage
or input (or any problem with --strict)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``).

    Returns:
        The new sub-parser (its arguments are described by ``avsal evaluate --help``).
    """
    p = subparsers.add_parser(
        "evaluate", help="score predictions on a STAViS-layout dataset (paper-exact metrics)",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", required=True, metavar="ROOT",
                   help="STAViS data folder (holding annotations/ and fold_lists/), or its parent")
    p.add_argument("--dataset", required=True, metavar="NAME",
                   help="AVAD, DIEM, Coutrot1, Coutrot2, ETMD, SumMe (or a folder of ROOT/annotations)")
    p.add_argument("--pred", required=True, metavar="DIR", help="folder of the predictions")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="report folder (created if needed)")
    p.add_argument("--split", default="all", choices=("1", "2", "3", "all"),
                   help="test split(s) to score (default all)")
    p.add_argument("--protocol", default="stavis", choices=PROTOCOLS,
                   help="stavis: blur + resize (default); vinet: resize only, as ViNet's eval")
    p.add_argument("--frames", default=None, choices=FRAME_MODES,
                   help=f"stavis: frames {STAVIS_FIRST_FRAME}..nframes (default for --protocol stavis); "
                        "all: every frame (default for vinet)")
    p.add_argument("--first-frame", type=int, default=STAVIS_FIRST_FRAME, metavar="K",
                   help=f"first frame scored with --frames stavis (default {STAVIS_FIRST_FRAME})")
    p.add_argument("--metrics", default=",".join(PAPER_METRICS), metavar="LIST",
                   help="comma-separated: cc,nss,auc_j,sim,sauc (default), also kld, auc_b, auc_j_nojitter")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="videos scored in parallel (processes); 0 = one per CPU; results do not depend on N")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of AUC-Judd's jitter and sAUC's draws (per video: derived from S, split, name)")
    p.add_argument("--layout", default="auto", choices=("auto", "stavis", "avsal", "numbered"),
                   help="prediction file layout (default: detected per video)")
    p.add_argument("--pattern", metavar="FMT",
                   help="prediction file name in each video folder, printf style, e.g. %%04d.png or maps/%%06d.jpg")
    p.add_argument("--first-index", type=int, default=1, metavar="N",
                   help="file number holding frame 1 (default 1; 0 for 0-based file numbers)")
    p.add_argument("--fold-lists", metavar="DIR", help="folder of the fold lists (default ROOT/fold_lists)")
    p.add_argument("--uint8", action="store_true",
                   help="quantise predictions as STAViS saves them (min-max to uint8) before post-processing")
    p.add_argument("--strict", action="store_true", help="exit 2 on any failed video or missing frame")
    p.add_argument("--no-plots", action="store_true", help="do not draw per_video.png and examples.png")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _err(msg: str) -> None:
    print(f"avsal evaluate: error: {msg}", file=sys.stderr)




def run_jobs(jobs: list[VideoJob], n_jobs: int = 1, progress: bool = True, log=None) -> list[VideoResult]:
    """Score the jobs, sequentially or in a process pool; results in job order.

    Each job's numbers depend only on the job (its seed comes from
    :func:`avsal.evaluate.protocol.video_seed`), so ``n_jobs`` does not change them.  A worker
    that dies is reported as a failed video.
    """
    from tqdm.auto import tqdm

    results: list[VideoResult | None] = [None] * len(jobs)
    bar = tqdm(total=len(jobs), unit="video", desc="evaluate", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)

    def done(j: VideoJob, r: VideoResult) -> None:
        results[j.index] = r
        if r.status != "ok" and log:
            bar.write(f"failed: split {r.split}, {r.video}: {r.error}", file=sys.stderr)
        bar.update(1)

    for i, j in enumerate(jobs):
        j.index = i
    def crashed(j: VideoJob, e: BaseException) -> None:  # the worker died (BrokenProcessPool, out of memory, ...)
        done(j, VideoResult(j.split, j.video, j.nframes, status="failed", pred_dir=j.pred_dir,
                            error=f"{j.video}: worker process failed ({type(e).__name__}: {e})", index=j.index))

    try:
        run_pool(evaluate_video, jobs, n_jobs, on_result=done, on_crash=crashed)
    finally:
        bar.close()
    return results  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    """Run ``avsal evaluate`` from parsed arguments (see :func:`add_parser`).

    Returns:
        0 all listed videos scored on all selected frames; 1 partial (failed videos or
        missing frames, all reported); 2 bad usage or input, or any problem with ``--strict``.
    """
    t0 = time.perf_counter()
    quiet = getattr(args, "quiet", False)
    # ---- arguments and inputs that make the whole run impossible: exit 2
    try:
        metrics = parse_metrics(args.metrics)
        config = ProtocolConfig(protocol=args.protocol, frames=args.frames, first_frame=args.first_frame,
                                uint8=args.uint8, metrics=metrics)
        if args.pattern is not None:
            check_pattern(args.pattern)
        if args.first_index < 0:
            raise ValueError(f"--first-index must be >= 0, got {args.first_index}")
        n_jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
        if args.jobs < 0:
            raise ValueError(f"--jobs must be >= 0, got {args.jobs}")
    except ValueError as e:
        _err(str(e))
        return 2
    try:
        layout = StavisLayout(args.data_root, args.fold_lists)
        ds = layout.dataset(args.dataset)
        pred_root = os.path.abspath(args.pred)
        if not os.path.isdir(pred_root):
            raise InputError(args.pred, "prediction folder not found")
        spec = PredictionSpec(pred_root, layout=args.layout, pattern=args.pattern, first_index=args.first_index)
        splits = [1, 2, 3] if args.split == "all" else [int(args.split)]
        entries = {s: layout.test_entries(ds, s) for s in splits}
        from avsal.io.write import ensure_writable_dir

        out = ensure_writable_dir(args.out)
    except (InputError, OutputError) as e:
        _err(str(e))
        return 2
    jobs = []
    for s in splits:
        for e in entries[s]:
            pdir = find_prediction_dir(pred_root, ds, s, e.name)
            jobs.append(VideoJob(ds.name, s, e.name, e.nframes, str(layout.annotation_dir(ds, e.name)),
                                 str(pdir) if pdir is not None else None, spec, config, int(args.seed),
                                 example=len(jobs) < 4, index=len(jobs)))
    if all(j.pred_dir is None for j in jobs):
        _err(f"{pred_root}: no prediction folder for any of the {len(jobs)} test videos of {ds.name} "
             f"(looked for split<s>_results/{ds.pred_folder}/<video>, {ds.pred_folder}/<video>, <video>)")
        return 2

    # ---- score
    results = run_jobs(jobs, n_jobs, progress=not quiet, log=True)
    scores = aggregate(results, metrics, ds.aggregation if len(splits) > 1 else "pooled")
    per_split_dirs = sum(1 for j in jobs if j.pred_dir and f"split{j.split}_results" in j.pred_dir)
    import avsal

    meta = {
        "avsal_version": avsal.__version__,
        "dataset": ds.name,
        "data_root": str(layout.root),
        "fold_lists": [str(layout.fold_list_path(ds, s)) for s in splits],
        "pred": pred_root,
        "pred_per_split": per_split_dirs == sum(1 for j in jobs if j.pred_dir),
        "splits": splits,
        "seed": int(args.seed),
        "config": config.to_dict(),
        "prediction_layout": {"layout": spec.layout, "pattern": spec.pattern, "first_index": spec.first_index},
    }
    try:
        summary = write_report_safe(out, results, scores, metrics, meta, plots=not args.no_plots)
    except OutputError as e:
        _err(str(e))
        return 2

    # ---- console summary
    labels = "  ".join(f"{METRIC_LABELS.get(m, m)} {_num(scores.scores[m])}" for m in metrics)
    n_frames = summary["n_frames_scored"]
    print(f"{ds.name} ({config.protocol} protocol, split {args.split}): {labels}")
    print(f"{scores.n_listed} test-list entries, {n_frames} frames scored in {time.perf_counter() - t0:.1f} s; "
          f"report: {os.path.join(out, 'summary.md')}")
    failed = summary["problems"]["failed"]
    missing = summary["problems"]["missing_frames"]
    partial = bool(failed) or missing > 0 or not summary["complete"]
    if partial:
        msg = []
        if failed:
            msg.append(f"{len(failed)} of {scores.n_listed} videos failed")
        if missing:
            msg.append(f"{missing} frames without prediction in {len(summary['problems']['videos_with_missing'])} videos")
        if not summary["complete"] and not failed:
            msg.append("some videos have no value for some metric")
        print(f"avsal evaluate: partial result: {'; '.join(msg)} (see {os.path.join(out, 'per_video.csv')})",
              file=sys.stderr)
        return 2 if args.strict else 1
    return 0


def _num(v: float) -> str:
    return "n/a" if v != v else f"{v:.4f}"


def write_report_safe(out, results, scores, metrics, meta, plots=True) -> dict:
    """:func:`avsal.evaluate.report.write_report`, imported late (matplotlib is slow to import)."""
    from avsal.evaluate.report import write_report

    return write_report(out, results, scores, metrics, meta, plots=plots)
