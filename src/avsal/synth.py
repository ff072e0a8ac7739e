"""Synthetic audio-visual clips: the ``make demo`` input and test fixtures.

:func:`make_demo_clip` draws two discs on a textured background. The **left** disc jumps whenever a
beep sounds (its motion co-varies with the soundtrack); the **right** disc circles at constant speed
(it moves all the time, but its motion is unrelated to the sound). A motion-only model favours the
right disc; an audio-visual model should lift the left one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import av
import numpy as np


def write_clip(path: str | os.PathLike, frame_fn: Callable[[int], np.ndarray] | None, n_frames: int,
               fps: float, audio: np.ndarray | None = None, sample_rate: int = 16000,
               video_codec: str = "libx264", audio_codec: str = "aac", pix_fmt: str = "yuv420p",
               container_format: str | None = None, container_options: dict | None = None) -> str:
    """Encode a clip with PyAV.

    Args:
        path: output file (the container follows the extension unless ``container_format`` is given).
        frame_fn: ``i -> uint8 [H, W, 3]`` RGB frame ``i``; ``None`` for an audio-only file.
        n_frames: number of video frames (0 writes a video stream with no frame).
        fps: frame rate.
        audio: float32 ``[C, n]`` in [-1, 1] (C = 1 or 2), or ``None`` for no audio stream.
        sample_rate: audio rate in Hz.
        video_codec, audio_codec, pix_fmt: FFmpeg encoder names and pixel format.
        container_format, container_options: muxer name and options (e.g. ``{"movflags": "faststart"}``).

    Returns:
        ``path`` as a string.
    """
    path = os.fspath(path)
    out = av.open(path, "w", format=container_format, options=container_options or {})
    vs = None
    if frame_fn is not None:
        first = frame_fn(0)
        vs = out.add_stream(video_codec, rate=Fraction(fps).limit_denominator(1000))
        vs.height, vs.width = first.shape[:2]
        vs.pix_fmt = pix_fmt
    ast = None
    if audio is not None:
        layout = "mono" if audio.shape[0] == 1 else "stereo"
        ast = out.add_stream(audio_codec, rate=sample_rate, layout=layout)
    if vs is not None:
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_fn(i)), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1) / Fraction(fps).limit_denominator(1000)
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
    if ast is not None:
        fmt = "fltp" if audio_codec in ("aac", "libopus", "mp3", "libmp3lame") else "s16"
        chunk = 1024
        for start in range(0, audio.shape[1], chunk):
            block = np.ascontiguousarray(audio[:, start:start + chunk].astype(np.float32))
            if fmt == "s16":
                block = (np.clip(block, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(block, format="s16", layout=ast.layout.name)
            else:
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=ast.layout.name)
            frame.sample_rate = sample_rate
            frame.pts = start
            for pkt in ast.encode(frame):
                out.mux(pkt)
        for pkt in ast.encode(None):
            out.mux(pkt)
    out.close()
    return path


@dataclass(frozen=True)
class DemoScene:
    """Geometry of :func:`make_demo_clip` (pixels, seconds), for checking predictions against it.

    Attributes:
        height, width: frame size.
        fps: frame rate.
        seconds: duration.
        radius: disc radius.
        beep_times: onset of each beep (s).
        beep_length: beep duration (s).
    """

    height: int
    width: int
    fps: float
    seconds: float
    radius: int
    beep_times: tuple[float, ...]
    beep_length: float

    def sync_disc_centre(self, t: float) -> tuple[float, float]:
        """(y, x) of the left disc, which hops up during each beep."""
        lift = 0.0
        for b in self.beep_times:
            if b <= t < b + self.beep_length:
                lift = np.sin(np.pi * (t - b) / self.beep_length)
        return self.height * 0.6 - lift * self.height * 0.25, self.width * 0.27

    def steady_disc_centre(self, t: float) -> tuple[float, float]:
        """(y, x) of the right disc, which circles at a constant 0.5 turns per second."""
        a = 2 * np.pi * 0.5 * t
        return self.height * 0.5 + self.height * 0.15 * np.sin(a), self.width * 0.73 + self.height * 0.15 * np.cos(a)


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 40 * x / w, 70 + 30 * y / h, 90 + 0 * x], -1)
    noise = rng.normal(0, 6, (h // 8 + 1, w // 8 + 1, 1)).repeat(8, 0).repeat(8, 1)[:h, :w]
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _disc(img: np.ndarray, cy: float, cx: float, r: int, colour: tuple[int, int, int]) -> None:
    h, w = img.shape[:2]
    y0, y1 = max(0, int(cy - r - 1)), min(h, int(cy + r + 2))
    x0, x1 = max(0, int(cx - r - 1)), min(w, int(cx + r + 2))
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    img[y0:y1, x0:x1][inside] = colour


def make_demo_clip(path: str | os.PathLike, seconds: float = 6.0, fps: float = 25.0,
                   size: tuple[int, int] = (360, 640), sample_rate: int = 16000, seed: int = 0) -> DemoScene:
    """Write the demo clip (H.264 + AAC in MP4): a disc that hops with beeps, one that circles silently.

    Args:
        path: output ``.mp4``.
        seconds: duration (s).
        fps: frame rate.
        size: ``(height, width)`` in pixels.
        sample_rate: audio rate (Hz).
        seed: random seed of the beep times and the background texture.

    Returns:
        The :class:`DemoScene`, to locate the discs at any time.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    beeps, t = [], 0.4
    while t < seconds - 0.4:
        beeps.append(round(t, 3))
        t += float(rng.uniform(0.45, 1.1))
    scene = DemoScene(h, w, fps, seconds, radius=max(4, h // 12), beep_times=tuple(beeps), beep_length=0.25)
    bg = _background(h, w, rng)

    def frame(i: int) -> np.ndarray:
        tt = i / fps
        img = bg.copy()
        _disc(img, *scene.sync_disc_centre(tt), scene.radius, (235, 200, 40))
        _disc(img, *scene.steady_disc_centre(tt), scene.radius, (40, 200, 235))
        return img

    n = int(round(seconds * sample_rate))
    ts = np.arange(n) / sample_rate
    env = np.zeros(n, np.float32)
    for b in beeps:
        m = (ts >= b) & (ts < b + scene.beep_length)
        env[m] = np.sin(np.pi * (ts[m] - b) / scene.beep_length)
    tone = 0.5 * env * np.sin(2 * np.pi * 880 * ts) + rng.normal(0, 0.003, n)
    write_clip(path, frame, int(round(seconds * fps)), fps, tone[None].astype(np.float32), sample_rate)
    return scene


@dataclass(frozen=True)
class TalkingScene:
    """Geometry of :func:`make_talking_faces_clip`.

    Attributes:
        height, width: frame size (px).
        fps: frame rate.
        seconds: duration.
        speaker_box, silent_box: face boxes (x0, y0, x1, y1) px of the face whose mouth moves with the sound
            and of the face whose mouth moves on its own, unrelated schedule.
    """

    height: int
    width: int
    fps: float
    seconds: float
    speaker_box: tuple[int, int, int, int]
    silent_box: tuple[int, int, int, int]


def _bursts(rng: np.random.Generator, n: int, mean_on: float, mean_off: float) -> np.ndarray:
    """A 0/1 ``[n]`` syllable-like on/off pattern with exponential run lengths (in samples)."""
    out = np.zeros(n, np.float32)
    i, on = 0, False
    while i < n:
        run = max(1, int(rng.exponential(mean_on if on else mean_off)))
        out[i:i + run] = 1.0 if on else 0.0
        i += run
        on = not on
    return out


def make_talking_faces_clip(path: str | os.PathLike, seconds: float = 6.0, fps: float = 25.0,
                            size: tuple[int, int] = (240, 320), sample_rate: int = 16000,
                            seed: int = 0) -> TalkingScene:
    """Write a clip with two cartoon faces side by side (H.264 + AAC in MP4) for speaker-detection tests.

    Each face is a skin-coloured rectangle with two eyes and a dark mouth that articulates (its opening
    changes every frame, up to 20 % of the face height) during the "on" runs of an on/off pattern
    (runs of ~0.3 s) and stays closed during the "off" runs. The **speaker**'s (left face)
    pattern is also the loudness envelope of the soundtrack (a 220 Hz buzz); the **silent** face's
    (right) pattern has the same statistics but is drawn independently, so its mouth moves as much
    but not with the sound.

    Args:
        path: output ``.mp4``.
        seconds, fps: duration (s) and frame rate.
        size: ``(height, width)`` px.
        sample_rate: audio rate (Hz).
        seed: random seed of the two patterns.

    Returns:
        the :class:`TalkingScene` (face boxes for checking results).
    """
    h, w = size
    n = int(round(seconds * fps))
    rng = np.random.default_rng(seed)
    speak = _bursts(rng, n, 0.3 * fps, 0.3 * fps)
    other = _bursts(rng, n, 0.3 * fps, 0.3 * fps)
    jitter = rng.uniform(0.2, 1.0, (2, n)).astype(np.float32)
    fw, fh = int(w * 0.28), int(h * 0.5)
    boxes = []
    for cx in (w * 0.27, w * 0.73):
        x0, y0 = int(cx - fw / 2), int(h * 0.25)
        boxes.append((x0, y0, x0 + fw, y0 + fh))
    bg = _background(h, w, np.random.default_rng(seed + 1))

    def frame(i: int) -> np.ndarray:
        img = bg.copy()
        for k, ((x0, y0, x1, y1), pat) in enumerate(zip(boxes, (speak, other))):
            img[y0:y1, x0:x1] = (205, 160, 130)
            bw, bh = x1 - x0, y1 - y0
            for ex in (0.3, 0.7):
                _disc(img, y0 + 0.35 * bh, x0 + ex * bw, max(2, bw // 14), (40, 30, 30))
            open_h = 2 + int(0.2 * bh * pat[i] * jitter[k, i])
            my = int(y0 + 0.75 * bh)
            img[my - open_h // 2: my + open_h // 2 + 1, int(x0 + 0.3 * bw): int(x0 + 0.7 * bw)] = (90, 20, 30)
        return img

    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    env = np.repeat(speak, int(np.ceil(sample_rate / fps)))[: t.size]
    env = np.convolve(env, np.ones(160) / 160, mode="same")  # 10 ms ramps
    audio = (0.4 * env * np.sin(2 * np.pi * 220 * t) + 0.003 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    write_clip(path, frame, n, fps, audio[None], sample_rate)
    return TalkingScene(h, w, fps, seconds, boxes[0], boxes[1])
