"""STA inference speed at full size (356², ResNeXt-101 + VGGSound audio net), CPU or GPU.

Compares, in one run and on the same frames:

* ``naive``: upstream ``test.py`` style — every triplet (t, t−1, t+1) through the whole network, 2 triplets
  per batch, fp32 (each frame is encoded three times);
* ``reuse``: avsal's :class:`~avsal.models.stanet.predictor.STAVideoModel` — each frame encoded once,
  ``--batch-size`` frames per pass, features reused by the three triplets;
* ``reuse`` with bf16 autocast and/or channels_last, with the max |Δ| of their maps vs fp32 ``reuse``.

Weights are random (the speed does not depend on them). Usage::

    python benchmarks/bench_stanet.py [--frames 12] [--batch-size 8] [--device cpu|cuda] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch


def _frames(n: int, size: int = 356):
    from avsal.io.video import Frame

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    return [Frame(index=i, time=i / 25.0, rgb=np.roll(base, 3 * i, axis=1)) for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    args = ap.parse_args()

    from avsal.io.audio import AudioTrack
    from avsal.models.stanet import STANet
    from avsal.models.stanet.predictor import STAInferenceConfig, STAVideoModel, set_memory_format

    torch.manual_seed(0)
    net = STANet().eval()
    frames = _frames(args.frames)
    audio = AudioTrack(np.random.default_rng(1).normal(0, 0.1, 16000 * 2).astype(np.float32), 16000)
    results = []

    def run(label, model, fn):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        fn(model, frames[:3])  # warm-up
        t0 = time.perf_counter()
        maps = fn(model, frames)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        results.append({"mode": label, "frames": len(frames), "seconds": dt, "fps": len(frames) / dt})
        print(f"{label:28s} {len(frames) / dt:8.2f} frames/s  ({dt:.2f} s for {len(frames)} frames)", flush=True)
        return maps

    def stream(model, fr):
        return np.stack([p.saliency for p in model.stream(iter(fr), audio)])

    def naive(model, fr):
        return model.naive_triplets(fr, audio, batch_size=2)

    cfg = STAInferenceConfig(device=args.device, batch_size=args.batch_size)
    fp32 = STAVideoModel(net, cfg)
    ref = run("reuse fp32", fp32, stream)
    base = run("naive fp32 (upstream style)", fp32, naive)
    naive_diff = float(np.abs(base - ref).max())
    for label, kw in (("reuse channels_last", dict(channels_last=True)), ("reuse bf16", dict(bf16=True)),
                      ("reuse bf16 + channels_last", dict(bf16=True, channels_last=True))):
        m = run(label, STAVideoModel(net, STAInferenceConfig(device=args.device, batch_size=args.batch_size, **kw)),
                stream)
        results[-1]["max_abs_diff_vs_fp32"] = float(np.abs(m - ref).max())
        print(f"{'':28s} max |Δ| vs fp32 maps: {results[-1]['max_abs_diff_vs_fp32']:.2e}")
        set_memory_format(net, torch.contiguous_format)  # undo channels_last for the next mode
    speedup = results[0]["fps"] / results[1]["fps"]
    print(f"feature reuse + batching vs naive: {speedup:.2f}x (max |Δ| of the maps {naive_diff:.1e})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                       "results": results, "speedup_reuse_vs_naive": speedup}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
