"""STAViS (Tsiami, Koutras, Maragos, CVPR 2020): networks, upstream checkpoint conversion, preprocessing,
video inference and training. Facts and upstream defects: ``docs/stavis.md``.

* :mod:`~avsal.models.stavis.networks`: :class:`Stavis` (``variant="av"`` or ``"visual"``), :class:`StavisConfig`;
* :mod:`~avsal.models.stavis.convert`: conversion rules for the checkpoint engine;
* :mod:`~avsal.models.stavis.preprocess`: frames, ground-truth maps and audio excerpts as upstream;
* :mod:`~avsal.models.stavis.predictor`: :class:`StavisVideoModel` (``avsal predict --model stavis-av``);
* :mod:`~avsal.models.stavis.training`: ``avsal train stavis``.

Importing this package registers ``stavis-av``, ``stavis-visual`` and the init files ``stavis-backbone``
(``resnet-50-kinetics.pth``) and ``stavis-soundnet8`` (alias ``soundnet8``; ``soundnet8.pth``); torch and the
networks are imported when first used.
"""

from __future__ import annotations

from dataclasses import fields

from avsal.models.registry import register_model
from avsal.models.stavis.convert import (SOUNDNET8_RULES, STAVIS_AV_RULES, STAVIS_BACKBONE_RULES,
                                         STAVIS_VISUAL_RULES)

__all__ = ["Stavis", "StavisConfig", "StavisVideoModel"]

#: Where STAViS weights come from, for error messages.
WEIGHTS_HELP = ("the official STAViS checkpoints (atsiami/STAViS README: audiovisual_split{1,2,3}_save_60.pth, "
                "visual_split{1,2,3}_save_60.pth; given as they are or converted with `avsal convert-weights`) "
                "or your own training run (`avsal train stavis`)")


def __getattr__(name):  # lazy: the networks import torch
    if name in ("Stavis", "StavisConfig"):
        from avsal.models.stavis import networks

        return getattr(networks, name)
    if name == "StavisVideoModel":
        from avsal.models.stavis.predictor import StavisVideoModel

        return StavisVideoModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _factory(name: str, rules):
    def factory(weights=None, **cfg):
        if weights is None:
            return rules.network(**cfg)
        from avsal.models.checkpoints import load_network

        return load_network(name, rules.network, weights, cfg)
    return factory


def _video_factory(name: str, rules):
    def video_factory(weights=None, device="cpu", batch_size=8, **cfg):
        from avsal.models.stavis.networks import StavisConfig
        from avsal.models.stavis.predictor import StavisInferenceConfig, StavisVideoModel

        net_fields = {f.name for f in fields(StavisConfig)} - {"variant"}
        inf_fields = {f.name for f in fields(StavisInferenceConfig)}
        unknown = set(cfg) - net_fields - inf_fields
        if unknown:
            raise TypeError(f"unknown {name} option(s): {', '.join(sorted(unknown))}")
        net = _factory(name, rules)(weights=weights, **{k: v for k, v in cfg.items() if k in net_fields})
        inf = {k: v for k, v in cfg.items() if k in inf_fields}
        return StavisVideoModel(net, StavisInferenceConfig(device=device, batch_size=batch_size, **inf))
    return video_factory


register_model("stavis-av", factory=_factory("stavis-av", STAVIS_AV_RULES), needs_weights=True,
               description="STAViS audio-visual saliency network (Tsiami et al. CVPR 2020), 16-frame clips",
               video_factory=_video_factory("stavis-av", STAVIS_AV_RULES), conversion=STAVIS_AV_RULES,
               weights_help=WEIGHTS_HELP)
register_model("stavis-visual", factory=_factory("stavis-visual", STAVIS_VISUAL_RULES), needs_weights=True,
               description="STAViS visual-only saliency network (Tsiami et al. CVPR 2020), 16-frame clips",
               video_factory=_video_factory("stavis-visual", STAVIS_VISUAL_RULES), conversion=STAVIS_VISUAL_RULES,
               weights_help=WEIGHTS_HELP)
register_model("stavis-backbone", factory=_factory("stavis-backbone", STAVIS_BACKBONE_RULES), needs_weights=True,
               description="3D ResNet-50 Kinetics init of STAViS (resnet-50-kinetics.pth; layer4/fc dropped)",
               conversion=STAVIS_BACKBONE_RULES,
               weights_help="resnet-50-kinetics.pth (kenshohara/3D-ResNets-PyTorch release)")
register_model("stavis-soundnet8", factory=_factory("stavis-soundnet8", SOUNDNET8_RULES), needs_weights=True,
               description="SoundNet-8 init of the STAViS audio branch (soundnet8.pth)",
               conversion=SOUNDNET8_RULES, aliases=("soundnet8",),
               weights_help="soundnet8.pth (atsiami/STAViS release)")
