"""ViNet / AViNet networks: upstream parity, shapes, parameter counts, refusals."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import vinet_reference as ref
from avsal.models.vinet.networks import AViNet, ViNet, count_parameters

DATA = os.path.join(os.path.dirname(__file__), "data", "vinet")


def _network(name: str):
    cfg = ref.FIXTURES[name]
    return ViNet() if cfg is None else AViNet(**cfg)


@pytest.fixture(scope="module")
def upstream_case():
    """Synthetic weights for the union of the three networks, the inputs and the backbone taps (computed once)."""
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    clip, audio = ref.make_inputs()
    with torch.device("meta"):
        nets = {name: _network(name) for name in ref.FIXTURES}
    union = {k: tuple(v.shape) for k, v in nets["avinet-transformer"].state_dict().items()}
    sd = ref.make_state_dict(list(union.items()))
    for name, net in nets.items():
        prefix = "visual_model." if name == "vinet" else ""
        own = {k: sd[prefix + k] for k in net.state_dict()}
        net.load_state_dict(own, strict=True, assign=True)
        net.eval()
    with torch.no_grad():
        taps = nets["vinet"].backbone(clip)
    return nets, clip, audio, taps


@pytest.mark.parametrize("name", list(ref.FIXTURES))
def test_parity_with_upstream(name, upstream_case):
    """avsal's network = upstream's (samyak0210/ViNet model.py) to 1e-5 with the same synthetic weights.

    The backbone runs once (the three networks share its weights); each network then runs its own fusion
    and decoder, which is its ``forward`` (checked on the tiny networks below).
    """
    stored = np.load(os.path.join(DATA, f"ref_{name}.npz"))
    nets, clip, audio, (y0, y1, y2, y3) = upstream_case
    net = nets[name]
    assert float(clip.double().sum() + audio.double().sum()) == pytest.approx(float(stored["input_checksum"]),
                                                                               rel=0, abs=1e-6)
    sd = net.state_dict()
    assert len(sd) == int(stored["n_keys"])
    checksum = float(sum(v.double().sum() for v in sd.values() if v.is_floating_point()))
    assert checksum == pytest.approx(float(stored["weights_checksum"]), rel=1e-12)
    with torch.no_grad():
        if name == "vinet":
            out = net.decoder(y0, y1, y2, y3)
        else:
            out = net.visual_model.decoder(net.fuse(y0, audio), y1, y2, y3)
    expected = stored["output"]
    assert out.shape == expected.shape == (1, 224, 384)
    assert 0.05 < expected.min() and expected.max() < 0.95 and expected.std() > 0.01  # unsaturated, not flat
    assert np.abs(out.numpy() - expected).max() <= 1e-5


@pytest.mark.parametrize("name,params,n_keys", [
    ("vinet", 31_099_585, 470), ("avinet", 34_016_577, 521), ("avinet-transformer", 36_125_377, 562)])
def test_parameter_counts_and_upstream_keys(name, params, n_keys):
    """Counts of docs/vinet.md; the keys are upstream's (key lists of the spec) less SoundNet's conv8_*."""
    with torch.device("meta"):
        net = _network(name)
    sd = net.state_dict()
    assert count_parameters(net) == params
    assert len(sd) == n_keys
    if name in ("vinet", "avinet"):
        with open(os.path.join(DATA, f"keys_{name}.json")) as f:
            keys = json.load(f)["keys"]
        conv8 = [k for k in keys if k["key"].startswith("audionet.conv8_")]
        assert sum(int(np.prod(k["shape"])) for k in conv8) == (11_478_393 if name == "avinet" else 0)
        assert params + sum(int(np.prod(k["shape"])) for k in conv8) == {"vinet": 31_099_585,
                                                                         "avinet": 45_494_970}[name]
        assert [(k["key"], tuple(k["shape"])) for k in keys if k not in conv8] == \
            [(k, tuple(v.shape)) for k, v in sd.items()]


def test_tiny_forward_is_backbone_fuse_decoder_and_audio_matters():
    """Tiny AViNet: tap shapes, forward = backbone → fuse → decoder, and the audio changes the map."""
    with torch.device("meta"):
        net = AViNet(tiny=True)
    sd = ref.make_state_dict([(k, v.shape) for k, v in net.state_dict().items()], seed=3)
    net.load_state_dict(sd, assign=True)
    net.eval()
    clip, audio = ref.make_inputs(seed=4)
    taps = []
    net.visual_model.backbone.register_forward_hook(lambda m, i, o: taps.append(o))
    with torch.no_grad():
        out = net(clip, audio)
        y0, y1, y2, y3 = taps[0]
        composed = net.visual_model.decoder(net.fuse(y0, audio), y1, y2, y3)
        other_audio = net.visual_model.decoder(net.fuse(y0, audio.flip(2) * 3), y1, y2, y3)
        visual_only = net.visual_model.decoder(y0, y1, y2, y3)
    assert [tuple(t.shape[2:]) for t in (y0, y1, y2, y3)] == [(4, 7, 12), (8, 14, 24), (16, 28, 48), (16, 56, 96)]
    assert [t.shape[1] for t in (y0, y1, y2, y3)] == [128, 104, 60, 24]
    assert out.shape == (1, 224, 384)
    assert torch.equal(out, composed)
    assert float(out.min()) > 0 and float(out.max()) < 1
    assert float((out - other_audio).abs().max()) > 1e-4
    assert float((out - visual_only).abs().max()) > 1e-4


def test_tiny_vinet_other_sizes():
    """ViNet (no fusion) runs at any size that is a multiple of 32 px; the map has the input size."""
    net = ViNet(tiny=True).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 32, 64, 96))
    assert out.shape == (2, 64, 96)
    assert float(out.min()) > 0 and float(out.max()) < 1


@pytest.mark.parametrize("t", [16, 31, 33])
def test_other_clip_lengths_are_refused(t):
    with torch.device("meta"):
        net = ViNet()
        av = AViNet()
    x = torch.empty(1, 3, t, 224, 384, device="meta")
    with pytest.raises(ValueError, match="32 frames"):
        net(x)
    with pytest.raises(ValueError, match="32 frames"):
        av(x, torch.empty(1, 1, 70560, 1, device="meta"))


def test_bad_sizes_are_refused():
    with torch.device("meta"):
        net = ViNet()
        av = AViNet()
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.empty(1, 3, 32, 200, 384, device="meta"))
    with pytest.raises(ValueError, match="224×384"):
        av(torch.empty(1, 3, 32, 256, 384, device="meta"), torch.empty(1, 1, 70560, 1, device="meta"))
    with pytest.raises(ValueError, match="70560"):
        av(torch.empty(1, 3, 32, 224, 384, device="meta"), torch.empty(1, 1, 35280, 1, device="meta"))
