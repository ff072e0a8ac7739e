"""Deterministic weights and inputs for the ViNet / AViNet upstream-parity fixtures.

``tests/data/vinet/ref_<name>.npz`` holds the output of the *upstream* network definitions
(samyak0210/ViNet ``model.py``, unmodified) for a synthetic checkpoint and synthetic inputs. Neither is
stored: both are regenerated here from a seed, so a test loads exactly the same weights into avsal's
networks and compares. ``tests/make_vinet_fixtures.py`` (run against an upstream checkout) wrote the files;
``tests/data/vinet/README.md`` says how.

Everything here is a pure function of its arguments (no global RNG state, no model code).

Random numbers: one ``torch.Generator`` (CPU) **per key**, seeded from the seed and the CRC-32 of the key
name without a leading ``visual_model.``, so a key gets the same values in every network that has it
(ViNet's weights are AViNet's ``visual_model.*``; the transformer variant shares AViNet's other keys) and the tests can build the
union once. Only ``torch.rand`` in float64 is used (``torch.randn``'s float32 SIMD kernel may differ in the
last bit between machines), rounded once to float32. ``S(s)`` below is a uniform law of standard deviation
``s``: U(−√3·s, √3·s).

Weights, by key suffix and tensor rank (``fan_in`` = ``shape[1] * prod(shape[2:])``):

=================================  ==========================================
``*.num_batches_tracked``          int64 zeros
``*.running_mean``                 S(0.05)
``*.running_var``                  1 + U(0, 0.1)
``*weight`` of rank >= 2           S(sqrt(2 / fan_in)) (He), except:
... with one output channel        S(0.1 * sqrt(2 / fan_in)) (the saliency logit)
``*.weight`` of rank 1 (BN, LN)    1 + S(0.05)
``*bias``                          S(0.05)
anything else (``pos_encoder.pe``) S(0.1)
=================================  ==========================================

ViNet has no residual connections, so He-scaled weights with near-identity BatchNorm statistics keep the
activations O(1); the ReLU features entering the 1-channel output conv are all positive and large, so with
He scaling there the logits sit near −5 and the sigmoid saturates. The 0.1 factor on that conv keeps the
maps unsaturated (about 0.3–0.7), so the parity test sees differences undamped.
"""

from __future__ import annotations

import math
import zlib
from typing import Iterable, Sequence

import torch

#: Seeds of the stored fixtures.
WEIGHT_SEED = 9
INPUT_SEED = 90
#: Fixture names → network configuration (``AViNet(**cfg)``; ``None`` = ``ViNet``).
FIXTURES = {"vinet": None, "avinet": {}, "avinet-transformer": {"use_transformer": True}}


def _uniform(gen: torch.Generator, shape: Sequence[int]) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=gen, dtype=torch.float64)


def _flat(gen: torch.Generator, shape: Sequence[int]) -> torch.Tensor:
    """Zero-mean, unit-variance uniform values ``S(1)``."""
    return (2.0 * _uniform(gen, shape) - 1.0) * math.sqrt(3.0)


def make_state_dict(keys: Iterable[tuple[str, Sequence[int]]], seed: int = WEIGHT_SEED) -> dict[str, torch.Tensor]:
    """A synthetic checkpoint for ``(key, shape)`` pairs in state-dict order (rules in the module docstring)."""
    out: dict[str, torch.Tensor] = {}
    for key, shape in keys:
        shape = tuple(int(s) for s in shape)
        name = key[len("visual_model."):] if key.startswith("visual_model.") else key
        gen = torch.Generator().manual_seed(seed * 2**32 + zlib.crc32(name.encode()))
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=torch.int64)
            continue
        if key.endswith("running_mean"):
            v = 0.05 * _flat(gen, shape)
        elif key.endswith("running_var"):
            v = 1.0 + 0.1 * _uniform(gen, shape)
        elif key.endswith("weight") and len(shape) >= 2:
            fan_in = shape[1] * int(math.prod(shape[2:]))
            v = (0.1 if shape[0] == 1 else 1.0) * math.sqrt(2.0 / fan_in) * _flat(gen, shape)
        elif key.endswith("weight"):
            v = 1.0 + 0.05 * _flat(gen, shape)
        elif key.endswith("bias"):
            v = 0.05 * _flat(gen, shape)
        else:
            v = 0.1 * _flat(gen, shape)
        out[key] = v.to(torch.float32)
    return out


def make_inputs(seed: int = INPUT_SEED, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip ``[B, 3, 32, 224, 384]`` ~ S(1) and audio ``[B, 1, 70560, 1]`` ~ S(0.5) (float32)."""
    gen = torch.Generator().manual_seed(seed)
    clip = _flat(gen, (batch, 3, 32, 224, 384)).to(torch.float32)
    audio = (0.5 * _flat(gen, (batch, 1, 70560, 1))).to(torch.float32)
    return clip, audio
