"""ViNet and AViNet (Jain et al., IROS 2021): networks, upstream checkpoint conversion, video inference.

* :mod:`~avsal.models.vinet.networks`: :class:`ViNet`, :class:`AViNet` (S3D encoder, ``DecoderConvUp``,
  SoundNet-8 in ViNet's ``(k, 1)`` layout, bilinear or transformer fusion);
* :mod:`~avsal.models.vinet.convert`: conversion rules for the official checkpoints and the init files;
* :mod:`~avsal.models.vinet.audio`: AViNet's audio input (the STAViS excerpt procedure for 32 frames);
* :mod:`~avsal.models.vinet.predictor`: :class:`ViNetVideoModel` (``avsal predict --model vinet|avinet``).

Importing this package registers ``vinet``, ``avinet`` and the init files ``vinet-s3d``
(``S3D_kinetics400.pt``), ``vinet-soundnet`` (``soundnet8_final.pth``) and ``vinet-soundnet-stavis`` (a STAViS
checkpoint's ``soundnet8``); torch and
the networks are imported when first used. Facts and numbers: ``docs/vinet.md``.
"""

from __future__ import annotations

from dataclasses import fields

from avsal.models.registry import register_model
from avsal.models.vinet.convert import CONVERSIONS

__all__ = ["AViNet", "ViNet", "ViNetConfig", "init_from_files"]

WEIGHTS_HELP = ("the official ViNet/AViNet checkpoints (samyak0210/ViNet README: ViNet_DHF1K.pt, "
                "ViNet_Hollywood.pt, AViNet_Dave.pt, no_trans_upsampling_reduced.pt; used as they are or "
                "converted with `avsal convert-weights`) or your own training run (`avsal train vinet|avinet`)")


def __getattr__(name):  # the networks are imported lazily (they import torch)
    if name in ("AViNet", "ViNet", "ViNetConfig"):
        from avsal.models.vinet import networks

        return getattr(networks, name)
    if name == "init_from_files":
        from avsal.models.vinet.init import init_from_files

        return init_from_files
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _factory(name: str):
    build = CONVERSIONS[name].network

    def factory(weights=None, **cfg):
        if weights is None:
            return build(**cfg)
        from avsal.models.checkpoints import load_network

        return load_network(name, build, weights, cfg)
    return factory


def _video_factory(name: str):
    def video_factory(weights=None, device="cpu", batch_size=4, **cfg):
        from avsal.models.vinet.networks import ViNetConfig
        from avsal.models.vinet.predictor import ViNetInferenceConfig, ViNetVideoModel

        net_fields = {f.name for f in fields(ViNetConfig)} if name == "avinet" else {"tiny"}
        inf_fields = {f.name for f in fields(ViNetInferenceConfig)} - {"device", "batch_size"}
        unknown = set(cfg) - net_fields - inf_fields
        if unknown:
            raise TypeError(f"unknown {name} option(s): {', '.join(sorted(unknown))}")
        net = _factory(name)(weights=weights, **{k: v for k, v in cfg.items() if k in net_fields})
        inf = {k: v for k, v in cfg.items() if k in inf_fields}
        return ViNetVideoModel(net, ViNetInferenceConfig(device=device, batch_size=batch_size, **inf))
    return video_factory


register_model("vinet", factory=_factory("vinet"), needs_weights=True,
               description="ViNet visual saliency network (S3D encoder + hierarchical decoder, Jain et al. IROS 2021)",
               video_factory=_video_factory("vinet"), conversion=CONVERSIONS["vinet"], weights_help=WEIGHTS_HELP)
register_model("avinet", factory=_factory("avinet"), needs_weights=True,
               description="AViNet audio-visual saliency network (ViNet + SoundNet-8, bilinear fusion)",
               video_factory=_video_factory("avinet"), conversion=CONVERSIONS["avinet"], weights_help=WEIGHTS_HELP)
register_model("vinet-s3d", factory=_factory("vinet-s3d"), needs_weights=True,
               description="S3D Kinetics-400 backbone init of ViNet (kylemin/S3D S3D_kinetics400.pt)",
               conversion=CONVERSIONS["vinet-s3d"], weights_help="S3D_kinetics400.pt (kylemin/S3D)")
register_model("vinet-soundnet", factory=_factory("vinet-soundnet"), needs_weights=True,
               description="SoundNet-8 audio init of AViNet (soundnet8_final.pth, ViNet's (k,1) layout)",
               conversion=CONVERSIONS["vinet-soundnet"], weights_help="soundnet8_final.pth (samyak0210/ViNet)")
register_model("vinet-soundnet-stavis", factory=_factory("vinet-soundnet-stavis"), needs_weights=True,
               description="SoundNet-8 audio init of AViNet from a STAViS checkpoint (soundnet8.N, transposed)",
               conversion=CONVERSIONS["vinet-soundnet-stavis"],
               weights_help="a STAViS checkpoint (atsiami/STAViS), e.g. audiovisual_split1_save_60.pth")
