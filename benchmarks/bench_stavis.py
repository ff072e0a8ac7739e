"""STAViS inference speed at full size (3D ResNet-50 trunk, 16 × 112² clips), CPU or GPU.

Compares, on the same frames and with the same output maps:

* ``avsal``: :class:`~avsal.models.stavis.predictor.StavisVideoModel` driven by
  :func:`avsal.models.base.run_clips` — each frame preprocessed once, ``--batch-size`` clips per forward pass;
* ``upstream``: upstream ``test_sal.py`` style — one 16-frame clip per output frame, every frame of every clip
  loaded and preprocessed again (as upstream's data loader does), the batch padded to ``--pad`` (128) clips by
  repeating the first clip; only the real clips' maps are kept;
* ``upstream, no padding``: the same without the padding (what the padding alone costs);
* ``avsal bf16``: bfloat16 autocast, with its max |Δ| vs the fp32 maps.

"frames/s" = output maps per second (each output frame needs one clip in every mode). Weights are random
(speed does not depend on them); ``--variant av`` (default) also runs SoundNet and the fusion. Usage::

    python benchmarks/bench_stavis.py [--frames 24] [--batch-size 8] [--pad 128] [--variant av|visual]
                                      [--device cpu|cuda] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch


def _frames(n: int, h: int = 360, w: int = 640):
    from avsal.io.video import Frame

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return [Frame(index=i, time=i / 25.0, rgb=np.roll(base, 5 * i, axis=1)) for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--pad", type=int, default=128, help="upstream batch size (padded)")
    ap.add_argument("--variant", default="av", choices=("av", "visual"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-padded", action="store_true", help="skip the padded upstream mode (slow on CPU)")
    ap.add_argument("--json")
    args = ap.parse_args()

    from avsal.io.audio import AudioTrack
    from avsal.models.base import run_clips
    from avsal.models.stavis import preprocess as pp
    from avsal.models.stavis.networks import Stavis
    from avsal.models.stavis.predictor import StavisInferenceConfig, StavisVideoModel, postprocess

    torch.manual_seed(0)
    dev = torch.device(args.device)
    net = Stavis(variant=args.variant).eval().to(dev)
    frames = _frames(args.frames)
    fs, fps = 22050, 25.0
    audio = AudioTrack(np.random.default_rng(1).normal(0, 0.1, int(fs * (args.frames / fps + 1))).astype(np.float32),
                       fs)
    results = []

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def timed(label, fn):
        fn(frames[:2])  # warm-up
        sync()
        t0 = time.perf_counter()
        maps = fn(frames)
        sync()
        dt = time.perf_counter() - t0
        results.append({"mode": label, "frames": len(frames), "seconds": dt, "fps": len(frames) / dt})
        print(f"{label:32s} {len(frames) / dt:8.2f} frames/s  ({dt:.2f} s for {len(frames)} maps)", flush=True)
        return maps

    import avsal.models.stavis.predictor as sp

    probs = {}  # bf16 flag -> the network's sigmoid output of the last run, before post-processing

    def ours(bf16=False):
        model = StavisVideoModel(net, StavisInferenceConfig(batch_size=args.batch_size, device=args.device,
                                                            bf16=bf16, fps=fps))

        def run(fr):
            kept, real = [], sp.postprocess
            sp.postprocess = lambda prob, *a, **k: (kept.append(prob), real(prob, *a, **k))[1]
            try:
                maps = np.stack([p.saliency for p in run_clips(model, fr, audio)])
            finally:
                sp.postprocess = real
            probs[bf16] = np.concatenate(kept)
            return maps
        return run

    def upstream(pad):
        wav = audio.samples * np.float32(256)

        def run(fr):
            n = len(fr)
            out = []
            for s in range(0, n, pad):
                clips, auds = [], []
                for t in range(s, min(n, s + pad)):
                    idx = [min(max(q, 0), n - 1) for q in range(t - 8, t + 8)]
                    clips.append(np.stack([pp.frame_tensor(fr[q].rgb) for q in idx], axis=1))
                    auds.append(pp.audio_excerpt(wav, idx[0] + 1, idx[-1] + 1, fs, fps))
                real = len(clips)
                while len(clips) < pad:
                    clips.append(clips[0])
                    auds.append(auds[0])
                x = torch.from_numpy(np.stack(clips)).to(dev)
                a = torch.from_numpy(np.stack(auds)).view(len(auds), 1, 1, -1).to(dev)
                with torch.inference_mode():
                    logits = net(x, a if args.variant == "av" else None)[-1][:real]
                out.append(postprocess(torch.sigmoid(logits)[:, 0].cpu().numpy()))
            return np.concatenate(out)
        return run

    ref = timed(f"avsal fp32 (batch {args.batch_size})", ours())
    diffs = {}
    if not args.skip_padded:
        m = timed(f"upstream style (padded to {args.pad})", upstream(args.pad))
        diffs["upstream_padded"] = float(np.abs(m - ref).max())
    m = timed("upstream style, no padding", upstream(args.batch_size))
    diffs["upstream_unpadded"] = float(np.abs(m - ref).max())
    m = timed("avsal bf16", ours(bf16=True))
    diffs["avsal_bf16"] = float(np.abs(m - ref).max())
    # Random weights give a nearly constant output, which the normalisation stretches: compare the outputs too.
    diffs["avsal_bf16_network_output"] = float(np.abs(probs[True] - probs[False]).max())
    print(f"fp32 network output range {np.ptp(probs[False]):.1e} (random weights)")
    for k, v in diffs.items():
        print(f"max |Δ| of the maps vs avsal fp32, {k}: {v:.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "variant": args.variant, "threads": torch.get_num_threads(),
                       "cpu_count": os.cpu_count(), "results": results, "max_abs_diff": diffs}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
