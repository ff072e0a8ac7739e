"""``avsal pseudo-gt``: the crop (stage 4) and finalize (stage 7) steps of the weak STANet pipeline.

Usage::

    avsal pseudo-gt crop --data ROOT --cams S=CAMS_S SA=CAMS_SA ST=CAMS_ST --out CROPS
                         [--grid 356] [--factor 2.0] [--box upstream|adaptive] [--box-window K]
                         [--any-branch] [--audio link|copy|reference] [--split train] [--overwrite] [--quiet]
    avsal pseudo-gt finalize --crops CROPS --cams S=FINE_S SA=FINE_SA ST=FINE_ST --out PGT
                         [--variant upstream|sta_trial] [--smoothing|--no-smoothing] [--factor 3.0]
                         [--frames valid|upstream] [--any-branch] [--overwrite] [--quiet]

Folder layouts: ``docs/weak_pipeline.md``. Exit codes: 0 done; 2 bad usage, bad input (a missing or
corrupt file, named in the message) or an output folder that cannot be used.

The module exposes :func:`add_parser` (adds ``pseudo-gt`` to an ``argparse`` sub-parsers object) and
:func:`run` (runs it from the parsed arguments).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run", "parse_cams"]


def parse_cams(items: list[str]) -> dict[str, str]:
    """``["S=DIR", "SA=DIR2"]`` → ``{"S": "DIR", "SA": "DIR2"}``.

    Raises:
        ValueError: an item without ``=``, an empty name or folder, or a branch given twice.
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise ValueError(f"--cams expects BRANCH=DIR (e.g. S=cams_s), got {item!r}")
        if name in out:
            raise ValueError(f"--cams: branch {name!r} given twice")
        out[name] = path
    if not out:
        raise ValueError("--cams: give at least one BRANCH=DIR")
    return out


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``pseudo-gt`` sub-command (with ``crop`` and ``finalize``) to ``subparsers``.

    Returns:
        the ``pseudo-gt`` parser.
    """
    p = subparsers.add_parser(
        "pseudo-gt", help="weak STANet pseudo ground truth: crop (stage 4) and finalize (stage 7)",
        description="Coarse-to-fine pseudo ground truth for weakly supervised STANet (upstream's "
                    "Coarse-Fine&Fusion MATLAB scripts). See docs/weak_pipeline.md.")
    sub = p.add_subparsers(dest="pgt_command", required=True, metavar="{crop,finalize}")

    c = sub.add_parser(
        "crop", help="fuse the coarse CAMs, box the salient region, write a crops root",
        description="Fuse the coarse S/SA/ST CAMs weighted by their class probabilities, resize to the grid, "
                    "take the box of F > FACTOR*mean(F), and write the frames cut to it (resized to GRID²) as a "
                    "prepared root with boxes.csv.")
    c.add_argument("--data", required=True, metavar="ROOT", help="prepared root (manifest.csv, frames/, audio/)")
    c.add_argument("--cams", required=True, nargs="+", metavar="BRANCH=DIR",
                   help="coarse CAM folders, e.g. S=cams_s SA=cams_sa ST=cams_st")
    c.add_argument("--out", required=True, metavar="CROPS", help="crops root to write")
    c.add_argument("--grid", type=int, default=356, help="side of the square frame grid (default 356)")
    c.add_argument("--factor", type=float, default=2.0, help="box threshold factor (default 2.0, upstream)")
    c.add_argument("--box", choices=("upstream", "adaptive"), default="upstream",
                   help="upstream: F > factor*mean; adaptive: STA_trial's lowering threshold (default upstream)")
    c.add_argument("--start", type=float, default=2.0, help="adaptive: first factor (default 2.0)")
    c.add_argument("--step", type=float, default=0.05, help="adaptive: factor step (default 0.05)")
    c.add_argument("--min-size", type=int, default=100, help="adaptive: least box extent (default 100)")
    c.add_argument("--box-window", type=int, default=None, metavar="K",
                   help="average each box over K seconds (odd; default 1, or 3 with --box adaptive)")
    c.add_argument("--split", default=None, help="only manifest rows of this split (default: all with CAMs)")
    c.add_argument("--audio", choices=("link", "copy", "reference"), default="link",
                   help="audio features in the crops root: hard link (default), copy, or a relative reference")
    _common(c)

    f = sub.add_parser(
        "finalize", help="paste the fine CAMs into their boxes, fuse, smooth, sparsify → pseudo-GT PNGs",
        description="Paste each fine CAM into its box on a zero GRID² map, fuse the branches, smooth each clip "
                    "over 5 frames (recursive, as upstream), zero values below FACTOR*mean, write PNGs.")
    f.add_argument("--crops", required=True, metavar="CROPS", help="crops root of `avsal pseudo-gt crop`")
    f.add_argument("--cams", required=True, nargs="+", metavar="BRANCH=DIR",
                   help="fine CAM folders, e.g. S=fine_s SA=fine_sa ST=fine_st")
    f.add_argument("--out", required=True, metavar="PGT", help="pseudo-GT folder to write")
    f.add_argument("--variant", choices=("upstream", "sta_trial"), default="upstream",
                   help="upstream (smoothing + sparsify) or sta_trial (fuse, paste, nothing else)")
    g = f.add_mutually_exclusive_group()
    g.add_argument("--smoothing", dest="smoothing", action="store_true", default=None,
                   help="temporal smoothing (default for upstream)")
    g.add_argument("--no-smoothing", dest="smoothing", action="store_false", help="no temporal smoothing")
    f.add_argument("--window", type=int, default=5, help="smoothing window (odd, default 5)")
    f.add_argument("--no-recursive", action="store_true", help="plain moving mean instead of upstream's recursive one")
    f.add_argument("--frames", choices=("valid", "upstream"), default="valid",
                   help="with smoothing: every centre with a full window (default) or upstream's frame range")
    f.add_argument("--factor", type=float, default=None,
                   help="zero values below FACTOR*mean (default 3.0 upstream, none for sta_trial; 0 = off)")
    f.add_argument("--grid", type=int, default=None, help="grid side (default: the crops root's)")
    _common(f)
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--any-branch", action="store_true",
                   help="use a frame when at least one branch has a CAM (default: every branch, as upstream)")
    p.add_argument("--correct-only", action="store_true", help="ignore cams.csv rows whose `correct` is not 1")
    p.add_argument("--resize", choices=("matlab", "bilinear"), default="matlab",
                   help="interpolation: MATLAB bicubic imresize (default, upstream) or bilinear")
    p.add_argument("--overwrite", action="store_true", help="replace an output made with other settings")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _err(msg: str) -> None:
    print(f"avsal pseudo-gt: error: {msg}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``avsal pseudo-gt crop|finalize`` from parsed arguments (see :func:`add_parser`).

    Returns:
        0 done; 2 bad usage, bad input or an unusable output folder (message on stderr).
    """
    from avsal.errors import InputError, OutputError
    from avsal.pseudo_gt.pipeline import crop_stage, finalize_stage

    try:
        cams = parse_cams(args.cams)
        if args.pgt_command == "crop":
            res = crop_stage(args.data, cams, args.out, grid=args.grid, factor=args.factor, box=args.box,
                             require_all=not args.any_branch, start=args.start, step=args.step,
                             min_size=args.min_size, box_window=args.box_window, split=args.split,
                             correct_only=args.correct_only, audio=args.audio, resize=args.resize,
                             overwrite=args.overwrite, progress=not args.quiet)
            msg = (f"{res['cropped']} crops written to {res['out']} "
                   f"({res['skipped_missing_branch']} frames lacked a branch, {res['skipped_empty_box']} had an "
                   f"empty box)")
        elif args.pgt_command == "finalize":
            res = finalize_stage(args.crops, cams, args.out, smoothing=args.smoothing, factor=args.factor,
                                 variant=args.variant, require_all=not args.any_branch, window=args.window,
                                 recursive=not args.no_recursive, frames=args.frames, grid=args.grid,
                                 correct_only=args.correct_only, resize=args.resize, overwrite=args.overwrite,
                                 progress=not args.quiet)
            msg = f"{res['written']} pseudo-GT maps written to {res['out']} ({res['skipped']} frames skipped)"
        else:
            _err(f"unknown pseudo-gt command {args.pgt_command!r}")
            return 2
    except (InputError, OutputError, ValueError) as e:
        _err(str(e))
        return 2
    if not getattr(args, "quiet", False):
        print(msg)
    return 0
