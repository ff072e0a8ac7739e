"""Model registry: ``create_model(name, **cfg)`` builds any avsal model by its name.

A video model exposes ``name``, ``needs_weights`` and
``stream(frames, audio) -> Iterator[Prediction]`` (see :class:`avsal.models.classic.ClassicAV`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from avsal.models.classic import ClassicAV, Prediction, upsample

__all__ = ["ClassicAV", "ModelEntry", "Prediction", "create_model", "list_models", "register_model",
           "upsample"]


@dataclass(frozen=True)
class ModelEntry:
    """One registry row: the factory, whether it needs a weights file, and a one-line description."""

    name: str
    factory: Callable
    needs_weights: bool
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, factory: Callable, needs_weights: bool, description: str) -> None:
    """Add a model to the registry (raises ``ValueError`` if the name is taken)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelEntry(name, factory, needs_weights, description)


def list_models() -> list[ModelEntry]:
    """All registered models, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def create_model(name: str, weights: str | None = None, **cfg):
    """Build a registered model.

    Args:
        name: registry name, e.g. ``"classic-av"``.
        weights: path of a weights file for models that need one.
        **cfg: model configuration overrides (fields of the model's config dataclass).

    Raises:
        KeyError: unknown name (the message lists the known ones).
        ValueError: weights given to a model that takes none, or missing for one that needs them.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    entry = _REGISTRY[name]
    if weights is not None and not entry.needs_weights:
        raise ValueError(f"model {name!r} is training-free and takes no weights file")
    if weights is None and entry.needs_weights:
        raise ValueError(f"model {name!r} needs a weights file (--weights FILE)")
    return entry.factory(weights=weights, **cfg) if entry.needs_weights else entry.factory(**cfg)


register_model("classic-av", ClassicAV, needs_weights=False,
               description="training-free GBVS + optical-flow motion + audio-visual synchrony + centre prior")
