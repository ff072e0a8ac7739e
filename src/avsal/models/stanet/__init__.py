"""STANet (Wang et al., CVPR 2021): networks, upstream checkpoint conversion, and video inference.

* :mod:`~avsal.models.stanet.networks`: :class:`SNet`, :class:`SANet`, :class:`STNet`, :class:`STANet`;
* :mod:`~avsal.models.stanet.convert`: the conversion rules (upstream → avsal names) for the checkpoint engine;
* :mod:`~avsal.models.stanet.predictor`: :class:`STAVideoModel` (``avsal predict --model stanet-sta``).

Importing this package registers ``stanet-s``, ``stanet-sa``, ``stanet-st``, ``stanet-sta`` and the backbone
init files ``stanet-backbone`` (alias ``backbone``) and ``stanet-audio`` (alias ``audio``); the networks
(and torch) are imported when first used.
"""

from __future__ import annotations

from dataclasses import fields

from avsal.models.registry import register_model
from avsal.models.stanet.convert import CONVERSIONS

__all__ = ["AVE_CLASSES", "FrameFeatures", "SANet", "SNet", "STANet", "STANetConfig", "STNet"]

_NETWORKS = ("AVE_CLASSES", "FrameFeatures", "SANet", "SNet", "STANet", "STANetConfig", "STNet")

#: Where STANet weights come from, for error messages.
WEIGHTS_HELP = ("official STANet checkpoints (guotaowang/STANet release; convert with `avsal convert-weights`) "
                "or your own training run (`avsal train sta`)")


def __getattr__(name):  # the networks are imported lazily (they import torch)
    if name in _NETWORKS:
        from avsal.models.stanet import networks

        return getattr(networks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _factory(name: str, conversion_key: str):
    build = CONVERSIONS[conversion_key].network

    def factory(weights=None, **cfg):
        if weights is None:
            return build(**cfg)
        from avsal.models.checkpoints import load_network

        return load_network(name, build, weights, cfg)
    return factory


def _sta_video(weights=None, device="cpu", batch_size=8, **cfg):
    from avsal.models.stanet.networks import STANetConfig
    from avsal.models.stanet.predictor import STAInferenceConfig, STAVideoModel

    net_fields = {f.name for f in fields(STANetConfig)}
    inf_fields = {f.name for f in fields(STAInferenceConfig)}
    unknown = set(cfg) - net_fields - inf_fields
    if unknown:
        raise TypeError(f"unknown stanet-sta option(s): {', '.join(sorted(unknown))}")
    net = _factory("stanet-sta", "stanet-sta")(weights=weights, **{k: v for k, v in cfg.items() if k in net_fields})
    inf = {k: v for k, v in cfg.items() if k in inf_fields}
    return STAVideoModel(net, STAInferenceConfig(device=device, batch_size=batch_size, **inf))


register_model("stanet-sta", factory=_factory("stanet-sta", "stanet-sta"), needs_weights=True,
               description="STANet STA saliency network (Wang et al. CVPR 2021)", video_factory=_sta_video,
               conversion=CONVERSIONS["stanet-sta"], weights_help=WEIGHTS_HELP)
for _name, _what in (("stanet-s", "spatial"), ("stanet-sa", "audio-visual"), ("stanet-st", "spatio-temporal")):
    register_model(_name, factory=_factory(_name, _name), needs_weights=True,
                   description=f"STANet {_name[7:].upper()} class-activation branch ({_what})",
                   conversion=CONVERSIONS[_name], weights_help=WEIGHTS_HELP)
register_model("stanet-backbone", factory=_factory("stanet-backbone", "backbone"), needs_weights=True,
               description="ResNeXt-101 32x8d backbone init of STANet (torchvision / WSL-Images weights)",
               conversion=CONVERSIONS["backbone"], aliases=("backbone",),
               weights_help="torchvision or WSL-Images resnext101_32x8d weights")
register_model("stanet-audio", factory=_factory("stanet-audio", "audio"), needs_weights=True,
               description="VGGSound ResNet-18 + NetVLAD audio backbone init of STANet",
               conversion=CONVERSIONS["audio"], aliases=("audio",),
               weights_help="vggsound_netvlad.pth.tar (hche11/VGGSound)")
