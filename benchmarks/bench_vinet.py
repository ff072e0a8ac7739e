"""ViNet / AViNet inference speed at full size (S3D + decoder, 32×224×384 clips), CPU or GPU.

Every-frame prediction through the real driver (:func:`avsal.models.base.run_clips`): each decoded frame is
resized/normalised once and every output frame gets its own 32-frame clip, so the cost is one network
forward per output frame. Reports output frames/s for each model (and, with ``--bf16``, also bf16 autocast
with the max |Δ| of its maps vs fp32). Weights are random (the speed does not depend on them). The upstream
README claims 60 fps for AViNet (on a GPU).

Usage::

    python benchmarks/bench_vinet.py [--frames 40] [--batch-size 4] [--device cpu|cuda] [--bf16] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch


def _frames(n: int, h: int = 360, w: int = 640):
    from avsal.io.video import Frame

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return [Frame(index=i, time=i / 25.0, rgb=np.roll(base, 3 * i, axis=1)) for i in range(n)]


def _track(seconds: float, rate: int = 44100):
    from avsal.io.audio import AudioTrack

    rng = np.random.default_rng(1)
    return AudioTrack(samples=rng.normal(0, 0.1, int(seconds * rate)).astype(np.float32), sample_rate=rate)


def _run(name: str, frames, device: str, batch_size: int, bf16: bool):
    from avsal.models.base import run_clips
    from avsal.models.vinet.networks import AViNet, ViNet
    from avsal.models.vinet.predictor import ViNetVideoModel

    torch.manual_seed(0)
    net = ViNet() if name == "vinet" else AViNet()
    model = ViNetVideoModel(net, device=device, batch_size=batch_size, bf16=bf16)
    audio = _track(len(frames) / 25.0 + 1) if name == "avinet" else None
    # warm-up (cudnn autotuning, allocator) on one batch of clips
    list(run_clips(model, frames[:batch_size], audio))
    raw, predict_clips = [], model.predict_clips

    def keep(x, a):  # the network's own output (sigmoid, before the min-max post-processing)
        out = predict_clips(x, a)
        raw.append(out)
        return out

    model.predict_clips = keep
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    maps = [p.saliency for p in run_clips(model, frames, audio)]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return np.concatenate(raw), dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=40, help="frames of the synthetic 25 fps video (all predicted)")
    ap.add_argument("--batch-size", type=int, default=4, help="clips per forward pass")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="also measure bf16 autocast")
    ap.add_argument("--models", default="vinet,avinet")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    frames = _frames(args.frames)
    results = {"device": args.device, "frames": args.frames, "batch_size": args.batch_size,
               "torch": torch.__version__, "threads": torch.get_num_threads()}
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    for name in args.models.split(","):
        raw, dt = _run(name, frames, args.device, args.batch_size, False)
        results[name] = {"fp32_fps": args.frames / dt, "fp32_s": dt, "fp32_output_range": float(np.ptp(raw))}
        print(f"{name}: fp32 {args.frames / dt:.2f} output frames/s ({dt:.1f} s for {args.frames})", flush=True)
        if args.bf16:
            raw16, dt16 = _run(name, frames, args.device, args.batch_size, True)
            results[name].update({"bf16_fps": args.frames / dt16,
                                  "bf16_max_abs_diff_output": float(np.abs(raw16 - raw).max())})
            # Random weights give a nearly constant output (its range is printed): the min-max normalised maps
            # would blow a bf16 rounding up to a difference of 1, so the network outputs are compared.
            print(f"{name}: bf16 {args.frames / dt16:.2f} output frames/s, max |Δ| of the network output vs fp32 "
                  f"{results[name]['bf16_max_abs_diff_output']:.2e} (fp32 output range {np.ptp(raw):.1e})",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
