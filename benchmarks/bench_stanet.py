"""STA inference speed at full size (356², ResNeXt-101 + VGGSound audio net), CPU or GPU.

Compares, in one run and on the same frames:

* ``naive``: upstream ``test.py`` style — every triplet (t, t−1, t+1) through the whole network, 2 triplets
  per batch, fp32 (each frame is encoded three times);
* ``reuse``: avsal's :class:`~avsal.models.stanet.predictor.STAVideoModel` — each frame encoded once,
  ``--batch-size`` frames per pass, features reused by the three triplets;
* ``reuse`` with bf16 autocast and/or channels_last, with the max |Δ| of their maps vs fp32 ``reuse``;
* ``network only`` (``--network-only``): the same encode-once/decode-per-triplet work on frames already
  preprocessed and on the device, fp32 and bf16 + channels_last: what the accelerator sustains when the
  CPU-side decoding and resizing keep up (with ``--device cuda``, the GPU figure).

Weights are random (the speed does not depend on them). Usage::

    python benchmarks/bench_stanet.py [--frames 12] [--batch-size 8] [--device cpu|cuda] [--network-only]
                                      [--json OUT]
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


def _network_only(model, audio):
    """A timing function: encode each frame once and decode its triplet (t−1, t, t+1; neighbours
    within the pass, edges replicated), ``batch_size`` frames per pass, on inputs preprocessed beforehand and already on the device."""
    from avsal.models.stanet.predictor import preprocess, stft_features_at

    cfg = model.config
    size = (cfg.input_size, cfg.input_size)

    @torch.inference_mode()
    def fn(_model, fr):
        x = torch.stack([preprocess(f.rgb, cfg.input_size, cfg.resize) for f in fr]).to(model.device)
        a = torch.from_numpy(stft_features_at(audio, [f.time for f in fr])).to(model.device)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        outs = []
        for s in range(0, len(fr), model.batch_size):
            with model._autocast():
                feats = model.net.encode(x[s:s + model.batch_size], a[s:s + model.batch_size])
                n = feats.x.shape[0]
                prev = torch.clamp(torch.arange(n, device=model.device) - 1, min=0)
                nxt = torch.clamp(torch.arange(n, device=model.device) + 1, max=n - 1)
                outs.append(model.net.decode_centre(feats, feats.index(prev), feats.index(nxt), size)[1])
        maps = model.postprocess(torch.cat(outs))
        fn.seconds = time.perf_counter() - t0
        return maps

    return fn


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--network-only", action="store_true",
                    help="also time the network alone on preprocessed frames held on the device")
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
        dt = getattr(fn, "seconds", time.perf_counter() - t0)  # network only: its own clock
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
    if args.network_only:
        for label, kw in (("network only fp32", {}), ("network only bf16 + channels_last",
                                                      dict(bf16=True, channels_last=True))):
            model = STAVideoModel(net, STAInferenceConfig(device=args.device, batch_size=args.batch_size, **kw))
            run(label, model, _network_only(model, audio))
            set_memory_format(net, torch.contiguous_format)
    speedup = results[0]["fps"] / results[1]["fps"]
    print(f"feature reuse + batching vs naive: {speedup:.2f}x (max |Δ| of the maps {naive_diff:.1e})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                       "results": results, "speedup_reuse_vs_naive": speedup}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
