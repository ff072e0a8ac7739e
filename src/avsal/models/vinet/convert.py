"""Conversion rules of the ViNet family for the checkpoint engine (:mod:`avsal.models.checkpoints`).

avsal's ViNet modules carry upstream's names, so the official checkpoints (bare state dicts, no
``module.`` prefix; ``docs/vinet.md`` §Checkpoints) map one to one; the rules below list the accepted
prefixes explicitly so that a checkpoint of another network is reported key by key instead of loading
by accident. Rule sets:

* ``vinet``: ``ViNet_DHF1K.pt``, ``ViNet_Hollywood.pt`` (``backbone.*``, ``decoder.*``);
* ``avinet``: ``AViNet_Dave.pt``, ``no_trans_upsampling_reduced.pt`` (``visual_model.*``, ``audionet.*``,
  ``bilinear.*``; the transformer variant's ``conv_in_1x1``/``conv_out_1x1``/``transformer`` when the
  network is built with ``use_transformer=True``). SoundNet's ``conv8_objs``/``conv8_scns`` are *dropped*
  (upstream never calls them);
* ``vinet-s3d``: ``S3D_kinetics400.pt`` (kylemin/S3D, DataParallel ``module.`` prefix), the backbone init of
  upstream ``train.py``: ``base.N`` → ``baseK.M`` with block boundaries [0, 5, 8, 14] (0–3 → base1.0–3,
  5–6 → base2.0–1, 8–12 → base3.0–4, 14–15 → base4.0–1; 4, 7, 13 are parameter-free pools); its
  classifier ``fc.*`` is dropped;
* ``vinet-soundnet``: the audio init ``soundnet8_final.pth`` (ViNet's names ``conv1…7``, ``batchnorm1…7``;
  ``conv8_*`` dropped);
* ``vinet-soundnet-stavis``: the same SoundNet from a STAViS checkpoint (``module.soundnet8.N``; N = 0, 4, 8,
  11, 14, 18, 21 convs, N + 1 their BatchNorms), whose ``(1, k)`` kernels are transposed to ViNet's ``(k, 1)``
  layout (the only difference, ``docs/vinet.md`` §SoundNet). The other keys of a STAViS checkpoint (its
  visual network) are reported as unexpected. Two rule sets, because STAViS' visual ``conv1.weight`` would
  otherwise collide with SoundNet's ``conv1``.
"""

from __future__ import annotations

from avsal.models.checkpoints import ConversionRules

#: STAViS ``soundnet8.N`` index → ViNet SoundNet layer number (conv N, BatchNorm N + 1).
STAVIS_SOUNDNET_CONVS = {0: 1, 4: 2, 8: 3, 11: 4, 14: 5, 18: 6, 21: 7}

#: ``S3D_kinetics400.pt`` ``base.N`` → (ViNet stage, index in it).
S3D_BLOCKS = {n: (k + 1, n - start) for k, (start, stop) in enumerate(((0, 4), (5, 7), (8, 13), (14, 16)))
              for n in range(start, stop)}


def to_k1_layout(w):
    """SoundNet conv weight ``[O, I, 1, k]`` (STAViS) → ``[O, I, k, 1]`` (ViNet): transpose of the last two axes."""
    return w.transpose(-1, -2).contiguous()


def _build_vinet(tiny: bool = False, **_):
    from avsal.models.vinet.networks import ViNet

    return ViNet(tiny=tiny)


def _build_avinet(**cfg):
    from avsal.models.vinet.networks import AViNet

    return AViNet(**cfg)


def _build_s3d(tiny: bool = False, **_):
    from avsal.models.vinet.networks import S3DBackbone

    return S3DBackbone(tiny=tiny)


def _build_soundnet(tiny: bool = False, **_):
    from avsal.models.vinet.networks import SoundNet8

    return SoundNet8(tiny=tiny)


_SOUNDNET_LAYERS = r"(?:conv[1-7]|batchnorm[1-7])\."

CONVERSIONS: dict[str, ConversionRules] = {
    "vinet": ConversionRules(
        rename=((r"(backbone|decoder)\.", r"\1."),),
        network=_build_vinet,
        source="ViNet_DHF1K.pt / ViNet_Hollywood.pt (samyak0210/ViNet VideoSaliencyModel state_dict)"),
    "avinet": ConversionRules(
        rename=((r"visual_model\.(backbone|decoder)\.", r"visual_model.\1."),
                (r"audionet\.(" + _SOUNDNET_LAYERS + ")", r"audionet.\1"),
                (r"(bilinear|conv_in_1x1|conv_out_1x1|transformer)\.", r"\1.")),
        dropped=(r"audionet\.conv8_(objs|scns)\.",),
        network=_build_avinet,
        source="AViNet_Dave.pt / no_trans_upsampling_reduced.pt (samyak0210/ViNet VideoAudioSaliencyModel)"),
    "vinet-s3d": ConversionRules(
        rename=tuple((rf"base\.{n}\.", f"base{k}.{m}.") for n, (k, m) in S3D_BLOCKS.items()),
        dropped=(r"fc\.",),
        network=_build_s3d,
        source="S3D_kinetics400.pt (kylemin/S3D), the backbone init of upstream train.py"),
    "vinet-soundnet": ConversionRules(
        rename=((r"(" + _SOUNDNET_LAYERS + ")", r"\1"),),
        dropped=(r"conv8_(objs|scns)\.",),
        network=_build_soundnet,
        source="soundnet8_final.pth (samyak0210/ViNet SoundNet, (k,1) kernels)"),
    "vinet-soundnet-stavis": ConversionRules(
        rename=(*((rf"soundnet8\.{n}\.", f"conv{i}.") for n, i in STAVIS_SOUNDNET_CONVS.items()),
                *((rf"soundnet8\.{n + 1}\.", f"batchnorm{i}.") for n, i in STAVIS_SOUNDNET_CONVS.items())),
        transforms=((r"^conv[1-7]\.weight$", to_k1_layout),),
        network=_build_soundnet,
        source="the soundnet8 of a STAViS checkpoint (atsiami/STAViS, (1,k) kernels, transposed)"),
}


def soundnet_rules_for(keys) -> str:
    """``vinet-soundnet-stavis`` when the (unwrapped) keys hold STAViS' ``soundnet8.N``, else ``vinet-soundnet``."""
    return "vinet-soundnet-stavis" if any(k.startswith("soundnet8.") for k in keys) else "vinet-soundnet"
