"""ViNet / AViNet checkpoint conversion: official files (built from the upstream key lists), init files."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch

from avsal.errors import InputError
from conftest import SPECS
from avsal.models.checkpoints import CheckpointError, convert_state_dict
from avsal.models.registry import create_model
from avsal.models.vinet.init import init_from_files
from avsal.models.vinet.networks import AViNet, S3DBackbone, SoundNet8, ViNet

DATA = os.path.join(os.path.dirname(__file__), "data", "vinet")

#: kylemin/S3D ``base`` Sequential index of the first module of each ViNet stage (train.py's [0, 5, 8, 14]).
S3D_OFFSETS = {1: 0, 2: 5, 3: 8, 4: 14}
#: STAViS soundnet8 Sequential index of ViNet's conv1…conv7 (spec key map; BatchNorm at index + 1).
STAVIS_INDEX = {1: 0, 2: 4, 3: 8, 4: 11, 5: 14, 6: 18, 7: 21}


def _keys(name: str) -> list[tuple[str, tuple[int, ...]]]:
    with open(os.path.join(DATA, f"keys_{name}.json")) as f:
        return [(k["key"], tuple(k["shape"])) for k in json.load(f)["keys"]]


def _tensors(keys, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in keys:
        if k.endswith("num_batches_tracked"):
            out[k] = torch.zeros(shape, dtype=torch.int64)
        else:
            out[k] = torch.rand(shape, generator=g) if int(torch.Size(shape).numel()) < 10_000 else torch.zeros(shape)
    return out


def test_vinet_checkpoint_converts_strictly_and_loads(tmp_path):
    sd = _tensors(_keys("vinet"))
    out, report = convert_state_dict(sd, "vinet")
    assert len(report.mapped) == 470 and not (report.dropped or report.unexpected or report.missing)
    assert all(out[k] is sd[k] for k in sd)  # identity names, no copy
    path = tmp_path / "ViNet_DHF1K.pt"
    torch.save(sd, path)
    net = create_model("vinet", weights=str(path))
    assert isinstance(net, ViNet)
    assert torch.equal(net.decoder.convtsp4[8].bias, sd["decoder.convtsp4.8.bias"])


def test_avinet_checkpoint_drops_soundnet_heads():
    sd = _tensors(_keys("avinet"))
    out, report = convert_state_dict(sd, "avinet")
    assert sorted(report.dropped) == ["audionet.conv8_objs.bias", "audionet.conv8_objs.weight",
                                      "audionet.conv8_scns.bias", "audionet.conv8_scns.weight"]
    assert len(report.mapped) == 521 and not (report.unexpected or report.missing or report.mismatched)
    assert torch.equal(out["bilinear.bias"], sd["bilinear.bias"])


def test_avinet_transformer_checkpoint(tmp_path):
    with torch.device("meta"):
        net = AViNet(use_transformer=True)
    keys = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    keys += [(k, s) for k, s in _keys("avinet") if "conv8_" in k]
    sd = _tensors(keys)
    out, report = convert_state_dict(sd, "avinet", {"use_transformer": True})
    assert len(report.mapped) == 562 and len(report.dropped) == 4 and not report.missing
    assert "transformer.transformer_encoder.layers.2.self_attn.in_proj_weight" in out
    with pytest.raises(CheckpointError, match="does not have"):  # the transformer keys need the switch
        convert_state_dict(sd, "avinet")


def test_wrong_checkpoint_is_reported():
    sd = _tensors(_keys("vinet"))
    with pytest.raises(CheckpointError, match="lacks 521 keys") as e:  # ViNet weights are not AViNet weights
        convert_state_dict(sd, "avinet")
    assert len(e.value.report.unexpected) == 470
    bad = dict(sd)
    bad["decoder.convtsp1.0.weight"] = torch.zeros(832, 1024, 3, 3, 3)
    with pytest.raises(CheckpointError, match=r"decoder.convtsp1.0.weight.*\(832, 1024, 3, 3, 3\).*\(832, 1024, 1, 3, 3\)"):
        convert_state_dict(bad, "vinet")


def _kylemin_keys(tiny: bool, with_counters: bool = True) -> list[tuple[str, tuple[int, ...]]]:
    """S3D_kinetics400.pt as kylemin/S3D saves it: ``module.base.N.*`` and a ``fc`` classifier."""
    with torch.device("meta"):
        net = S3DBackbone(tiny)
    keys = []
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked") and not with_counters:
            continue
        stage, idx, rest = re.match(r"base(\d)\.(\d+)\.(.*)", k).groups()
        keys.append((f"module.base.{S3D_OFFSETS[int(stage)] + int(idx)}.{rest}", tuple(v.shape)))
    c = 1024 // 8 if tiny else 1024
    return keys + [("module.fc.0.weight", (400, c, 1, 1, 1)), ("module.fc.0.bias", (400,))]


def test_s3d_init_renaming():
    sd = _tensors(_kylemin_keys(tiny=False))
    out, report = convert_state_dict(sd, "vinet-s3d")
    assert report.dropped == ["fc.0.weight", "fc.0.bias"] and not (report.missing or report.unexpected)
    mapped = dict(report.mapped)
    assert mapped["base.0.conv_s.weight"] == "base1.0.conv_s.weight"
    assert mapped["base.3.conv_t.weight"] == "base1.3.conv_t.weight"
    assert mapped["base.5.branch0.0.conv.weight"] == "base2.0.branch0.0.conv.weight"
    assert mapped["base.12.branch3.1.conv.weight"] == "base3.4.branch3.1.conv.weight"
    assert mapped["base.15.branch1.1.bn_t.running_var"] == "base4.1.branch1.1.bn_t.running_var"
    assert len(mapped) == len(S3DBackbone().state_dict())


def _stavis_soundnet(tiny: bool, seed: int = 1) -> dict[str, torch.Tensor]:
    """A STAViS checkpoint's SoundNet (``module.soundnet8.N``, ``(1, k)`` kernels) plus one visual key."""
    with torch.device("meta"):
        ref = SoundNet8(tiny)
    keys = []
    for k, v in ref.state_dict().items():
        layer, rest = k.split(".", 1)
        i = int(layer[-1])
        n = STAVIS_INDEX[i] + (1 if layer.startswith("batchnorm") else 0)
        shape = tuple(v.shape)
        if layer.startswith("conv") and rest == "weight":
            shape = shape[:2] + (shape[3], shape[2])
        keys.append((f"module.soundnet8.{n}.{rest}", shape))
    return _tensors(keys + [("module.conv1.weight", (64, 3, 7, 7, 7))], seed)


def test_stavis_soundnet_keys_are_transposed():
    sd = _stavis_soundnet(tiny=False)
    stavis = SPECS / "upstream_keys" / "stavis-av.json" if SPECS is not None else None
    if stavis is not None and stavis.is_file():  # our synthetic STAViS keys are those of the spec's key list
        with open(stavis) as f:
            theirs = {k["key"]: tuple(k["shape"]) for k in json.load(f)["keys"] if ".soundnet8." in k["key"]}
        assert theirs == {k: tuple(v.shape) for k, v in sd.items() if ".soundnet8." in k}
    out, report = convert_state_dict(sd, "vinet-soundnet-stavis", partial=True)
    assert report.unexpected == ["conv1.weight"] and not report.missing and len(report.mapped) == 7 * (2 + 5)
    assert torch.equal(out["conv1.weight"], sd["module.soundnet8.0.weight"].transpose(-1, -2))
    assert out["conv7.weight"].shape == (1024, 512, 4, 1)
    assert torch.equal(out["batchnorm4.running_var"], sd["module.soundnet8.12.running_var"])


def test_soundnet8_final_keys():
    keys = [(k[len("audionet."):], s) for k, s in _keys("avinet") if k.startswith("audionet.")]
    sd = _tensors(keys)
    out, report = convert_state_dict(sd, "vinet-soundnet")
    assert len(report.dropped) == 4 and len(report.mapped) == len(keys) - 4 and not report.missing
    assert torch.equal(out["conv2.weight"], sd["conv2.weight"])  # ViNet layout: not transposed


def test_init_from_files(tmp_path):
    torch.manual_seed(0)
    net = AViNet(tiny=True)
    s3d = _tensors(_kylemin_keys(tiny=True, with_counters=False), seed=2)
    torch.save(s3d, tmp_path / "S3D_kinetics400.pt")
    torch.save(_stavis_soundnet(tiny=True, seed=3), tmp_path / "stavis.pth")
    reports = init_from_files(net, s3d=tmp_path / "S3D_kinetics400.pt", soundnet=tmp_path / "stavis.pth")
    assert torch.equal(net.visual_model.backbone.base3[4].branch3[1].conv.weight,
                       s3d["module.base.12.branch3.1.conv.weight"])
    assert all(k.endswith("num_batches_tracked") for k in reports["s3d"].missing)
    assert reports["soundnet"].unexpected == ["conv1.weight"]
    vis = ViNet(tiny=True)
    torch.save(vis.state_dict(), tmp_path / "vinet.pt")
    init_from_files(net, visual=tmp_path / "vinet.pt")
    assert torch.equal(net.visual_model.decoder.convtsp4[8].weight, vis.decoder.convtsp4[8].weight)
    with pytest.raises(InputError, match="only applies to avinet"):
        init_from_files(vis, soundnet=tmp_path / "stavis.pth")
    torch.save({"fc.0.bias": torch.zeros(400)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="does not cover"):
        init_from_files(net, s3d=tmp_path / "other.pt")
