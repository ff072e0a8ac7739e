"""STAViS networks: parameter counts, upstream parity, conversion rules, B = 1, numerics of the DSAM pieces.

Parity fixtures: ``tests/data/stavis/`` (outputs of the unmodified upstream definitions for a synthetic
checkpoint and inputs regenerated from seeds by ``tests/stavis_reference.py``; regenerate them with
``tests/stavis_make_fixtures.py UPSTREAM_DIR``, see its docstring).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from avsal.models.checkpoints import CheckpointError, convert_state_dict
from avsal.models.stavis.networks import Stavis, centre_crop, spatial_softmax

sys.path.insert(0, str(Path(__file__).parent))
from stavis_reference import load_keys, load_reference, make_inputs, tensor_sha256, upstream_state_dict  # noqa: E402

NAMES = {"visual": "stavis-visual", "av": "stavis-av"}


def _convert(sd, name, partial=False):
    out, report = convert_state_dict(sd, name, partial=partial)
    return out, report.dropped, report.unexpected


@pytest.fixture(scope="module")
def upstream():
    torch.set_num_threads(1)
    return upstream_state_dict(), make_inputs()


def test_full_size_parameter_counts():
    with torch.device("meta"):
        av, vis = Stavis(variant="av"), Stavis(variant="visual")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    trunk = sum(count(getattr(av, n)) for n in ("conv1", "bn1", "layer1", "layer2", "layer3"))
    assert trunk == 17_078_464
    assert count(vis.dsam) == 616_916 and count(vis.fuse) == 65 and count(av.fuse_av) == 129
    assert count(av.soundnet) == 2_874_320 and count(av.av_fusion) == 1_245_504
    # upstream defines all modules in both variants (21,815,398); the av model leaves out the visual read-out,
    # the four side-output deconvolutions (16 + 64 + 256 + 1024) and the fourth attention score (17)
    unused = count(vis.fuse) + sum(count(d.score_upsample) for d in vis.dsam) + count(vis.dsam[3].score)
    assert unused == 65 + 1360 + 17
    assert count(av) == 21_813_956 and count(av) + unused == 21_815_398
    assert count(vis) == 17_695_445 == 17_078_464 + 616_916 + 65


@pytest.mark.parametrize("variant", ["visual", "av"])
def test_upstream_parity(variant, upstream):
    sd, (clip, audio) = upstream
    ref = load_reference(variant)
    assert tensor_sha256(clip, audio) == ref["meta"]["inputs_sha256"]  # inputs and weights regenerated exactly
    assert tensor_sha256(*sd.values()) == ref["meta"]["weights_sha256"]
    out, dropped, unexpected = _convert(sd, NAMES[variant])
    assert not unexpected
    net = Stavis(variant=variant)
    net.load_state_dict(out, strict=True)
    net.eval()
    with torch.no_grad():
        ours = net(clip, audio)
    assert len(ours) == len(ref["outputs"]) == (5 if variant == "visual" else 1)
    for a, b in zip(ours, ref["outputs"]):
        assert a.shape == b.shape == (2, 1, 112, 112)
        assert (a - b).abs().max() <= 1e-5
    if variant == "av":  # B = 1 works (upstream raises); equal to row 0 within the float32 noise floor
        assert "RuntimeError" in ref["meta"]["variants"]["av"]["batch1"]
        with torch.no_grad():
            one = net(clip[:1], audio[:1])[0]
        floor = ref["meta"]["variants"]["av"]["float64_max_abs_diff"]
        assert (one - ref["outputs"][0][:1]).abs().max() <= 3 * floor
        # the audio matters: another excerpt changes the output far beyond that
        with torch.no_grad():
            other = net(clip[:1], audio[1:])[0]
        assert (other - one).abs().max() > 100 * floor


def test_dropped_keys_are_exactly_the_other_variants_modules(upstream):
    sd, _ = upstream
    _, dropped, _ = _convert(sd, "stavis-av")
    assert sorted(dropped) == ["fuse.bias", "fuse.weight", "score_dsn.0.upscale_.weight",
                               "score_dsn.1.upscale_.weight", "score_dsn.2.upscale_.weight",
                               "score_dsn.3.score_dsn.bias", "score_dsn.3.score_dsn.weight",
                               "score_dsn.3.upscale_.weight"]
    _, dropped, _ = _convert(sd, "stavis-visual")
    assert {k.split(".")[0] for k in dropped} == {"fuseav", "soundnet8", "fusion3"}
    assert len(dropped) == 2 + 6 + 7 * 2 + 7 * 5  # fuseav, fusion3, 7 convs (w, b), 7 BatchNorms


def test_init_files_map_onto_the_trunk_and_soundnet():
    """``resnet-50-kinetics.pth`` (with layer4/fc, ``arch``) and ``soundnet8.pth`` as partial inits."""
    keys = dict(load_keys())
    kinetics = {k: torch.zeros(s) for k, s in keys.items() if k.split(".")[1] in ("conv1", "bn1")
                or k.split(".")[1].startswith("layer")}
    kinetics = {"arch": "resnet-50", "state_dict": kinetics}  # Hara et al.'s release format
    kinetics["state_dict"].update({"module.layer4.0.conv1.weight": torch.zeros(512, 1024, 1, 1, 1),
                     "module.fc.weight": torch.zeros(400, 2048), "module.fc.bias": torch.zeros(400)})
    out, dropped, unexpected = _convert(kinetics, "stavis-backbone", partial=True)
    target = Stavis(variant="visual").state_dict()
    assert not unexpected and sorted(dropped) == ["fc.bias", "fc.weight", "layer4.0.conv1.weight"]
    assert set(out) == {k for k in target if not k.startswith(("dsam", "fuse"))}
    assert all(out[k].shape == target[k].shape for k in out)
    sound = {k: torch.zeros(s) for k, s in keys.items() if ".soundnet8." in k}
    out, dropped, unexpected = _convert(sound, "soundnet8", partial=True)
    target = Stavis(variant="av").state_dict()
    assert not unexpected and not dropped
    assert set(out) == {k for k in target if k.startswith("soundnet.")}
    assert all(out[k].shape == target[k].shape for k in out)


def test_spatial_softmax_is_stable_and_equals_the_plain_formula():
    x = torch.randn(3, 1, 7, 9, dtype=torch.float64) * 5
    plain = torch.exp(x) / torch.exp(x).sum(dim=(2, 3), keepdim=True)
    assert torch.allclose(spatial_softmax(x), plain, rtol=1e-12, atol=0)
    big = x.float() + 200  # exp overflows in float32: upstream gives NaN, the shifted form does not
    assert torch.isnan(torch.exp(big) / torch.exp(big).sum(dim=(2, 3), keepdim=True)).any()
    assert torch.allclose(spatial_softmax(big), plain.float(), atol=1e-6)


def test_centre_crop_splits_odd_excess_like_upstream():
    x = torch.arange(11 * 11.0).view(1, 1, 11, 11)
    c = centre_crop(x, 8, 10)  # excess 3 rows: 1 top, 2 bottom; 1 column: 0 left, 1 right
    assert c.shape == (1, 1, 8, 10)
    assert c[0, 0, 0, 0] == x[0, 0, 1, 0] and c[0, 0, -1, -1] == x[0, 0, 8, 9]
    assert centre_crop(torch.ones(1, 1, 2, 2), 4, 4).sum() == 4  # smaller inputs are zero-padded


def test_tiny_networks_train_and_accept_other_sizes():
    torch.manual_seed(0)
    for variant, n_out in (("visual", 5), ("av", 1)):
        net = Stavis(variant=variant, tiny=True)
        out = net(torch.randn(2, 3, 16, 48, 64), torch.randn(2, 1, 1, 35280))
        assert [o.shape for o in out] == [(2, 1, 48, 64)] * n_out
        sum(o.mean() for o in out).backward()
        # every parameter is used (DistributedDataParallel needs it): the av model builds no unused layer
        assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="audio"):
        Stavis(variant="av", tiny=True)(torch.randn(1, 3, 16, 32, 32))
    with pytest.raises(ValueError, match="variant"):
        Stavis(variant="audio")


def test_upstream_initialisation():
    net = Stavis(variant="av", tiny=True)
    assert net.fuse_av.bias.item() == -6.0 and all(d.score.bias.item() == -6.0 for d in net.dsam[:3])
    assert net.dsam[3].score is None and all(d.score_upsample is None for d in net.dsam)
    w = Stavis(variant="visual", tiny=True).dsam[0].score_upsample.weight[0, 0]  # bilinear kernel 4×4
    assert torch.allclose(w[0], torch.tensor([0.0625, 0.1875, 0.1875, 0.0625]))


def test_upstream_checkpoint_format_and_errors(upstream, tmp_path):
    """The released files: ``{'epoch', 'arch', 'state_dict' (module.), four optimizer states}``; strict load
    through the registry; a wrong shape is named with both shapes."""
    from avsal.errors import InputError
    from avsal.models import create_model

    sd, (clip, audio) = upstream
    opt = {"state": {}, "param_groups": [{"lr": 0.001, "momentum": 0.9, "dampening": 0.9, "params": [0, 1]}]}
    ck = {"epoch": 61, "arch": "resnet-50", "state_dict": sd, "optimizer_global": opt, "optimizer_sal": opt,
          "optimizer_sound": opt, "optimizer_fusion": opt}
    path = tmp_path / "audiovisual_split1_save_60.pth"
    torch.save(ck, path)
    net = create_model("stavis-av", weights=str(path)).eval()
    with torch.no_grad():
        out = net(clip, audio)[0]
    assert (out - load_reference("av")["outputs"][0]).abs().max() <= 1e-5
    bad = dict(sd)
    bad["module.fusion3.affine_rgb.weight"] = torch.zeros(128, 256)
    torch.save({**ck, "state_dict": bad}, path)
    with pytest.raises(InputError, match=r"fusion3.affine_rgb.weight.*\(128, 256\).*\(128, 512\)"):
        create_model("stavis-av", weights=str(path))
    with pytest.raises(CheckpointError, match="lacks"):
        convert_state_dict({k: v for k, v in sd.items() if "layer3" not in k}, "stavis-visual")
