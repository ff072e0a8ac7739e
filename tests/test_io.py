"""Video/audio input: stream choice, frames and timestamps, sampling, VFR, audio alignment, bounded memory."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction

import av
import numpy as np
import pytest

from avsal.io import AudioTrack, Sampling, iter_frames, load_audio, probe, read_frames
from avsal.synth import write_clip

from conftest import gradient_frame, tone, write_vfr_clip


def test_probe_and_frames(small_clip):
    info = probe(small_clip)
    assert (info.width, info.height, info.n_frames) == (128, 96, 50)
    assert info.fps == pytest.approx(25.0)
    assert info.has_audio and info.audio_rate == 16000 and info.audio_channels == 1
    frames = list(iter_frames(small_clip))
    assert len(frames) == 50
    assert all(f.rgb.dtype == np.uint8 and f.rgb.shape == (96, 128, 3) for f in frames)
    np.testing.assert_allclose([f.time for f in frames], np.arange(50) / 25.0, atol=1e-6)
    assert [f.index for f in frames] == list(range(50))
    # content survives encoding: the yellow square of frame 10 is where it was drawn
    f10 = frames[10].rgb.astype(int)
    x = 5 + 3 * 10
    assert f10[40, x + 10, 0] > 200 and f10[40, x + 10, 2] < 100


def test_sampling_modes(small_clip):
    assert [f.index for f in read_frames(small_clip, Sampling(every=7))] == list(range(0, 50, 7))
    sel = read_frames(small_clip, Sampling(fps=1))
    assert len(sel) == 2
    for f, target in zip(sel, (0.5, 1.5)):
        assert abs(f.time - target) <= 0.02 + 1e-9  # the middle frame of each second
    sel = read_frames(small_clip, Sampling(times=[0.0, 1.0, 1.985, 1.99, 2.5]))
    assert [f.index for f in sel] == [0, 25, 49]  # nearest frames; once each; none past the end
    sel = read_frames(small_clip, Sampling(fps=100))  # faster than the video: every frame once
    assert [f.index for f in sel] == list(range(50))
    all_frames = list(iter_frames(small_clip, Sampling(every=10)))
    assert len(all_frames) == 50 and sum(f.selected for f in all_frames) == 5  # unselected frames still come


@pytest.mark.parametrize("kwargs", [dict(every=0), dict(fps=0), dict(fps=-1), dict(every=2, fps=1),
                                    dict(times=[-1.0])])
def test_sampling_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        Sampling(**kwargs)


def _multi_stream_file(path):
    """Audio as stream 0, then a large and a small video stream."""
    out = av.open(str(path), "w")
    a = out.add_stream("aac", rate=16000, layout="mono")
    v_big = out.add_stream("libx264", rate=25)
    v_big.width, v_big.height, v_big.pix_fmt = 128, 96, "yuv420p"
    v_small = out.add_stream("libx264", rate=25)
    v_small.width, v_small.height, v_small.pix_fmt = 64, 48, "yuv420p"
    for i in range(10):
        for vs, (h, w) in ((v_small, (48, 64)), (v_big, (96, 128))):
            fr = av.VideoFrame.from_ndarray(gradient_frame(i, h, w), format="rgb24")
            fr.pts, fr.time_base = i, Fraction(1, 25)
            for p in vs.encode(fr):
                out.mux(p)
    x = tone(0.4, 16000)
    for s in range(0, x.shape[1], 1024):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, s:s + 1024]), format="fltp", layout="mono")
        fr.sample_rate, fr.pts = 16000, s
        for p in a.encode(fr):
            out.mux(p)
    for s in (v_small, v_big, a):
        for p in s.encode(None):
            out.mux(p)
    out.close()


def test_stream_selection_never_assumes_stream_0(tmp_path):
    p = tmp_path / "multi.mp4"
    _multi_stream_file(p)
    info = probe(p)
    assert info.audio_stream == 0
    assert info.video_stream == 1 and (info.width, info.height) == (128, 96)
    frames = list(iter_frames(p))
    assert len(frames) == 10 and frames[0].rgb.shape == (96, 128, 3)
    assert load_audio(p).stream_index == 0


def _fake_container(video=(), audio=()):
    from types import SimpleNamespace as NS

    return NS(streams=NS(video=list(video), audio=list(audio)))


def test_stream_selection_rules():
    from types import SimpleNamespace as NS

    from avsal.io.video import select_audio_stream, select_video_stream

    def v(index, w, h, disp=0):
        return NS(index=index, disposition=disp, codec_context=NS(width=w, height=h))

    def a(index, rate, ch, disp=0):
        return NS(index=index, disposition=disp, codec_context=NS(sample_rate=rate, channels=ch, layout=None))

    default = int(av.stream.Disposition.default)
    cover = int(av.stream.Disposition.attached_pic)
    assert select_video_stream(_fake_container([v(0, 64, 48), v(1, 640, 480)])).index == 1  # larger wins
    assert select_video_stream(_fake_container([v(0, 64, 48, default), v(1, 640, 480)])).index == 0  # default wins
    assert select_video_stream(_fake_container([v(0, 1920, 1080, cover), v(2, 320, 240)])).index == 2  # no cover art
    assert select_video_stream(_fake_container([v(0, 1920, 1080, cover)])) is None
    assert select_audio_stream(_fake_container(audio=[a(1, 16000, 1), a(3, 48000, 2)])).index == 3
    assert select_audio_stream(_fake_container(audio=[a(1, 16000, 1, default), a(3, 48000, 2)])).index == 1
    assert select_audio_stream(_fake_container(audio=[])) is None


def test_variable_frame_rate_timestamps(tmp_path):
    pts_ms = [0, 40, 100, 110, 300, 333, 700, 1000]
    p = write_vfr_clip(tmp_path / "vfr.mkv", pts_ms)
    frames = list(iter_frames(p))
    np.testing.assert_allclose([f.time for f in frames], np.array(pts_ms) / 1000.0, atol=1e-3)
    # fps sampling follows the real timestamps: targets 0.25 s and 0.75 s -> frames at 0.3 s and 0.7 s
    sel = read_frames(p, Sampling(fps=2))
    assert [round(f.time, 3) for f in sel] == [0.3, 0.7]


def test_streaming_memory_is_bounded(tmp_path):
    p = tmp_path / "long.mkv"
    write_clip(p, lambda i: gradient_frame(i, 240, 320), 150, 25, None)
    frame_bytes = 240 * 320 * 3
    tracemalloc.start()
    n = 0
    for f in iter_frames(p):
        n += int(f.rgb.shape == (240, 320, 3))  # every frame converted to RGB
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 150
    assert peak < 12 * frame_bytes, f"peak {peak / 1e6:.1f} MB for 150 frames of {frame_bytes / 1e6:.2f} MB"


def test_audio_track_windows_are_centred_and_zero_padded():
    track = AudioTrack(samples=np.arange(1, 101, dtype=np.float32), sample_rate=10, start_time=2.0)
    w = track.window(3.0, 1.0)  # 10 samples centred on t=3.0 s -> samples 10-5 .. 10+4 (1-based values 6..15)
    np.testing.assert_array_equal(w, np.arange(6, 16, dtype=np.float32))
    w0 = track.window(2.0, 1.0)  # the start: 5 zeros, then the first 5 samples
    np.testing.assert_array_equal(w0, np.r_[np.zeros(5), np.arange(1, 6)].astype(np.float32))
    wend = track.windows([12.0], 1.0)[0]  # past the end: zero padded
    np.testing.assert_array_equal(wend[:5], np.arange(96, 101, dtype=np.float32))
    assert np.all(wend[5:] == 0)
    assert track.windows([0.0, 50.0], 0.5).shape == (2, 5) and not track.windows([50.0], 0.5).any()


@pytest.mark.parametrize("rate,channels,codec,ext", [(8000, 2, "aac", "mp4"), (48000, 2, "aac", "mp4"),
                                                     (48000, 1, "libopus", "mkv"), (48000, 2, "pcm_s16le", "mkv")])
def test_audio_resampled_to_16k_mono(tmp_path, rate, channels, codec, ext):
    p = tmp_path / f"a_{rate}_{channels}.{ext}"
    sig = tone(1.5, rate, channels, freq=440.0)
    write_clip(p, gradient_frame, 30, 20, sig, rate, audio_codec=codec)
    track = load_audio(p)
    assert track.sample_rate == 16000 and track.samples.dtype == np.float32 and track.samples.ndim == 1
    assert track.duration == pytest.approx(1.5, abs=0.06)
    x = track.samples[4000:20000]
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    peak_hz = np.argmax(spec) * 16000 / len(x)
    assert abs(peak_hz - 440) < 3
    assert 0.1 < np.sqrt(np.mean(x ** 2)) < 0.4


def test_audio_alignment_to_video_time(tmp_path):
    """A beep at t = 1.0 s is found in the window centred on the frame at 1.0 s, not at 0.5 s or 1.5 s."""
    rate = 16000
    sig = np.zeros((1, 2 * rate), np.float32)
    t = np.arange(1600) / rate
    sig[0, rate - 800:rate + 800] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    p = tmp_path / "beep.mp4"
    write_clip(p, gradient_frame, 50, 25, sig, rate)
    track = load_audio(p)
    frames = {f.index: f.time for f in iter_frames(p)}
    e = [float(np.sqrt(np.mean(track.window(frames[i], 0.08) ** 2))) for i in (12, 25, 37)]
    assert e[1] > 0.2 and e[0] < 0.02 and e[2] < 0.02
    # onset within 10 ms of 0.95 s
    env = np.abs(track.samples)
    onset = np.argmax(env > 0.1) / rate + track.start_time
    assert onset == pytest.approx(0.95, abs=0.01)


def test_file_without_audio(tmp_path):
    p = tmp_path / "silent_video.mkv"
    write_clip(p, gradient_frame, 10, 25, None)
    info = probe(p)
    assert not info.has_audio and info.audio_stream is None
    assert load_audio(p) is None


def test_audio_track_rms_in_blocks_equals_the_definition():
    import math

    import numpy as np

    from avsal.io.audio import AudioTrack

    x = np.random.default_rng(3).normal(0, 0.2, 100_003).astype(np.float32)
    ref = math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
    for block in (7, 1000, 1 << 20):
        assert abs(AudioTrack(x, 16000).rms(block=block) - ref) < 1e-12
    assert AudioTrack(np.zeros(0, np.float32), 16000).rms() == 0.0
