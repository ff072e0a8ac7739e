"""Conversion rules of the STANet family for the checkpoint engine (:mod:`avsal.models.checkpoints`).

Upstream names every new layer ``extra_*`` and keeps the backbones as ``nn.Sequential`` slices of the
torchvision/VGGSound modules (``features.4`` = ``layer1``, ``features1.N`` = ``layer3.N``,
``audio_model.8`` = the NetVLAD pooling, ...). :data:`CONVERSIONS` holds, per registry name, the ordered
renames, the keys of modules upstream defines but never uses (reported as *dropped*) and the target
network; the engine does the rest (unwrapping, the report, the strict check).
"""

from __future__ import annotations

from avsal.models.checkpoints import ConversionRules

#: Upstream head names → avsal names, per network (regex on the key without ``module.``).
_COMMON_HEAD = [
    (r"extra_ConvGRU\.", "gru."),
    (r"extra_projf\.", "self_att.query."),
    (r"extra_projg\.", "self_att.key."),
    (r"extra_projh\.", "self_att.value."),
    (r"extra_convv\.", "av_fusion.visual_proj."),
    (r"extra_lineara\.", "av_fusion.audio_fc."),
    (r"extra_linearv\.", "av_fusion.visual_fc."),
    (r"extra_gateav\.", "av_fusion.gate."),
    (r"extra_refineST\.", "st_refine.layers."),
]

_STAGES = {"4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def _stem_rules(prefix: str) -> list[tuple[str, str]]:
    """``<prefix>.0`` conv1, ``.1`` bn1, ``.4``–``.7`` layer1–layer4 (children of a torchvision ResNet)."""
    rules = [(rf"{prefix}\.0\.", "backbone.conv1."), (rf"{prefix}\.1\.", "backbone.bn1.")]
    rules += [(rf"{prefix}\.{i}\.", f"backbone.{name}.") for i, name in _STAGES.items()]
    return rules


_AUDIO_RULES = [(r"audio_model\.0\.", "audio_net.conv1."), (r"audio_model\.1\.", "audio_net.bn1.")]
_AUDIO_RULES += [(rf"audio_model\.{i}\.", f"audio_net.{name}.") for i, name in _STAGES.items()]
_AUDIO_RULES += [(r"audio_model\.8\.", "audio_net.avgpool.")]

_RULES: dict[str, list[tuple[str, str]]] = {
    "stanet-s": _stem_rules("features") + [(r"extra_convs\.", "classifier."), (r"extra_conv_fusion\.", "fusion."),
                                           (r"extra_gate\.", "self_att.gate.")] + _COMMON_HEAD,
    "stanet-sa": _stem_rules("features") + _AUDIO_RULES + [
        (r"extra_video_d\.", "cam_head."), (r"extra_conv_fusion\.", "fusion."),
        (r"extra_gate\.", "self_att.gate.")] + _COMMON_HEAD,
    "stanet-st": _stem_rules("features") + [(r"extra_convs\.", "cam_head."), (r"extra_conv_fusion\.", "fusion."),
                                            (r"extra_gate\.", "self_att.gate.")] + _COMMON_HEAD,
    "stanet-sta": [(r"features0\.0\.", "backbone.conv1."), (r"features0\.1\.", "backbone.bn1."),
                   (r"features0\.4\.", "backbone.layer1."), (r"features0\.5\.", "backbone.layer2."),
                   (r"features1\.", "backbone.layer3."), (r"features2\.", "backbone.layer4.")] + _AUDIO_RULES + [
        (r"extra_convs\.", "reduce."), (r"extra_convsd1\.", "reduce1."), (r"extra_convsd0\.", "reduce0."),
        (r"extra_conv_fusion\.", "fusion."), (r"extra_gates\.", "self_att.gate."),
        (r"extra_refine1\.0\.", "refine1."), (r"extra_refine0\.0\.", "refine0."),
        (r"extra_out1\.", "out1."), (r"extra_out0\.", "out0.")] + _COMMON_HEAD,
    # torchvision / WSL-Images resnext101_32x8d: names already match; the classifier is not used.
    "backbone": [(r"(conv1|bn1|layer[1-4])\.", r"\1.")],
    # vggsound_netvlad.pth.tar: AVENet/SoundNet with the ResNet under ``audnet``.
    "audio": [(r"audnet\.(conv1|bn1|layer[1-4]|avgpool)\.", r"\1.")],
}

#: Modules upstream defines but never uses in ``forward``: their keys are dropped knowingly.
_DROPPED: dict[str, list[str]] = {
    "stanet-s": [],
    "stanet-sa": [r"extra_audio_d\.", r"Aup\.", r"extra_convs\."],
    "stanet-st": [],
    "stanet-sta": [r"extra_audio_d\.", r"extra_gate\.", r"extra_refineSA\.", r"extra_conv_stafusion\."],
    "backbone": [r"fc\."],
    "audio": [r"audnet\.fc_\.", r"audnet\.fc\."],
}



def _network(name: str):
    def build(**cfg):
        from avsal.models.backbones import AudioResNet, resnext101_32x8d
        from avsal.models.stanet.networks import SANet, SNet, STANet, STNet

        if name == "backbone":
            return resnext101_32x8d(tiny=cfg.get("tiny", False), num_classes=0)
        if name == "audio":
            return AudioResNet(tiny=cfg.get("tiny", False), num_classes=0)
        return {"stanet-s": SNet, "stanet-sa": SANet, "stanet-st": STNet, "stanet-sta": STANet}[name](**cfg)
    return build


_SOURCES = {
    "stanet-s": "guotaowang/STANet S branch checkpoint (DataParallel)",
    "stanet-sa": "guotaowang/STANet SA branch checkpoint (DataParallel)",
    "stanet-st": "guotaowang/STANet ST branch checkpoint (DataParallel)",
    "stanet-sta": "guotaowang/STANet STA checkpoint STANet.pth (DataParallel)",
    "backbone": "torchvision / WSL-Images resnext101_32x8d state_dict",
    "audio": "VGGSound vggsound_netvlad.pth.tar (model_state_dict)",
}

#: Conversion rules per name (``backbone`` and ``audio`` are the init files of the backbones).
CONVERSIONS: dict[str, ConversionRules] = {
    name: ConversionRules(rename=tuple(_RULES[name]), dropped=tuple(_DROPPED[name]), network=_network(name),
                          source=_SOURCES[name])
    for name in _RULES
}
