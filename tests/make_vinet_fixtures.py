"""Regenerate ``tests/data/vinet/ref_*.npz`` from an unmodified upstream ViNet checkout.

Usage (outside the test suite; upstream code is imported from ``UPSTREAM``, never copied here)::

    git -C /path/to/ViNet archive 2a52666 | tar -x -C /tmp/vinet_upstream
    PYTHONPATH=src python tests/make_vinet_fixtures.py /tmp/vinet_upstream

Runtime patches, as in ``docs/vinet.md`` (parity fixtures): the unused ``from block import fusions`` import
is satisfied by an empty stub module, and the constructor's ``torch.load('./soundnet8_final.pth')`` returns
a fresh ``SoundNet().state_dict()`` (the synthetic checkpoint overwrites it anyway). Every network is run in
``eval()`` mode in float32 on the CPU with the weights and inputs of :mod:`vinet_reference`.
"""

from __future__ import annotations

import argparse
import os
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vinet_reference as ref  # noqa: E402


def upstream_networks(upstream: str) -> dict:
    """Build the upstream network of each fixture (name → ``nn.Module``)."""
    sys.modules.setdefault("block", types.SimpleNamespace(fusions=None))
    sys.path.insert(0, upstream)
    import model as up  # noqa: PLC0415 - upstream model.py

    real_load = torch.load

    def fake_load(f, *a, **k):
        if isinstance(f, str) and os.path.basename(f) == "soundnet8_final.pth":
            return up.SoundNet().state_dict()
        return real_load(f, *a, **k)

    torch.load = fake_load
    try:
        nets = {}
        for name, cfg in ref.FIXTURES.items():
            if cfg is None:
                nets[name] = up.VideoSaliencyModel()
            else:
                nets[name] = up.VideoAudioSaliencyModel(**cfg)
    finally:
        torch.load = real_load
    return nets


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("upstream", help="folder with upstream model.py and model_utils.py")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "vinet"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    clip, audio = ref.make_inputs()
    for name, net in upstream_networks(args.upstream).items():
        keys = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
        sd = ref.make_state_dict(keys)
        net.load_state_dict(sd, strict=True)
        net.eval()
        with torch.no_grad():
            out = net(clip) if ref.FIXTURES[name] is None else net(clip, audio)
        # avsal does not build SoundNet's unused conv8_* (their keys are dropped), so they are not counted
        used = {k: v for k, v in sd.items() if not k.startswith("audionet.conv8_")}
        checksum = float(sum(v.double().sum() for v in used.values() if v.is_floating_point()))
        np.savez(os.path.join(args.out, f"ref_{name}.npz"), output=out.numpy().astype(np.float32),
                 weights_checksum=np.float64(checksum), n_keys=np.int64(len(used)),
                 input_checksum=np.float64(clip.double().sum() + audio.double().sum()))
        print(f"{name}: {len(keys)} keys, output {tuple(out.shape)} range [{out.min():.4f}, {out.max():.4f}]")


if __name__ == "__main__":
    main()
