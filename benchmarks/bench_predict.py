"""Speed and memory of ``classic-av`` on the 30 s Big Buck Bunny clip, at native size and at 640x360.

For each size it runs, each in a fresh subprocess (so peak RSS is that run's alone):

* ``model``: decode + the model on every frame (``ClassicAV.stream``), nothing written;
* ``predict``: the whole ``avsal predict`` job (PNG maps, saliency.h5, overlay.mp4 with audio);
* ``model-v1`` (with ``--v1``): the model with ``ClassicAVConfig.v1()`` (no face cue), for comparison.

Besides wall-clock frames/s it reports frames per CPU-second (all threads), which other processes on a
shared machine do not affect and which bounds the rate on dedicated cores from below.

Usage::

    python benchmarks/bench_predict.py [--clip PATH] [--json OUT.json] [--model-only] [--v1] [--threads N]

For the face cue at work, run it on a clip with faces, e.g.
``--clip ../shared/data/videos/research_only/visualvoice_interview.mp4``.

The clip defaults to ``../shared/data/videos/open_license/big_buck_bunny_0_30.webm``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = REPO.parent / "shared" / "data" / "videos" / "open_license" / "big_buck_bunny_0_30.webm"


def _transcode(src: str, dst: str, width: int, height: int) -> None:
    """Re-encode ``src`` at ``width x height`` (H.264, audio copied as AAC) with PyAV."""
    from avsal.io import iter_frames, probe
    from avsal.io.write import OverlayWriter

    info = probe(src)
    w = OverlayWriter(dst, width, height, info.fps, info.time_base, audio_source=src,
                      audio_stream=info.audio_stream, crf=18)
    import cv2

    for f in iter_frames(src, info=info):
        w.write(cv2.resize(f.rgb, (width, height), interpolation=cv2.INTER_AREA), f.pts)
    w.close()


def _child(mode: str, clip: str, version: str = "v2", threads: str = "0") -> None:
    if int(threads) > 0:  # classic-av runs on numpy/OpenCV (set OMP_NUM_THREADS too for numpy's BLAS)
        import cv2

        cv2.setNumThreads(int(threads))
    from avsal.io import iter_frames, load_audio, probe
    from avsal.models import create_model
    from avsal.predict import PredictOptions, predict_many

    t0 = time.perf_counter()
    c0 = time.process_time()
    if mode == "model":
        info = probe(clip)
        audio = load_audio(clip)
        from avsal.models.classic import ClassicAVConfig

        cfg = ClassicAVConfig.v1() if version == "v1" else ClassicAVConfig()
        model = create_model("classic-av", **cfg.__dict__)
        n = sum(1 for _ in model.stream(iter_frames(clip, info=info), audio))
    else:
        with tempfile.TemporaryDirectory() as out:
            res = predict_many([clip], out, PredictOptions(), progress=False, log=lambda m: None)
            assert res.done, res.failed
            n = json.load(open(os.path.join(out, Path(clip).stem, "meta.json")))["frames_predicted"]
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    from memory import peak_rss_mb  # benchmarks/memory.py

    rss_mb = peak_rss_mb()
    # fps_per_cpu_s: frames per second of CPU time summed over all threads. On a shared machine the wall
    # clock counts other users' load; this does not, and it is a lower bound of the wall-clock rate on
    # dedicated cores (any parallelism only raises the wall-clock rate above it).
    print(json.dumps({"frames": n, "seconds": dt, "fps": n / dt, "cpu_seconds": cpu, "fps_per_cpu_s": n / cpu,
                      "peak_rss_mb": rss_mb}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=str(DEFAULT_CLIP))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--model-only", action="store_true", help="skip the whole-predict runs")
    ap.add_argument("--v1", action="store_true", help="also time the v1 configuration (ClassicAVConfig.v1())")
    ap.add_argument("--threads", type=int, default=0,
                    help="OpenCV threads in the timed process (0: their defaults); 1 gives the cost in "
                         "CPU time without thread-pool spinning")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    if not os.path.exists(args.clip):
        print(f"clip not found: {args.clip}", file=sys.stderr)
        return 2
    from avsal.io import probe

    info = probe(args.clip)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        small = os.path.join(tmp, "clip_640x360.mp4")
        _transcode(args.clip, small, 640, 360)
        for label, clip in ((f"native {info.width}x{info.height}", args.clip), ("640x360", small)):
            runs = [("model", "v2")] + ([("model", "v1")] if args.v1 else []) + \
                ([] if args.model_only else [("predict", "v2")])
            for mode, version in runs:
                r = subprocess.run([sys.executable, __file__, "--child", mode, clip, version, str(args.threads)],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print(r.stderr, file=sys.stderr)
                    return 1
                mode_v = mode if version == "v2" else f"{mode}-v1"
                row = {"size": label, "mode": mode_v, **json.loads(r.stdout.strip().splitlines()[-1])}
                results.append(row)
                print(f"{label:20s} {mode_v:8s} {row['frames']:5d} frames  {row['seconds']:7.2f} s  "
                      f"{row['fps']:7.1f} frames/s  {row['fps_per_cpu_s']:7.1f} frames per CPU-s  "
                      f"peak RSS {row['peak_rss_mb']:7.0f} MB", flush=True)
    meta = {"clip": os.path.basename(args.clip), "cpu_count": os.cpu_count(), "threads": args.threads,
            "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(meta, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
