"""``avsal prepare``: stage 1 of the weakly supervised STANet pipeline (videos → a prepared root).

Usage::

    avsal prepare ave    --videos DIR --annotations Annotations.txt --splits DIR --out ROOT
                         [--jobs N] [--keep-wav] [--vggsound-weights FILE] [--quiet]
    avsal prepare folder --videos DIR --labels labels.csv --out ROOT [--jobs N] [--keep-wav]
                         [--vggsound-weights FILE] [--quiet]

With ``--vggsound-weights`` (``vggsound_netvlad.pth.tar``) the root also gets ``audio_relevance.csv``, the
seconds whose audio the VGGSound classifier labels as the clip's category (:mod:`avsal.data.relevance`),
which ``avsal train scam --branch SA --switch-list`` uses as upstream does.

Writes ``manifest.csv``, ``classes.json``, ``frames/``, ``audio/`` (``wav/``), ``failures.csv`` and
``prepare_config.json`` into ROOT (``docs/weak_pipeline.md``, "Prepared root"; :mod:`avsal.data.prepare`).

Exit codes: 0 every clip prepared (or already complete); 1 some clips failed (listed in
``failures.csv``, the others are prepared); 2 bad usage or input (missing folder, malformed annotation,
split or labels file, root not writable).

The module exposes :func:`add_parser` (adds ``prepare`` to an ``argparse`` sub-parsers object) and
:func:`run` (runs it from the parsed arguments).
"""

from __future__ import annotations

import argparse
import sys

from avsal.errors import InputError, OutputError

__all__ = ["add_parser", "run"]

_DESCRIPTION = """\
Prepare category-labelled videos for the weakly supervised STANet pipeline: for every (clip, second),
the middle frame of the second (original size, JPEG q95) and the STANet audio features of that
second (16 kHz samples [s, s+1) s -> log-spectrogram float32 81x199, HDF5 key "dataset").

  ave     AVE layout: <videos>/<VideoID>.mp4, Annotations.txt (Category&VideoID&Quality&Start&End),
          trainSet.txt/valSet.txt/testSet.txt in --splits; one row per annotated second [Start, End).
  folder  any videos + labels.csv (video,label[,split]); every whole second of each video.

Resumable (complete clips are skipped), parallel (--jobs), failures go to ROOT/failures.csv.
Exit codes: 0 all clips ok; 1 some clips failed; 2 bad usage or input."""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="ROOT", help="prepared root (created if needed)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="clips prepared in parallel (processes); 0 = one per CPU (default 1)")
    p.add_argument("--keep-wav", action="store_true", help="also write wav/<clip>.wav (16 kHz mono float32)")
    p.add_argument("--vggsound-weights", metavar="FILE",
                   help="vggsound_netvlad.pth.tar: also write ROOT/audio_relevance.csv (SA's training frames)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``prepare`` sub-command (with ``ave`` and ``folder``) to ``subparsers``.

    Returns:
        The ``prepare`` parser. The chosen mode is ``args.prepare_mode`` (``"ave"`` or ``"folder"``).
    """
    p = subparsers.add_parser(
        "prepare", help="videos + labels -> prepared root (frames, audio features, manifest)",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = p.add_subparsers(dest="prepare_mode", metavar="{ave,folder}")
    modes.required = True
    a = modes.add_parser("ave", help="AVE dataset layout (Annotations.txt + split files)",
                         description="Prepare AVE-format data: one clip per annotation line, one row per "
                                     "annotated second.")
    a.add_argument("--videos", required=True, metavar="DIR", help="folder of <VideoID>.mp4 (or other extension)")
    a.add_argument("--annotations", required=True, metavar="FILE",
                   help="Annotations.txt: Category&VideoID&Quality&Start&End (header optional)")
    a.add_argument("--splits", required=True, metavar="DIR", help="folder of trainSet.txt, valSet.txt, testSet.txt")
    _add_common(a)
    f = modes.add_parser("folder", help="a folder of videos + labels.csv (video,label[,split])",
                         description="Prepare a folder of videos labelled in a CSV; every whole second is kept. "
                                     "label is a class name or an AVE class id (0-27); classes.json lists the "
                                     "class names found, sorted.")
    f.add_argument("--videos", required=True, metavar="DIR", help="folder of the videos")
    f.add_argument("--labels", required=True, metavar="CSV", help="labels.csv with columns video,label[,split]")
    _add_common(f)
    return p


def _err(msg: str) -> None:
    print(f"avsal prepare: error: {msg}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``avsal prepare ave|folder`` from parsed arguments (see :func:`add_parser`).

    Returns:
        0 every clip prepared or already complete; 1 some clips failed (the rest is prepared, the
        failures are in ``ROOT/failures.csv``); 2 bad usage or input.
    """
    from avsal.data.prepare import prepare_ave, prepare_folder

    mode = getattr(args, "prepare_mode", None)
    progress = not getattr(args, "quiet", False)
    if args.jobs < 0:
        _err(f"--jobs must be >= 0, got {args.jobs}")
        return 2
    try:
        if mode == "ave":
            result = prepare_ave(args.videos, args.annotations, args.splits, args.out, jobs=args.jobs,
                                 keep_wav=args.keep_wav, progress=progress)
        elif mode == "folder":
            result = prepare_folder(args.videos, args.labels, args.out, jobs=args.jobs, keep_wav=args.keep_wav,
                                    progress=progress)
        else:
            _err("choose a mode: 'avsal prepare ave ...' or 'avsal prepare folder ...'")
            return 2
    except (InputError, OutputError, ValueError) as e:
        _err(str(e))
        return 2
    weights = getattr(args, "vggsound_weights", None)
    if weights and result.rows:
        from avsal.data.relevance import write_audio_relevance

        try:
            path = write_audio_relevance(result.out_root, weights, progress=progress)
        except (InputError, OutputError, ValueError) as e:
            _err(str(e))
            return 2
        print(f"avsal prepare: audio-relevance list in {path}", file=sys.stderr)
    n_clips = len(result.prepared) + len(result.skipped)
    print(f"avsal prepare: {n_clips} clips / {len(result.rows)} seconds in {result.out_root}/manifest.csv "
          f"({len(result.prepared)} prepared, {len(result.skipped)} already complete, "
          f"{len(result.failures)} failed) in {result.elapsed:.1f} s", file=sys.stderr)
    if result.failures:
        for f in result.failures[:10]:
            print(f"  failed: {f.clip}: {f.reason}", file=sys.stderr)
        if len(result.failures) > 10:
            print(f"  ... {len(result.failures) - 10} more", file=sys.stderr)
        print(f"  all failures: {result.out_root}/failures.csv", file=sys.stderr)
        return 1
    return 0
