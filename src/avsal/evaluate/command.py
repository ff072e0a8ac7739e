"""``avsal evaluate``: score saliency predictions on a STAViS-layout dataset.

Usage::

    avsal evaluate --data-root ROOT --dataset AVAD --pred DIR --out REPORT_DIR
                   [--split 1|2|3|all] [--protocol stavis|vinet] [--frames stavis|all]
                   [--metrics cc,nss,auc_j,sim,sauc] [--jobs N] [--seed S]
                   [--layout auto|stavis|avsal|numbered] [--pattern %04d.png] [--first-index 1]
                   [--fold-lists DIR] [--uint8] [--strict] [--no-plots] [--quiet]
    avsal evaluate --data-root DHF1K_ROOT [--dataset-layout dhf1k] --pred DIR --out REPORT_DIR ...
                   (DHF1K / Hollywood-2 / UCF-Sports layout: see run_dhf1k)
    avsal evaluate --gaze RECORDING [--video VIDEO] [--pred DIR] --out REPORT_DIR [--sigma PX] ...
                   (one video against real gaze: see run_gaze and avsal.evaluate.gaze)

Writes ``per_frame.csv``, ``per_video.csv``, ``summary.json``, ``summary.md``, ``per_video.png``
and ``examples.png`` into ``REPORT_DIR`` (see :mod:`avsal.evaluate.report`).

Exit codes: 0 every listed video scored on every selected frame; 1 some videos failed or some
frames had no prediction (all reported; the scores cover the rest); 2 bad usage or bad input
(wrong root, unknown dataset, missing/malformed fold list, no prediction folder, report folder
not writable), or, with ``--strict``, any problem of exit code 1.

This module owns only the command line: :func:`add_parser` (adds the ``evaluate`` sub-command to
an ``argparse`` sub-parsers object), :func:`run` (runs it from the parsed arguments) and its
drivers :func:`run_dhf1k` and :func:`run_gaze`.  The scoring itself is
:mod:`avsal.evaluate.runner` (per-video jobs, process pool, aggregation), the report
:mod:`avsal.evaluate.report`, the real-gaze scoring :mod:`avsal.evaluate.gaze`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from avsal.errors import InputError, OutputError
from avsal.metrics import METRICS, PAPER_METRICS, metric_label, parse_metrics
from avsal.evaluate.protocol import FRAME_MODES, PROTOCOLS, STAVIS_FIRST_FRAME, ProtocolConfig
from avsal.evaluate.readers import (PredictionSpec, StavisLayout, check_pattern, find_prediction_dir,
                                    list_prediction_frames)
from avsal.evaluate.runner import VideoJob, aggregate, run_jobs

__all__ = ["add_parser", "run", "run_gaze", "run_dhf1k"]

_DESCRIPTION = """\
Score saliency predictions against a dataset in the STAViS release layout
(ROOT/annotations/<DB>/<video>/maps/eyeMap_%05d.jpg, fixMap_%05d.mat, ROOT/fold_lists/*.txt)
with the STAViS protocol: per-frame min-max + 13x13 Gaussian (sigma 2) at prediction size,
MATLAB bicubic resize to the ground-truth size, cvzoya CC / NSS / AUC-Judd / SIM / shuffled AUC
(other map: the same video's fixations), frames 9..nframes, NaN-dropped per-video means,
dataset = mean over the test videos of the 3 folds (DIEM: mean of the split means).

Predictions are looked for in PRED/split<s>_results/<db>/<video>/ (STAViS: pred_sal_%06d.jpg),
PRED/<db>/<video>/ or PRED/<video>/ (e.g. avsal predict output: maps/%06d.png, 1-based frame).

With a DHF1K-layout root (<video>/maps/NNNN.png, <video>/fixation/NNNN.png or fixation/maps/NNNN.mat;
DHF1K, Hollywood-2, UCF-Sports; --dataset-layout dhf1k, detected by default): every frame of every video,
predictions resized to the map size (--protocol vinet by default), predictions in PRED/<video>/.

With --gaze RECORDING [--video VIDEO] [--pred DIR]: one video against a real gaze recording
(CSV, Andersson .mat, DIEM folder, DHF1K folder), beside a centre Gaussian and the inter-observer
ceiling (see the "real gaze" options below and docs/gaze.md).

Exit codes: 0 all scored; 1 some videos failed or frames were missing (reported); 2 bad usage
or input (or any problem with --strict)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``).

    Returns:
        The new sub-parser (its arguments are described by ``avsal evaluate --help``).
    """
    p = subparsers.add_parser(
        "evaluate", help="score predictions on a STAViS-layout dataset (paper-exact metrics) or on real gaze",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", metavar="ROOT",
                   help="STAViS data folder (holding annotations/ and fold_lists/), or its parent; or a DHF1K-layout "
                        "root (see --dataset-layout)")
    p.add_argument("--dataset", metavar="NAME",
                   help="AVAD, DIEM, Coutrot1, Coutrot2, ETMD, SumMe (or a folder of ROOT/annotations); "
                        "with the DHF1K layout only the report's name (default: the root's folder name)")
    p.add_argument("--pred", metavar="DIR",
                   help="folder of the predictions (required, except with --gaze: references only)")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="report folder (created if needed)")
    p.add_argument("--split", default="all", choices=("1", "2", "3", "all"),
                   help="test split(s) to score (default all)")
    p.add_argument("--dataset-layout", default="auto", choices=("auto", "stavis", "dhf1k"),
                   help="ground-truth layout of --data-root: stavis (annotations/, fold_lists/) or dhf1k "
                        "(DHF1K, Hollywood-2, UCF-Sports: <video>/maps/, fixation/; ROOT may be one video folder); "
                        "default: detected")
    p.add_argument("--protocol", default=None, choices=PROTOCOLS,
                   help="stavis: blur + resize (default for the STAViS layout); vinet: resize only, as ViNet's "
                        "eval (default for the DHF1K layout)")
    p.add_argument("--frames", default=None, choices=FRAME_MODES,
                   help=f"stavis: frames {STAVIS_FIRST_FRAME}..nframes (default for --protocol stavis); "
                        "all: every frame (default for vinet)")
    p.add_argument("--first-frame", type=int, default=STAVIS_FIRST_FRAME, metavar="K",
                   help=f"first frame scored with --frames stavis (default {STAVIS_FIRST_FRAME})")
    p.add_argument("--metrics", default=None, metavar="LIST",
                   help=f"comma-separated: {','.join(PAPER_METRICS)} (default; with --gaze also kld), "
                        f"also {', '.join(m for m in METRICS if m not in PAPER_METRICS)}")
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
    _add_gaze_args(p)
    return p


def _add_gaze_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "real gaze (--gaze)", "score one video's predictions against a raw gaze recording (avsal.evaluate.gaze), "
        "beside a centre Gaussian and the inter-observer (leave-one-viewer-out) ceiling; "
        "--data-root/--dataset are not used")
    g.add_argument("--gaze", metavar="PATH",
                   help="a CSV (viewer,t_s,x_px,y_px[,event]), Andersson .mat file or folder, a DIEM video folder "
                        "(with event_data/) or a DHF1K-layout folder (fixation/, maps/)")
    g.add_argument("--video", metavar="FILE",
                   help="the video the gaze was recorded on: frame count, fps and size (required for raw gaze, "
                        "except DIEM: size from the folder name, 30 fps)")
    g.add_argument("--gaze-name", metavar="NAME",
                   help="stimulus name inside an Andersson folder (default: the --video file stem); "
                        "also the prediction sub-folder looked for in --pred")
    g.add_argument("--coder", metavar="ID", help="Andersson event coder (MN or RA; default the first)")
    g.add_argument("--screen", metavar="WxH",
                   help="screen size in px: the video is centred at native size on it (CSV; default: "
                        "coordinates are video pixels)")
    g.add_argument("--offset", metavar="X,Y", help="screen position (px) of the video's top-left corner")
    g.add_argument("--scale", metavar="S[,SY]", help="screen px per video px (with --offset; default 1)")
    g.add_argument("--px-per-degree", type=float, metavar="P",
                   help="video px per degree of visual angle (CSV; sets the default sigma of 1 degree and "
                        "the I-VT threshold unit deg/s)")
    g.add_argument("--ivt-threshold", type=float, metavar="V",
                   help="I-VT velocity threshold for unlabelled samples: deg/s with --px-per-degree (default 30), "
                        "else px/s (then required)")
    g.add_argument("--sigma", type=float, metavar="PX",
                   help="density sigma in video px (default 1 degree when the geometry is known, else 40 px)")
    g.add_argument("--centre-sigma", type=float, default=0.25, metavar="F",
                   help="centre Gaussian std as a fraction of height and width (default 0.25)")
    g.add_argument("--gaze-offset", type=float, default=0.0, metavar="S",
                   help="time (s) of the video's first frame on the gaze clock (default 0)")
    g.add_argument("--events", default="fixation,pursuit", metavar="LIST",
                   help="events that make fixation points (default fixation,pursuit)")
    g.add_argument("--frame-step", type=int, default=1, metavar="N", help="score every N-th frame (default 1)")


def _err(msg: str) -> None:
    print(f"avsal evaluate: error: {msg}", file=sys.stderr)


def _protocol_options(args) -> "tuple[list[str], ProtocolConfig, int]":
    """``(metrics, protocol config, worker count)`` from the options both dataset layouts share.

    Raises:
        ValueError: a bad metric list, pattern, ``--first-index`` or ``--jobs`` (the message names it).
    """
    metrics = parse_metrics(args.metrics)
    config = ProtocolConfig(protocol=args.protocol, frames=args.frames, first_frame=args.first_frame,
                            uint8=args.uint8, metrics=metrics)
    if args.pattern is not None:
        check_pattern(args.pattern)
    if args.first_index < 0:
        raise ValueError(f"--first-index must be >= 0, got {args.first_index}")
    if args.jobs < 0:
        raise ValueError(f"--jobs must be >= 0, got {args.jobs}")
    return metrics, config, args.jobs if args.jobs > 0 else (os.cpu_count() or 1)


def run(args: argparse.Namespace) -> int:
    """Run ``avsal evaluate`` from parsed arguments (see :func:`add_parser`).

    Returns:
        0 all listed videos scored on all selected frames; 1 partial (failed videos or
        missing frames, all reported); 2 bad usage or input, or any problem with ``--strict``.
    """
    if getattr(args, "gaze", None):
        if args.protocol is None:
            args.protocol = "stavis"
        return run_gaze(args)
    if getattr(args, "dataset_layout", "stavis") != "stavis" and args.data_root and \
            (args.dataset_layout == "dhf1k" or _looks_dhf1k(args.data_root)):
        return run_dhf1k(args)
    if args.protocol is None:
        args.protocol = "stavis"
    missing = [o for o, v in (("--data-root", args.data_root), ("--dataset", args.dataset), ("--pred", args.pred))
               if not v]
    if missing:
        _err(f"{', '.join(missing)} required (or --gaze for a real-gaze recording)")
        return 2
    if args.metrics is None:
        args.metrics = ",".join(PAPER_METRICS)
    t0 = time.perf_counter()
    quiet = getattr(args, "quiet", False)
    # ---- arguments and inputs that make the whole run impossible: exit 2
    try:
        metrics, config, n_jobs = _protocol_options(args)
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
    return _finish(args, out, results, scores, metrics, meta, f"{ds.name} ({config.protocol} protocol, split "
                                                              f"{args.split})", t0)


def _looks_dhf1k(root: str) -> bool:
    """``--dataset-layout auto``: a root without ``annotations/`` that is, or holds, a DHF1K video folder."""
    from avsal.evaluate.readers import is_dhf1k_video

    r = Path(root)
    if not r.is_dir() or (r / "annotations").is_dir() or (r / "data" / "annotations").is_dir():
        return False
    parts = ("maps", "fixation")
    return is_dhf1k_video(r, parts) or any(d.is_dir() and is_dhf1k_video(d, parts) for d in r.iterdir())


def _dhf1k_prediction_dir(pred_root: Path, video: str, single: bool) -> Path | None:
    """``PRED/<video>``, or ``PRED`` itself when the root is one video and ``PRED`` holds its maps."""
    if (pred_root / video).is_dir():
        return pred_root / video
    return pred_root if single else None


def run_dhf1k(args: argparse.Namespace) -> int:
    """``avsal evaluate --dataset-layout dhf1k``: score every video of a DHF1K-layout root.

    Ground truth per video (:class:`avsal.evaluate.readers.Dhf1kGroundTruth`): ``maps/NNNN.png`` density,
    ``fixation/NNNN.png`` (or ``fixation/maps/NNNN.mat``) fixations, frames 1..N.  Default protocol ``vinet``
    with every frame scored (ViNet's DHF1K evaluation: each prediction resized to the ground-truth map's size,
    no post-processing; ``--protocol stavis`` adds STAViS' blur).  The frame images are not read: their size
    does not matter (the shared 0601 sample has 320x256 images and 640x360 maps).  Predictions:
    ``PRED/<video>/`` in any layout of :func:`avsal.evaluate.readers.list_prediction_frames` (``avsal predict``
    output ``maps/%06d.png``, or ``--pattern``); with one video, ``PRED`` itself may be its folder.  There
    are no folds: every video is reported as split 0 and the score is the mean over the videos.

    Returns:
        As :func:`run`.
    """
    from avsal.evaluate.readers import read_dhf1k_root

    if not args.pred:
        _err("--pred required (or --gaze for a real-gaze recording)")
        return 2
    if args.protocol is None:
        args.protocol = "vinet"
    if args.metrics is None:
        args.metrics = ",".join(PAPER_METRICS)
    t0 = time.perf_counter()
    try:
        metrics, config, n_jobs = _protocol_options(args)
    except ValueError as e:
        _err(str(e))
        return 2
    try:
        videos = read_dhf1k_root(args.data_root, ("maps", "fixation"))
        pred_root = Path(args.pred).resolve()
        if not pred_root.is_dir():
            raise InputError(args.pred, "prediction folder not found")
        spec = PredictionSpec(str(pred_root), layout=args.layout, pattern=args.pattern, first_index=args.first_index)
        from avsal.io.write import ensure_writable_dir

        out = ensure_writable_dir(args.out)
    except (InputError, OutputError) as e:
        _err(str(e))
        return 2
    name = args.dataset or Path(args.data_root).resolve().name
    single = len(videos) == 1
    jobs = []
    for v in videos:
        pdir = _dhf1k_prediction_dir(pred_root, v.name, single)
        jobs.append(VideoJob(name, 0, v.name, v.nframes, str(v.folder), str(pdir) if pdir is not None else None,
                             spec, config, int(args.seed), example=len(jobs) < 4, index=len(jobs),
                             gt_layout="dhf1k"))
    if all(j.pred_dir is None for j in jobs):
        _err(f"{pred_root}: no prediction folder for any of the {len(jobs)} videos (looked for <pred>/<video>)")
        return 2
    results = run_jobs(jobs, n_jobs, progress=not getattr(args, "quiet", False), log=True)
    scores = aggregate(results, metrics, "pooled")
    import avsal

    meta = {
        "avsal_version": avsal.__version__,
        "dataset": name,
        "dataset_layout": "dhf1k",
        "data_root": str(Path(args.data_root).resolve()),
        "pred": str(pred_root),
        "splits": [0],
        "seed": int(args.seed),
        "config": config.to_dict(),
        "prediction_layout": {"layout": spec.layout, "pattern": spec.pattern, "first_index": spec.first_index},
    }
    return _finish(args, out, results, scores, metrics, meta, f"{name} (DHF1K layout, {config.protocol} protocol)",
                   t0, entries="videos")


def _finish(args, out, results, scores, metrics, meta, title: str, t0: float, entries: str = "test-list entries"
            ) -> int:
    """Write the report, print the summary, return the exit code (0, 1 partial, 2 with --strict)."""
    try:
        summary = write_report_safe(out, results, scores, metrics, meta, plots=not args.no_plots)
    except OutputError as e:
        _err(str(e))
        return 2

    # ---- console summary
    labels = "  ".join(f"{metric_label(m)} {_num(scores.scores[m])}" for m in metrics)
    n_frames = summary["n_frames_scored"]
    print(f"{title}: {labels}")
    print(f"{scores.n_listed} {entries}, {n_frames} frames scored in {time.perf_counter() - t0:.1f} s; "
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


# --------------------------------------------------------------------------------------
# --gaze: one video against a real gaze recording
# --------------------------------------------------------------------------------------


def _pair(text: str, opt: str, n_min: int = 2) -> tuple[float, ...]:
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{opt} expects numbers, got {text!r}") from None
    if not n_min <= len(vals) <= 2:
        raise ValueError(f"{opt} expects {'two numbers' if n_min == 2 else 'one or two numbers'}, got {text!r}")
    return vals


def _gaze_mapping(args):
    from avsal.evaluate.gaze import ScreenMapping

    if args.screen and (args.offset or args.scale):
        raise ValueError("give either --screen or --offset/--scale")
    if args.offset or args.scale:
        ox, oy = _pair(args.offset, "--offset") if args.offset else (0.0, 0.0)
        sc = _pair(args.scale, "--scale", 1) if args.scale else (1.0,)
        return ScreenMapping(ox, oy, sc[0], sc[-1])
    return None


def run_gaze(args: argparse.Namespace) -> int:
    """Run ``avsal evaluate --gaze``: score one video's predictions against a gaze recording.

    Writes ``per_frame.csv``, ``summary.csv``, ``summary.json`` and ``summary.md`` into ``--out``
    (:func:`avsal.evaluate.gaze.write_gaze_report`).

    Returns:
        0 scored; 1 some frames had no prediction (reported; 2 with ``--strict``); 2 bad usage or
        input.
    """
    from pathlib import Path

    from avsal.evaluate import gaze as G

    t0 = time.perf_counter()
    try:
        metrics = parse_metrics(args.metrics or ",".join(G.GAZE_METRICS))
        events = []
        for e in args.events.split(","):
            if e.strip().lower() not in G._EVENT_ALIASES:
                raise ValueError(f"--events: unknown event {e!r} (fixation, pursuit, saccade, pso, blink, undefined)")
            events.append(G._EVENT_ALIASES[e.strip().lower()])
        cfg = G.GazeScoreConfig(metrics=metrics, sigma=args.sigma, centre_sigma=(args.centre_sigma,) * 2,
                                protocol=args.protocol, seed=int(args.seed), frame_step=args.frame_step)
        spec_pattern = args.pattern
        if spec_pattern is not None:
            check_pattern(spec_pattern)
        mapping = _gaze_mapping(args)
    except ValueError as e:
        _err(str(e))
        return 2
    gaze_path = Path(args.gaze)
    meta = {"gaze": str(gaze_path.resolve()), "seed": int(args.seed), "protocol": args.protocol,
            "centre_sigma": [args.centre_sigma] * 2, "metrics": list(metrics)}
    try:
        if (gaze_path / "fixation").is_dir() and (gaze_path / "maps").is_dir():
            if args.sigma is not None:
                raise ValueError("--sigma cannot be set for a DHF1K-layout folder (its density maps are given)")
            fix = G.load_dhf1k(gaze_path)
            name = args.gaze_name or gaze_path.name
            meta.update(format="dhf1k", frames=fix.nframes, size=list(fix.size))
            if args.video:
                meta["video"] = str(Path(args.video).resolve())
        else:
            diem = gaze_path.is_dir() and (gaze_path.name == "event_data" or (gaze_path / "event_data").is_dir())
            if not args.video and not diem:
                raise ValueError("--video is required with a raw gaze recording (frame times and size)")
            if args.video:
                from avsal.io.video import probe

                info = probe(args.video)
                n, fps = info.n_frames or int(round(info.duration * info.fps)), info.fps
                size = (info.height, info.width)
                name = args.gaze_name or Path(args.video).stem
            else:  # DIEM: size from the folder name, one sample per 30 fps frame
                rec = G.load_diem(gaze_path)
                n, fps, size = max(v.t.size for v in rec.viewers), G.DIEM_FPS, rec.size
                name = args.gaze_name or rec.name
            if mapping is None and args.screen:
                sw, sh = _pair(args.screen, "--screen")
                mapping = G.ScreenMapping.centred((sw, sh), size)
            ivt = {"threshold": args.ivt_threshold} if args.ivt_threshold is not None else None
            if args.video:
                rec = G.load_gaze(gaze_path, size=size, video=name, mapping=mapping,
                                  px_per_degree=args.px_per_degree, coder=args.coder, ivt=ivt)
            fix = G.fixation_maps(rec, G.video_frame_times(n, fps, start=args.gaze_offset), size,
                                  events=events)
            meta.update(format=rec.meta.get("format"), video=str(Path(args.video).resolve()) if args.video else None,
                        fps=fps,
                        frames=n, size=list(size), viewers=rec.viewer_ids, mapping=rec.mapping.to_dict(),
                        px_per_degree=rec.px_per_degree, event_labels=rec.events_from,
                        fixation_events=[G.EVENT_NAMES[e] for e in events], gaze_offset_s=args.gaze_offset)
            if "ivt" in rec.meta:
                meta["ivt"] = rec.meta["ivt"]
            if "coders" in rec.meta:
                meta["coders"] = rec.meta["coders"]
        pred = None
        if args.pred:
            root = Path(args.pred)
            if not root.is_dir():
                raise InputError(root, "prediction folder not found")
            stems = [name] + ([Path(args.video).stem] if args.video else [])
            pdir = next((root / s for s in stems if (root / s).is_dir()), root)
            spec = PredictionSpec(str(root), layout=args.layout, pattern=spec_pattern, first_index=args.first_index)
            layout, files = list_prediction_frames(pdir, spec, range(1, fix.nframes + 1))
            pred = {k: p for k, p in files.items() if 1 <= k <= fix.nframes}
            if not pred:
                raise InputError(pdir, f"no prediction files for frames 1..{fix.nframes} (layout {layout}, "
                                       f"first index {args.first_index})")
            meta.update(pred=str(pdir.resolve()), prediction_layout=layout)
        from avsal.io.write import ensure_writable_dir

        out = ensure_writable_dir(args.out)
        scores = G.score_against_gaze(pred, fix, cfg, name=name)
        if not scores.frames:
            raise InputError(gaze_path, "no frame with a fixation (and a prediction) to score")
        summary = G.write_gaze_report(out, scores, meta)
    except (InputError, OutputError, ValueError) as e:
        _err(str(e))
        return 2
    print(f"{name}: {summary['n_frames_scored']} frames scored, density sigma "
          f"{'dataset maps' if scores.sigma is None else f'{scores.sigma:.1f} px'}")
    for r, m in scores.means.items():
        print(f"  {r:18s} " + "  ".join(f"{metric_label(k)} {_num(v)}" for k, v in m.items()))
    for note in scores.notes:
        print(f"  note: {note}")
    print(f"report: {os.path.join(out, 'summary.md')} ({time.perf_counter() - t0:.1f} s)")
    if scores.missing:
        print(f"avsal evaluate: partial result: {len(scores.missing)} frames without prediction", file=sys.stderr)
        return 2 if args.strict else 1
    return 0
