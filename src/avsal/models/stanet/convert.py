"""Map upstream checkpoints (STANet, torchvision/WSL ResNeXt, VGGSound audio) onto avsal's networks.

Upstream names every new layer ``extra_*`` and keeps the backbones as ``nn.Sequential`` slices of the
torchvision/VGGSound modules (``features.4`` = ``layer1``, ``features1.N`` = ``layer3.N``,
``audio_model.8`` = the NetVLAD pooling, ...). :func:`convert_upstream_state_dict` renames every key with
the rules below, drops the keys of modules upstream defines but never uses (reported as *dropped*), and
checks the result against the avsal network: a missing key or a shape mismatch raises
:class:`CheckpointError` naming the key and both shapes; keys no rule knows are reported as *unexpected*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

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

RULES: dict[str, list[tuple[str, str]]] = {
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
DROPPED: dict[str, list[str]] = {
    "stanet-s": [],
    "stanet-sa": [r"extra_audio_d\.", r"Aup\.", r"extra_convs\."],
    "stanet-st": [],
    "stanet-sta": [r"extra_audio_d\.", r"extra_gate\.", r"extra_refineSA\.", r"extra_conv_stafusion\."],
    "backbone": [r"fc\."],
    "audio": [r"audnet\.fc_\.", r"audnet\.fc\."],
}

CONVERTIBLE = tuple(RULES)


class CheckpointError(ValueError):
    """A checkpoint does not fit the network (missing key, wrong shape, unknown format)."""


@dataclass
class ConversionReport:
    """Accounting of a conversion.

    Attributes:
        mapped: ``(upstream key, avsal key)`` pairs.
        dropped: upstream keys of modules upstream never uses.
        unexpected: upstream keys no rule knows (not loaded).
    """

    mapped: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"mapped": len(self.mapped), "dropped": len(self.dropped), "unexpected": len(self.unexpected),
                "dropped_keys": self.dropped, "unexpected_keys": self.unexpected}


def unwrap_state_dict(obj) -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded checkpoint, with DataParallel ``module.`` prefixes removed.

    Accepts a bare state dict or one nested under ``state_dict`` / ``model_state_dict`` / ``model``
    (upstream ``save_checkpoint`` and the VGGSound file nest it).

    Raises:
        CheckpointError: no tensor dictionary found.
    """
    for _ in range(3):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            for k in ("state_dict", "model_state_dict", "model"):
                if isinstance(obj.get(k), dict):
                    obj = obj[k]
                    break
            else:
                break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError("no state_dict of tensors found in the checkpoint")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    return out


def _target_shapes(model_name: str, config: dict | None) -> dict[str, torch.Size]:
    from avsal.models.backbones import AudioResNet, resnext101_32x8d
    from avsal.models.stanet.networks import SANet, SNet, STANet, STNet

    cfg = dict(config or {})
    with torch.device("meta"):
        if model_name == "backbone":
            net = resnext101_32x8d(tiny=cfg.get("tiny", False), num_classes=0)
        elif model_name == "audio":
            net = AudioResNet(tiny=cfg.get("tiny", False), num_classes=0)
        else:
            net = {"stanet-s": SNet, "stanet-sa": SANet, "stanet-st": STNet, "stanet-sta": STANet}[model_name](**cfg)
    return {k: v.shape for k, v in net.state_dict().items()}


def convert_upstream_state_dict(state_dict, model_name: str, config: dict | None = None,
                                partial: bool = False) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Rename an upstream checkpoint's keys to avsal's and check them against the network.

    Args:
        state_dict: a loaded checkpoint (bare or nested, with or without ``module.``; see
            :func:`unwrap_state_dict`).
        model_name: ``stanet-s``, ``stanet-sa``, ``stanet-st``, ``stanet-sta``, ``backbone`` (torchvision/WSL
            ResNeXt-101 32x8d) or ``audio`` (VGGSound ResNet-18 + NetVLAD).
        config: :class:`~avsal.models.stanet.STANetConfig` fields of the target network (e.g. ``tiny``).
        partial: allow avsal keys that the checkpoint does not provide (e.g. heads, when converting a
            backbone-only file into a full network); they are then simply absent from the result.

    Returns:
        ``(state_dict, report)``: avsal-named tensors (same objects, not copies) and the accounting.

    Raises:
        CheckpointError: unknown model name, a key missing (unless ``partial``), or a shape mismatch
            (the message names the key and both shapes).
    """
    if model_name not in RULES:
        raise CheckpointError(f"unknown model {model_name!r}; convertible: {', '.join(CONVERTIBLE)}")
    sd = unwrap_state_dict(state_dict)
    rules = [(re.compile("^" + pat), rep) for pat, rep in RULES[model_name]]
    dropped = [re.compile("^" + pat) for pat in DROPPED[model_name]]
    report = ConversionReport()
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if any(d.match(key) for d in dropped):
            report.dropped.append(key)
            continue
        for pat, rep in rules:
            if pat.match(key):
                new = pat.sub(rep, key, count=1)
                out[new] = value
                report.mapped.append((key, new))
                break
        else:
            report.unexpected.append(key)
    target = _target_shapes(model_name, config)
    for new, value in out.items():
        if new not in target:
            raise CheckpointError(f"{model_name}: checkpoint key maps to {new!r}, which the network does not have")
        if tuple(value.shape) != tuple(target[new]):
            src = next(k for k, n in report.mapped if n == new)
            raise CheckpointError(f"{model_name}: shape mismatch for {src!r} -> {new!r}: checkpoint "
                                  f"{tuple(value.shape)}, network {tuple(target[new])}")
    missing = [k for k in target if k not in out]
    if missing and not partial:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise CheckpointError(f"{model_name}: checkpoint lacks {len(missing)} keys the network needs, e.g. "
                              f"{', '.join(missing[:5])}{more}")
    return out, report
