"""``classic-av``: a training-free audio-visual saliency model from the classic literature.

It needs no weights, so ``avsal predict`` works out of the box. Five cues, each normalised to [0, 1]:

* **static** — GBVS (Harel, Koch & Perona, NIPS 2006) over Itti-Koch-Niebur intensity, colour-opponency
  and orientation maps (:mod:`avsal.models.gbvs`), on a 32-node grid of a small copy of the frame;
* **motion** — dense optical-flow magnitude (Farnebäck 2003, OpenCV) between the frame and the previous
  decoded frame, with the camera motion (median flow vector) subtracted; normalised by
  ``max(p99, motion_floor)`` so that sensor noise in a still scene stays near 0;
* **audio-visual synchrony** — "pixels that sound" (Hershey & Movellan, NIPS 2000): per cell of a coarse
  grid, the Pearson correlation ρ between the cell's motion energy and the soundtrack's RMS loudness
  envelope over a centred window of ``sync_window`` seconds; the cue is ``clip((ρ − ρ0)/(1 − ρ0), 0, 1)``,
  so only clearly positive co-variation counts (ρ0 = ``sync_rho0``);
* **faces** — faces found by :mod:`avsal.faces` (dlib HOG every ``face_detect_every`` frames, IoU
  tracks): per face an anisotropic Gaussian centred ``face_centre_y`` of the way down the box, with σ =
  ``face_sigma`` × (box height, box width), scaled by ``(1 − face_speak_gain) + face_speak_gain·speaking``
  where ``speaking`` ∈ [0, 1] is the track's active-speaker score (mouth-region motion correlated with
  the loudness over the same centred ``sync_window``; :func:`avsal.faces.speaker_scores`); the cue is the
  maximum over faces (people look at faces, and at the one that speaks: Cerf et al. 2008; Coutrot &
  Guyader 2014);
* **centre prior** — an anisotropic Gaussian at the frame centre.

Combination (weights in :class:`ClassicAVConfig`; :func:`combine_cues`)::

    M = Σ_c w_c · cue_c^γ_c / Σ_c w_c     c ∈ {static, motion, sync, face}; γ = gamma_static,
                                           gamma_motion (> 1 sharpens: less mass spread), 1 for sync/face
    M = M · ((1 − w_centre) + w_centre · centre)           # centre modulation
    M = M / max(M)
    S = (1 − w_centre_blend) · M + w_centre_blend · centre  # convex blend with the centre prior
    S = blur(S), S = S / max(S)                             # → [0, 1]
    S_t = α S_{t−1} + (1 − α) S_t,  α = exp(−Δt / smooth_tau)   # light temporal smoothing

A cue that is unavailable (no audio, first frame without a predecessor) is left out of the weighted mean;
the face cue is always present when ``w_face > 0`` (all zero when no face is seen).

Version 2 (the default since issue 11) added the face cue, the γ sharpening and the convex centre blend;
its weights were fitted on open gaze data (``experiments/fit_classic_av.py``, figures in
``docs/classic_av.md``). ``ClassicAVConfig.v1()`` is the earlier model (no face cue, γ = 1, no blend).
The model runs on CPU with numpy/OpenCV; ``device`` is ignored.
"""

from __future__ import annotations

import collections
import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Iterable, Iterator

import cv2
import numpy as np

from avsal.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig, mouth_energy, speaker_scores
from avsal.io.audio import AudioTrack
from avsal.io.video import Frame
from avsal.models.base import AudioSpec, Prediction, upsample
from avsal.models.gbvs import GBVSConfig, gbvs
from avsal.models.registry import register_model

__all__ = ["ClassicAV", "ClassicAVConfig", "Prediction", "centre_prior", "pearson_rows", "upsample", "work_size"]


@dataclass(frozen=True)
class ClassicAVConfig:
    """Parameters of :class:`ClassicAV` (all documented in the module docstring).

    The defaults are version 2: ``gamma_*``, ``w_centre_blend``, ``w_centre`` and ``w_motion`` were fitted on
    open gaze data, ``w_face`` on a real interview clip, ``w_sync = w_motion`` keeps version 1's ratio
    (``docs/classic_av.md``). :meth:`v1` gives the version-1 weights.

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
        gamma_static, gamma_motion: exponents applied to the static and motion cues before the mean
            (> 1 keeps their peaks and lowers their broad plateaus).
        w_face: weight of the face cue in the mean (0 disables face detection altogether).
        w_centre_blend: weight of the centre Gaussian in the final convex blend (0 = none).
        face_sigma: the face Gaussian's σ as fractions of (box height, box width).
        face_centre_y: vertical position of the face Gaussian's centre, as a fraction of the box height.
        face_speak_gain: how much of a face's weight depends on its speaker score (0 = all faces equal).
        face_detect_every: run the face detector on every k-th decoded frame (tracks hold in between).
        face_rho0: correlation at or below which a face gets speaker score 0.
        face_analysis_side: longer side (px) of the grey copy on which mouth motion is measured.
        face_detector, face_tracker: parameters of :class:`avsal.faces.FaceDetector` and
            :class:`avsal.faces.FaceTracker`.
    """

    work_max_side: int = 256
    gbvs: GBVSConfig = field(default_factory=lambda: GBVSConfig(levels=(2, 3, 4)))
    w_static: float = 0.40
    w_motion: float = 3.0
    w_sync: float = 3.0
    w_centre: float = 0.25
    centre_sigma: tuple[float, float] = (0.25, 0.25)
    motion_floor: float = 1.0
    sync_window: float = 1.5
    sync_grid: tuple[int, int] = (9, 16)
    sync_rho0: float = 0.2
    audio_window: float = 0.1
    smooth_tau: float = 0.1
    blur_frac: float = 0.02
    gamma_static: float = 1.5
    gamma_motion: float = 1.5
    w_face: float = 6.0
    w_centre_blend: float = 0.4
    face_sigma: tuple[float, float] = (0.5, 0.4)
    face_centre_y: float = 0.45
    face_speak_gain: float = 0.5
    face_detect_every: int = 5
    face_rho0: float = 0.1
    face_analysis_side: int = 640
    face_detector: FaceDetectorConfig = field(default_factory=FaceDetectorConfig)
    face_tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def v1(cls, **overrides) -> "ClassicAVConfig":
        """The version-1 model (before issue 11): no face cue, no γ sharpening, no centre blend."""
        base = dict(w_face=0.0, gamma_static=1.0, gamma_motion=1.0, w_centre_blend=0.0, w_static=0.40,
                    w_motion=0.30, w_sync=0.30, w_centre=0.5, centre_sigma=(0.25, 0.25), blur_frac=0.02)
        return cls(**{**base, **overrides})


@dataclass
class _Record:
    index: int
    time: float
    selected: bool
    motion: np.ndarray | None  # [h, w] in [0, 1], None for the first frame
    energy: np.ndarray  # [gr, gc] raw motion magnitude per sync cell
    loudness: float
    static: np.ndarray | None  # [h, w] in [0, 1] for selected frames
    faces: list = field(default_factory=list)  # [(track_id, box (x0, y0, x1, y1) in working px, mouth energy)]


def face_map(shape: tuple[int, int], boxes: np.ndarray, weights: np.ndarray, sigma: tuple[float, float] = (0.5, 0.4),
             centre_y: float = 0.45) -> np.ndarray:
    """The face cue: per box an anisotropic Gaussian, the pixel-wise maximum over boxes.

    Args:
        shape: ``(h, w)`` of the map.
        boxes: float ``[N, 4]`` (x0, y0, x1, y1) in pixels of the map.
        weights: float ``[N]`` peak value of each face's Gaussian (in [0, 1]).
        sigma: σ as fractions of (box height, box width).
        centre_y: the Gaussian's centre, as a fraction of the box height from its top.

    Returns:
        float32 ``[h, w]`` in [0, 1] (all zero without boxes).
    """
    h, w = shape
    out = np.zeros(shape, np.float32)
    ys = np.arange(h, dtype=np.float32) + 0.5
    xs = np.arange(w, dtype=np.float32) + 0.5
    for (x0, y0, x1, y1), a in zip(np.asarray(boxes, np.float32).reshape(-1, 4), np.ravel(weights)):
        bw, bh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        gy = np.exp(-0.5 * ((ys - (y0 + centre_y * bh)) / (sigma[0] * bh)) ** 2)
        gx = np.exp(-0.5 * ((xs - 0.5 * (x0 + x1)) / (sigma[1] * bw)) ** 2)
        np.maximum(out, float(a) * gy[:, None] * gx[None, :], out=out)
    return out


def combine_cues(cues: dict, cfg: "ClassicAVConfig") -> np.ndarray:
    """One saliency map from the cue maps (the formula of the module docstring).

    Args:
        cues: ``{"static", "motion", "sync", "face"}`` → float32 ``[h, w]`` in [0, 1] or ``None``
            (unavailable: left out of the mean); ``"static"`` is required.
        cfg: the weights.

    Returns:
        float32 ``[h, w]`` in [0, 1], max 1 unless every cue is zero.
    """
    parts, weights = [], []
    for name, wgt, gamma in (("static", cfg.w_static, cfg.gamma_static), ("motion", cfg.w_motion, cfg.gamma_motion),
                             ("sync", cfg.w_sync, 1.0), ("face", cfg.w_face, 1.0)):
        c = cues.get(name)
        if c is None or wgt <= 0:
            continue
        parts.append(c if gamma == 1.0 else np.power(c, gamma, dtype=np.float32))
        weights.append(wgt)
    s = sum(w * p for w, p in zip(weights, parts)) / float(sum(weights))
    if cfg.w_centre_blend > 0 and float(s.max()) <= 1e-6:
        warnings.warn("classic-av: a frame's cues carried no information (a constant-colour picture?): its map is "
                      "the centre prior")
    centre = None
    if cfg.w_centre > 0 or cfg.w_centre_blend > 0:
        centre = centre_prior(*s.shape, cfg.centre_sigma)
    if cfg.w_centre > 0:
        s = s * ((1 - cfg.w_centre) + cfg.w_centre * centre)
    if cfg.w_centre_blend > 0:
        s = (1 - cfg.w_centre_blend) * _normalise_max(s) + cfg.w_centre_blend * centre
    if cfg.blur_frac > 0:
        s = cv2.GaussianBlur(s.astype(np.float32), (0, 0), cfg.blur_frac * s.shape[1], borderType=cv2.BORDER_REPLICATE)
    return _normalise_max(s)


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
    """Training-free audio-visual saliency (static GBVS + motion + audio-visual synchrony + faces + centre).

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
        # The detector (stateless) is made once, here: its library is loaded before any video starts.
        self._detector = FaceDetector(cfg.face_detector) if cfg.w_face > 0 else None

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
        """Static (single-image) saliency: GBVS (sharpened by ``gamma_static``), with the centre prior.

        Args:
            frame_rgb: uint8 ``[H, W, 3]`` RGB.
            centre: apply the centre modulation (``w_centre``) and blend (``w_centre_blend``) of
                :func:`combine_cues` (``False``: GBVS alone).

        Returns:
            float32 ``[H, W]`` in [0, 1] (max 1 unless the image is featureless), at the input size.

        Raises:
            ValueError: not an ``[H, W, 3]`` uint8 array.
        """
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"static_saliency expects uint8 [H, W, 3], got {frame_rgb.dtype} {frame_rgb.shape}")
        h, w = frame_rgb.shape[:2]
        s = self._static_small(self._small(frame_rgb))
        if centre:
            s = combine_cues({"static": s}, replace(self.config, blur_frac=0.0))
        return np.clip(_normalise_max(upsample(s, h, w)), 0.0, 1.0)

    # ------------------------------------------------------------------ temporal
    def _motion(self, prev_gray: np.ndarray, gray: np.ndarray) -> np.ndarray:
        flow = cv2.calcOpticalFlowFarneback(prev_gray, gray, None, pyr_scale=0.5, levels=3, winsize=9,
                                            iterations=2, poly_n=5, poly_sigma=1.1, flags=0)
        flow -= np.median(flow.reshape(-1, 2), axis=0)  # remove the camera's global translation
        return np.sqrt((flow ** 2).sum(axis=2)).astype(np.float32)

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

    def _face_map(self, centre: _Record, window: list[_Record], shape: tuple[int, int],
                  has_audio: bool) -> tuple[np.ndarray, list[tuple[int, np.ndarray, float]]]:
        """The face cue of one frame and its faces ``(track_id, box in working px, speaking in [0, 1])``."""
        cfg = self.config
        faces = []
        recs = [r for r in window if abs(r.time - centre.time) <= cfg.sync_window / 2]
        for tid, box, _ in centre.faces:
            speaking = 0.0
            if has_audio:
                series = [(e, r.loudness) for r in recs for t, _, e in r.faces if t == tid]
                if len(series) >= 4:
                    e, lo = np.array(series, np.float64).T
                    speaking = speaker_scores(e, lo, cfg.face_rho0)
            faces.append((tid, box, speaking))
        if not faces:
            return np.zeros(shape, np.float32), faces
        weights = np.array([(1 - cfg.face_speak_gain) + cfg.face_speak_gain * sp for _, _, sp in faces])
        return face_map(shape, np.stack([b for _, b, _ in faces]), weights, cfg.face_sigma, cfg.face_centre_y), faces

    def _records(self, frames: Iterable[Frame], audio: AudioTrack | None) -> Iterator[tuple[_Record, dict, list]]:
        """The streaming core: ``(record, cues, faces)`` of each selected frame, in order (see :meth:`stream`)."""
        cfg = self.config
        window: collections.deque[_Record] = collections.deque()
        pending: collections.deque[_Record] = collections.deque()
        prev_gray = None
        use_faces = cfg.w_face > 0
        detector = self._detector
        tracker = FaceTracker(cfg.face_tracker) if use_faces else None
        prev_face_gray = None
        n_seen = 0

        def emit(rec: _Record):
            sync = self._sync_map(rec, list(window), rec.static.shape) if audio is not None else None
            cues = {"static": rec.static, "motion": rec.motion, "sync": sync, "face": None}
            faces: list = []
            if use_faces:
                cues["face"], faces = self._face_map(rec, list(window), rec.static.shape, audio is not None)
            return rec, cues, faces

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
            faces = []
            if use_faces:
                h, w_ = f.rgb.shape[:2]
                live = tracker.update(detector.detect(f.rgb)) if n_seen % cfg.face_detect_every == 0 else tracker.tracks
                sa = min(1.0, cfg.face_analysis_side / max(h, w_))
                fg = f.rgb if sa >= 1 else cv2.resize(f.rgb, (round(w_ * sa), round(h * sa)), interpolation=cv2.INTER_AREA)
                fg = cv2.cvtColor(fg, cv2.COLOR_RGB2GRAY)
                sw = small.shape[1] / w_  # frame px -> working px
                for tid, box, _ in live:
                    e = mouth_energy(prev_face_gray, fg, box * sa) if (
                        prev_face_gray is not None and prev_face_gray.shape == fg.shape) else 0.0
                    faces.append((tid, box * sw, e))
                prev_face_gray = fg
            n_seen += 1
            rec = _Record(f.index, f.time, f.selected, motion, energy, loud,
                          self._static_small(small) if f.selected else None, faces)
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

    def stream_cues(self, frames: Iterable[Frame], audio: AudioTrack | None = None) -> Iterator[tuple[Prediction, dict, list]]:
        """Like :meth:`stream`, but also yields each frame's cue maps and faces (for fitting and inspection).

        Yields:
            ``(prediction, cues, faces)``: ``cues`` maps ``"static"``, ``"motion"``, ``"sync"``, ``"face"`` to
            float32 ``[h, w]`` maps in [0, 1] at the working size, or ``None`` when unavailable; ``faces`` is a
            list of ``(track_id, box float32 [4] (x0, y0, x1, y1) in working px, speaking in [0, 1])``.
        """
        from threadpoolctl import threadpool_limits

        cfg = self.config
        last_out: np.ndarray | None = None
        last_time: float | None = None
        # numpy's BLAS runs one thread while this generator is alive: its products here are small (one
        # [K, N] x [N, N] per frame, see gbvs.py) and gain nothing from more threads, while idle BLAS
        # workers spin and take a core from the decoder and the writers of ``avsal predict`` (measured:
        # 77 -> 49 ms of CPU per 640x360 frame for the whole command, same wall time for the model alone).
        # The maps are the same either way (the split is over output rows, not the summed axis).
        with threadpool_limits(limits=1, user_api="blas"):
            for rec, cues, faces in self._records(frames, audio):
                s = combine_cues(cues, cfg)
                if cfg.smooth_tau > 0 and last_out is not None and last_out.shape == s.shape:
                    alpha = math.exp(-max(rec.time - last_time, 0.0) / cfg.smooth_tau)
                    s = _normalise_max(alpha * last_out + (1 - alpha) * s)
                last_out, last_time = s, rec.time
                yield Prediction(index=rec.index, time=rec.time, saliency=s), cues, faces

    def stream(self, frames: Iterable[Frame], audio: AudioTrack | None = None) -> Iterator[Prediction]:
        """Predict the selected frames of a decoded video, streaming.

        Every frame of ``frames`` is used for the motion, synchrony and face-track cues; a
        :class:`Prediction` is yielded for each frame with ``selected=True``, in order, about
        ``sync_window/2`` seconds after it was consumed (the centred synchrony window needs that
        look-ahead). Memory holds ``sync_window`` seconds of small working maps, never full frames.

        Args:
            frames: :class:`avsal.io.video.Frame` objects in presentation order (``rgb`` uint8 ``[H, W, 3]``).
            audio: the soundtrack, or ``None`` (the synchrony cue and the speaker scores are then disabled).

        Yields:
            :class:`Prediction` with float32 ``[h, w]`` maps in [0, 1] at the working size.
        """
        for pred, _, _ in self.stream_cues(frames, audio):
            yield pred

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
               description="training-free GBVS + optical-flow motion + audio-visual synchrony + speaker-weighted faces + centre prior")
