"""The pure steps of the STAViS evaluation protocol (and ViNet's variant), no file access.

What a paper's table number is, step by step (``docs/evaluation.md`` §1; STAViS
``eval_code/eval_<db>.m`` and ``compute_all_<db>.m``), and which module owns each step:

1. **Frames** (``docs/evaluation.md`` §1.2): STAViS names the prediction of its i-th (0-based)
   16-frame test window ``pred_sal_{i+9:06d}.jpg`` (``test_sal.py``), so predictions exist for
   frames 9..nframes+7 and frames **9..nframes** are scored; frames 1..8 are never scored
   (:func:`select_frames`, mode ``"stavis"``).  Mode ``"all"`` scores 1..nframes.
2. **Prediction post-processing** (§1.3; :func:`postprocess_map`, STAViS ``postprocessMap.m``):
   channel 1 of the prediction image / 255, x255, clip to [0, 255], rescale so the max is
   255, min-max to [0, 1] (``normalizeImage1.m``), 13x13 Gaussian with sigma 2 px and mirrored
   borders at prediction resolution; then MATLAB's bicubic ``imresize`` to the ground-truth
   size (:func:`avsal.evaluate.resize.resize_to`).  ViNet's ``eval_diem.m`` skips the
   post-processing and only resizes (``protocol="vinet"``).  Optionally the prediction first goes
   through STAViS's uint8 quantisation (:func:`stavis_uint8`), for maps that were not saved as
   STAViS does.  :func:`prepare_prediction` chains these.
3. **Ground truth** per frame (§1.1, §1.4): density ``maps/eyeMap_%05d.jpg`` / 255, fixations
   ``fixMap_%05d.mat:eyeMap``, read by :class:`avsal.evaluate.readers.VideoGroundTruth`; the sAUC
   "other" map is the union of the same video's fixation maps of **all** frames 1..nframes minus
   the current frame's fixated pixels (:func:`other_map`, STAViS ``createShuffmap1.m``).
4. **Metrics** CC, SIM, NSS, AUC-Judd, sAUC (§1.5, §2; cvzoya, :mod:`avsal.metrics`).
5. **Aggregation** (§1.6): per video and per metric, NaN frames are dropped, then the mean
   (:func:`nan_means`); dataset score = unweighted mean over the test-list entries of the
   splits pooled (a video listed in two splits counts twice); DIEM = mean of the per-split
   means (:func:`avsal.evaluate.runner.aggregate`).

Running these steps over the videos of a dataset is :mod:`avsal.evaluate.runner`.

Randomness: MATLAB's draws cannot be reproduced (``docs/evaluation.md`` §4).  Here every video
gets its own generator, seeded from ``(seed, split, video)`` by :func:`video_seed`, and consumed in
frame order (AUC-Judd's jitter, then sAUC's draws, frame after frame, like one MATLAB process per
video), so results do not depend on how many processes run the videos.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from avsal import metrics as _metrics
from avsal.evaluate.resize import resize_to

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
    "prepare_prediction",
    "select_frames",
    "other_map",
    "video_seed",
    "video_rng",
    "nan_means",
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
    convolution = correlation.  Agrees with the 2-D ``scipy.ndimage.convolve`` (found identical
    to Octave to <= 2e-15, ``docs/evaluation.md`` §1.3) to ~1e-16.

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
        to rounding, see ``docs/evaluation.md`` §1.3).

    Source: STAViS ``eval_code/postprocessMap.m``, ``normalizeImage1.m`` (``docs/evaluation.md`` §1.3).
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


def prepare_prediction(pred: np.ndarray, gt_shape: tuple[int, int], config: ProtocolConfig) -> np.ndarray:
    """A prediction as the metrics see it: post-processed (STAViS) and resized to the GT size.

    * ``config.uint8``: :func:`stavis_uint8` first.
    * ``protocol="stavis"``: :func:`postprocess_map` (sigma ``config.blur_sigma``), then
      :func:`avsal.evaluate.resize.resize_to` ``gt_shape``
      (``eval_*.m``: ``imresize(I_pred_post, size(I_eye))``).
    * ``protocol="vinet"``: :func:`~avsal.evaluate.resize.resize_to` only (ViNet ``eval_diem.m``).

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
