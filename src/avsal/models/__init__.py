"""Model registry: ``create_model(name, **cfg)`` builds any avsal model by its name.

A *video model* (what ``avsal predict`` runs) exposes ``name``, ``config`` and
``stream(frames, audio) -> Iterator[Prediction]`` (see :class:`avsal.models.classic.ClassicAV`);
:func:`create_video_model` builds one. Network models (``stanet-*``) are ``torch.nn.Module``\\ s from
:func:`create_model`, with or without weights (for training).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

from avsal.models.classic import ClassicAV, Prediction, upsample

__all__ = ["ClassicAV", "ModelEntry", "Prediction", "create_model", "create_video_model", "list_models",
           "register_model", "upsample"]

#: Where STANet weights come from, for error messages.
WEIGHTS_HELP = ("official STANet checkpoints (guotaowang/STANet release; convert with `avsal convert-weights`) "
                "or your own training run (`avsal train sta`)")


@dataclass(frozen=True)
class ModelEntry:
    """One registry row.

    Attributes:
        name: registry name.
        factory: ``factory(weights=None, **cfg)`` → the model.
        needs_weights: predicting with it needs a weights file.
        description: one line for ``avsal models``.
        video_factory: ``video_factory(model, device=..., batch_size=..., **cfg)`` → a video model, or
            ``None`` when the model does not predict saliency maps of videos (e.g. the CAM branches).
    """

    name: str
    factory: Callable
    needs_weights: bool
    description: str
    video_factory: Callable | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, factory: Callable, needs_weights: bool, description: str,
                   video_factory: Callable | None = None) -> None:
    """Add a model to the registry (raises ``ValueError`` if the name is taken)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelEntry(name, factory, needs_weights, description, video_factory)


def list_models() -> list[ModelEntry]:
    """All registered models, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, weights: str | None = None, **cfg):
    """Build a registered model.

    Args:
        name: registry name, e.g. ``"classic-av"`` or ``"stanet-sta"``.
        weights: weights file (avsal ``.safetensors`` or an upstream ``.pth``) for network models;
            without it a network has freshly initialised heads (for training).
        **cfg: configuration overrides (fields of the model's config dataclass).

    Raises:
        KeyError: unknown name (the message lists the known ones).
        ValueError: weights given to a training-free model.
        InputError: a weights file that cannot be read or does not fit.
    """
    return _entry(name).factory(weights=weights, **cfg)


def create_video_model(name: str, weights: str | None = None, device: str = "cpu", batch_size: int = 8, **cfg):
    """Build the video model ``avsal predict`` runs.

    Raises:
        KeyError: unknown name.
        ValueError: a model that predicts no saliency maps, or one that needs weights and got none (the
            message says where weights come from).
    """
    entry = _entry(name)
    if entry.video_factory is None:
        raise ValueError(f"model {name!r} is a class-activation branch, not a saliency model; it cannot be used "
                         "with `avsal predict` (use stanet-sta or classic-av)")
    if entry.needs_weights and weights is None:
        raise ValueError(f"model {name!r} needs trained weights (--weights FILE): {WEIGHTS_HELP}. avsal never "
                         "predicts with random weights.")
    return entry.video_factory(name=name, weights=weights, device=device, batch_size=batch_size, **cfg)


def _classic(weights=None, **cfg):
    if weights is not None:
        raise ValueError("model 'classic-av' is training-free and takes no weights file")
    return ClassicAV(**cfg)


def _classic_video(name, weights=None, device="cpu", batch_size=8, **cfg):
    return _classic(weights, **cfg)


def _stanet(name: str):
    def factory(weights=None, **cfg):
        import torch

        from avsal.models.checkpoints import load_state_dict_for
        from avsal.models.stanet.networks import SANet, SNet, STANet, STNet

        cls = {"stanet-s": SNet, "stanet-sa": SANet, "stanet-st": STNet, "stanet-sta": STANet}[name]
        if weights is None:
            return cls(**cfg)
        sd, net_cfg, _report = load_state_dict_for(name, weights, cfg)
        with torch.device("meta"):
            net = cls(**net_cfg)
        net.load_state_dict(sd, strict=True, assign=True)
        return net
    return factory


def _sta_video(name, weights=None, device="cpu", batch_size=8, **cfg):
    from avsal.models.stanet.networks import STANetConfig
    from avsal.models.stanet.predictor import STAInferenceConfig, STAVideoModel

    net_fields = {f.name for f in fields(STANetConfig)}
    inf_fields = {f.name for f in fields(STAInferenceConfig)}
    unknown = set(cfg) - net_fields - inf_fields
    if unknown:
        raise TypeError(f"unknown stanet-sta option(s): {', '.join(sorted(unknown))}")
    net = create_model(name, weights=weights, **{k: v for k, v in cfg.items() if k in net_fields})
    inf = {k: v for k, v in cfg.items() if k in inf_fields}
    return STAVideoModel(net, STAInferenceConfig(device=device, batch_size=batch_size, **inf))


register_model("classic-av", _classic, needs_weights=False,
               description="training-free GBVS + optical-flow motion + audio-visual synchrony + centre prior",
               video_factory=_classic_video)
register_model("stanet-sta", _stanet("stanet-sta"), needs_weights=True,
               description="STANet STA saliency network (Wang et al. CVPR 2021)", video_factory=_sta_video)
register_model("stanet-s", _stanet("stanet-s"), needs_weights=True,
               description="STANet S class-activation branch (spatial)")
register_model("stanet-sa", _stanet("stanet-sa"), needs_weights=True,
               description="STANet SA class-activation branch (audio-visual)")
register_model("stanet-st", _stanet("stanet-st"), needs_weights=True,
               description="STANet ST class-activation branch (spatio-temporal)")
