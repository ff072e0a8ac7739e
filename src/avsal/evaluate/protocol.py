"""The STAViS evaluation protocol around the cvzoya metrics (and ViNet's variant).

What a paper's table number is, step by step (spec ``evaluation-metrics.md`` section 1,
STAViS ``eval_code/eval_<db>.m`` and ``compute_all_<db>.m``):

1. **Frames**: STAViS names the prediction of its i-th (0-based) 16-frame test window
   ``pred_sal_{i+9:06d}.jpg`` (``test_sal.py``), so predictions exist for frames 9..nframes+7
   and frames **9..nframes** are scored; frames 1..8 are never scored
   (:func:`select_frames`, mode ``"stavis"``).  Mode ``"all"`` scores 1..nframes.
2. **Prediction post-processing** (:func:`postprocess_map`, STAViS ``postprocessMap.m``):
   channel 1 of the prediction image / 255, x255, clip to [0, 255], rescale so the max is
   255, min-max to [0, 1] (``normalizeImage1.m``), 13x13 Gaussian with sigma 2 px and mirrored
   borders at prediction resolution; then MATLAB's bicubic ``imresize`` to the ground-truth
   size (:func:`resize_to`).  ViNet's ``eval_diem.m`` skips the post-processing and only
   resizes (``protocol="vinet"``).  Optionally the prediction first goes through STAViS's
   uint8 quantisation (:func:`stavis_uint8`), for maps that were not saved as STAViS does.
3. **Ground truth** per frame: density ``maps/eyeMap_%05d.jpg`` / 255, fixations
   ``fixMap_%05d.mat:eyeMap``; the sAUC "other" map is the union of the same video's
   fixation maps of **all** frames 1..nframes minus the current frame's fixated pixels
   (:func:`other_map`, STAViS ``createShuffmap1.m``).
4. **Metrics** CC, SIM, NSS, AUC-Judd, sAUC (cvzoya, :mod:`avsal.metrics`).
5. **Aggregation**: per video and per metric, NaN frames are dropped, then the mean
   (:func:`nan_means`); dataset score = unweighted mean over the test-list entries of the
   splits pooled (a video listed in two splits counts twice); DIEM = mean of the per-split
   means (:func:`aggregate`).

Randomness: MATLAB's draws cannot be reproduced (spec section 4).  Here every video gets its
own generator, seeded from ``(seed, split, video)`` by :func:`video_seed`, and consumed in frame
order (AUC-Judd's jitter, then sAUC's draws, frame after frame, like one MATLAB process per
video), so results do not depend on how many processes run the videos.
"""

from __future__ import annotations

import hashlib
import math
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from avsal import metrics as _metrics
from avsal.errors import InputError

__all__ = [
    "STAVIS_FIRST_FRAME",
    "STAVIS_BLUR_SIGMA",
    "PAPER_METRICS",
    "METRIC_LABELS",
    "PROTOCOLS",
    "FRAME_MODES",
    "parse_metrics",
    "ProtocolConfig",
    "gaussian_kernel",
    "gaussian_blur",
    "normalize_image1",
    "postprocess_map",
    "stavis_uint8",
    "resize_to",
    "prepare_prediction",
    "select_frames",
    "other_map",
    "video_seed",
    "video_rng",
    "nan_means",
    "VideoGroundTruth",
    "Dhf1kGroundTruth",
    "VideoJob",
    "VideoResult",
    "evaluate_video",
    "DatasetScores",
    "aggregate",
]

#: First frame STAViS scores: its predictions are named ``pred_sal_{i+9:06d}.jpg`` (``test_sal.py``).
STAVIS_FIRST_FRAME = 9

#: Gaussian sigma (pixels, at prediction resolution) of STAViS's ``postprocessMap(I_pred, 2)``.
STAVIS_BLUR_SIGMA = 2.0

# The metric names, labels and aliases are owned by the table ``avsal.metrics.METRICS``;
# these names are re-exported here for the evaluation code and its callers.
PAPER_METRICS = _metrics.PAPER_METRICS
METRIC_LABELS = _metrics.METRIC_LABELS
parse_metrics = _metrics.parse_metrics

#: Protocol names accepted by :class:`ProtocolConfig`.
PROTOCOLS = ("stavis", "vinet")

#: Frame-selection modes (see :func:`select_frames`).
FRAME_MODES = ("stavis", "all")


@dataclass(frozen=True)
class ProtocolConfig:
    """How predictions are turned into scores.

    Attributes:
        protocol: ``"stavis"`` (post-processing of :func:`postprocess_map`, then resize) or
            ``"vinet"`` (resize only, as ViNet's ``eval_diem.m``, where ``postprocessMap`` is
            commented out; ViNet's script takes ``nframes`` from the count of ``eyeMap`` JPEGs,
            here it comes from the fold list in both protocols).
        frames: ``"stavis"`` (frames ``first_frame``..nframes) or ``"all"`` (1..nframes);
            default ``"stavis"`` for the STAViS protocol and ``"all"`` for ViNet's.
        first_frame: first frame scored in ``"stavis"`` mode (default 9, STAViS's +9 naming).
        blur_sigma: sigma in prediction pixels of the post-processing blur (default 2).
        uint8: pass each prediction through STAViS's uint8 quantisation first
            (:func:`stavis_uint8`); useful for float maps (``.npy``), a no-op in effect for
            maps already stored as 8-bit images after min-max scaling.
        metrics: :func:`avsal.metrics.compute_metrics` names, default the five paper metrics.
    """

    protocol: str = "stavis"
    frames: str | None = None
    first_frame: int = STAVIS_FIRST_FRAME
    blur_sigma: float = STAVIS_BLUR_SIGMA
    uint8: bool = False
    metrics: tuple[str, ...] = PAPER_METRICS

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.frames is None:
            object.__setattr__(self, "frames", "stavis" if self.protocol == "stavis" else "all")
        if self.frames not in FRAME_MODES:
            raise ValueError(f"frames must be one of {FRAME_MODES}, got {self.frames!r}")
        if int(self.first_frame) != self.first_frame or self.first_frame < 1:
            raise ValueError(f"first_frame must be a positive integer, got {self.first_frame!r}")
        if not (np.isfinite(self.blur_sigma) and self.blur_sigma > 0):
            raise ValueError(f"blur_sigma must be positive, got {self.blur_sigma!r}")
        object.__setattr__(self, "metrics", parse_metrics(self.metrics))

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "frames": self.frames, "first_frame": self.first_frame,
                "blur_sigma": self.blur_sigma if self.protocol == "stavis" else None,
                "uint8": self.uint8, "metrics": list(self.metrics)}


# --------------------------------------------------------------------------------------
# prediction post-processing
# --------------------------------------------------------------------------------------


def gaussian_kernel(sigma: float = STAVIS_BLUR_SIGMA) -> np.ndarray:
    """1-D factor ``g`` of MATLAB ``fspecial('gaussian', 2*ceil(3*sigma)+1, sigma)``.

    ``fspecial`` builds ``h(i, j) = exp(-(i^2 + j^2) / (2 sigma^2))`` on a square of side
    ``2*ceil(3 sigma)+1`` centred at 0 and divides by its sum; that equals
    ``outer(g, g)`` with ``g(i) = exp(-i^2 / (2 sigma^2)) / sum`` (its ``< eps*max`` cut never
    applies: the corner value is ``exp(-9)`` or more).  sigma = 2 gives 13 taps.

    Returns:
        float64 ``[2*ceil(3 sigma)+1]``, symmetric, sums to 1.
    """
    r = int(math.ceil(3.0 * sigma))
    i = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(i * i) / (2.0 * sigma * sigma))
    return g / g.sum()


def gaussian_blur(x: np.ndarray, sigma: float = STAVIS_BLUR_SIGMA) -> np.ndarray:
    """MATLAB ``imfilter(x, fspecial('gaussian', 2*ceil(3*sigma)+1, sigma), 'symmetric', 'conv')``.

    Separable form of the 2-D filter (:func:`gaussian_kernel`), mirror padding that repeats
    the edge pixel (``scipy.ndimage`` mode ``'reflect'``); the kernel is symmetric, so
    convolution = correlation.  Agrees with the 2-D ``scipy.ndimage.convolve`` (which the spec
    found identical to Octave to <= 2e-15) to ~1e-16.

    Args:
        x: float ``[H, W]``.
        sigma: pixels.

    Returns:
        float64 ``[H, W]``; NaN spreads to the whole neighbourhood as in MATLAB.
    """
    from scipy import ndimage

    g = gaussian_kernel(sigma)
    y = ndimage.correlate1d(np.asarray(x, dtype=np.float64), g, axis=0, mode="reflect")
    return ndimage.correlate1d(y, g, axis=1, mode="reflect")


def normalize_image1(x: np.ndarray) -> np.ndarray:
    """STAViS ``normalizeImage1.m`` (SaliencyToolbox): linear map of ``[min, max]`` to ``[0, 1]``.

    A constant map becomes 0.5 everywhere (``img - mx + 0.5``).  MATLAB's ``min``/``max`` skip
    NaN, so do these; an all-NaN map stays all NaN.

    Returns:
        float64 array of ``x``'s shape.
    """
    x = np.asarray(x, dtype=np.float64)
    mx, mn = _max_skipnan(x), _min_skipnan(x)
    if np.isnan(mx):
        return x.copy()
    if mx == mn:
        return x - mx + 0.5
    return (x - mn) / (mx - mn)


def postprocess_map(pred: np.ndarray, sigma: float = STAVIS_BLUR_SIGMA) -> np.ndarray:
    """STAViS ``postprocessMap(netMap, sigma)`` on a prediction read with ``im2double``.

    Steps (``eval_code/postprocessMap.m``): ``x = 255 * pred``; clip to [0, 255];
    ``x = x / max(x) * 255``; :func:`normalize_image1` (min-max to [0, 1], constant -> 0.5);
    :func:`gaussian_blur` with ``sigma`` (13x13 for sigma 2), at the prediction's resolution.

    Args:
        pred: float ``[h, w]``, normally in [0, 1] (uint8 image / 255).
        sigma: blur sigma in prediction pixels.

    Returns:
        float64 ``[h, w]`` in [0, 1].  An all-zero prediction gives an all-NaN map (0/0 in
        the original), which every metric scores as NaN, so the frame drops out of every mean.
        A constant non-zero prediction gives 0.5 everywhere (after resizing only constant up
        to rounding, see spec 1.1 step 5).

    Source: STAViS ``eval_code/postprocessMap.m``, ``normalizeImage1.m`` (spec 1.1 step 5).
    """
    x = 255.0 * np.asarray(pred, dtype=np.float64)
    np.clip(x, 0.0, 255.0, out=x)
    with np.errstate(invalid="ignore", divide="ignore"):
        x /= _max_skipnan(x)
        x *= 255.0
    return gaussian_blur(normalize_image1(x), sigma)


def _max_skipnan(x: np.ndarray) -> float:
    """MATLAB ``max(x(:))``: NaN skipped; NaN only when every value is NaN."""
    m = x.max()
    if np.isnan(m):
        m = np.nan if np.isnan(x).all() else np.nanmax(x)
    return float(m)


def _min_skipnan(x: np.ndarray) -> float:
    m = x.min()
    if np.isnan(m):
        m = np.nan if np.isnan(x).all() else np.nanmin(x)
    return float(m)


def stavis_uint8(pred: np.ndarray) -> np.ndarray:
    """STAViS's saved prediction: ``test_sal.py: normalize_data`` then ``im2double``.

    ``uint8(clip((x - min) * (255 / (max - min)), 0, 255))`` (truncation, not rounding), then
    / 255.  A constant map gives all zeros (numpy's 0/0 cast is undefined; STAViS would write
    an undefined image).  The JPEG compression of the saved file is not simulated.

    Returns:
        float64 ``[h, w]`` with values k/255.
    """
    x = np.asarray(pred, dtype=np.float64)
    mn, mx = float(np.nanmin(x)), float(np.nanmax(x))
    if not mx > mn:
        return np.zeros(x.shape)
    with np.errstate(invalid="ignore"):
        q = np.clip((x - mn) * (255.0 / (mx - mn)), 0.0, 255.0)
    q = np.nan_to_num(q, nan=0.0)
    return q.astype(np.uint8).astype(np.float64) / 255.0


# --------------------------------------------------------------------------------------
# MATLAB bicubic resize, as banded matrix products
# --------------------------------------------------------------------------------------

_BLOCK = 32  # output rows/columns per block of the banded products


@lru_cache(maxsize=64)
def _resize_plan(in_shape: tuple[int, int], out_shape: tuple[int, int]):
    """Per axis pass: (axis, [(o0, o1, lo, hi, W block)]) with MATLAB imresize's weights."""
    from avsal.evaluate.resize import _contributions

    scales = (out_shape[0] / in_shape[0], out_shape[1] / in_shape[1])
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    cur = list(in_shape)
    passes = []
    for axis in order:
        n_in, n_out = cur[axis], out_shape[axis]
        if n_in == n_out:
            continue
        w, src = _contributions(n_in, n_out, n_out / n_in)
        dense = np.zeros((n_out, n_in))
        np.add.at(dense, (np.repeat(np.arange(n_out), w.shape[1]), src.ravel()), w.ravel())
        blocks = []
        for o0 in range(0, n_out, _BLOCK):
            o1 = min(o0 + _BLOCK, n_out)
            nz = np.flatnonzero(np.any(dense[o0:o1] != 0.0, axis=0))
            lo, hi = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 1)
            blk = dense[o0:o1, lo:hi]
            blocks.append((o0, o1, lo, hi, np.ascontiguousarray(blk if axis == 0 else blk.T)))
        passes.append((axis, tuple(cur), n_out, blocks))
        cur[axis] = n_out
    return passes


def resize_to(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """MATLAB ``imresize(x, shape)`` (bicubic, antialiasing when shrinking), fast.

    Same weights, source taps, mirrored borders and pass order as
    :func:`avsal.evaluate.imresize` (spec section 3), applied as banded matrix products
    (blocks of 32 output lines), which is ~30x faster for a 112x112 -> 360x640 upsampling.
    The summation order differs, so values agree with ``imresize`` to ~1e-15 (not bitwise).

    Args:
        x: float ``[h, w]``.
        shape: output ``(rows, cols)``.

    Returns:
        float64 ``[rows, cols]``, C-contiguous (a copy of ``x`` when the shape already matches).
        A NaN anywhere in ``x`` can spread along the whole row/column block (unlike
        ``imresize``, where it stays local); every metric gives NaN for a map with a NaN anyway.

    Raises:
        ValueError: ``x`` not 2-D / empty, or a bad ``shape``.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"x must be a non-empty 2-D array, got shape {a.shape}")
    rows, cols = (int(s) for s in shape)
    if rows < 1 or cols < 1:
        raise ValueError(f"shape must be two positive integers, got {shape!r}")
    if a.shape == (rows, cols):
        return a.copy()
    for axis, in_shape, n_out, blocks in _resize_plan(a.shape, (rows, cols)):
        if axis == 0:
            out = np.empty((n_out, a.shape[1]))
            for o0, o1, lo, hi, w in blocks:
                np.matmul(w, a[lo:hi], out=out[o0:o1])
        else:
            out = np.empty((a.shape[0], n_out))
            for o0, o1, lo, hi, wt in blocks:
                np.matmul(a[:, lo:hi], wt, out=out[:, o0:o1])
        a = out
    return a


def prepare_prediction(pred: np.ndarray, gt_shape: tuple[int, int], config: ProtocolConfig) -> np.ndarray:
    """A prediction as the metrics see it: post-processed (STAViS) and resized to the GT size.

    * ``config.uint8``: :func:`stavis_uint8` first.
    * ``protocol="stavis"``: :func:`postprocess_map` (sigma ``config.blur_sigma``), then
      :func:`resize_to` ``gt_shape`` (``eval_*.m``: ``imresize(I_pred_post, size(I_eye))``).
    * ``protocol="vinet"``: :func:`resize_to` only (ViNet ``eval_diem.m``).

    Args:
        pred: float ``[h, w]`` as read by :func:`avsal.evaluate.readers.read_prediction`.
        gt_shape: ground-truth ``(H, W)``.

    Returns:
        float64 ``[H, W]``.
    """
    x = np.asarray(pred, dtype=np.float64)
    if config.uint8:
        x = stavis_uint8(x)
    if config.protocol == "stavis":
        x = postprocess_map(x, config.blur_sigma)
    return resize_to(x, gt_shape)


# --------------------------------------------------------------------------------------
# frames, other map, seeds, per-video means
# --------------------------------------------------------------------------------------


def select_frames(nframes: int, mode: str = "stavis", first_frame: int = STAVIS_FIRST_FRAME) -> range:
    """The 1-based frame numbers scored for a video of ``nframes`` frames.

    * ``"stavis"``: ``first_frame..nframes`` (default 9..nframes: STAViS writes
      ``pred_sal_{i+9:06d}.jpg`` for windows i = 0..nframes-2, and ``eval_*.m`` scores the files
      whose number is <= nframes, so frames 1..8 are never scored).  Applied to any layout, so
      other models are scored on the same frames as the STAViS tables.
    * ``"all"``: ``1..nframes``.

    Returns:
        A ``range`` (empty when ``nframes < first_frame`` in ``"stavis"`` mode).

    Raises:
        ValueError: unknown mode, or ``nframes`` < 0.
    """
    if nframes < 0:
        raise ValueError(f"nframes must be >= 0, got {nframes}")
    if mode == "stavis":
        return range(int(first_frame), int(nframes) + 1)
    if mode == "all":
        return range(1, int(nframes) + 1)
    raise ValueError(f"frame mode must be one of {FRAME_MODES}, got {mode!r}")


def other_map(union: np.ndarray, fix: np.ndarray) -> np.ndarray:
    """The sAUC "other" map of one frame: ``union`` with the frame's fixated pixels removed.

    ``eval_*.m``: ``shufMap1 = double(shufMap_all); shufMap1(eyeMap==1) = 0``, where
    ``shufMap_all`` (``createShuffmap1.m``) is the sum of the video's fixation maps of frames
    1..nframes, ``> 0``.  Note the ``== 1`` test (pixels of ``fix`` equal to 1 are removed).

    Args:
        union: bool or numeric ``[H, W]``; only ``> 0`` matters.
        fix: the frame's fixation map ``[H, W]``.

    Returns:
        bool ``[H, W]`` (the metric only uses ``other > 0``; MATLAB's is a double 0/1 map).
    """
    u = np.asarray(union)
    o = u.copy() if u.dtype == np.bool_ else u > 0
    o[np.asarray(fix) == 1] = False
    return o


def video_seed(seed: int, video: str, split: int) -> int:
    """The seed of one (split, video) evaluation: 64 bits of SHA-256 of ``"seed/split/video"``.

    Depends only on its arguments, so a run gives the same numbers whatever the number of
    worker processes or the order in which videos finish.
    """
    h = hashlib.sha256(f"{int(seed)}/{int(split)}/{video}".encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little")


def video_rng(seed: int, video: str, split: int) -> np.random.Generator:
    """``numpy.random.default_rng(video_seed(seed, video, split))``."""
    return np.random.default_rng(video_seed(seed, video, split))


def nan_means(values: dict[str, list[float]]) -> tuple[dict[str, float], dict[str, int]]:
    """Per metric: drop NaN frames, then the mean (``eval_*.m``: ``m(isnan(m)) = []; mean(m)``).

    Returns:
        ``(means, counts)``: the mean over the non-NaN values (NaN if there is none, MATLAB's
        ``mean([])``) and how many frames entered it.
    """
    means, counts = {}, {}
    for k, v in values.items():
        a = np.asarray(v, dtype=np.float64)
        a = a[~np.isnan(a)]
        counts[k] = int(a.size)
        means[k] = float(a.mean()) if a.size else float("nan")
    return means, counts


# --------------------------------------------------------------------------------------
# one video
# --------------------------------------------------------------------------------------


class VideoGroundTruth:
    """The ground truth of one video in the STAViS layout, read lazily per frame.

    On construction, ``fixMap_%05d.mat`` of every frame 1..nframes is read (needed for the
    sAUC union, ``eval_*.m`` does the same) and kept sparse.

    Args:
        annotation_dir: ``annotations/<DB>/<video>``.
        nframes: the fold list's frame count.

    Raises:
        InputError: the folder or a fixation map is missing or unreadable, or fixation maps
            differ in size.
    """

    def __init__(self, annotation_dir: str | Path, nframes: int):
        self.dir = Path(annotation_dir)
        if not self.dir.is_dir():
            raise InputError(self.dir, "annotation folder of this video not found")
        self.nframes = int(nframes)
        self.shape = None
        self._fix = {}
        self._binary = True  # every stored nonzero value is 1: fixations() can be uint8
        acc = None
        for k in range(1, self.nframes + 1):
            p = self.fix_path(k)
            if not p.exists():
                raise InputError(p, f"fixation map missing (the fold list gives {self.nframes} frames)")
            a = self._read_fix(p)
            if self.shape is None:
                self.shape = a.shape
                acc = np.zeros(a.size)
            elif a.shape != self.shape:
                raise InputError(p, f"fixation map size {a.shape[0]}x{a.shape[1]} differs from frame 1's "
                                    f"{self.shape[0]}x{self.shape[1]}")
            flat = np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
            idx = np.flatnonzero(flat)
            vals = flat[idx]
            self._binary = self._binary and bool(np.all(vals == 1.0))
            self._fix[k] = (idx, vals)
            acc[idx] += vals
        self.union = (acc > 0).reshape(self.shape)  # createShuffmap1.m: sum(...) > 0

    def _read_fix(self, p: Path) -> np.ndarray:
        from avsal.evaluate.readers import read_mat_map

        return read_mat_map(p, "eyeMap")

    def fix_path(self, k: int) -> Path:
        return self.dir / f"fixMap_{k:05d}.mat"

    def eye_path(self, k: int) -> Path:
        return self.dir / "maps" / f"eyeMap_{k:05d}.jpg"

    def fixations(self, k: int) -> np.ndarray:
        """``[H, W]`` fixation map of frame ``k``: uint8 0/1 when every map of the video is binary
        (the usual case; the metrics only test ``> 0``, ``!= 0`` and ``== 1``), else float64
        with the stored values."""
        idx, vals = self._fix[k]
        if self._binary:
            f = np.zeros(self.shape[0] * self.shape[1], np.uint8)
            f[idx] = 1
        else:
            f = np.zeros(self.shape[0] * self.shape[1])
            f[idx] = vals
        return f.reshape(self.shape)

    def density(self, k: int) -> np.ndarray:
        """float64 ``[H, W]`` density of frame ``k`` (``im2double`` of the JPEG).

        Raises:
            InputError: missing/unreadable file, or its size differs from the fixation maps'.
        """
        from avsal.evaluate.readers import read_image_map

        p = self.eye_path(k)
        d = read_image_map(p)
        if d.shape != self.shape:
            raise InputError(p, f"density map size {d.shape[0]}x{d.shape[1]} differs from the fixation map "
                                f"{self.fix_path(k).name} size {self.shape[0]}x{self.shape[1]}")
        return d


class Dhf1kGroundTruth(VideoGroundTruth):
    """The ground truth of one DHF1K-layout video (DHF1K, Hollywood-2, UCF-Sports), read lazily per frame.

    Density ``<video>/maps/NNNN.png`` (/255), fixations ``<video>/fixation/NNNN.png`` (nonzero =
    fixated) or ``fixation/maps/NNNN.mat`` (variable ``I``), frames 1..N with N the map count
    (:func:`avsal.evaluate.readers.read_dhf1k_video`).  Everything else, including the sAUC
    union of the video's fixations, as :class:`VideoGroundTruth`.

    Raises:
        InputError: as :func:`~avsal.evaluate.readers.read_dhf1k_video`, or a fixation map of
            another size than frame 1's.
    """

    def __init__(self, video_dir: str | Path, nframes: int | None = None):
        from avsal.evaluate.readers import read_dhf1k_video

        self.video = read_dhf1k_video(video_dir, ("maps", "fixation"))
        n = self.video.nframes if nframes is None else int(nframes)
        if n > self.video.nframes:
            raise InputError(video_dir, f"{n} frames asked, the folder holds {self.video.nframes} maps")
        super().__init__(video_dir, n)

    def _read_fix(self, p: Path) -> np.ndarray:
        from avsal.evaluate.readers import read_dhf1k_fixation

        return read_dhf1k_fixation(p)

    def fix_path(self, k: int) -> Path:
        return self.video.fixations[k - 1]

    def eye_path(self, k: int) -> Path:
        return self.video.maps[k - 1]


@dataclass
class VideoJob:
    """Everything one worker needs to score one (split, video) entry (picklable).

    Attributes:
        dataset: dataset name (for messages).
        split: 1, 2 or 3.
        video: video name from the fold list.
        nframes: frames of the video (fold list).
        annotation_dir: ``annotations/<DB>/<video>`` (STAViS layout) or ``<root>/<video>``
            (DHF1K layout).
        pred_dir: the video's prediction folder, or None if none was found.
        pred_spec: :class:`avsal.evaluate.readers.PredictionSpec`.
        config: :class:`ProtocolConfig`.
        seed: the run's seed (``--seed``).
        example: also return one frame's maps for the report's figure.
        index: position in the run (for ordering).
        gt_layout: ``"stavis"`` (:class:`VideoGroundTruth`) or ``"dhf1k"`` (:class:`Dhf1kGroundTruth`).
    """

    dataset: str
    split: int
    video: str
    nframes: int
    annotation_dir: str
    pred_dir: str | None
    pred_spec: object
    config: ProtocolConfig
    seed: int = 0
    example: bool = False
    index: int = 0
    gt_layout: str = "stavis"


@dataclass
class VideoResult:
    """The scores of one (split, video) entry.

    Attributes:
        split, video, nframes: as in the job.
        status: ``"ok"``, or ``"failed"`` (``error`` says why; no scores).
        error: message naming the offending file, or None.
        layout: prediction layout used (``stavis``, ``avsal``, ``numbered``, ``pattern``).
        pred_dir: prediction folder.
        frames: the frames scored (1-based), in order.
        pred_files: the prediction file of each scored frame.
        values: ``{metric: [value per scored frame]}`` (NaN kept here).
        missing: selected frames without a prediction file.
        means, counts: per metric, the NaN-dropped mean and the number of frames in it.
        example: for the figure, ``{"frame", "dens", "fix_yx", "pred"}`` (maps subsampled to
            at most 360 rows) or None.
    """

    split: int
    video: str
    nframes: int
    status: str = "ok"
    error: str | None = None
    layout: str | None = None
    pred_dir: str | None = None
    frames: list[int] = field(default_factory=list)
    pred_files: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)
    means: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    example: dict | None = None
    index: int = 0
    seconds: float = 0.0


def _subsample(a: np.ndarray, step: int) -> np.ndarray:
    return np.ascontiguousarray(a[::step, ::step], dtype=np.float32)


def evaluate_video(job: VideoJob) -> VideoResult:
    """Score one video: read its ground truth and predictions, run the protocol, average.

    Frame loop (``eval_<db>.m``): for each selected frame (:func:`select_frames`) that has a
    prediction file, in frame order: read it (:func:`~avsal.evaluate.readers.read_prediction`),
    :func:`prepare_prediction`, read the density and fixation map, build :func:`other_map`, and
    :func:`avsal.metrics.compute_metrics` with this video's generator (:func:`video_rng`).
    Selected frames without a file are listed in ``missing`` (a report item, not an error).

    Never raises for bad input: an :class:`~avsal.errors.InputError` (or any other error)
    makes the result ``status="failed"`` with the message; a video with no prediction at all
    fails with "no prediction files".

    Returns:
        :class:`VideoResult`.
    """
    import time

    from avsal.evaluate.readers import list_prediction_frames, read_prediction

    t0 = time.perf_counter()
    cfg = job.config
    res = VideoResult(job.split, job.video, job.nframes, pred_dir=job.pred_dir, index=job.index)
    try:
        wanted = list(select_frames(job.nframes, cfg.frames, cfg.first_frame))
        if not wanted:
            raise InputError(job.annotation_dir, f"no frame to score: the video has {job.nframes} frames and "
                                                 f"scoring starts at frame {cfg.first_frame}")
        if not Path(job.annotation_dir).is_dir():
            raise InputError(job.annotation_dir, f"annotation folder of video {job.video} (listed in the split "
                                                 f"{job.split} test list) not found")
        if job.pred_dir is None:
            raise InputError(job.pred_spec.root, f"no prediction folder for video {job.video} (split {job.split})")
        res.layout, files = list_prediction_frames(job.pred_dir, job.pred_spec, wanted)
        scored = [k for k in wanted if k in files]
        res.missing = [k for k in wanted if k not in files]
        if not scored:
            raise InputError(job.pred_dir, f"no prediction files for frames {wanted[0]}..{wanted[-1]} "
                                           f"(layout {res.layout}, first index {job.pred_spec.first_index})")
        gt = (Dhf1kGroundTruth(job.annotation_dir, job.nframes) if job.gt_layout == "dhf1k"
              else VideoGroundTruth(job.annotation_dir, job.nframes))
        gen = video_rng(job.seed, job.video, job.split)
        names = cfg.metrics
        vals = {m: [] for m in names}
        ex_frame = scored[len(scored) // 2] if job.example else None
        for k in scored:
            dens = gt.density(k)
            fix = gt.fixations(k)
            S = prepare_prediction(read_prediction(files[k]), gt.shape, cfg)
            other = other_map(gt.union, fix) if _metrics.needs_input(names, "other") else None
            out = _metrics.compute_metrics(S, fix=fix, dens=dens, other=other, names=names, rng=gen)
            for m in names:
                vals[m].append(out[m])
            res.frames.append(k)
            res.pred_files.append(str(files[k]))
            if k == ex_frame:
                step = max(1, int(math.ceil(gt.shape[0] / 360)))
                yx = np.argwhere(fix > 0)
                res.example = {"frame": k, "dens": _subsample(dens, step), "pred": _subsample(S, step),
                               "fix_yx": (yx / step).astype(np.float32), "shape": gt.shape}
        res.values = vals
        res.means, res.counts = nan_means(vals)
    except InputError as e:
        res.status, res.error = "failed", str(e)
    except Exception as e:  # a bug or an unforeseen input problem: report it, keep the other videos
        tb = traceback.extract_tb(e.__traceback__)[-1]
        res.status = "failed"
        res.error = f"{job.video}: unexpected {type(e).__name__}: {e} (at {Path(tb.filename).name}:{tb.lineno})"
    if res.status == "failed":
        res.frames, res.pred_files, res.values, res.means, res.counts, res.example = [], [], {}, {}, {}, None
    res.seconds = time.perf_counter() - t0
    return res


# --------------------------------------------------------------------------------------
# dataset aggregation
# --------------------------------------------------------------------------------------


@dataclass
class DatasetScores:
    """Dataset-level scores.

    Attributes:
        scores: ``{metric: value}`` the dataset score (see :func:`aggregate`).
        per_split: ``{split: {metric: mean over that split's videos}}``.
        n_videos: ``{metric: number of (split, video) entries in the score}``.
        n_listed: entries in the test lists of the splits evaluated.
        excluded: ``[(split, video, reason)]`` entries left out (failed, or NaN for a metric).
        aggregation: ``"pooled"`` or ``"split_mean"``.
    """

    scores: dict[str, float]
    per_split: dict[int, dict[str, float]]
    n_videos: dict[str, int]
    n_listed: int
    excluded: list[tuple[int, str, str]]
    aggregation: str

    @property
    def complete(self) -> bool:
        """True when every listed entry entered every metric's score."""
        return not self.excluded and all(n == self.n_listed for n in self.n_videos.values())


def aggregate(results: list[VideoResult], metrics: tuple[str, ...], aggregation: str = "pooled") -> DatasetScores:
    """Dataset score from per-video means (STAViS ``compute_all_<db>.m``).

    * ``"pooled"`` (AVAD, Coutrot1/2, ETMD, SumMe): mean over **all test-list entries of all
      splits pooled**, each entry weighted equally whatever its length (a video listed in two
      splits counts twice, once per split's model).
    * ``"split_mean"`` (DIEM): mean over each split's videos, then mean of the split means.

    Failed entries, and entries whose per-video mean of a metric is NaN (no frame with a
    finite value), are left out of that metric's mean and listed in ``excluded``; MATLAB
    would crash or print NaN there.  With one split both modes give the same number.

    Raises:
        ValueError: unknown ``aggregation``.
    """
    if aggregation not in ("pooled", "split_mean"):
        raise ValueError(f"aggregation must be 'pooled' or 'split_mean', got {aggregation!r}")
    excluded = []
    for r in results:
        if r.status != "ok":
            excluded.append((r.split, r.video, r.error or "failed"))
        else:
            for m in metrics:
                if np.isnan(r.means.get(m, np.nan)):
                    excluded.append((r.split, r.video, f"{_metrics.metric_label(m)}: no frame with a value"))
    splits = sorted({r.split for r in results})
    per_split: dict[int, dict[str, float]] = {}
    for s in splits:
        per_split[s] = {}
        for m in metrics:
            v = [r.means[m] for r in results if r.split == s and r.status == "ok" and not np.isnan(r.means[m])]
            per_split[s][m] = float(np.mean(v)) if v else float("nan")
    scores, n_videos = {}, {}
    for m in metrics:
        v = [r.means[m] for r in results if r.status == "ok" and not np.isnan(r.means[m])]
        n_videos[m] = len(v)
        if aggregation == "pooled":
            scores[m] = float(np.mean(v)) if v else float("nan")
        else:
            sm = [per_split[s][m] for s in splits if not np.isnan(per_split[s][m])]
            scores[m] = float(np.mean(sm)) if sm else float("nan")
    return DatasetScores(scores, per_split, n_videos, len(results), excluded, aggregation)
