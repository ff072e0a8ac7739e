"""Speed of ``avsal prepare ave``: seconds per 10-s clip, on 2 CPU cores, with ``--jobs 2``.

The input is the 3 real AVE clips of ``../shared/data/videos/research_only/ave_*.mp4`` (320x240,
640x360 and 1280x720 H.264 + AAC), each annotated over its whole 10 s ([0, 10): 10 frames + 10 feature
files per clip), or, when that folder is absent (or with ``--generated``), generated 10-s 640x360 25-fps
clips. To amortise the pool start-up as on a real dataset, the set is repeated ``--copies`` times
(distinct video ids, same bytes).

Printed:

* per clip: one clip prepared in this process, single-threaded decoding (what a pool worker does),
  median of ``--repeat`` runs;
* per batch: ``prepare_ave`` wall time (pool start-up, skipping checks and manifest included) divided
  by the number of clips, with ``--jobs 1`` and ``--jobs 2``, for one copy of the set and for
  ``--copies`` copies; plus the whole command line (a fresh interpreter; its torch import for
  ``AVE_CLASSES`` included) for the one-copy set with ``--jobs 2``; also the CPU seconds per clip
  (this process and its workers), which other load on the machine does not inflate.

Target: <= 1 s per 10-s clip with ``--jobs 2`` on 2 cores.

Usage::

    python benchmarks/bench_prepare.py [--copies 4] [--repeat 3] [--generated] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
SHARED = Path(os.environ.get("AVSAL_SHARED_DATA", REPO.parent / "shared" / "data"))
TARGET = 1.0


def _pin_two_cores() -> str:
    """Restrict this process (and its children) to 2 CPU cores; returns a description."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 2:
            os.sched_setaffinity(0, set(cpus[:2]))
        return f"cores {sorted(os.sched_getaffinity(0))} of {os.cpu_count()}"
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return f"{os.cpu_count()} cores (affinity not settable)"


def _real_clips() -> list[tuple[str, Path]]:
    folder = SHARED / "videos" / "research_only"
    out = []
    for p in sorted(folder.glob("ave_*.mp4")) if folder.is_dir() else []:
        vid = p.stem.split("_")[1]  # ave_<VideoID>_<label>.mp4; AVE ids here hold no '_'
        out.append((vid, p))
    return out


def _generated_clips(folder: Path, n: int = 3) -> list[tuple[str, Path]]:
    import numpy as np

    from avsal.synth import write_clip

    def frame(i, k):
        img = np.zeros((360, 640, 3), np.uint8)
        img[..., 0] = np.linspace(0, 200, 640, dtype=np.uint8)[None, :]
        img[..., 1] = np.linspace(0, 160, 360, dtype=np.uint8)[:, None]
        img[..., 2] = (40 * k) % 256
        x = (10 + 7 * i) % 560
        img[120:220, x:x + 80] = (250, 250, 40)
        return img

    out = []
    for k in range(n):
        p = folder / f"gen{k}.mp4"
        t = np.arange(10 * 44100) / 44100
        audio = (0.3 * np.sin(2 * np.pi * (220 + 110 * k) * t)).astype(np.float32)[None].repeat(2, 0)
        write_clip(p, lambda i, k=k: frame(i, k), 250, 25, audio, 44100)
        out.append((f"gen{k}", p))
    return out


def _make_set(work: Path, clips: list[tuple[str, Path]], copies: int, tag: str) -> dict:
    vids = work / f"videos_{tag}"
    vids.mkdir()
    lines = []
    for c in range(copies):
        for vid, src in clips:
            name = vid if c == 0 else f"{vid}-copy{c}"
            shutil.copy(src, vids / f"{name}.mp4")
            lines.append(f"Ukulele&{name}&good&0&10")
    ann = work / f"Annotations_{tag}.txt"
    ann.write_text("\n".join(lines) + "\n")
    splits = work / f"splits_{tag}"
    splits.mkdir()
    (splits / "trainSet.txt").write_text(ann.read_text())
    return {"videos": vids, "annotations": ann, "splits": splits, "n": len(lines)}


def _per_clip(clips, work: Path, repeat: int) -> list[dict]:
    from avsal.data.prepare import prepare_clip
    from avsal.io import probe

    rows = []
    for vid, path in clips:
        info = probe(path)
        times = []
        for r in range(repeat):
            out = work / f"single_{vid}_{r}"
            t = time.perf_counter()
            prepare_clip(path, vid, range(0, 10), 26, out, threads=1)
            times.append(time.perf_counter() - t)
            shutil.rmtree(out)
        rows.append({"clip": vid, "size": f"{info.width}x{info.height}", "fps": round(info.fps, 2),
                     "frames": info.n_frames, "s_per_clip": statistics.median(times)})
    return rows


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its reaped children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _batch(s: dict, work: Path, jobs: int, tag: str) -> dict:
    from avsal.data.prepare import prepare_ave

    out = work / f"root_{tag}_j{jobs}"
    c, t = _cpu(), time.perf_counter()
    r = prepare_ave(s["videos"], s["annotations"], s["splits"], out, jobs=jobs, progress=False)
    wall, cpu = time.perf_counter() - t, _cpu() - c
    assert r.ok and len(r.prepared) == s["n"], r.failures
    shutil.rmtree(out)
    return {"set": tag, "jobs": jobs, "clips": s["n"], "wall_s": wall, "s_per_clip": wall / s["n"],
            "cpu_s_per_clip": cpu / s["n"]}


def _cli(s: dict, work: Path, jobs: int) -> dict:
    out = work / "root_cli"
    code = ("import sys; from avsal.data import command; import argparse; p = argparse.ArgumentParser(); "
            "command.add_parser(p.add_subparsers(dest='c')); sys.exit(command.run(p.parse_args(sys.argv[1:])))")
    argv = [sys.executable, "-c", code, "prepare", "ave", "--videos", str(s["videos"]), "--annotations",
            str(s["annotations"]), "--splits", str(s["splits"]), "--out", str(out), "--jobs", str(jobs), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    c, t = _cpu(), time.perf_counter()
    rc = subprocess.run(argv, env=env, capture_output=True, text=True).returncode
    wall, cpu = time.perf_counter() - t, _cpu() - c
    assert rc == 0, rc
    shutil.rmtree(out)
    return {"set": "1 copy, command line", "jobs": jobs, "clips": s["n"], "wall_s": wall, "s_per_clip": wall / s["n"],
            "cpu_s_per_clip": cpu / s["n"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=4, help="repetitions of the clip set for the amortised batch")
    ap.add_argument("--repeat", type=int, default=3, help="runs per clip for the per-clip figure (median)")
    ap.add_argument("--generated", action="store_true", help="use generated 640x360 clips even with shared data")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)
    cores = _pin_two_cores()
    load0 = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        work = Path(tmp)
        clips = [] if args.generated else _real_clips()
        source = "real AVE clips (../shared/data/videos/research_only/ave_*.mp4)"
        if not clips:
            clips = _generated_clips(work)
            source = "generated 10-s 640x360 25-fps clips"
        one = _make_set(work, clips, 1, "one")
        many = _make_set(work, clips, args.copies, "many")
        from avsal.data.prepare import ave_classes

        ave_classes()  # the torch import behind AVE_CLASSES is paid once here, not in the first batch
        per_clip = _per_clip(clips, work, args.repeat)
        batches = [_batch(one, work, 1, "1 copy"), _batch(one, work, 2, "1 copy"),
                   _batch(many, work, 1, f"{args.copies} copies"), _batch(many, work, 2, f"{args.copies} copies"),
                   _cli(one, work, 2)]

    print(f"avsal prepare ave: {source}; {cores}; every clip annotated [0, 10) s")
    print(f"load average before/after: {load0} / {os.getloadavg()[0]:.2f} (other processes share these cores "
          "when it is well above 0)")
    print()
    print(f"{'clip':<14}{'size':>11}{'fps':>8}{'frames':>8}{'s / clip (1 proc, 1 thread)':>30}")
    for r in per_clip:
        print(f"{r['clip']:<14}{r['size']:>11}{r['fps']:>8}{r['frames']:>8}{r['s_per_clip']:>30.3f}")
    print()
    print(f"{'batch':<24}{'jobs':>6}{'clips':>7}{'wall s':>9}{'s / 10-s clip':>15}{'CPU s / clip':>14}")
    for b in batches:
        print(f"{b['set']:<24}{b['jobs']:>6}{b['clips']:>7}{b['wall_s']:>9.2f}{b['s_per_clip']:>15.3f}"
              f"{b['cpu_s_per_clip']:>14.3f}")
    steady = batches[3]["s_per_clip"]
    print()
    print(f"--jobs 2, {args.copies} copies: {steady:.3f} s per 10-s clip (target <= {TARGET:.1f} s): "
          f"{'met' if steady <= TARGET else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"source": source, "cores": cores, "per_clip": per_clip,
                                               "batches": batches, "target_s": TARGET}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
