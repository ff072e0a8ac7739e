"""Liu'20: network shape/parameters, upstream parity, switches, checkpoint conversion, inputs, face map, predict."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avsal.errors import InputError
from avsal.models import create_model, create_video_model
from avsal.models.checkpoints import CheckpointError, convert_state_dict, read_checkpoint
from avsal.models.liu20.faces import (GMMConfig, HaarFaceSource, PrecomputedFaceSource, gmm_face_map,
                                     normalise_gmm)
from avsal.models.liu20.features import frame_mel_image, log_mel, mel_filterbank, mel_window, preprocess_frame
from avsal.models.liu20.networks import Liu20Net, saliency_from_logits

sys.path.insert(0, str(Path(__file__).parent))
import liu20_reference as ref  # noqa: E402
from conftest import SHARED  # noqa: E402

DATA = Path(__file__).parent / "data" / "liu20"


@pytest.fixture(scope="module")
def upstream_net() -> Liu20Net:
    sd, report = convert_state_dict(ref.make_state_dict(), "liu20")
    assert len(report.mapped) == 71 and not (report.dropped or report.unexpected or report.missing)
    net = Liu20Net()
    net.load_state_dict(sd, strict=True)
    return net.eval()


def _small_inputs(B: int, S: int = 64, seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, 3, S, S, generator=g), torch.randn(B, 3, S, S, generator=g),
            4 * torch.rand(B, 1, 16, S // 4, S // 4, generator=g), torch.randn(B, 1, S // 8, S // 8, generator=g))


# -- network ---------------------------------------------------------------------------------------------

def test_parameter_count_and_keys_on_meta():
    with torch.device("meta"):
        net = Liu20Net()
        out = net(torch.empty(3, 3, 256, 256), torch.empty(3, 3, 256, 256), torch.empty(3, 1, 16, 64, 64),
                  torch.empty(3, 1, 32, 32))
    assert sum(p.numel() for p in net.parameters()) == 7_274_113
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == ref.load_keys()
    assert tuple(out.shape) == (3, 1, 32, 32)


def test_upstream_parity(upstream_net):
    """Same weights and inputs as the unmodified upstream network (tests/data/liu20/README.md): ≤ 1e-5."""
    x = ref.make_inputs()
    want = np.load(DATA / "ref_network.npz")
    grabbed = {}
    hooks = [upstream_net.conv_normal_visual1.register_forward_pre_hook(lambda m, a: grabbed.update(lstm=a[0])),
             upstream_net.conv_normal_audio1.register_forward_pre_hook(lambda m, a: grabbed.update(audio=a[0]))]
    try:
        with torch.no_grad():
            logit = upstream_net(x["x1"], x["x2"], x["x3"], x["x4"])
    finally:
        for h in hooks:
            h.remove()
    assert np.abs(logit.numpy() - want["logit"]).max() <= 1e-5
    assert np.abs(grabbed["lstm"][:, :2].numpy() - want["lstm"]).max() <= 1e-5
    assert np.abs(grabbed["audio"][:, :2].numpy() - want["audio"]).max() <= 1e-5
    # the logits are not degenerate: a real spread, and every map differs
    assert float(want["logit"].std()) > 0.05 and len({round(float(v), 4) for v in want["logit"][:, 0, 5, 5]}) == 12
    # upstream demo post-processing (softmax over the height axis, min-max to 0-255) = our "height" switch
    demo = 255 * saliency_from_logits(logit, "height").numpy()
    assert np.abs(demo - want["demo"]).max() <= 1e-3
    spatial = 255 * saliency_from_logits(logit, "spatial").numpy()
    assert np.abs(spatial - want["demo"]).max() > 1.0  # the two modes really differ


def test_any_batch_and_fixed_batch_switch():
    torch.manual_seed(0)
    net = Liu20Net().eval()
    with torch.no_grad():
        assert tuple(net(*_small_inputs(3)).shape) == (3, 1, 8, 8)
        assert tuple(net(*_small_inputs(1)).shape) == (1, 1, 8, 8)
    with pytest.raises(ValueError, match="fixed_batch=12"):
        Liu20Net(fixed_batch=12)(*_small_inputs(3))
    with pytest.raises(ValueError, match="batch sizes differ"):
        x1, x2, mel, face = _small_inputs(3)
        net(x1, x2, mel[:2], face)


def test_convlstm_state_reset_and_carry():
    """Upstream resets the ConvLSTM at every call; carrying the state over two chunks equals one long chunk."""
    torch.manual_seed(1)
    net = Liu20Net().eval()
    x1, x2, mel, face = _small_inputs(6)
    with torch.no_grad():
        whole = net(x1, x2, mel, face)
        a, state = net(x1[:3], x2[:3], mel[:3], face[:3], return_state=True)
        b = net(x1[3:], x2[3:], mel[3:], face[3:], state=state)
        b_reset = net(x1[3:], x2[3:], mel[3:], face[3:])
    torch.testing.assert_close(torch.cat([a, b]), whole, rtol=0, atol=1e-5)
    assert (b_reset - whole[3:]).abs().max() > 1e-4  # a reset really changes the later frames
    torch.testing.assert_close(a, whole[:3], rtol=0, atol=1e-6)


def test_saliency_from_logits_modes():
    logit = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    sp = saliency_from_logits(logit)
    assert sp.shape == (2, 2, 2) and sp[0].max() == 1 and sp[0].min() == 0 and sp[1].abs().max() == 0
    e = np.exp([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(sp[0].flatten().numpy(), (e - e[0]) / (e[3] - e[0]), rtol=1e-6)
    # height softmax: each column on its own, so the two columns peak together in the bottom row
    h = saliency_from_logits(logit, "height")
    assert torch.allclose(h[0, 1], torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="softmax"):
        saliency_from_logits(logit, "width")


# -- checkpoint ------------------------------------------------------------------------------------------

def test_upstream_format_state_dict_converts_strictly(tmp_path):
    keys = ref.load_keys()
    meta = {k: torch.empty(s, device="meta") for k, s in keys}
    sd, report = convert_state_dict(meta, "liu20")
    assert [m for m, _ in report.mapped] == [k for k, _ in keys] and all(a == b for a, b in report.mapped)
    assert report.summary()["dropped"] == report.summary()["unexpected"] == report.summary()["missing"] == 0
    extra = dict(meta)
    extra["Wci"] = torch.empty(1, device="meta")
    _, rep = convert_state_dict(extra, "liu20")
    assert rep.unexpected == ["Wci"]
    missing = {k: v for k, v in meta.items() if k != "cell1.Who.weight"}
    with pytest.raises(CheckpointError, match="lacks 1 keys") as ei:
        convert_state_dict(missing, "liu20")
    assert ei.value.report.missing == ["cell1.Who.weight"]
    bad = dict(meta)
    bad["visual_hmap.weight"] = torch.empty(1, 128, 1, 1, device="meta")
    with pytest.raises(CheckpointError, match="visual_hmap.weight"):
        convert_state_dict(bad, "liu20")


def test_released_pkl_format_loads_through_the_registry(tmp_path):
    """A bare state_dict saved with torch.save (as upstream's .pkl) loads strictly and reproduces the net."""
    sd = ref.make_state_dict()
    path = tmp_path / "17_i_video_visual_audio_face_modal.pkl"
    torch.save(sd, path)
    assert set(read_checkpoint(path)) == set(sd)
    net = create_model("liu20", weights=str(path)).eval()
    x = _small_inputs(2)
    ours = Liu20Net()
    ours.load_state_dict(sd)
    with torch.no_grad():
        torch.testing.assert_close(net(*x), ours.eval()(*x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs trained weights"):
        create_video_model("liu20")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="junk.pkl"):
        create_model("liu20", weights=str(tmp_path / "junk.pkl"))


def test_convert_weights_cli_writes_avsal_format(tmp_path, random_weights):
    from avsal.cli import main
    from avsal.models.checkpoints import read_sidecar

    out = tmp_path / "liu20.safetensors"
    assert main(["convert-weights", "--model", "liu20", str(random_weights), str(out)]) == 0
    side = read_sidecar(out)
    assert side["model"] == "liu20"
    net = create_model("liu20", weights=str(out))
    want = torch.load(random_weights, weights_only=True)
    assert all(torch.equal(v, want[k]) for k, v in net.state_dict().items())
    with pytest.raises(InputError, match="liu20"):
        create_model("stanet-sta", weights=str(out))


# -- inputs ----------------------------------------------------------------------------------------------

def test_frame_preprocessing():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[..., 0] = 200
    x = preprocess_frame(rgb, 16)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], [200 - 123.68, -116.779, -103.939], rtol=1e-6)


def test_log_mel_matches_upstream_librosa(tmp_path):
    """numpy mel vs upstream's librosa pipeline (fixture made with librosa, 22,050 Hz input: no resampling)."""
    want = np.load(DATA / "ref_audio.npz")
    y = ref.make_signal(22050).astype(np.float32) / 32768.0
    got = log_mel(y)
    assert got.shape == want["logmel"].shape
    assert np.abs(got - want["logmel"]).max() < 0.05  # 0-255 units
    # per-frame 64x64 images (upstream load_one_video_audio at 24 fps)
    imgs = np.stack([frame_mel_image(got, i / ref.VIDEO_FPS) for i in ref.IMAGE_FRAMES])
    assert np.abs(imgs - want["frame_images"]).max() < 0.05
    # which images each predicted frame gets (upstream load_one_batch_audio_melspectr, frame_offset 5)
    for bi, b in enumerate(ref.AUDIO_BATCHES):
        for i in range(ref.BATCH):
            frame = ref.FRAME_SKIP + b * ref.BATCH + i
            assert mel_window(frame, ref.VIDEO_FRAMES) == list(want["batch_index"][bi, i])


def test_mel_filterbank_properties():
    fb = mel_filterbank()
    assert fb.shape == (128, 1025) and fb.min() >= 0
    peaks = fb.argmax(1)
    assert (np.diff(peaks) > 0).all() and peaks[0] < 5 and peaks[-1] > 950  # ascending bands, 0 Hz to ~Nyquist


def test_resampling_deviation_from_resampy(tmp_path):
    """44.1 kHz input: libswresample (avsal.io.audio) + our mel vs librosa 0.7-style resampy kaiser_best.
    The measured deviation is in docs/liu20.md; this guards it."""
    from avsal.io.audio import load_audio

    want = np.load(DATA / "ref_audio.npz")["logmel_44k"]
    wav = ref.write_wav(tmp_path / "s44.wav", ref.make_signal(44100), 44100)
    track = load_audio(wav, 22050, mix="mean")
    got = log_mel(track.samples)
    assert got.shape == want.shape
    diff = np.abs(got - want)
    # bands below ~5.2 kHz (0-99) agree to < 1 grey level; the top bands (low energy near Nyquist, where the
    # two anti-aliasing filters differ) by tens of levels; measured numbers in docs/liu20.md
    assert diff[:100].mean() < 0.01 and diff[:100].max() < 1.0
    assert 1.0 < diff[115:].mean() < 15.0 and diff.mean() < 1.0


def test_log_mel_on_resampy_kaiser_best_equals_librosa():
    """With librosa 0.7's resampler (resampy kaiser_best; skipped where resampy is not installed) our mel
    reproduces the librosa fixture of the 44.1 kHz signal."""
    resampy = pytest.importorskip("resampy")
    want = np.load(DATA / "ref_audio.npz")["logmel_44k"]
    y = resampy.resample(ref.make_signal(44100).astype(np.float32) / 32768.0, 44100, 22050, filter="kaiser_best")
    assert np.abs(log_mel(y) - want).max() < 1e-3


# -- face map --------------------------------------------------------------------------------------------

def test_gmm_normalisation_matches_upstream():
    want = np.load(DATA / "ref_gmm.npz")["maps"]
    got = normalise_gmm(ref.make_gmm_maps())[:, None]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    assert (got[4] == 0).all() and (got[7] == 0).all()  # all-zero and constant maps: no -14.9


def test_gmm_face_map_peaks_weights_and_errors():
    H, W = 360, 640
    boxes = np.array([[40, 60, 140, 180, 0.9], [400, 100, 480, 200, 0.8]], np.float32)
    m = gmm_face_map(boxes, [0.2, 1.0], (H, W))
    assert m.shape == (32, 32) and m.dtype == np.float32
    y, x = np.unravel_index(m.argmax(), m.shape)
    cx, cy = (x + 0.5) * W / 32, (y + 0.5) * H / 32
    assert 400 <= cx <= 480 and 100 <= cy <= 200  # the speaking face wins although it is smaller
    silent = gmm_face_map(boxes, [1.0, 1.0], (H, W))
    y2, x2 = np.unravel_index(silent.argmax(), silent.shape)
    assert 40 <= (x2 + 0.5) * W / 32 <= 140  # equal speaking: the bigger face wins
    assert not gmm_face_map(np.zeros((0, 4)), None, (H, W)).any()
    assert gmm_face_map(boxes, None, (H, W), GMMConfig(size=16)).shape == (16, 16)
    with pytest.raises(ValueError, match="speaking"):
        gmm_face_map(boxes, [1.0], (H, W))
    with pytest.raises(ValueError, match="x0, y0, x1, y1"):
        gmm_face_map(np.zeros((2, 3)), None, (H, W))


def test_precomputed_face_source_nearest_entry():
    src = PrecomputedFaceSource([0.0, 0.04, 0.08], [np.zeros((0, 4)), [[1, 2, 3, 4]], [[5, 6, 7, 8], [0, 0, 9, 9]]],
                                [np.zeros(0), [0.5], [1.0, 0.2]])
    assert len(src(None, 0.01)[0]) == 0
    b, s = src(None, 0.05)
    assert b.tolist() == [[1, 2, 3, 4]] and s.tolist() == [0.5]
    assert len(src(None, 0.09)[0]) == 2 and len(src(None, 0.5)[0]) == 0  # 0.5 s: beyond max_gap
    with pytest.raises(ValueError, match="increasing"):
        PrecomputedFaceSource([0.0, 0.0], [[], []])
    with pytest.raises(ValueError, match="2 times but 1 box"):
        PrecomputedFaceSource([0.0, 0.1], [[]])


# -- video model -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("liu20w") / "liu20_random.pkl"
    torch.save(ref.make_state_dict(seed=7), path)
    return path


def test_predict_any_length_with_injected_faces(small_clip, random_weights):
    """Full-size random weights on a 2 s clip (50 frames, 25 fps) at 128² input: every sampled frame gets a map;
    the injected face source is called once per predicted frame."""
    from avsal.predict import predict_video

    calls = []

    def faces(rgb, time, audio):
        calls.append(time)
        return np.array([[10, 10, 60, 60, 1.0]], np.float32), np.ones(1, np.float32)

    res = predict_video(small_clip, "liu20", weights=str(random_weights), every=24, face_source=faces,
                        keep_maps=True, input_size=128)  # (full 256² input: the shared-clip test)
    assert list(res.frame_indices) == [0, 24, 48] and len(calls) == 3  # 48: the clip runs past the end
    for m in res.maps:
        assert m.shape == (96, 128) and 0 <= m.min() and 0.5 < m.max() <= 1  # a bilinear-upsampled 16² map


def test_clip_assembly_and_lstm_reset(random_weights):
    """x1 = t − 5 (clamped), the 16 audio images = upstream's window, state reset every 12 predicted frames."""
    from avsal.io.audio import AudioTrack
    from avsal.io.video import Frame
    from avsal.models.base import run_clips

    model = create_video_model("liu20", weights=str(random_weights), face_source="none", input_size=64,
                               batch_size=5, softmax="none")  # logits min-max: sensitive to every input
    n = 20
    frames = [Frame(i, i / 24, rgb=np.full((24, 32, 3), 10 * i, np.uint8)) for i in range(n)]
    audio = AudioTrack(samples=ref.make_signal(22050, seconds=n / 24).astype(np.float32) / 32768, sample_rate=22050)
    seen = []
    decode = model.decode

    def spy(clips, audio=None, frame_hw=None):
        for c in clips:
            t = c[16].index
            assert c[11].index == max(t - 5, 0)
            seen.append((t, model._count))
        return decode(clips, audio, frame_hw)

    model.decode = spy
    preds = list(run_clips(model, frames, audio))
    assert [p.index for p in preds] == list(range(n)) and [s[0] for s in seen] == list(range(n))
    # the audio images of the last frame: upstream's window moved inside the 20-frame video (frames 4..19)
    clip = [type("C", (), {"index": min(max(q, 0), n - 1), "time": min(max(q, 0), n - 1) / 24})()
            for q in range(19 - 16, 19 + 16)]
    imgs = model.audio_images(clip, audio)
    logmel = log_mel(audio.samples)
    np.testing.assert_array_equal(imgs[0], np.stack([frame_mel_image(logmel, j / 24, 16) for j in range(4, 20)]))
    # the ConvLSTM restarts every 12 predicted frames, whatever the batch size
    def maps(**kw):
        m = create_video_model("liu20", weights=str(random_weights), face_source="none", input_size=64,
                               softmax="none", **kw)
        return np.stack([p.saliency for p in run_clips(m, frames, audio)])

    ours = np.stack([p.saliency for p in preds])
    np.testing.assert_allclose(maps(batch_size=7), ours, rtol=0, atol=1e-5)
    carry = maps(batch_size=5, lstm_reset=0)
    np.testing.assert_allclose(carry[:12], ours[:12], rtol=0, atol=1e-5)
    assert np.abs(carry[12:] - ours[12:]).max() > 1e-3


@pytest.mark.skipif(SHARED is None, reason="../shared/data is not present")
def test_face_branch_on_a_real_interview():
    """Haar faces on a shared interview clip: the GMM peaks sit inside detected boxes."""
    from avsal.io.video import iter_frames

    video = SHARED / "videos" / "research_only" / "visualvoice_interview.mp4"
    if not video.is_file():
        pytest.skip(f"{video} missing")
    source = HaarFaceSource()
    checked = 0
    for f in iter_frames(video):
        if f.index % 40:
            continue
        boxes, speaking = source(f.rgb, f.time, None)
        if len(boxes) == 0:
            continue
        H, W = f.rgb.shape[:2]
        m = normalise_gmm(gmm_face_map(boxes, speaking, (H, W)))
        y, x = np.unravel_index(m.argmax(), m.shape)
        cx, cy = (x + 0.5) * W / 32, (y + 0.5) * H / 32
        assert any(b[0] - W / 32 <= cx <= b[2] + W / 32 and b[1] - H / 32 <= cy <= b[3] + H / 32 for b in boxes)
        assert m.max() == pytest.approx(255 - 14.9, abs=1e-3)
        checked += 1
        if checked == 3 or f.index > 400:
            break
    assert checked >= 1, "no face detected in the first frames of the interview"


@pytest.mark.skipif(SHARED is None, reason="../shared/data is not present")
def test_predict_shared_clip_any_fps_no_dropped_tail(random_weights):
    """A 17.58 fps, 176-frame AVE clip (upstream assumes 24 fps and drops the last partial batch of 12):
    full-size random weights, Haar face maps, maps for frames up to the very last one."""
    from avsal.predict import predict_video

    video = SHARED / "videos" / "research_only" / "ave_0lFf-HP86Q0_female_speech.mp4"
    if not video.is_file():
        pytest.skip(f"{video} missing")
    res = predict_video(video, "liu20", weights=str(random_weights), every=175, face_source="haar")
    assert list(res.frame_indices) == [0, 175]
    assert res.maps.shape == (2, 240, 320) and np.isfinite(res.maps).all()
    assert res.meta["model_config"]["face_source"] == "haar"
    assert all(m.max() > 0.5 and m.min() >= 0 for m in res.maps)


def test_video_pipeline_matches_upstream_demo(tmp_path):
    """End to end: our video model on a lossless synthetic 24 fps video (decoded with PyAV, audio through
    avsal.io.audio, numpy mel) vs upstream's demo pipeline (OpenCV decoding, librosa, batches of 12,
    ``frame_skip`` 5; tests/data/liu20/README.md), same weights and face maps, ``lstm_phase=5``."""
    from avsal.io.audio import load_audio
    from avsal.io.video import iter_frames
    from avsal.models.base import run_clips

    want = np.load(DATA / "ref_pipeline.npz")
    video = ref.write_pipeline_video(tmp_path / "v.mkv")
    weights = tmp_path / "w.pkl"
    torch.save(ref.make_pipeline_state_dict(), weights)
    model = create_video_model("liu20", weights=str(weights), input_size=ref.PIPE_INPUT, softmax="none",
                               lstm_phase=5, face_source="none", batch_size=7)
    gmm = ref.make_pipeline_gmm()
    model.face_map = lambda item, audio, clip=None: normalise_gmm(gmm[item.index])[None]  # the maps upstream reads
    preds = list(run_clips(model, iter_frames(video), load_audio(video, 22050, mix="mean")))
    assert len(preds) == ref.PIPE_FRAMES  # upstream: only frames 5..28
    ours = np.stack([preds[i].saliency for i in want["frame_index"]])
    up = want["logits"]
    lo, hi = up.min((1, 2), keepdims=True), up.max((1, 2), keepdims=True)
    assert list(want["frame_index"]) == list(range(5, 29))
    assert np.abs(ours - (up - lo) / (hi - lo)).max() < 1e-4
    assert float(np.std(up)) > 0.01 and len({float(m.argmax()) for m in up}) > 3  # the maps differ
