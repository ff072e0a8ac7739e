"""STANet networks: shapes, parameter counts, upstream parity, switches, checkpoint conversion, loading."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avsal.cli import main
from avsal.errors import InputError
from avsal.models import create_model
from avsal.models.checkpoints import CheckpointError, read_checkpoint, read_sidecar, unwrap_state_dict
from avsal.models.checkpoints import convert_state_dict as convert_upstream_state_dict
from avsal.models.stanet import SANet, SNet, STANet, STNet
from avsal.models.stanet.convert import CONVERSIONS
from avsal.models.stanet.layers import stack_frames

sys.path.insert(0, str(Path(__file__).parent))
from stanet_reference import INPUT_NAMES, OUTPUT_NAMES, load_keys, make_upstream_state_dict  # noqa: E402

DATA = Path(__file__).parent / "data" / "stanet"
CLASSES = {"stanet-s": SNet, "stanet-sa": SANet, "stanet-st": STNet, "stanet-sta": STANet}


def _run(net, name, frames, audio):
    """frames [B, 3, 3, H, W] (t, t-1, t+1), audio [B, 3, 81, 199]."""
    if name == "stanet-s":
        return net(frames[:, 0])
    if name == "stanet-sa":
        return net(frames[:, 0], audio[:, 0])
    if name == "stanet-st":
        return net(frames)
    return net(frames, audio)


@pytest.mark.parametrize("name,count", [("stanet-s", 58_033_344), ("stanet-sa", 212_823_625),
                                        ("stanet-st", 200_089_188), ("stanet-sta", 99_715_827)])
def test_full_size_parameter_counts(name, count):
    with torch.device("meta"):
        net = CLASSES[name]()
    assert sum(p.numel() for p in net.parameters()) == count


@pytest.mark.parametrize("size,cells", [(256, (32, 16, 8)), (356, (45, 23, 12))])
def test_full_size_shapes(size, cells):
    """Full-size networks at 256² and 356² (shape propagation on the meta device)."""
    with torch.device("meta"):
        frames, audio = torch.empty(2, 3, 3, size, size), torch.empty(2, 3, 81, 199)
        s = SNet()(frames[:, 0])
        assert [tuple(o.shape) for o in s] == [(2, 28), (2, 28), (2, 28, cells[1], cells[1]), (2, 28, cells[1], cells[1])]
        sa = SANet()(frames[:, 0], audio[:, 0])
        assert tuple(sa[2].shape) == (2, 28, cells[2], cells[2])
        st = STNet()(frames)  # upstream ST only runs at 256²; ours at any size
        assert len(st) == 8 and tuple(st[7].shape) == (2, 28, cells[2], cells[2])
        sta = STANet()
        out = sta(frames, audio)
        assert len(out) == 6 and all(tuple(o.shape) == (2, 1, size, size) for o in out)
        f = sta.encode(frames[:, 0], audio[:, 0])
        assert [tuple(t.shape[2:]) for t in (f.s0, f.s1, f.x, f.av)] == [(c, c) for c in cells] + [(cells[2],) * 2]


@pytest.mark.parametrize("name", list(CLASSES))
def test_upstream_parity(name):
    """Same weights, same inputs: our outputs equal the upstream definitions' (fixtures in tests/data/stanet)."""
    keys = load_keys(name)
    sd, report = convert_upstream_state_dict(make_upstream_state_dict(keys, 0), name)
    assert not report.unexpected and len(report.mapped) + len(report.dropped) == len(keys)
    net = CLASSES[name]()
    net.load_state_dict(sd, strict=True)
    net.eval()
    ref = np.load(DATA / f"ref_{name}.npz")
    ins = [torch.from_numpy(ref[k]) for k in INPUT_NAMES[name]]
    with torch.no_grad():
        if name == "stanet-st":
            out = net(torch.stack(ins, 1))
        elif name == "stanet-sta":
            out = net(torch.stack(ins[:3], 1), torch.stack(ins[3:], 1))
        else:
            out = net(*ins)
    assert len(out) == len(OUTPUT_NAMES[name])
    for o, k in zip(out, OUTPUT_NAMES[name]):
        diff = (o - torch.from_numpy(ref[k])).abs().max().item()
        assert diff <= 1e-5, f"{name} {k}: max |Δ| {diff:.2e}"


def test_dropped_keys_are_exactly_the_unused_modules():
    sd, report = convert_upstream_state_dict({k: torch.empty(s, device="meta") for k, s in load_keys("stanet-sta")},
                                             "stanet-sta")
    mods = sorted({k.split(".")[0] for k in report.dropped})
    assert mods == ["extra_audio_d", "extra_conv_stafusion", "extra_gate", "extra_refineSA"]
    params = [v for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert sum(v.numel() for v in params) == 99_715_827


def _tiny(name, **cfg):
    torch.manual_seed(0)
    return CLASSES[name](tiny=True, **cfg).eval()


def _to_upstream(sd: dict, name: str) -> dict:
    """Our names back to upstream's (inverse of the conversion rules), with ``module.`` as DataParallel saves."""
    out = {}
    for k, v in sd.items():
        for pat, rep in CONVERSIONS[name].rename:
            up = pat.replace("\\.", ".")
            ours = rep
            if k.startswith(ours) and "(" not in pat:
                out["module." + up + k[len(ours):]] = v
                break
        else:
            raise AssertionError(f"no rule for {k}")
    return out


@pytest.mark.parametrize("name", list(CLASSES))
def test_tiny_round_trip_through_upstream_names(name, tmp_path):
    net = _tiny(name)
    up = _to_upstream(net.state_dict(), name)
    up["module.extra_audio_d.weight"] = torch.zeros(3, 3)  # a dropped module, if this network has one
    path = tmp_path / "up.pth"
    torch.save({"epoch": 3, "state_dict": up}, path)  # nested, as upstream save_checkpoint writes it
    sd, report = convert_upstream_state_dict(read_checkpoint(path), name, {"tiny": True})
    if CONVERSIONS[name].dropped:
        assert report.dropped == ["extra_audio_d.weight"] and not report.unexpected
    else:
        assert report.unexpected == ["extra_audio_d.weight"]
    other = CLASSES[name](tiny=True).eval()
    other.load_state_dict(sd, strict=True)
    frames, audio = torch.randn(2, 3, 3, 64, 64), torch.randn(2, 3, 81, 199)
    with torch.no_grad():
        for a, b in zip(_run(net, name, frames, audio), _run(other, name, frames, audio)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_conversion_errors_name_the_key_and_shapes():
    sd = _to_upstream(_tiny("stanet-sta").state_dict(), "stanet-sta")
    bad = dict(sd)
    bad["module.extra_out0.weight"] = torch.zeros(1, 7, 1, 1)
    with pytest.raises(CheckpointError, match=r"extra_out0.weight.*\(1, 7, 1, 1\).*\(1, 32, 1, 1\)"):
        convert_upstream_state_dict(bad, "stanet-sta", {"tiny": True})
    missing = {k: v for k, v in sd.items() if "extra_refine1" not in k}
    with pytest.raises(CheckpointError, match="refine1.weight"):
        convert_upstream_state_dict(missing, "stanet-sta", {"tiny": True})
    with pytest.raises(CheckpointError, match="unknown model"):
        convert_upstream_state_dict(sd, "stanet-x")
    with pytest.raises(CheckpointError, match="no state_dict"):
        unwrap_state_dict({"epoch": 1})


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"args": argparse.Namespace(lr=1.0), "state_dict": {"w": torch.zeros(1)}}, path)
    with pytest.raises(InputError, match="never executes pickled code"):
        read_checkpoint(path)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(InputError, match="junk.pth"):
        read_checkpoint(tmp_path / "junk.pth")


def test_backbone_and_audio_checkpoints():
    from avsal.models.backbones import AudioResNet, resnext101_32x8d

    tv = resnext101_32x8d(tiny=True, num_classes=10).state_dict()  # torchvision layout, with fc
    sd, rep = convert_upstream_state_dict(tv, "backbone", {"tiny": True})
    assert sorted(rep.dropped) == ["fc.bias", "fc.weight"] and len(sd) == len(tv) - 2
    vgg = {"audnet." + k: v for k, v in AudioResNet(tiny=True).state_dict().items()}
    sd, rep = convert_upstream_state_dict({"model_state_dict": vgg}, "audio", {"tiny": True})
    assert sorted(rep.dropped) == ["audnet.fc_.bias", "audnet.fc_.weight"] and "avgpool.centroids" in sd
    with torch.device("meta"):
        full = resnext101_32x8d()  # the torchvision resnext101_32x8d: 88,791,336 parameters
    assert sum(p.numel() for p in full.parameters()) == 88_791_336


def test_temporal_stack_switch():
    a, b, c = (torch.randn(2, 4, 3, 5) for _ in range(3))
    up = stack_frames(a, b, c, "upstream")
    torch.testing.assert_close(up, torch.cat([a[:, None], b[:, None], c[:, None]], 1).view(2, 4, 3, 3, 5))
    torch.testing.assert_close(stack_frames(a, b, c, "permute")[:, :, 1], b)
    assert not torch.equal(up, stack_frames(a, b, c, "permute"))
    with pytest.raises(ValueError):
        STANet(tiny=True, temporal_stack="bogus")
    torch.manual_seed(0)
    net = _tiny("stanet-sta")
    with torch.no_grad():  # heads large enough that the ST mask matters
        for m in net.head_modules():
            for p in m.parameters():
                p.normal_(0, 0.2)
    other = STANet(tiny=True, temporal_stack="permute").eval()
    other.load_state_dict(net.state_dict())
    frames, audio = torch.randn(1, 3, 3, 64, 64), torch.randn(1, 3, 81, 199)
    with torch.no_grad():
        assert (net(frames, audio)[1] - other(frames, audio)[1]).abs().max() > 1e-3


def test_head_init_before_backbone():
    net = STANet(tiny=True)
    w = net.refine1.weight
    assert abs(w.std().item() - 0.01) < 0.003 and net.refine1.bias is not None
    # the backbone keeps torchvision's Kaiming (fan-out) initialisation, not N(0, 0.01)
    assert net.backbone.conv1.weight.std().item() == pytest.approx((2 / (8 * 49)) ** 0.5, rel=0.15)


def test_training_mode_and_backward():
    net = STANet(tiny=True).train()
    frames, audio = torch.randn(2, 3, 3, 64, 64), torch.randn(2, 3, 81, 199)
    out = net(frames, audio)
    sum(o.mean() for o in out).backward()
    assert net.out0.weight.grad is not None and net.backbone.conv1.weight.grad is not None


def test_safetensors_round_trip_and_cli(tmp_path, capsys):
    net = _tiny("stanet-sta")
    up = tmp_path / "sta_upstream.pth"
    torch.save(_to_upstream(net.state_dict(), "stanet-sta"), up)
    out = tmp_path / "sta.safetensors"
    assert main(["convert-weights", "--model", "stanet-sta", str(up), str(out), "--set", "tiny=true"]) == 0
    assert "mapped" in capsys.readouterr().out
    meta = read_sidecar(out)
    assert meta["model"] == "stanet-sta" and meta["config"] == {"tiny": True}
    assert len(meta["provenance"]["source_sha256"]) == 64
    loaded = create_model("stanet-sta", weights=str(out)).eval()
    frames, audio = torch.randn(1, 3, 3, 64, 64), torch.randn(1, 3, 81, 199)
    with torch.no_grad():
        torch.testing.assert_close(loaded(frames, audio)[1], net(frames, audio)[1], rtol=0, atol=0)
    loaded_up = create_model("stanet-sta", weights=str(up), tiny=True).eval()  # .pth through the converter
    with torch.no_grad():
        torch.testing.assert_close(loaded_up(frames, audio)[1], net(frames, audio)[1], rtol=0, atol=0)
    with pytest.raises(InputError, match="holds weights for stanet-sta"):
        create_model("stanet-s", weights=str(out))
    assert main(["convert-weights", "--model", "stanet-s", str(up), str(tmp_path / "x.safetensors")]) == 2
    assert "stanet-s" in capsys.readouterr().err
