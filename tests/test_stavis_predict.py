"""STAViS preprocessing (frames, maps, audio excerpts) and the video model on the clip driver."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from avsal.io.audio import AudioTrack
from avsal.io.video import Frame
from avsal.models.base import run_clips
from avsal.models.stavis import preprocess as pp
from avsal.models.stavis.networks import Stavis
from avsal.models.stavis.predictor import StavisVideoModel, postprocess


def _frames(n: int, h: int = 48, w: int = 64, fps: float = 25.0) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [Frame(i, i / fps, rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for i in range(n)]


def test_frame_tensor_is_pillows_two_resizes_minus_the_activitynet_mean():
    rgb = np.random.default_rng(1).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    ref = Image.fromarray(rgb).resize((320, 240)).resize((112, 112), Image.BILINEAR)  # upstream calls
    expected = np.asarray(ref, np.float32) - np.array([114.7748, 107.7354, 99.4750], np.float32)
    x = pp.frame_tensor(rgb)
    assert x.shape == (3, 112, 112) and x.dtype == np.float32
    np.testing.assert_array_equal(x, expected.transpose(2, 0, 1))
    flat = pp.frame_tensor(np.full((30, 40, 3), 200, np.uint8))
    np.testing.assert_allclose(flat[:, 5, 7], [200 - 114.7748, 200 - 107.7354, 200 - 99.4750], rtol=0, atol=1e-5)


def test_ground_truth_maps():
    grey = np.zeros((60, 80), np.uint8)
    grey[20:40, 30:50] = 255
    sal = pp.saliency_target(grey)
    assert sal.shape == (112, 112) and sal.max() == 255 and sal.min() == 0  # kept in 0–255
    fix = np.zeros((60, 80))
    fix[30, 40] = 1
    b = pp.fixation_target(fix)
    assert set(np.unique(b)) == {0.0, 1.0} and 1 <= b.sum() <= 40
    ys, xs = np.nonzero(b)
    assert abs(ys.mean() - 30 * 112 / 60) < 3 and abs(xs.mean() - 40 * 112 / 80) < 3


def test_frame_bounds_and_excerpt_numbers():
    starts, ends = pp.frame_bounds(3, 10_000, 16000, 25)  # Fs/fps = 640 samples per frame
    assert starts.tolist() == [0, 0, 320, 960] and ends.tolist() == [0, 320, 960, 1600]
    assert pp.excerpt_bounds(5, 20, 100_000, 16000, 25) == (2240, 12481)  # wav[starts[5] : ends[20] + 1]
    out = pp.audio_excerpt(np.ones(100_000, np.float32), 5, 20, 16000, 25)
    n = 12481 - 2240
    o = 35280 // 2 - n // 2
    assert out.shape == (35280,) and out[:o].sum() == 0 and out[o + n:].sum() == 0
    np.testing.assert_allclose(out[o:o + n], np.hanning(n).astype(np.float32))
    assert out[o + n // 2] == 1.0  # symmetric window, peak at the centre of an odd excerpt
    # clamped at the end of the track; frames past the end give silence
    assert pp.excerpt_bounds(15, 30, 10_000, 16000, 25) == (8640, 10_000)
    assert pp.audio_excerpt(np.ones(1000, np.float32), 10, 25, 16000, 25).sum() == 0


def test_long_excerpts_are_resampled_to_fit_with_a_warning():
    assert pp.fitting_rate(16000, 25) == 16000
    assert pp.fitting_rate(44100, 17.6) == 38805  # 16·44100/17.6 = 40091 samples would overflow
    assert pp.fitting_rate(22050, 10) == 22048    # upstream's own limit overflows by one sample
    t = np.arange(44100 * 3) / 44100
    samples = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    with pytest.warns(UserWarning, match="resampled to 38805 Hz"):
        wav, rate = pp.prepare_track(samples, 44100, 17.6)
    assert rate == 38805 and abs(len(wav) - 3 * 38805) <= 1
    assert abs(np.abs(wav).max() - 256) < 3  # × 256
    n_frames = int(3 * 17.6)
    for first in range(1, n_frames - 15):
        s, e = pp.excerpt_bounds(first, first + 15, len(wav), rate, 17.6)
        assert e - s <= 35280
        pp.audio_excerpt(wav, first, first + 15, rate, 17.6)  # never raises
    with pytest.raises(ValueError, match="does not fit"):
        pp.audio_excerpt(samples * 256, 10, 25, 44100, 17.6)


def test_postprocess_minmax_and_blur():
    m = np.zeros((1, 112, 112), np.float32) + 0.3
    m[0, 56, 56] = 0.9
    out = postprocess(m, blur_sigma=0)
    assert out.max() == 1 and out.min() == 0
    blurred = postprocess(m, blur_sigma=2.0)[0]
    assert blurred[56, 56] == pytest.approx(1 / (2 * np.pi * 4), rel=0.02)  # unit impulse through a σ=2 Gaussian
    assert postprocess(np.full((1, 4, 4), 0.5, np.float32))[0].max() == 0  # a flat map stays flat


@pytest.fixture(scope="module")
def tiny_av():
    torch.manual_seed(0)
    net = Stavis(variant="av", tiny=True).eval()
    with torch.no_grad():  # upstream's N(0, 0.001) Conv2d init silences SoundNet; use N(0, 1/fan_in) weights instead
        for name, p in net.named_parameters():
            if p.ndim > 1 and not name.endswith("upsample.weight"):
                p.normal_(0, (1.0 / p[0].numel()) ** 0.5)
    return net


def _direct(net, frames, t, audio_wav, fs, fps):
    """The map of frame t computed by hand: clip t−8 … t+7 clamped, the excerpt of its first/last frames."""
    idx = [min(max(q, 0), len(frames) - 1) for q in range(t - 8, t + 8)]
    x = torch.from_numpy(np.stack([pp.frame_tensor(frames[q].rgb) for q in idx], axis=1))[None]
    a = pp.audio_excerpt(audio_wav, idx[0] + 1, idx[-1] + 1, fs, fps)
    with torch.no_grad():
        logit = net(x, torch.from_numpy(a).view(1, 1, 1, -1))[-1]
    return postprocess(torch.sigmoid(logit)[:, 0].numpy())[0]


def test_video_model_alignment_batching_and_audio(tiny_av):
    fps, fs = 25.0, 16000
    frames = _frames(20, fps=fps)
    t = np.arange(int(fs * 20 / fps)) / fs
    track = AudioTrack((0.5 * np.sin(2 * np.pi * 300 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32), fs)
    model = StavisVideoModel(tiny_av, batch_size=8)
    assert model.clip.length == 16 and model.clip.anchor == 8 and model.clip.edge == "replicate"
    assert model.audio.sample_rate is None and model.audio.mix == "mean"
    preds = list(run_clips(model, frames, track))
    assert [p.index for p in preds] == list(range(20))
    maps = np.stack([p.saliency for p in preds])
    assert maps.shape == (20, 112, 112) and maps.min() >= 0 and maps.max() <= 1
    wav = track.samples * 256
    for k in (0, 3, 8, 12, 19):  # start edge, the first full clip, the end edge
        np.testing.assert_allclose(maps[k], _direct(tiny_av, frames, k, wav, fs, fps), atol=1e-4)
    one = np.stack([p.saliency for p in run_clips(StavisVideoModel(tiny_av, batch_size=1), frames, track)])
    np.testing.assert_allclose(one, maps, atol=1e-4)
    # without a soundtrack: silence, with a warning; the maps change (the audio matters)
    with pytest.warns(UserWarning, match="no audio"):
        silent = np.stack([p.saliency for p in run_clips(StavisVideoModel(tiny_av), frames, None)])
    assert np.abs(silent - maps).max() > 1e-3


def test_visual_variant_ignores_audio():
    torch.manual_seed(0)
    model = StavisVideoModel(Stavis(variant="visual", tiny=True), batch_size=4)
    assert model.audio is None
    frames = _frames(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps = [p.saliency for p in run_clips(model, frames, None)]
    assert len(maps) == 10 and maps[0].shape == (112, 112)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["av", "visual"])
def test_predict_cli_on_a_real_clip_with_an_upstream_format_checkpoint(variant, shared_dir, tmp_path):
    """``avsal predict --model stavis-<variant> --weights <upstream .pth>`` on a real clip (full-size network,
    synthetic weights in the released checkpoint format)."""
    import json
    import sys
    from pathlib import Path

    from avsal.cli import main
    from avsal.io.image import read_gray

    sys.path.insert(0, str(Path(__file__).parent))
    from stavis_reference import upstream_state_dict

    video = shared_dir / "videos" / "open_license" / "sintel_2s_moviepy_example3.mp4"
    if not video.exists():
        pytest.skip(f"{video} not present")
    opt = {"state": {}, "param_groups": []}
    ck = tmp_path / f"{variant}_split1_save_60.pth"
    torch.save({"epoch": 61, "arch": "resnet-50", "state_dict": upstream_state_dict(), "optimizer_global": opt,
                "optimizer_sal": opt, "optimizer_sound": opt, "optimizer_fusion": opt}, ck)
    out = tmp_path / "out"
    assert main(["predict", str(video), "--model", f"stavis-{variant}", "--weights", str(ck), "--out", str(out),
                 "--every", "40", "--no-overlay", "--quiet"]) == 0
    meta = json.loads(next(out.glob("*/meta.json")).read_text())
    assert meta["model"] == f"stavis-{variant}" and meta["frames_predicted"] == 2
    maps = sorted(next(out.glob("*/maps")).glob("*.png"))
    assert [p.name for p in maps] == ["000001.png", "000041.png"]
    m = read_gray(maps[1])
    assert m.shape == (480, 854) and m.max() > m.min()


def test_frame_rate_estimate_and_audio_alignment(tiny_av):
    fps, fs = 30000 / 1001, 16000
    frames = _frames(18, fps=fps)
    t = np.arange(int(fs * 0.8)) / fs
    samples = (0.5 * np.sin(2 * np.pi * 300 * t) * (t > 0.3)).astype(np.float32)  # sound starts at 0.3 s
    model = StavisVideoModel(tiny_av)
    ref = np.stack([p.saliency for p in run_clips(model, frames, AudioTrack(samples, fs))])
    assert model._fps() == pytest.approx(29.97)
    # the same video on a timeline that starts at 2.5 s (frames and soundtrack alike): the same maps
    shifted = [Frame(f.index, f.time + 2.5, f.rgb) for f in frames]
    same = np.stack([p.saliency for p in run_clips(StavisVideoModel(tiny_av), shifted,
                                                   AudioTrack(samples, fs, start_time=2.5))])
    np.testing.assert_allclose(same, ref, atol=1e-5)
    # a soundtrack that starts 0.3 s late (its first sample plays with frame ~9): different maps
    late = np.stack([p.saliency for p in run_clips(StavisVideoModel(tiny_av), frames,
                                                   AudioTrack(samples, fs, start_time=0.3))])
    assert np.abs(late - ref).max() > 1e-3


def test_predict_cli_records_resampling_and_silence_in_meta(tmp_path):
    """``avsal predict`` with avsal-format tiny weights: a 44.1 kHz soundtrack at 15 fps (excerpts of 47,040
    samples would overflow the buffer) is resampled with a warning; a video without audio runs on silence."""
    import json

    from avsal.cli import main
    from avsal.models.checkpoints import save_weights
    from avsal.synth import write_clip
    from conftest import gradient_frame, tone

    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_weights(Stavis(variant="av", tiny=True).state_dict(), weights, "stavis-av", {"tiny": True})
    loud = write_clip(tmp_path / "loud.mp4", gradient_frame, 20, 15.0, audio=tone(20 / 15, 44100, 2),
                      sample_rate=44100)
    mute = write_clip(tmp_path / "mute.mp4", gradient_frame, 20, 15.0)
    out = tmp_path / "out"
    assert main(["predict", loud, mute, "--model", "stavis-av", "--weights", str(weights), "--out", str(out),
                 "--every", "10", "--no-overlay", "--quiet"]) == 0
    meta = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/meta.json")}
    assert meta["loud"]["frames_predicted"] == 2 and meta["mute"]["frames_predicted"] == 2
    assert any("resampled to 33073 Hz" in w for w in meta["loud"]["warnings"])  # ⌊35278·15/16⌋
    assert any("no audio" in w for w in meta["mute"]["warnings"])


def test_no_weights_is_a_clear_stop_and_options_reach_the_model(tmp_path):
    from avsal.models.checkpoints import save_weights
    from avsal.models.registry import create_video_model

    for name in ("stavis-av", "stavis-visual"):
        with pytest.raises(ValueError, match="needs trained weights.*STAViS"):
            create_video_model(name)
    w = tmp_path / "v.safetensors"
    save_weights(Stavis(variant="visual", tiny=True).state_dict(), w, "stavis-visual", {"tiny": True})
    m = create_video_model("stavis-visual", str(w), batch_size=3, fps=12.5, blur_sigma=0)
    assert m.batch_size == 3 and m.config.fps == 12.5 and m.config.blur_sigma == 0 and m.net.config.tiny
    with pytest.raises(TypeError, match="unknown stavis-visual option"):
        create_video_model("stavis-visual", str(w), sigma=1)
    with pytest.raises(Exception, match="stavis-visual, not stavis-av|holds weights for stavis-visual"):
        create_video_model("stavis-av", str(w))


@pytest.mark.parametrize("rate,fps", [(16000, 25.0), (22050, 29.97)])
def test_audio_excerpts_equal_upstream_saliency_db(rate, fps, tmp_path):
    """Excerpts of the synthetic root (``tests/stavis_fixtures.py``) equal those of upstream
    ``datasets/saliency_db.py`` (fixture ``ref_audio.npz``; regenerate with ``tests/stavis_make_audio_fixture.py``)."""
    import sys
    from pathlib import Path

    from avsal.io.audio import load_audio

    sys.path.insert(0, str(Path(__file__).parent))
    from stavis_fixtures import make_stavis_root

    root = Path(make_stavis_root(tmp_path, n_videos=1, rate=rate, fps=fps))
    track = load_audio(root / "video_audio" / "AVAD" / "vid00" / "vid00.wav", sample_rate=None, mix="mean")
    assert track.sample_rate == rate
    wav, fs = pp.prepare_track(track.samples, track.sample_rate, fps)
    ref = np.load(Path(__file__).parent / "data" / "stavis" / "ref_audio.npz")
    starts = sorted({int(k.split("_")[2]) for k in ref.files if k.startswith(f"{rate}_")})
    assert starts == [1, 2, 37, 84, 85, 99]
    for j in starts:
        key = f"{rate}_vid00_{j}"
        expected = np.zeros(35280, np.float32)
        first, span = int(ref[key + "_first"]), ref[key + "_span"]
        expected[first:first + len(span)] = span
        ours = pp.audio_excerpt(wav, j, int(ref[key + "_last_frame"]), fs, fps)
        s, e = pp.excerpt_bounds(j, int(ref[key + "_last_frame"]), len(wav), fs, fps)
        assert e - s == int(ref[key + "_valid"])
        assert np.abs(ours - expected).max() <= 1e-6 * 256  # float32 rounding of the ×256 waveform


@pytest.mark.parametrize("variant", ["av", "visual"])
def test_predictions_score_with_avsal_evaluate(variant, tmp_path):
    """``avsal predict --model stavis-*`` output is scored by ``avsal evaluate`` (STAViS protocol, every frame:
    the edge rule gives frames 1–8 and the last 7 a map too) on a tiny STAViS-layout dataset whose videos are
    clips made from known frames; the scores equal direct metric calls on the written maps."""
    import csv

    from avsal.cli import main
    from avsal.models.checkpoints import save_weights
    from avsal.synth import write_clip
    from conftest import gradient_frame, tone
    from test_evaluate import NF, H, W, close, make_dataset, reference_frame_values

    torch.manual_seed(1)
    weights = tmp_path / "tiny.safetensors"
    save_weights(Stavis(variant=variant, tiny=True).state_dict(), weights, f"stavis-{variant}", {"tiny": True})
    data = make_dataset(tmp_path / "data")
    (tmp_path / "videos").mkdir()
    clips = [write_clip(tmp_path / "videos" / f"{v}.mp4", lambda i, s=s: gradient_frame(i + s, H + 3, W),
                        NF, 25.0, audio=tone(NF / 25, 16000), sample_rate=16000)
             for s, v in ((0, "vidA"), (7, "vidB"))]
    pred = tmp_path / "pred"
    assert main(["predict", *map(str, clips), "--model", f"stavis-{variant}", "--weights", str(weights),
                 "--out", str(pred), "--no-overlay", "--quiet"]) == 0
    assert main(["evaluate", "--data-root", str(data), "--dataset", "AVAD", "--pred", str(pred), "--frames", "all",
                 "--metrics", "cc,nss,sim", "--out", str(tmp_path / "report"), "--quiet", "--no-plots"]) == 0
    with open(tmp_path / "report" / "per_video.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["n_scored"] for r in rows] == [str(NF)] * 3 and {r["layout"] for r in rows} == {"avsal"}
    assert all(np.isfinite(float(r["cc"])) and float(r["nss"]) != 0 for r in rows)
    with open(tmp_path / "report" / "per_frame.csv", newline="") as f:
        got = [r for r in csv.DictReader(f) if r["video"] == "vidA" and r["split"] == "1"]
    assert [int(r["frame"]) for r in got] == list(range(1, NF + 1))
    ref = reference_frame_values(data, "vidA", 1, range(1, NF + 1),
                                 lambda k: pred / "vidA" / "maps" / f"{k:06d}.png")
    for r in got:
        for m in ("cc", "nss", "sim"):
            assert close(float(r[m]), ref[int(r["frame"])][m]), (r["frame"], m)
