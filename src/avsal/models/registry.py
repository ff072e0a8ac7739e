"""The model registry: families register their names, :func:`create_model` only looks up.

A model family is a module or package under ``avsal.models`` (``classic``, ``stanet/``, ``stavis/``, …)
that calls :func:`register_model` when imported. The registry imports every family the first time a
name is looked up (:func:`discover`), so adding a family means adding its package: nothing else in
avsal lists the models. Infrastructure modules that register nothing are skipped (:data:`NOT_FAMILIES`).
Families keep their heavy imports (torch, networks) inside their factories, so listing or running
``classic-av`` does not import torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from avsal.models.checkpoints import ConversionRules

__all__ = ["ModelEntry", "NOT_FAMILIES", "create_model", "create_video_model", "discover", "get_entry",
           "list_models", "register_model"]

#: Modules of ``avsal.models`` that hold shared pieces, not model families.
NOT_FAMILIES = frozenset({"base", "registry", "checkpoints", "backbones", "gbvs"})


@dataclass(frozen=True)
class ModelEntry:
    """One registry row.

    Attributes:
        name: registry name (``avsal predict --model NAME``).
        factory: ``factory(weights=None, **cfg)`` → the model (a ``torch.nn.Module`` for networks, with
            the weights loaded when given).
        needs_weights: predicting with it needs a weights file.
        description: one line for ``avsal models``.
        video_factory: ``video_factory(weights=None, device="cpu", batch_size=8, **cfg)`` → a video model
            (the contract of :mod:`avsal.models.base`), or ``None`` when the model predicts no saliency maps
            of videos (class-activation branches, backbone inits).
        conversion: how upstream checkpoints map onto it (:class:`avsal.models.checkpoints.ConversionRules`),
            or ``None`` when nothing converts to it.
        weights_help: where weights come from (said when a model that needs them gets none).
        aliases: other names that resolve to this entry.
        family: the registering module (``avsal.models.stanet``, …).
    """

    name: str
    factory: Callable
    needs_weights: bool
    description: str
    video_factory: Callable | None = None
    conversion: "ConversionRules | None" = None
    weights_help: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    family: str = ""


class _Registry:
    def __init__(self):
        self.entries: dict[str, ModelEntry] = {}
        self.aliases: dict[str, str] = {}
        self.discovered = False


_REGISTRY = _Registry()


def register_model(name: str, *, factory: Callable, needs_weights: bool, description: str,
                   video_factory: Callable | None = None, conversion: "ConversionRules | None" = None,
                   weights_help: str = "", aliases: tuple[str, ...] = ()) -> ModelEntry:
    """Add a model to the registry (called by each family at import).

    Returns:
        The new :class:`ModelEntry`.

    Raises:
        ValueError: the name or an alias is taken.
    """
    for n in (name, *aliases):
        if n in _REGISTRY.entries or n in _REGISTRY.aliases:
            raise ValueError(f"model {n!r} is already registered")
    import inspect

    caller = inspect.currentframe().f_back
    family = caller.f_globals.get("__name__", "") if caller is not None else ""
    entry = ModelEntry(name, factory, needs_weights, description, video_factory, conversion, weights_help,
                       tuple(aliases), family)
    _REGISTRY.entries[name] = entry
    for a in aliases:
        _REGISTRY.aliases[a] = name
    return entry


def discover() -> None:
    """Import every model family under ``avsal.models`` once (they register themselves)."""
    if _REGISTRY.discovered:
        return
    import avsal.models as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_") or mod.name in NOT_FAMILIES:
            continue
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    _REGISTRY.discovered = True


def list_models() -> list[ModelEntry]:
    """All registered models, sorted by name."""
    discover()
    return [_REGISTRY.entries[k] for k in sorted(_REGISTRY.entries)]


def get_entry(name: str) -> ModelEntry:
    """The registry row of a name or alias.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    discover()
    name = _REGISTRY.aliases.get(name, name)
    if name not in _REGISTRY.entries:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY.entries))}")
    return _REGISTRY.entries[name]


def create_model(name: str, weights: str | None = None, **cfg):
    """Build a registered model.

    Args:
        name: registry name, e.g. ``"classic-av"`` or ``"stanet-sta"``.
        weights: weights file (avsal ``.safetensors`` or an upstream checkpoint) for network models;
            without it a network has freshly initialised weights (for training).
        **cfg: configuration overrides (fields of the model's config dataclass).

    Raises:
        KeyError: unknown name (the message lists the known ones).
        ValueError: weights given to a training-free model.
        InputError: a weights file that cannot be read or does not fit.
    """
    return get_entry(name).factory(weights=weights, **cfg)


def create_video_model(name: str, weights: str | None = None, device: str = "cpu", batch_size: int = 8, **cfg):
    """Build the video model ``avsal predict`` runs (the contract of :mod:`avsal.models.base`).

    Raises:
        KeyError: unknown name.
        ValueError: a model that predicts no saliency maps, or one that needs weights and got none (the
            message says where weights come from).
    """
    entry = get_entry(name)
    if entry.video_factory is None:
        usable = ", ".join(e.name for e in list_models() if e.video_factory is not None)
        raise ValueError(f"model {entry.name!r} is not a saliency model of videos (a class-activation branch, "
                         "a backbone or an init file); it cannot be used "
                         f"with `avsal predict` (use one of: {usable})")
    if entry.needs_weights and weights is None:
        raise ValueError(f"model {entry.name!r} needs trained weights (--weights FILE): {entry.weights_help}. "
                         "avsal never predicts with random weights.")
    return entry.video_factory(weights=weights, device=device, batch_size=batch_size, **cfg)
