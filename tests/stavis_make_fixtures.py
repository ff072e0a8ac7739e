"""Regenerate ``tests/data/stavis/ref_stavis-{visual,av}.npz`` and ``params.json`` from the upstream code.

Usage (outside the test suite; needs a checkout of atsiami/STAViS, e.g. ``git archive`` of commit 71fd51f)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python tests/stavis_make_fixtures.py /tmp/stavis_upstream

It imports the upstream ``models.resnet`` module from that folder unmodified (no runtime patches), builds
``resnet50(shortcut_type='B', sample_size=112, sample_duration=16, audiovisual=...)`` inside ``nn.DataParallel``
(for the ``module.`` key names, checked against ``keys_stavis.json``), loads the synthetic checkpoint of
``tests/stavis_reference.py`` with ``strict=True``, switches to ``eval()`` and runs one forward pass at B = 2 in
float32 (stored) and float64 (the noise floor, recorded in ``params.json``). It also records whether the
upstream AV forward fails at B = 1. No upstream code is copied into this project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from stavis_reference import (DATA_DIR, INPUT_SEED, VARIANTS, WEIGHT_SEED, load_keys, make_inputs,  # noqa: E402
                              tensor_sha256, upstream_state_dict)


def main(upstream: str) -> None:
    torch.set_num_threads(1)
    sys.path.insert(0, upstream)
    from models import resnet  # upstream module, unmodified

    state = upstream_state_dict()
    clip, audio = make_inputs()
    meta = {"upstream": "atsiami/STAViS@71fd51f models/resnet.py resnet50(shortcut_type='B', sample_size=112, "
                        "sample_duration=16)", "torch": torch.__version__, "weight_seed": WEIGHT_SEED,
            "input_seed": INPUT_SEED, "weights_sha256": tensor_sha256(*state.values()),
            "inputs_sha256": tensor_sha256(clip, audio), "variants": {}}
    for variant in VARIANTS:
        torch.manual_seed(0)
        net = nn.DataParallel(resnet.resnet50(shortcut_type="B", sample_size=112, sample_duration=16,
                                              audiovisual=variant == "av"))
        assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == load_keys()
        net.load_state_dict(state, strict=True)
        net = net.module.eval()
        with torch.no_grad():
            out = [o.numpy() for o in net(clip, audio)["sal"]]
            out64 = [o.numpy() for o in net.double()(clip.double(), audio.double())["sal"]]
            net.float()
            try:
                net(clip[:1], audio[:1])
                b1 = "ok"
            except Exception as e:  # noqa: BLE001 - recorded, not handled
                b1 = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        np.savez_compressed(DATA_DIR / f"ref_stavis-{variant}.npz", **{f"sal_{i}": o for i, o in enumerate(out)})
        meta["variants"][variant] = {
            "outputs": [list(o.shape) for o in out],
            "range": [float(min(o.min() for o in out)), float(max(o.max() for o in out))],
            "float64_max_abs_diff": float(max(np.abs(a - b).max() for a, b in zip(out, out64))),
            "batch1": b1,
            "parameters": sum(p.numel() for p in net.parameters())}
        print(variant, meta["variants"][variant])
    (DATA_DIR / "params.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
