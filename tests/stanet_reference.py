"""Deterministic weights and inputs for the STANet upstream-parity fixtures.

The files in ``tests/data/stanet/`` hold, for each of the four STANet networks (S, SA, ST, STA),
the inputs and outputs of the *upstream* network definitions (guotaowang/STANet) evaluated with a
synthetic checkpoint.  That checkpoint is not stored: it is regenerated here, from the checkpoint's
key list (``keys_<name>.json``) and a seed, so that a test can load exactly the same weights into
our own re-implementation and compare its outputs with the stored ones.  How the fixtures were made
is described in ``tests/data/stanet/README.md``.

Everything in this module is a pure function of its arguments: no global RNG state, no model
code, no file other than the key lists.

Random numbers
--------------
All draws come from one ``torch.Generator`` (CPU, Mersenne Twister) seeded with ``seed`` and are
taken in checkpoint-key order.  Only ``torch.rand`` in float64 is used; Gaussian values are made
from pairs of uniforms with the Box-Muller transform computed in float64 and rounded once to
float32.  This avoids ``torch.randn``, whose float32 CPU kernel has a SIMD variant that may differ
in the last bit between machines.

Weight rules (decided from the key suffix and the tensor rank only)
-------------------------------------------------------------------
``fan_in`` is ``shape[1] * prod(shape[2:])`` (for a Linear ``[out, in]`` weight that is ``in``).

==========================================  ====================================================
key                                         value
==========================================  ====================================================
``*.num_batches_tracked``                   int64 zeros
``*.running_mean``                          N(0, 0.05)
``*.running_var``                           1 + U(0, 0.1)
``*.centroids`` (NetVLAD)                   N(0, 1), then every row scaled to unit L2 norm
``*.weight`` with rank >= 2 (conv, linear)  N(0, sqrt(2 / fan_in)), except as below
weight reading an L2-normalised vector      N(0, sqrt(2))
``*.weight`` with rank 1 (BatchNorm)        gamma * (1 + N(0, 0.05)), clamped to >= 0.05
``*.bias`` of a BatchNorm                   N(0, 0.05)
``*.bias`` of anything else                 N(0, 0.01)
==========================================  ====================================================

"Weights reading an L2-normalised vector" are, when the key list has a NetVLAD ``centroids``
``[K, D]``: the NetVLAD assignment convolution (``conv.weight`` next to ``centroids``; its input is
L2-normalised over D) and every rank-2 (Linear) weight whose fan_in is K*D (the NetVLAD descriptor,
L2-normalised as a whole).  Such an input has per-element RMS 1/sqrt(fan_in) instead of 1, so
He scaling for it is sqrt(2/fan_in) * sqrt(fan_in) = sqrt(2).  With the plain rule the NetVLAD
soft-assignment would be uniform and the audio-visual attention softmax of SA/STA nearly uniform,
leaving the outputs almost independent of the audio.

A module counts as a BatchNorm when the key list holds its ``running_mean`` or a rank-1
``weight``.  ``gamma`` is 1, except for the BatchNorm that closes a residual branch: the one named
``bn<K>`` (K >= 2) in a block that has no ``bn<K+1>`` (``bn3`` of a ResNeXt bottleneck, ``bn2`` of
the audio ResNet-18 basic block).  There ``gamma`` is :data:`RESIDUAL_BRANCH_GAMMA`.  With plain
He-scaled weights and an eval-mode BatchNorm that hardly normalises (running statistics near 0/1),
every residual block would double the activation variance, and after the 33 blocks of
ResNeXt-101 the features would be ~1e5 and the attention softmaxes / sigmoid gates saturated.
Damping the residual branch keeps the activations O(1) so the fixtures exercise the non-saturated
regime of every non-linearity.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch

DATA_DIR = Path(__file__).resolve().parent / "data" / "stanet"

#: The four networks, named like the key-list files ``keys_<name>.json``.
NETWORKS = ("stanet-s", "stanet-sa", "stanet-st", "stanet-sta")

#: Seed of the synthetic checkpoint used for the stored outputs.
WEIGHT_SEED = 0
#: Seed of the stored inputs.
INPUT_SEED = 1

#: Scale of the BatchNorm weight that closes a residual branch (see the module docstring).
RESIDUAL_BRANCH_GAMMA = 0.1

BATCH = 2
#: Audio feature map per clip second (frequency bins x time steps), without the channel axis.
AUDIO_SHAPE = (81, 199)

#: Square frame side used for each network's fixture.
FRAME_SIZE = {"stanet-s": 128, "stanet-sa": 128, "stanet-st": 256, "stanet-sta": 128}

#: Tensor inputs in the order the upstream ``forward`` takes them (names are its argument names).
#: Frames are ``[B, 3, H, W]``; audio maps are ``[B, 81, 199]``.
INPUT_NAMES = {
    "stanet-s": ("input1",),
    "stanet-sa": ("input1", "audio1"),
    "stanet-st": ("input1", "input2", "input3"),
    "stanet-sta": ("img0", "img1", "img2", "aud0", "aud1", "aud2"),
}

#: Outputs in the order the upstream ``forward`` returns them.
OUTPUT_NAMES = {
    "stanet-s": ("x1ss", "x2ss", "map_1", "map_2"),
    "stanet-sa": ("x1ss", "x2ss", "map_1", "map_2"),
    "stanet-st": ("x1ss", "x1sss", "x2ss", "x2sss", "x3ss", "x3sss", "map_1", "map_all_1"),
    "stanet-sta": ("out0_1", "out0_0", "out1_1", "out1_0", "out2_0", "out2_1"),
}

#: Inputs are rounded to this step (and clipped to +-INPUT_CLIP) so that the ``.npz`` files
#: compress well; every value is still an exact float32.
INPUT_STEP = 1.0 / 32.0
INPUT_CLIP = 4.0


# ----------------------------------------------------------------------------------------------
# random draws
# ----------------------------------------------------------------------------------------------

def _uniform(gen: torch.Generator, shape: Sequence[int]) -> torch.Tensor:
    """float64 U[0, 1) of ``shape``."""
    return torch.rand(tuple(shape), generator=gen, dtype=torch.float64)


def _normal(gen: torch.Generator, shape: Sequence[int]) -> torch.Tensor:
    """float64 N(0, 1) of ``shape`` by Box-Muller: 2*n uniforms -> n normals (cosine branch)."""
    n = math.prod(shape)
    u = _uniform(gen, (2, n))
    radius = torch.sqrt(-2.0 * torch.log1p(-u[0]))  # 1 - u is in (0, 1], so the log is finite
    return (radius * torch.cos(2.0 * math.pi * u[1])).reshape(tuple(shape))


# ----------------------------------------------------------------------------------------------
# key lists
# ----------------------------------------------------------------------------------------------

def _as_pairs(keys: Iterable) -> list[tuple[str, tuple[int, ...]]]:
    """Accept ``(key, shape)`` pairs or ``{"key":..., "shape":...}`` dicts."""
    out = []
    for item in keys:
        if isinstance(item, Mapping):
            key, shape = item["key"], item["shape"]
        else:
            key, shape = item[0], item[1]
        out.append((str(key), tuple(int(s) for s in shape)))
    return out


def load_keys(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """``(key, shape)`` pairs of upstream checkpoint ``name`` (e.g. ``"stanet-sta"``), in checkpoint
    order, read from ``tests/data/stanet/keys_<name>.json``.  Keys carry the ``module.`` prefix of
    the DataParallel training scripts."""
    with open(DATA_DIR / f"keys_{name}.json", encoding="utf-8") as fh:
        doc = json.load(fh)
    return _as_pairs(doc["keys"])


def strip_module(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix that ``nn.DataParallel`` puts on every key."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


_BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_BN_NAME = re.compile(r"^(?P<block>.*\.)?bn(?P<k>\d+)$")


def _batchnorm_modules(pairs: list[tuple[str, tuple[int, ...]]]) -> set[str]:
    mods = set()
    for key, shape in pairs:
        mod, _, leaf = key.rpartition(".")
        if leaf == "running_mean" or (leaf == "weight" and len(shape) == 1):
            mods.add(mod)
    return mods


def _residual_closing(bn_mods: set[str]) -> set[str]:
    """BatchNorms named ``bn<K>`` (K >= 2) with no ``bn<K+1>`` sibling."""
    out = set()
    for mod in bn_mods:
        m = _BN_NAME.match(mod)
        if not m:
            continue
        k = int(m.group("k"))
        block = m.group("block") or ""
        if k >= 2 and f"{block}bn{k + 1}" not in bn_mods:
            out.add(mod)
    return out


def make_upstream_state_dict(keys: Iterable, seed: int) -> dict[str, torch.Tensor]:
    """Synthetic upstream checkpoint: one tensor per ``(key, shape)``, in the given order.

    ``keys`` are ``(key, shape)`` pairs (or ``{"key", "shape"}`` dicts) as in the checkpoint,
    e.g. :func:`load_keys`; the returned keys are exactly those (prefix included).  Values follow
    the rules in the module docstring; all are float32 except ``num_batches_tracked`` (int64).
    The result depends only on ``keys`` and ``seed``.
    """
    pairs = _as_pairs(keys)
    bn_mods = _batchnorm_modules(pairs)
    closing = _residual_closing(bn_mods)
    unit_norm_readers, descriptor_lengths = set(), set()
    for key, shape in pairs:
        mod, _, leaf = key.rpartition(".")
        if leaf == "centroids":
            unit_norm_readers.add(f"{mod}.conv.weight" if mod else "conv.weight")
            descriptor_lengths.add(math.prod(shape))
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))

    state: dict[str, torch.Tensor] = {}
    for key, shape in pairs:
        mod, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            value = torch.zeros(shape, dtype=torch.int64)
        elif leaf == "running_mean":
            value = 0.05 * _normal(gen, shape)
        elif leaf == "running_var":
            value = 1.0 + 0.1 * _uniform(gen, shape)
        elif leaf == "centroids":
            value = _normal(gen, shape)
            value = value / value.norm(dim=-1, keepdim=True)
        elif leaf == "weight" and len(shape) >= 2:
            fan_in = shape[1] * math.prod(shape[2:])
            reads_unit_norm = key in unit_norm_readers or (
                len(shape) == 2 and fan_in in descriptor_lengths)
            std = math.sqrt(2.0) if reads_unit_norm else math.sqrt(2.0 / fan_in)
            value = std * _normal(gen, shape)
        elif leaf == "weight" and len(shape) == 1 and mod in bn_mods:
            gamma = RESIDUAL_BRANCH_GAMMA if mod in closing else 1.0
            value = (gamma * (1.0 + 0.05 * _normal(gen, shape))).clamp_min(0.05 * gamma)
        elif leaf == "bias" and len(shape) == 1:
            value = (0.05 if mod in bn_mods else 0.01) * _normal(gen, shape)
        else:
            raise ValueError(f"no generation rule for {key!r} with shape {list(shape)}")
        if value.dtype == torch.float64:
            value = value.to(torch.float32)
        state[key] = value.contiguous()
    return state


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------

def input_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """Shape of each input tensor of network ``name`` (batch :data:`BATCH`)."""
    side = FRAME_SIZE[name]
    shapes = {}
    for arg in INPUT_NAMES[name]:
        is_audio = arg.startswith("aud")
        shapes[arg] = (BATCH, *AUDIO_SHAPE) if is_audio else (BATCH, 3, side, side)
    return shapes


def make_inputs(name: str, seed: int = INPUT_SEED) -> dict[str, torch.Tensor]:
    """Fixture inputs of network ``name``: float32 N(0, 1) draws (frames stand for ImageNet-
    normalised RGB, audio for z-scored log spectrograms), rounded to :data:`INPUT_STEP` and clipped
    to +-:data:`INPUT_CLIP`, drawn in :data:`INPUT_NAMES` order from a generator seeded with ``seed``.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    out = {}
    for arg, shape in input_shapes(name).items():
        z = _normal(gen, shape)
        z = torch.round(z / INPUT_STEP) * INPUT_STEP
        out[arg] = z.clamp(-INPUT_CLIP, INPUT_CLIP).to(torch.float32).contiguous()
    return out


# ----------------------------------------------------------------------------------------------
# stored fixtures
# ----------------------------------------------------------------------------------------------

def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every key (UTF-8) followed by its tensor's raw bytes, in dict order.  The
    values recorded in ``params.json`` (``weights_sha256``) are for
    ``make_upstream_state_dict(load_keys(name), WEIGHT_SEED)``."""
    import hashlib

    h = hashlib.sha256()
    for key, value in state.items():
        h.update(key.encode("utf-8"))
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_reference(name: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Stored ``(inputs, outputs)`` of network ``name`` from ``ref_<name>.npz`` as float32
    tensors, keyed and ordered by :data:`INPUT_NAMES` / :data:`OUTPUT_NAMES`."""
    import numpy as np

    with np.load(DATA_DIR / f"ref_{name}.npz") as z:
        inputs = {k: torch.from_numpy(z[k].copy()) for k in INPUT_NAMES[name]}
        outputs = {k: torch.from_numpy(z[k].copy()) for k in OUTPUT_NAMES[name]}
    return inputs, outputs
