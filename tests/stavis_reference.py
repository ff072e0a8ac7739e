"""Deterministic weights and inputs for the STAViS upstream-parity fixtures (``tests/data/stavis/``).

The fixtures hold only the *outputs* of the upstream STAViS definitions (atsiami/STAViS @71fd51f,
``models/resnet.py: resnet50(shortcut_type='B', sample_size=112, sample_duration=16, audiovisual=...)``) for a
synthetic checkpoint and synthetic inputs, both regenerated here from seeds:

* weights: :func:`make_upstream_state_dict` of ``tests/stanet_reference.py`` (rules in its docstring: He-scaled
  N(0, ·) weights, BatchNorm running stats ≈ 0/1, the BatchNorm closing each residual branch ×0.1) applied to
  the upstream key list ``keys_stavis.json`` (341 keys with ``module.``; identical for both variants), seed
  :data:`WEIGHT_SEED`;
* inputs: :func:`make_inputs` — a clip ``[2, 3, 16, 112, 112]`` and audio ``[2, 1, 1, 35280]``, N(0, 1) draws
  (Box-Muller in float64 from one seeded ``torch.Generator``) rounded to 1/32 and clipped to ±4, so they are
  exact in float32.

Regenerate the outputs with ``tests/stavis_make_fixtures.py UPSTREAM_DIR`` (a checkout of atsiami/STAViS; no
upstream code is stored in this project). Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from stanet_reference import _normal, make_upstream_state_dict  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent / "data" / "stavis"
VARIANTS = ("visual", "av")
WEIGHT_SEED = 0
INPUT_SEED = 1
BATCH = 2
CLIP_SHAPE = (BATCH, 3, 16, 112, 112)
AUDIO_SHAPE = (BATCH, 1, 1, 35280)
INPUT_STEP = 1.0 / 32
INPUT_CLIP = 4.0


def load_keys() -> list[tuple[str, tuple[int, ...]]]:
    """The upstream checkpoint keys ``(key, shape)`` in state_dict order (with ``module.``)."""
    doc = json.loads((DATA_DIR / "keys_stavis.json").read_text())
    return [(e["key"], tuple(e["shape"])) for e in doc["keys"]]


def upstream_state_dict(seed: int = WEIGHT_SEED) -> dict[str, torch.Tensor]:
    """The synthetic upstream checkpoint (``module.`` keys), the same for both variants."""
    return make_upstream_state_dict(load_keys(), seed)


def make_inputs(seed: int = INPUT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clip [2, 3, 16, 112, 112], audio [2, 1, 1, 35280])`` float32, drawn in that order."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    out = []
    for shape in (CLIP_SHAPE, AUDIO_SHAPE):
        z = torch.round(_normal(gen, shape) / INPUT_STEP) * INPUT_STEP
        out.append(z.clamp(-INPUT_CLIP, INPUT_CLIP).to(torch.float32).contiguous())
    return out[0], out[1]


def tensor_sha256(*tensors: torch.Tensor) -> str:
    """SHA-256 of the tensors' bytes (to check that inputs/weights were regenerated exactly)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def load_reference(variant: str) -> dict:
    """The stored fixture of ``variant``: ``{"outputs": [tensor, ...], "meta": dict}``."""
    with np.load(DATA_DIR / f"ref_stavis-{variant}.npz") as z:
        outputs = [torch.from_numpy(z[f"sal_{i}"]) for i in range(len([k for k in z.files if k.startswith("sal_")]))]
    meta = json.loads((DATA_DIR / "params.json").read_text())
    return {"outputs": outputs, "meta": meta}
