"""ViNet / AViNet video inference: preprocessing, clips and edge rules, audio buffers, post-processing."""

from __future__ import annotations

import os
import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from avsal.io.audio import AudioTrack
from avsal.io.video import Frame
from avsal.models.base import run_clips
from avsal.models.registry import create_video_model
from avsal.models.vinet.audio import AudioTooLongWarning, clip_audio
from avsal.models.vinet.networks import AViNet, ViNetConfig
from avsal.models.vinet.predictor import ViNetVideoModel, postprocess, preprocess


class RecordingAViNet(AViNet):
    """Stands in for AViNet: records the clips and audio it is given, returns a constant map."""

    def __init__(self):
        nn.Module.__init__(self)
        self.config = ViNetConfig(tiny=True)
        self.calls: list[tuple[list[list[int]], np.ndarray]] = []

    def forward(self, x, audio):
        self.calls.append((_clip_ids(x), audio[:, 0, :, 0].numpy().copy()))
        out = torch.full((x.shape[0], 224, 384), 0.5)
        out[:, :10, :10] = 0.9
        return out


def _frames(n: int, h: int = 36, w: int = 48, selected=None) -> list[Frame]:
    return [Frame(i, i / 25.0, np.full((h, w, 3), i, np.uint8), selected=selected is None or i in selected)
            for i in range(n)]


def _clip_ids(x: torch.Tensor) -> list[list[int]]:
    """Frame indices of clips ``[N, 3, 32, H, W]`` (frame i is uniform grey i; channel 0 at one pixel)."""
    v = x[:, 0, :, 0, 0].numpy() * 0.229 + 0.485
    return np.rint(v * 255).astype(int).tolist()


def _run(n: int, selected=None, audio: AudioTrack | None = None):
    """Predictions, and per output frame index its clip's frame indices and audio buffer."""
    net = RecordingAViNet()
    model = ViNetVideoModel(net, batch_size=4)
    preds = list(run_clips(model, _frames(n, selected=selected), audio))
    ids = [i for x, _ in net.calls for i in x]
    auds = [a for _, aa in net.calls for a in aa]
    return preds, dict(zip((p.index for p in preds), ids)), dict(zip((p.index for p in preds), auds))


def test_preprocess_is_pil_bilinear():
    rgb = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    x = preprocess(rgb)
    assert x.shape == (3, 224, 384) and x.dtype == torch.float32
    pil = np.asarray(Image.fromarray(rgb).resize((384, 224), Image.BILINEAR), np.float32) / 255.0
    ref = (pil - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    assert np.abs(x.numpy().transpose(1, 2, 0) - ref).max() < 1e-6
    cv = cv2.resize(rgb, (384, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    assert np.abs(pil - cv).max() > 0.1  # the filter matters when shrinking


def test_postprocess_resize_blur_minmax():
    sal = np.random.default_rng(1).random((224, 384)).astype(np.float32)
    out = postprocess(sal, (360, 640))
    assert out.shape == (360, 640) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == pytest.approx(1.0)
    m = cv2.GaussianBlur(cv2.resize(sal, (640, 360)), (11, 11), 2.0)
    assert np.abs(out - (m - m.min()) / (m.max() - m.min())).max() < 1e-5
    flat = postprocess(np.full((224, 384), 0.3, np.float32), (10, 20))
    assert np.all(flat == 0)


def test_clips_last_frame_and_flipped_start():
    chosen = {0, 1, 17, 30, 31, 32, 50, 69}
    preds, ids, auds = _run(70, chosen)
    assert [p.index for p in preds] == sorted(chosen)
    for p in chosen:
        expect = list(range(p + 31, p - 1, -1)) if p < 31 else list(range(p - 31, p + 1))
        assert ids[p] == expect, p
    # no soundtrack: silence
    assert all(not a.any() for a in auds.values())
    assert preds[0].saliency.shape == (36, 48) and preds[0].saliency.max() == pytest.approx(1.0)


def test_short_videos_get_every_frame():
    _, ids, _ = _run(40, {20, 35})
    assert ids[20] == [min(q, 39) for q in range(51, 19, -1)]  # reversed window completed by the last frame
    assert ids[35] == list(range(4, 36))
    preds, ids, _ = _run(10)
    assert len(preds) == 10
    assert ids[5] == [0] * 26 + list(range(6))  # fewer than 32 frames: the first frame repeated


def test_every_n_encodes_only_needed_frames(monkeypatch):
    encoded = []
    orig = ViNetVideoModel.encode
    monkeypatch.setattr(ViNetVideoModel, "encode", lambda self, fr, a: encoded.extend(f.index for f in fr)
                        or orig(self, fr, a))
    preds, ids, _ = _run(200, {0, 100})
    assert [p.index for p in preds] == [0, 100]
    assert list(ids.values()) == [list(range(31, -1, -1)), list(range(69, 101))]
    assert sorted(encoded) == sorted(set(range(32)) | set(range(69, 101)))


def test_audio_buffers_and_flip():
    rate = 22050
    t = np.arange(int(rate * 4)) / rate
    track = AudioTrack(samples=(0.5 * np.sin(2 * np.pi * 220 * t) * (1 + t)).astype(np.float32), sample_rate=rate)
    _, ids, auds = _run(70, {0, 5, 31, 36, 40}, audio=track)
    # frames 0..31 at 25 fps: hw = 441, start 0, end int(31 * 882 + 441) = 27783 → 27784 samples at 35280 − 13892
    b = auds[31]
    x = track.samples[:27784].astype(np.float64) * 256 * np.hanning(27784)
    assert np.abs(b[21388:21388 + 27784] - x).max() < 1e-3
    assert not b[:21388].any() and not b[21388 + 27784:].any()
    assert np.array_equal(auds[0], auds[31][::-1])  # the flipped clip of frame 0 = frames 0..31, reversed audio
    assert np.array_equal(auds[5], auds[36][::-1])
    # frame 40: frames 9..40 → start int(9 * 882 − 441) = 7497
    b = auds[40]
    n = int(40 * 882 + 441) - 7497 + 1
    lo = 35280 - n // 2
    assert np.abs(b[lo:lo + n] - track.samples[7497:7497 + n] * 256 * np.hanning(n)).max() < 1e-3


def test_too_long_audio_is_resampled_with_a_warning():
    track = AudioTrack(samples=np.ones(48000 * 3, np.float32), sample_rate=48000)
    with pytest.warns(AudioTooLongWarning, match="resampled"):
        b = clip_audio(track, np.arange(32) / 20.0)
    assert b.shape == (70560,) and b[1000] > 0 and b[35280] == pytest.approx(256, rel=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clip_audio(track, np.arange(32) / 25.0).shape == (70560,)
    assert not clip_audio(None, np.arange(32) / 25.0).any()


def test_registry_video_models(tmp_path):
    with pytest.raises(ValueError, match="needs trained weights"):
        create_video_model("avinet")
    torch.manual_seed(0)
    from avsal.models.vinet.networks import ViNet

    torch.save(ViNet(tiny=True).state_dict(), tmp_path / "vinet_tiny.pt")
    model = create_video_model("vinet", weights=str(tmp_path / "vinet_tiny.pt"), tiny=True, blur=False)
    assert model.audio is None and model.clip.length == 32 and model.clip.edge == "flip"
    assert model.config.blur is False
    with pytest.raises(TypeError, match="unknown vinet option"):
        create_video_model("vinet", weights=str(tmp_path / "vinet_tiny.pt"), tiny=True, use_transformer=True)
    av = create_video_model("avinet", weights=_avinet_file(tmp_path), tiny=True)
    assert av.audio.sample_rate is None and av.audio.mix == "mean"


def _avinet_file(tmp_path) -> str:
    torch.manual_seed(1)
    path = tmp_path / "avinet_tiny.pt"
    torch.save(AViNet(tiny=True).state_dict(), path)
    return str(path)


def test_tiny_avinet_end_to_end(tmp_path):
    """A real (tiny) AViNet through the driver: one output frame of a 33-frame clip with a soundtrack."""
    model = create_video_model("avinet", weights=_avinet_file(tmp_path), tiny=True, batch_size=1)
    rate = 16000
    track = AudioTrack(samples=np.random.default_rng(0).normal(0, 0.1, rate * 2).astype(np.float32),
                       sample_rate=rate)
    frames = [Frame(i, i / 25.0, np.random.default_rng(i).integers(0, 256, (72, 96, 3), dtype=np.uint8),
                    selected=(i == 32)) for i in range(33)]
    (pred,) = list(run_clips(model, frames, track))
    assert pred.index == 32 and pred.saliency.shape == (72, 96)
    assert pred.saliency.min() == 0.0 and pred.saliency.max() == pytest.approx(1.0)
    clip = torch.stack([preprocess(f.rgb) for f in frames[1:]], dim=1)[None]
    a = torch.from_numpy(clip_audio(track, [f.time for f in frames[1:]])).view(1, 1, -1, 1)
    with torch.no_grad():
        direct = model.net(clip, a)[0].numpy()
    assert np.abs(pred.saliency - postprocess(direct, (72, 96))).max() < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vinet", "avinet"])
def test_real_clip_with_full_size_upstream_format_weights(name, shared_dir, tmp_path):
    """`avsal predict --model vinet|avinet` on a real clip (with sound) with full-size random weights in the
    upstream .pt format (bare state_dict, AViNet's unused SoundNet conv8_* included)."""
    import json

    import vinet_reference as ref
    from avsal.cli import main

    clip = shared_dir / "videos" / "open_license" / "sintel_2s_moviepy_example3.mp4"
    if not clip.exists():
        pytest.skip("sintel clip not present")
    with open(os.path.join(os.path.dirname(__file__), "data", "vinet", f"keys_{name}.json")) as f:
        keys = [(k["key"], k["shape"]) for k in json.load(f)["keys"]]
    w = tmp_path / ("ViNet_DHF1K.pt" if name == "vinet" else "no_trans_upsampling_reduced.pt")
    torch.save(ref.make_state_dict(keys), w)
    out = tmp_path / "out"
    rc = main(["predict", str(clip), "--out", str(out), "--model", name, "--weights", str(w), "--every", "40",
               "--batch-size", "2", "--no-overlay", "--quiet"])
    assert rc == 0
    meta = json.loads((out / clip.stem / "meta.json").read_text())
    assert meta["frames_predicted"] == 2 and meta["frames_decoded"] == 48
    assert meta["has_audio"] == (name == "avinet")  # vinet ignores the soundtrack
    maps = sorted(os.listdir(out / clip.stem / "maps"))
    assert maps == ["000001.png", "000041.png"]
    m = np.asarray(Image.open(out / clip.stem / "maps" / maps[1]))
    assert m.shape == (480, 854) and m.max() == 255 and m.min() == 0
