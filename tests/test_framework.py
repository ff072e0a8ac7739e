"""The model framework: registry discovery, the one conversion engine, the inference contract's driver,
and splitting `avsal predict` across processes (--shard, torchrun)."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from avsal.cli import main
from avsal.io.video import Frame
from avsal.models import create_video_model, list_models
from avsal.models.base import AudioSpec, ClipSpec, clip_positions, run_clips
from avsal.models.checkpoints import (CheckpointError, ConversionRules, convert_state_dict, load_network,
                                      unwrap_state_dict)
from avsal.models.registry import _REGISTRY, get_entry, register_model
from avsal.predict import output_names, select_shard
from avsal.synth import write_clip

from conftest import gradient_frame, tone


# ---------------------------------------------------------------------------------------------- registry

def test_families_register_themselves():
    names = {e.name: e for e in list_models()}
    assert {"classic-av", "stanet-sta", "stanet-s", "stanet-sa", "stanet-st", "stanet-backbone",
            "stanet-audio"} <= set(names)
    assert names["classic-av"].family == "avsal.models.classic"
    assert names["stanet-sta"].family == "avsal.models.stanet"
    assert names["stanet-sta"].video_factory is not None and names["stanet-s"].video_factory is None
    assert get_entry("backbone").name == "stanet-backbone" and get_entry("audio").name == "stanet-audio"
    with pytest.raises(KeyError, match="available: .*classic-av"):
        get_entry("no-such-model")
    with pytest.raises(ValueError, match="already registered"):
        register_model("classic-av", factory=lambda weights=None: None, needs_weights=False, description="x")


def test_listing_and_classic_do_not_import_torch():
    code = ("import sys; from avsal.models import list_models, create_video_model; "
            "n = len(list_models()); m = create_video_model('classic-av'); "
            "print(n, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n, imported = r.stdout.split()
    assert int(n) >= 7 and imported == "False"


def test_models_cli_lists_every_family(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "stanet-sta" in out and "[predict, convertible]" in out and "classic-av" in out


# ---------------------------------------------------------------------------------------------- conversion

class _Toy(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(1, width, (1, 3))
        self.head = nn.Linear(width, 2)


@pytest.fixture
def toy_family():
    rules = ConversionRules(rename=((r"features\.0\.", "conv."), (r"classifier\.", "head.")),
                            dropped=(r"unused\.",), transforms=((r"^conv\.weight$", lambda w: w.transpose(-1, -2)),),
                            network=_Toy, source="toy upstream")
    register_model("toy-test", factory=lambda weights=None, **cfg: load_network("toy-test", _Toy, weights, cfg),
                   needs_weights=True, description="toy", conversion=rules)
    yield rules
    _REGISTRY.entries.pop("toy-test")


def _upstream_toy(width=4):
    g = torch.Generator().manual_seed(0)
    return {"module.features.0.weight": torch.randn(width, 1, 3, 1, generator=g),  # (k, 1) layout upstream
            "module.features.0.bias": torch.randn(width, generator=g),
            "module.classifier.weight": torch.randn(2, width, generator=g),
            "module.classifier.bias": torch.randn(2, generator=g),
            "module.unused.weight": torch.zeros(3), "module.extra_thing": torch.zeros(1)}


def test_engine_unwraps_renames_transforms_and_reports(toy_family):
    up = _upstream_toy()
    ckpt = {"arch": "toy", "epoch": 60, "state_dict": up, "optimizer": {"state": {}, "param_groups": []}}
    sd, rep = convert_state_dict(ckpt, "toy-test")
    assert set(sd) == {"conv.weight", "conv.bias", "head.weight", "head.bias"}
    assert torch.equal(sd["conv.weight"], up["module.features.0.weight"].transpose(-1, -2))
    assert rep.dropped == ["unused.weight"] and rep.unexpected == ["extra_thing"] and not rep.missing
    net = _Toy()
    net.load_state_dict(sd, strict=True)


def test_engine_names_missing_and_mismatched_keys(toy_family):
    up = _upstream_toy()
    del up["module.classifier.bias"]
    with pytest.raises(CheckpointError, match="lacks 1 keys .*head.bias") as e:
        convert_state_dict(up, "toy-test")
    assert e.value.report.missing == ["head.bias"]
    sd, rep = convert_state_dict(up, "toy-test", partial=True)
    assert rep.missing == ["head.bias"] and "head.bias" not in sd
    bad = _upstream_toy(width=5)
    with pytest.raises(CheckpointError, match=r"shape mismatch .*features.0.weight.*\(5, 1, 1, 3\).*\(4, 1, 1, 3\)"):
        convert_state_dict(bad, "toy-test")
    with pytest.raises(CheckpointError, match="unknown model .*convertible: .*stanet-sta"):
        convert_state_dict(up, "classic-av")
    with pytest.raises(CheckpointError, match="no state_dict"):
        unwrap_state_dict({"epoch": 3, "arch": "x"})


def test_convert_weights_cli_works_for_any_registered_family(toy_family, tmp_path, capsys):
    src = tmp_path / "toy.pth"
    torch.save({"state_dict": _upstream_toy()}, src)
    out = tmp_path / "toy.safetensors"
    assert main(["convert-weights", "--model", "toy-test", str(src), str(out)]) == 0
    assert "4 tensors mapped, 1 dropped" in capsys.readouterr().out
    net = get_entry("toy-test").factory(weights=str(out))
    ref = convert_state_dict(_upstream_toy(), "toy-test")[0]
    assert all(torch.equal(net.state_dict()[k], ref[k]) for k in ref)
    net2 = get_entry("toy-test").factory(weights=str(src))  # the upstream file itself loads too
    assert torch.equal(net2.head.weight, net.head.weight)
    assert main(["convert-weights", "--model", "classic-av", str(src), str(tmp_path / "x.safetensors")]) == 2
    assert "convertible" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- clip driver

class _ProbeModel:
    """A clip model whose map encodes the decoded indices of its clip (to check the driver)."""

    name = "probe"
    config = None
    audio = None

    def __init__(self, spec: ClipSpec, batch_size: int = 3):
        self.clip, self.batch_size = spec, batch_size
        self.encoded: list[int] = []
        self.decode_sizes: list[int] = []

    def encode(self, frames, audio):
        assert len(frames) <= self.batch_size
        self.encoded += [f.index for f in frames]
        return [f.index * 10 for f in frames]

    def decode(self, clips, audio, frame_hw):
        self.decode_sizes.append(len(clips))
        for c in clips:
            assert [it.data for it in c] == [it.index * 10 for it in c]
        return np.array([[[it.index for it in c]] for c in clips], np.float32)


def _frames(n, selected=None):
    sel = set(range(n)) if selected is None else set(selected)
    return [Frame(i, i / 25, np.zeros((4, 6, 3), np.uint8), selected=i in sel) for i in range(n)]


@pytest.mark.parametrize("edge", ["replicate", "shift", "flip"])
@pytest.mark.parametrize("length,anchor", [(3, 1), (16, 8), (32, 31), (1, 0)])
def test_clip_positions_rules(edge, length, anchor):
    spec = ClipSpec(length, anchor, edge=edge)
    n = 40
    for p in range(n):
        pos = clip_positions(p, spec, n)
        assert len(pos) == length and all(0 <= q < n for q in pos)
        if anchor <= p < n - (length - 1 - anchor):  # interior: the plain window, whatever the rule
            assert pos == list(range(p - anchor, p - anchor + length))
        elif edge == "shift":
            assert pos == sorted(set(pos)) and len(set(pos)) == length
        elif edge == "flip" and p < anchor:
            assert pos[-1] == p
            if p + length - 1 < n:
                assert pos == list(range(p + length - 1, p - 1, -1))
        elif edge == "replicate":
            assert pos[anchor] == p
    short = clip_positions(2, spec, 5)  # shorter than T: replicate
    assert short == [min(max(q, 0), 4) for q in range(2 - anchor, 2 - anchor + length)]


@pytest.mark.parametrize("edge", ["replicate", "shift", "flip"])
@pytest.mark.parametrize("source", ["decoded", "sampled"])
def test_run_clips_equals_direct_positions(edge, source):
    spec = ClipSpec(16, 8, source=source, edge=edge)
    sel = list(range(0, 50, 7))
    model = _ProbeModel(spec, batch_size=3)
    preds = list(run_clips(model, iter(_frames(50, sel))))
    assert [p.index for p in preds] == sel
    seq = list(range(50)) if source == "decoded" else sel
    for k, p in enumerate(preds):
        pos = clip_positions(seq.index(p.index), spec, len(seq))
        assert p.saliency[0].tolist() == [seq[q] for q in pos]
    assert max(model.decode_sizes) <= 3 and sum(model.decode_sizes) == len(sel)
    assert len(model.encoded) == len(set(model.encoded))  # every frame encoded at most once


def test_sparse_sampling_encodes_only_what_clips_need():
    model = _ProbeModel(ClipSpec(32, 31, edge="flip"), batch_size=4)
    preds = list(run_clips(model, iter(_frames(438, range(0, 438, 100)))))
    assert [p.index for p in preds] == [0, 100, 200, 300, 400]
    assert len(model.encoded) == 5 * 32  # 5 clips, not 438 frames
    assert preds[0].saliency[0].tolist() == list(range(31, -1, -1))  # the time-flipped first clip


def test_driver_memory_is_bounded():
    model = _ProbeModel(ClipSpec(16, 8, edge="shift"), batch_size=2)
    seen = []

    def frames():
        for f in _frames(300):
            seen.append(f.index)
            yield f
    kept = 0
    gen = run_clips(model, frames())
    for p in gen:
        kept = max(kept, seen[-1] - p.index)
    assert kept <= 16 + 2  # look-ahead of the clip + one batch


def test_stream_model_and_clip_model_declare_audio():
    m = create_video_model("classic-av")
    assert m.clip is None and m.audio == AudioSpec(16000, "ffmpeg")


# ---------------------------------------------------------------------------------------------- sharding

def test_shards_and_ranks_cover_inputs_once():
    paths = [f"v{i:02d}.mp4" for i in range(23)]
    got = []
    for k in range(3):
        for r in range(2):
            got += select_shard(paths, (k, 3), r, 2)
    assert sorted(got) == paths


def test_output_names_unique_for_clashing_file_names():
    names = output_names(["d1/clip.mp4", "d2/clip.mp4", "d1/clip.mkv", "other.mp4"])
    assert len(set(names.values())) == 4 and names["other.mp4"] == "other"
    assert names["d1/clip.mkv"] == "clip_mkv" and names["d1/clip.mp4"].startswith("clip_mp4-")
    assert output_names(["d1/clip.mp4", "d2/clip.mp4"])["d1/clip.mp4"] == names["d1/clip.mp4"]


@pytest.fixture(scope="module")
def three_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("three")
    for i in range(3):
        write_clip(d / f"c{i}.mp4", lambda j, i=i: gradient_frame(j + 5 * i, 48, 64), 12, 12,
                   tone(1.0, 16000, freq=300 + 100 * i), 16000)
    return d


def _maps(root):
    out = {}
    for name in sorted(os.listdir(root)):
        with h5py.File(root / name / "saliency.h5") as f:
            out[name] = f["saliency"][:]
    return out


def test_shard_option_and_torchrun_give_single_process_outputs(three_clips, tmp_path):
    assert main(["predict", str(three_clips), "--out", str(tmp_path / "single"), "--no-overlay", "--quiet"]) == 0
    ref = _maps(tmp_path / "single")
    for k in range(2):
        assert main(["predict", str(three_clips), "--out", str(tmp_path / "shard"), "--no-overlay", "--quiet",
                     "--shard", f"{k}/2"]) == 0
    got = _maps(tmp_path / "shard")
    assert set(got) == set(ref) and all(np.array_equal(got[k], ref[k]) for k in ref)
    assert main(["predict", str(three_clips), "--out", str(tmp_path / "x"), "--shard", "2/2"]) == 2
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "avsal.cli", "predict", str(three_clips), "--out", str(tmp_path / "ddp"),
                        "--no-overlay", "--quiet"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    got = _maps(tmp_path / "ddp")
    assert set(got) == set(ref) and all(np.array_equal(got[k], ref[k]) for k in ref)
    assert r.stderr.count("1 done") + r.stderr.count("2 done") == 2  # each rank did its share


def test_map_frames_keeps_order_and_uses_threads():
    import threading
    import time

    from avsal.models.base import map_frames

    main = threading.get_ident()
    seen = []

    def work(i):
        seen.append(threading.get_ident())
        time.sleep(0.002 * (i % 3))  # finishing out of order must not reorder the results
        return i * i

    assert map_frames(work, list(range(24)), workers=4) == [i * i for i in range(24)]
    assert main not in seen and len(set(seen)) > 1
    seen.clear()
    assert map_frames(work, [1, 2, 3], workers=1) == [1, 4, 9] and set(seen) == {main}
