"""Liu'20 face branch: the per-frame GMM face-saliency map the fusion module takes as ``x4``.

Upstream released no face-branch code; it ships the maps pre-computed (``resized_gmm``: one 32×32 grey
image per frame) and normalises each as ``map − min``, then ``× 255 / max − 14.9`` when ``max > 0``
("14.9 is the average of the training GMMs"; docs/liu20.md §Face branch). This module builds the map
from face boxes and speaking scores given as arrays, so it works with any detector/tracker: by default
:class:`TrackedFaceSource` (``avsal.faces`` tracks and active-speaker scores), else the OpenCV fallback of
:class:`HaarFaceSource`, or boxes computed beforehand (:class:`PrecomputedFaceSource`).

The map (:func:`gmm_face_map`), for faces ``k`` with boxes ``(x0, y0, x1, y1)`` and speaking scores
``s_k`` ∈ [0, 1], on a ``size × size`` grid covering the frame (cell centres at ``(j + ½)·W/size``)::

    G(x, y) = Σ_k  ω_k · exp(−½ [((x − μx_k) / σx_k)² + ((y − μy_k) / σy_k)²])
    μ_k = box centre,  σx_k = σ_rel · (x1 − x0),  σy_k = σ_rel · (y1 − y0)
    ω_k = max(s_k, s_min) · (A_k / max_j A_j) ** size_power,  A_k = box area

Source: the paper's face branch as the task description summarises it (a Gaussian mixture over the
detected faces, one component per face, weighted by face size and by the probability that the face is
speaking; Liu et al. ECCV 2020). The full paper text was not available to us and upstream released no
code, so the functional form above and its constants (σ_rel = 0.25, so that ±2σ spans the box;
size_power = 1; s_min = 0.1) are **inferred** (docs/liu20.md §Face branch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["GMMConfig", "HaarFaceSource", "PrecomputedFaceSource", "TrackedFaceSource", "FaceObservation",
           "gmm_face_map", "normalise_gmm", "GMM_MEAN"]

#: Subtracted after scaling to 0–255 (upstream ``utils1.load_one_batch_gmm``).
GMM_MEAN = 14.9


@dataclass(frozen=True)
class GMMConfig:
    """Constants of :func:`gmm_face_map` (see the module docstring).

    Attributes:
        size: side of the map in cells (32 for the released network).
        sigma_rel: Gaussian σ as a fraction of the box width / height.
        size_power: exponent of the relative face area in the weight (0: size ignored).
        min_speaking: floor of the speaking score, so that silent faces still attract some attention.
    """

    size: int = 32
    sigma_rel: float = 0.25
    size_power: float = 1.0
    min_speaking: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


def gmm_face_map(boxes, speaking, frame_hw: tuple[int, int], config: GMMConfig | None = None) -> np.ndarray:
    """The GMM face-saliency map of one frame, before normalisation.

    Args:
        boxes: float ``[N, ≥4]`` face boxes ``(x0, y0, x1, y1, …)`` in pixels of the frame (extra columns,
            e.g. a detector score, are ignored); ``N`` may be 0.
        speaking: float ``[N]`` speaking scores in [0, 1] (``None``: all 1).
        frame_hw: ``(H, W)`` of the frame in pixels.
        config: :class:`GMMConfig`.

    Returns:
        float32 ``[size, size]``, ≥ 0; all zeros when there is no face (or only empty boxes).

    Raises:
        ValueError: ``boxes`` not ``[N, ≥4]``, or ``speaking`` of another length.
    """
    cfg = config or GMMConfig()
    b = np.asarray(boxes, np.float64).reshape(-1, np.shape(boxes)[-1] if np.ndim(boxes) == 2 else 4)
    if b.shape[1] < 4:
        raise ValueError(f"boxes must be [N, >=4] (x0, y0, x1, y1), got {np.shape(boxes)}")
    s = np.ones(len(b)) if speaking is None else np.asarray(speaking, np.float64).reshape(-1)
    if len(s) != len(b):
        raise ValueError(f"{len(b)} boxes but {len(s)} speaking scores")
    H, W = frame_hw
    out = np.zeros((cfg.size, cfg.size), np.float64)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    keep = (w > 0) & (h > 0)
    if not keep.any():
        return out.astype(np.float32)
    b, s, w, h = b[keep], s[keep], w[keep], h[keep]
    area = w * h
    weight = np.maximum(np.clip(s, 0, 1), cfg.min_speaking) * (area / area.max()) ** cfg.size_power
    xs = (np.arange(cfg.size) + 0.5) * W / cfg.size
    ys = (np.arange(cfg.size) + 0.5) * H / cfg.size
    for (x0, y0, x1, y1), om, bw, bh in zip(b[:, :4], weight, w, h):
        gx = np.exp(-0.5 * ((xs - (x0 + x1) / 2) / (cfg.sigma_rel * bw)) ** 2)
        gy = np.exp(-0.5 * ((ys - (y0 + y1) / 2) / (cfg.sigma_rel * bh)) ** 2)
        out += om * gy[:, None] * gx[None, :]
    return out.astype(np.float32)


def normalise_gmm(gmm: np.ndarray) -> np.ndarray:
    """Upstream's normalisation of a GMM map: ``m − min``, then ``× 255 / max − 14.9`` if ``max > 0``.

    Args:
        gmm: ``[..., h, w]`` maps (any real dtype; upstream reads uint8 JPEGs).

    Returns:
        float32, same shape; a constant map becomes all zeros (no −14.9), as upstream.
    """
    m = np.asarray(gmm, np.float64)
    lead = m.shape[:-2]
    flat = m.reshape(-1, *m.shape[-2:])
    out = np.empty_like(flat)
    for i, x in enumerate(flat):
        x = x - x.min()
        top = x.max()
        out[i] = x / top * 255.0 - GMM_MEAN if top > 0 else x
    return out.reshape(*lead, *m.shape[-2:]).astype(np.float32)


class HaarFaceSource:
    """Fallback face source: OpenCV's frontal-face Haar cascade (shipped inside ``opencv-python-headless``),
    every frame on its own, speaking score 1 for every face (no speaker model).

    Call: ``source(rgb, time, audio) -> (boxes float32 [N, 5] (x0, y0, x1, y1, 1), speaking float32 [N])``.

    Args:
        min_size_frac: smallest face side as a fraction of the frame's shorter side.
        max_side: frames are downscaled so their longer side is at most this many pixels before detection.
    """

    def __init__(self, min_size_frac: float = 0.06, max_side: int = 640):
        import cv2

        self._cv2 = cv2
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self.cascade.empty():  # pragma: no cover - depends on the OpenCV build
            raise RuntimeError("OpenCV's haarcascade_frontalface_default.xml could not be loaded")
        self.min_size_frac, self.max_side = min_size_frac, max_side

    def __call__(self, rgb: np.ndarray, time: float = 0.0, audio=None) -> tuple[np.ndarray, np.ndarray]:
        cv2 = self._cv2
        H, W = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(H, W))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(W * scale), round(H * scale)), interpolation=cv2.INTER_AREA)
        side = max(12, int(self.min_size_frac * min(gray.shape)))
        det = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
        det = np.asarray(det, np.float64).reshape(-1, 4) / scale
        boxes = np.concatenate([det[:, :2], det[:, :2] + det[:, 2:], np.ones((len(det), 1))], 1)
        return boxes.astype(np.float32), np.ones(len(det), np.float32)


class PrecomputedFaceSource:
    """Face source from boxes and speaking scores computed beforehand (a tracker run over the whole video, such
    as ``avsal.faces.track_faces``, or annotations): the entry nearest in time to the requested frame.

    Call: ``source(rgb, time, audio) -> (boxes float32 [N, ≥4], speaking float32 [N])``.

    Args:
        times: ``[T]`` presentation times (s) of the entries, increasing.
        boxes: ``T`` arrays ``[N_t, ≥4]`` in pixels of the frames the model receives.
        speaking: ``T`` arrays ``[N_t]`` in [0, 1], or ``None`` (all 1).
        max_gap: an entry farther than this many seconds from the requested time counts as "no face".

    Raises:
        ValueError: lengths differ, or times are not increasing.
    """

    def __init__(self, times, boxes, speaking=None, max_gap: float = 0.1):
        self.times = np.asarray(times, np.float64).reshape(-1)
        if len(boxes) != len(self.times) or (speaking is not None and len(speaking) != len(self.times)):
            raise ValueError(f"{len(self.times)} times but {len(boxes)} box sets"
                             + ("" if speaking is None else f" and {len(speaking)} speaking sets"))
        if np.any(np.diff(self.times) <= 0):
            raise ValueError("times must be strictly increasing")
        self.boxes = [np.asarray(b, np.float32).reshape(-1, np.shape(b)[-1] if np.ndim(b) == 2 else 4)
                      for b in boxes]
        self.speaking = ([np.ones(len(b), np.float32) for b in self.boxes] if speaking is None
                         else [np.asarray(v, np.float32).reshape(-1) for v in speaking])
        self.max_gap = max_gap

    def __call__(self, rgb=None, time: float = 0.0, audio=None) -> tuple[np.ndarray, np.ndarray]:
        if len(self.times) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        i = int(np.clip(np.searchsorted(self.times, time), 1, len(self.times) - 1)) if len(self.times) > 1 else 0
        if i > 0 and abs(self.times[i - 1] - time) <= abs(self.times[i] - time):
            i -= 1
        if abs(self.times[i] - time) > self.max_gap:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        return self.boxes[i], self.speaking[i]


@dataclass
class FaceObservation:
    """One frame's tracked faces, as :meth:`TrackedFaceSource.observe` records them.

    Attributes:
        index: decoded frame index; time: presentation time (s).
        track_ids: int64 ``[N]``; boxes: float32 ``[N, 4]`` (x0, y0, x1, y1) px of the frame;
        energy: float32 ``[N]`` mouth motion energy (:func:`avsal.faces.mouth_energy`);
        loudness: RMS loudness of the soundtrack around ``time`` (``None`` without a soundtrack).
    """

    index: int
    time: float
    track_ids: np.ndarray
    boxes: np.ndarray
    energy: np.ndarray
    loudness: float | None


class TrackedFaceSource:
    """The default face source: ``avsal.faces`` tracks with their active-speaker scores, computed in the
    clip-model contract (frames arrive in order through ``encode``; each output frame's clip holds the
    frames around it).

    * :meth:`observe` (called by ``Liu20VideoModel.encode`` on every encoded frame, in order) runs
      :class:`avsal.faces.FaceTrackStream` — the detector every ``detect_every`` frames, IoU tracks, the
      mouth-region motion energy — and the RMS loudness of the soundtrack around the frame
      (:func:`avsal.io.audio.rms_envelope`, ``audio_window`` s). After a gap (frames not encoded, e.g.
      ``avsal predict --every``) the detector runs again and the energies are 0.
    * :meth:`speaking` (called by ``decode``) scores each face of the output frame with
      :func:`avsal.faces.window_speaking` (Pearson correlation of mouth energy and loudness, mapped to [0, 1]
      with ``rho0``) over the clip's distinct frames within ``sync_window / 2`` s of the output frame. The
      clip spans frames ``t − 16 … t + 15`` (clamped), so that is the widest window whatever
      ``sync_window`` says (−0.64 … +0.6 s at 25 fps), against :func:`avsal.faces.track_faces`' ±1 s (a clip model
      sees no further ahead). Without a soundtrack every score is 0.

    Called like the other sources, ``source(rgb, time, audio)``, it only detects (speaking score 1): that is
    what a caller without temporal context (e.g. training on isolated frames) gets.

    Args:
        config: an :class:`avsal.faces.FaceTrackConfig` (detector, tracker, ``detect_every``, ``sync_window``,
            ``audio_window``, ``rho0``).
        detector: any object with ``detect(rgb) -> float [N, 5]`` instead of the configured detector.
    """

    #: Tells ``Liu20VideoModel`` to call :meth:`observe` / :meth:`speaking` instead of ``__call__``.
    tracked = True

    def __init__(self, config=None, detector=None):
        from avsal.faces import FaceTrackConfig, FaceTrackStream

        self.config = config or FaceTrackConfig()
        self._stream = FaceTrackStream(self.config, detector)
        self.reset()

    def reset(self) -> None:
        """Forget the tracks (a new video starts)."""
        self._stream.reset()
        self._last_index = None
        self._audio = None

    def observe(self, rgb: np.ndarray, index: int, time: float, audio=None) -> FaceObservation:
        """Track the faces of the next encoded frame (frames must come in increasing ``index``; a smaller
        index, or another soundtrack, starts a new video)."""
        from avsal.io.audio import rms_envelope

        if self._last_index is not None and (index <= self._last_index or audio is not self._audio):
            self.reset()
        consecutive = self._last_index is None or index == self._last_index + 1
        ids, boxes, _, energy = self._stream.step(rgb, consecutive=consecutive)
        self._last_index, self._audio = index, audio
        loud = None
        if audio is not None and len(audio.samples):
            loud = float(rms_envelope(audio, np.array([time]), self.config.audio_window)[0])
        return FaceObservation(index, float(time), ids, boxes, energy, loud)

    def speaking(self, centre: FaceObservation, window: list[FaceObservation]) -> np.ndarray:
        """float32 ``[N]`` speaker scores in [0, 1] of ``centre``'s faces from the observations ``window``
        (the clip's frames; repeated frames of a clamped clip count once)."""
        from avsal.faces import window_speaking

        if centre.loudness is None:
            return np.zeros(len(centre.track_ids), np.float32)
        seen, obs = set(), []
        for o in window:
            if o.index not in seen and abs(o.time - centre.time) <= self.config.sync_window / 2:
                seen.add(o.index)
                obs.append(o)
        return window_speaking(centre.track_ids, [o.track_ids for o in obs], [o.energy for o in obs],
                               [o.loudness for o in obs], self.config.rho0)

    def __call__(self, rgb: np.ndarray, time: float = 0.0, audio=None) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(self._stream.detector.detect(rgb), np.float32).reshape(-1, 5)
        return d, np.ones(len(d), np.float32)
