"""``classic-av``: a training-free audio-visual saliency model from the classic literature.

It needs no weights, so ``avsal predict`` works out of the box. Four cues, each normalised to [0, 1]:

* **static** — GBVS (Harel, Koch & Perona, NIPS 2006) over Itti-Koch-Niebur intensity, colour-opponency
  and orientation maps (:mod:`avsal.models.gbvs`), on a 32-node grid of a small copy of the frame;
* **motion** — dense optical-flow magnitude (Farnebäck 2003, OpenCV) between the frame and the previous
  decoded frame, with the camera motion (median flow vector) subtracted; normalised by
  ``max(p99, motion_floor)`` so that sensor noise in a still scene stays near 0;
* **audio-visual synchrony** — "pixels that sound" (Hershey & Movellan, NIPS 2000): per cell of a coarse
  grid, the Pearson correlation ρ between the cell's motion energy and the soundtrack's RMS loudness
  envelope over a centred window of ``sync_window`` seconds; the cue is ``clip((ρ − ρ0)/(1 − ρ0), 0, 1)``,
  so only clearly positive co-variation counts (ρ0 = ``sync_rho0``);
* **centre prior** — an anisotropic Gaussian at the frame centre.

Combination (weights in :class:`ClassicAVConfig`)::

    S = (w_static·static + w_motion·motion + w_sync·sync) / (w_static + w_motion + w_sync)
    S = S · ((1 − w_centre) + w_centre · centre)
    S = S / max(S)                                  # → [0, 1]
    S_t = α S_{t−1} + (1 − α) S_t,  α = exp(−Δt / smooth_tau)   # light temporal smoothing

A cue that is unavailable (no audio, first frame without a predecessor) is left out of the weighted mean.
The model runs on CPU with numpy/OpenCV; ``device`` is ignored.
"""

from __future__ import annotations

import collections
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

import cv2
import numpy as np

from avsal.io.audio import AudioTrack
from avsal.io.video import Frame
from avsal.models.base import AudioSpec, Prediction, upsample
from avsal.models.gbvs import GBVSConfig, gbvs
from avsal.models.registry import register_model

__all__ = ["ClassicAV", "ClassicAVConfig", "Prediction", "centre_prior", "pearson_rows", "upsample", "work_size"]


@dataclass(frozen=True)
class ClassicAVConfig:
    """Parameters of :class:`ClassicAV` (all documented in the module docstring).

    Attributes:
        work_max_side: longer side (px) of the working copy of each frame.
        gbvs: the static model's parameters.
        w_static, w_motion, w_sync: cue weights of the weighted mean.
        w_centre: strength of the centre prior (0 = none, 1 = multiply by the Gaussian).
        centre_sigma: the centre Gaussian's σ as fractions (of height, of width).
        motion_floor: optical-flow magnitude (px per frame, at the working size) that counts as full motion
            when the frame's 99th percentile is smaller.
        sync_window: seconds of the centred window for the synchrony correlation.
        sync_grid: ``(rows, cols)`` of the synchrony cells.
        sync_rho0: correlation below which a cell gets no synchrony boost.
        audio_window: seconds of audio around each frame time for its RMS loudness.
        smooth_tau: time constant (s) of the exponential temporal smoothing (0 disables it).
        blur_frac: final Gaussian blur σ as a fraction of the working width.
    """

    work_max_side: int = 256
    gbvs: GBVSConfig = field(default_factory=lambda: GBVSConfig(levels=(2, 3, 4)))
    w_static: float = 0.40
    w_motion: float = 0.30
    w_sync: float = 0.30
    w_centre: float = 0.5
    centre_sigma: tuple[float, float] = (0.25, 0.25)
    motion_floor: float = 1.0
    sync_window: float = 1.5
    sync_grid: tuple[int, int] = (9, 16)
    sync_rho0: float = 0.2
    audio_window: float = 0.1
    smooth_tau: float = 0.1
    blur_frac: float = 0.02

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Record:
    index: int
    time: float
    selected: bool
    motion: np.ndarray | None  # [h, w] in [0, 1], None for the first frame
    energy: np.ndarray  # [gr, gc] raw motion magnitude per sync cell
    loudness: float
    static: np.ndarray | None  # [h, w] in [0, 1] for selected frames


def centre_prior(height: int, width: int, sigma: tuple[float, float] = (0.25, 0.25)) -> np.ndarray:
    """Centre Gaussian ``exp(−(y−c_y)²/(2(σ_y H)²) − (x−c_x)²/(2(σ_x W)²))``, float32 ``[H, W]``, max 1."""
    y = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (sigma[0] * height)
    x = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (sigma[1] * width)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)


def _normalise_max(x: np.ndarray) -> np.ndarray:
    mx = float(x.max()) if x.size else 0.0
    return (x / mx).astype(np.float32) if mx > 0 else np.zeros_like(x, dtype=np.float32)


def work_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(h, w)`` of the working copy: longer side ``max_side`` (never upscaled), aspect kept."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``x [C, T]`` with ``y [T]``; 0 where either is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    den = np.sqrt((xc ** 2).sum(axis=1) * (yc ** 2).sum())
    num = xc @ yc
    return np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), 0.0)


class ClassicAV:
    """Training-free audio-visual saliency (static GBVS + motion + audio-visual synchrony + centre).

    Args:
        config: a :class:`ClassicAVConfig`; keyword overrides are applied on top of it.
        **overrides: any :class:`ClassicAVConfig` field, e.g. ``ClassicAV(w_sync=0.0)``.

    Example::

        model = ClassicAV()
        s = model.static_saliency(frame_rgb)              # float32 [H, W] in [0, 1]
        for pred in model.stream(frames, audio):          # frames: avsal.io.iter_frames(...)
            ...
    """

    name = "classic-av"
    #: Models with weights declare them; this one needs none.
    needs_weights = False
    #: A streaming model (temporal smoothing and a centred synchrony window): no clip spec, ``stream`` instead.
    clip = None
    #: 16 kHz, FFmpeg's down-mix (the loudness envelope of the synchrony cue).
    audio = AudioSpec(sample_rate=16000, mix="ffmpeg")

    def __init__(self, config: ClassicAVConfig | None = None, **overrides):
        cfg = config or ClassicAVConfig()
        if overrides:
            cfg = ClassicAVConfig(**{**cfg.__dict__, **overrides})
        self.config = cfg

    # ------------------------------------------------------------------ static
    def _small(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        sh, sw = work_size(h, w, self.config.work_max_side)
        small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if (sh, sw) != (h, w) else rgb
        return small.astype(np.float32) / 255.0

    def _static_small(self, small: np.ndarray) -> np.ndarray:
        g = gbvs(small, self.config.gbvs)
        return cv2.resize(g, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_LINEAR)

    def static_saliency(self, frame_rgb: np.ndarray, centre: bool = True) -> np.ndarray:
        """Static (single-image) saliency: GBVS, modulated by the centre prior.

        Args:
            frame_rgb: uint8 ``[H, W, 3]`` RGB.
            centre: apply the centre prior with weight ``w_centre`` (``False``: GBVS alone).

        Returns:
            float32 ``[H, W]`` in [0, 1] (max 1 unless the image is featureless), at the input size.

        Raises:
            ValueError: not an ``[H, W, 3]`` uint8 array.
        """
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"static_saliency expects uint8 [H, W, 3], got {frame_rgb.dtype} {frame_rgb.shape}")
        h, w = frame_rgb.shape[:2]
        s = self._static_small(self._small(frame_rgb))
        if centre and self.config.w_centre > 0:
            c = centre_prior(*s.shape, self.config.centre_sigma)
            s = s * ((1 - self.config.w_centre) + self.config.w_centre * c)
        return np.clip(_normalise_max(upsample(s, h, w)), 0.0, 1.0)

    # ------------------------------------------------------------------ temporal
    def _motion(self, prev_gray: np.ndarray, gray: np.ndarray) -> np.ndarray:
        flow = cv2.calcOpticalFlowFarneback(prev_gray, gray, None, pyr_scale=0.5, levels=3, winsize=9,
                                            iterations=2, poly_n=5, poly_sigma=1.1, flags=0)
        flow -= np.median(flow.reshape(-1, 2), axis=0)  # remove the camera's global translation
        return np.sqrt((flow ** 2).sum(axis=2)).astype(np.float32)

    def _combine(self, rec: _Record, sync: np.ndarray | None) -> np.ndarray:
        cfg = self.config
        parts, weights = [rec.static], [cfg.w_static]
        if rec.motion is not None and cfg.w_motion > 0:
            parts.append(rec.motion)
            weights.append(cfg.w_motion)
        if sync is not None and cfg.w_sync > 0:
            parts.append(sync)
            weights.append(cfg.w_sync)
        s = sum(w * p for w, p in zip(weights, parts)) / float(sum(weights))
        if cfg.w_centre > 0:
            s = s * ((1 - cfg.w_centre) + cfg.w_centre * centre_prior(*s.shape, cfg.centre_sigma))
        if cfg.blur_frac > 0:
            s = cv2.GaussianBlur(s, (0, 0), cfg.blur_frac * s.shape[1], borderType=cv2.BORDER_REPLICATE)
        return _normalise_max(s)

    def _sync_map(self, centre: _Record, window: list[_Record], shape: tuple[int, int]) -> np.ndarray | None:
        cfg = self.config
        recs = [r for r in window if abs(r.time - centre.time) <= cfg.sync_window / 2 and r.motion is not None]
        if len(recs) < 4:
            return None
        energy = np.stack([r.energy.reshape(-1) for r in recs], axis=1)  # [C, T]
        loud = np.array([r.loudness for r in recs], dtype=np.float64)
        if loud.std() < 1e-6:  # digital silence: no information
            return np.zeros(shape, np.float32)
        rho = pearson_rows(energy.astype(np.float64), loud)
        cue = np.clip((rho - cfg.sync_rho0) / (1.0 - cfg.sync_rho0), 0.0, 1.0).astype(np.float32)
        cue = cue.reshape(cfg.sync_grid)
        return cv2.resize(cue, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)

    def stream(self, frames: Iterable[Frame], audio: AudioTrack | None = None) -> Iterator[Prediction]:
        """Predict the selected frames of a decoded video, streaming.

        Every frame of ``frames`` is used for the motion and synchrony cues; a :class:`Prediction` is
        yielded for each frame with ``selected=True``, in order, about ``sync_window/2`` seconds after
        it was consumed (the centred synchrony window needs that look-ahead). Memory holds
        ``sync_window`` seconds of small working maps, never full frames.

        Args:
            frames: :class:`avsal.io.video.Frame` objects in presentation order (``rgb`` uint8 ``[H, W, 3]``).
            audio: the soundtrack, or ``None`` (the synchrony cue is then disabled).

        Yields:
            :class:`Prediction` with float32 ``[h, w]`` maps in [0, 1] at the working size.
        """
        cfg = self.config
        window: collections.deque[_Record] = collections.deque()
        pending: collections.deque[_Record] = collections.deque()
        prev_gray = None
        last_out: np.ndarray | None = None
        last_time: float | None = None

        def emit(rec: _Record) -> Prediction:
            nonlocal last_out, last_time
            sync = self._sync_map(rec, list(window), rec.static.shape) if audio is not None else None
            s = self._combine(rec, sync)
            if cfg.smooth_tau > 0 and last_out is not None and last_out.shape == s.shape:
                alpha = math.exp(-max(rec.time - last_time, 0.0) / cfg.smooth_tau)
                s = _normalise_max(alpha * last_out + (1 - alpha) * s)
            last_out, last_time = s, rec.time
            return Prediction(index=rec.index, time=rec.time, saliency=s)

        for f in frames:
            small = self._small(f.rgb)
            gray = cv2.cvtColor((small * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
            if prev_gray is not None and prev_gray.shape == gray.shape:
                mag = self._motion(prev_gray, gray)
                motion = np.clip(mag / max(float(np.percentile(mag, 99)), cfg.motion_floor), 0, 1)
                motion = cv2.GaussianBlur(motion, (0, 0), 0.02 * motion.shape[1] + 0.5)
            else:
                mag, motion = np.zeros(gray.shape, np.float32), None
            prev_gray = gray
            energy = cv2.resize(mag, (cfg.sync_grid[1], cfg.sync_grid[0]), interpolation=cv2.INTER_AREA)
            loud = 0.0
            if audio is not None:
                w = audio.window(f.time, cfg.audio_window)
                loud = float(np.sqrt(np.mean(np.square(w, dtype=np.float64)))) if w.size else 0.0
            rec = _Record(f.index, f.time, f.selected, motion, energy, loud,
                          self._static_small(small) if f.selected else None)
            window.append(rec)
            if rec.selected:
                pending.append(rec)
            # Emit every pending frame whose half-window of future has arrived.
            while pending and pending[0].time + cfg.sync_window / 2 <= f.time:
                yield emit(pending.popleft())
            horizon = (pending[0].time if pending else f.time) - cfg.sync_window / 2
            while window and window[0].time < horizon:
                window.popleft()
        while pending:
            yield emit(pending.popleft())

    def predict_video(self, path, sampling=None) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
        """All cues on a whole (short) video, maps at the input resolution.

        Args:
            path: the video file.
            sampling: an :class:`avsal.io.Sampling` (default: every frame).

        Returns:
            ``(maps float32 [T, H, W] in [0, 1], frame_indices int64 [T], times float64 [T] in s)``.

        Raises:
            InputError: the file cannot be used (see :func:`avsal.io.video.probe`).
        """
        from avsal.io import iter_frames, load_audio, probe

        info = probe(path)
        audio = load_audio(path) if info.has_audio else None
        if audio is None:
            warnings.warn(f"{path}: no audio stream; the audio-visual synchrony cue is disabled", stacklevel=2)
        preds = list(self.stream(iter_frames(path, sampling, info=info), audio))
        maps = np.stack([upsample(p.saliency, info.height, info.width) for p in preds]) if preds else \
            np.zeros((0, info.height, info.width), np.float32)
        return maps, np.array([p.index for p in preds], np.int64), np.array([p.time for p in preds])


def _factory(weights=None, **cfg) -> ClassicAV:
    if weights is not None:
        raise ValueError("model 'classic-av' is training-free and takes no weights file")
    return ClassicAV(**cfg)


def _video_factory(weights=None, device="cpu", batch_size=8, **cfg) -> ClassicAV:
    return _factory(weights, **cfg)


register_model("classic-av", factory=_factory, needs_weights=False, video_factory=_video_factory,
               description="training-free GBVS + optical-flow motion + audio-visual synchrony + centre prior")
