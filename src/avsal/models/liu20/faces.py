"""Liu'20 face branch: the per-frame GMM face-saliency map the fusion module takes as ``x4``.

Upstream released no face-branch code; it ships the maps pre-computed (``resized_gmm``: one 32×32 grey
image per frame) and normalises each as ``map − min``, then ``× 255 / max − 14.9`` when ``max > 0``
("14.9 is the average of the training GMMs"; docs/liu20.md §Face branch). This module builds the map
from face boxes and speaking scores given as arrays, so it works with any detector/tracker
(``avsal.faces`` or the OpenCV fallback of :class:`HaarFaceSource`).

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

__all__ = ["GMMConfig", "HaarFaceSource", "PrecomputedFaceSource", "gmm_face_map", "normalise_gmm", "GMM_MEAN"]

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
