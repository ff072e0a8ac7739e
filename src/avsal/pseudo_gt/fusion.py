"""Pure numpy steps of STANet's coarse-to-fine pseudo-ground-truth stage.

Each function replaces one idea that upstream (``guotaowang/STANet``, folder ``Coarse-Fine&Fusion``)
copied into dozens of per-class MATLAB scripts, or that the third-party Python port
``Full-Adder/STA_trial`` (``coarse2fine/*.py``) re-implemented. Nothing here reads or writes files;
see :mod:`avsal.pseudo_gt.pipeline` for the folder-level stages.

Conventions:

* maps are 2-D arrays ``[H, W]``; results are float64 (inputs of any real dtype are accepted; uint8 maps
  are read as ``value / 255``, like MATLAB's ``im2double``);
* boxes are ``(row0, row1, col0, col1)``, 0-based and **inclusive** (upstream writes the same four numbers
  1-based: ``min_row max_row min_col max_col``); ``fused[row0:row1 + 1, col0:col1 + 1]`` is the box.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

__all__ = ["Box", "minmax", "as_float_map", "resize_map", "fuse_cams", "crop_box", "adaptive_box",
           "average_boxes", "paste_cam", "temporal_smooth", "upstream_written", "sparsify"]

Box = tuple[int, int, int, int]
"""``(row0, row1, col0, col1)``, 0-based, inclusive."""


def as_float_map(m) -> np.ndarray:
    """A 2-D map as float64; integer images are scaled to [0, 1] (uint8 / 255, uint16 / 65535)."""
    a = np.asarray(m)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"expected a non-empty 2-D map [H, W], got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    return a.astype(np.float64, copy=True)


def minmax(m) -> np.ndarray:
    """Min-max normalise to [0, 1]; a constant map is returned unchanged.

    Replaces ``MatrixNormalization.m``: ``(M - min) / (max - min)`` when ``max != min``, otherwise ``M``
    itself (so a constant map keeps its value; it is *not* set to 0).
    """
    a = as_float_map(m)
    lo, hi = float(np.min(a)), float(np.max(a))
    if hi - lo != 0:
        a = (a - lo) / (hi - lo)
    return a


def resize_map(m, shape, method: str = "matlab") -> np.ndarray:
    """Resize a 2-D map to ``shape = (rows, cols)``.

    Args:
        m: ``[H, W]`` map (uint8 is read as ``/255``).
        shape: ``(rows, cols)``.
        method: ``"matlab"``: MATLAB ``imresize`` defaults (bicubic, antialiased when shrinking; see
            :func:`avsal.evaluate.resize.imresize`), which every upstream script uses; ``"bilinear"``:
            ``cv2.resize`` with ``INTER_LINEAR`` (``INTER_AREA`` when shrinking).

    Returns:
        float64 ``[rows, cols]``, not clipped (bicubic can overshoot slightly).
    """
    a = as_float_map(m)
    rows, cols = int(shape[0]), int(shape[1])
    if (rows, cols) == a.shape:
        return a
    if method == "matlab":
        from avsal.evaluate.resize import imresize

        return imresize(a, (rows, cols))
    if method == "bilinear":
        import cv2

        shrink = rows < a.shape[0] or cols < a.shape[1]
        return cv2.resize(a, (cols, rows), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    raise ValueError(f"unknown resize method {method!r} (matlab or bilinear)")


def fuse_cams(maps: Mapping[str, np.ndarray], probs: Mapping[str, float], eps: float = 1e-4) -> np.ndarray:
    """Probability-weighted fusion of branch CAMs.

    ``F = minmax((Σ_b minmax(M_b) · p_b + eps) / (Σ_b p_b + eps))``, as in ``Coarse_Fine_crop.m`` (coarse
    S/SA/ST maps, there called V/A/T) and ``CAMFuse.m`` (fine maps; its denominator misses the ``+`` at the
    line continuations, a syntax error, read here as the intended sum). A branch with ``p = 0`` has no
    influence; with every ``p = 0`` the result is the constant ``eps / eps = 1``.

    Args:
        maps: branch name → ``[H, W]`` map, all the same shape (any branch names; STANet uses S, SA, ST).
            Each is min-max normalised first.
        probs: branch name → fusion weight (the class probability); needs every key of ``maps``.
        eps: the ``1e-4`` upstream adds to numerator and denominator.

    Returns:
        float64 ``[H, W]`` in [0, 1] (a constant map keeps its value, see :func:`minmax`).

    Raises:
        ValueError: no maps, shapes differ, a probability is missing, negative or not finite.
    """
    if not maps:
        raise ValueError("fuse_cams needs at least one map")
    shape = None
    num = None
    den = 0.0
    for name, m in maps.items():
        if name not in probs:
            raise ValueError(f"no probability for branch {name!r}")
        p = float(probs[name])
        if not math.isfinite(p) or p < 0:
            raise ValueError(f"probability of branch {name!r} must be finite and >= 0, got {p}")
        a = minmax(m)
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise ValueError(f"map {name!r} has shape {a.shape}, expected {shape}")
        num = a * p if num is None else num + a * p
        den += p
    return minmax((num + eps) / (den + eps))


def crop_box(fused, factor: float = 2.0) -> Box | None:
    """Bounding box of the pixels with ``fused > factor · mean(fused)``.

    Replaces the box step of ``Coarse_Fine_crop.m`` (``find(F > 2*mean(mean(F)))`` then min/max of the
    rows and columns). Upstream writes the box 1-based; this returns it 0-based, inclusive.

    Returns:
        ``(row0, row1, col0, col1)``, or ``None`` when no pixel passes (upstream then skips the frame).
    """
    f = as_float_map(fused)
    rows, cols = np.nonzero(f > factor * np.mean(f))
    if rows.size == 0:
        return None
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def adaptive_box(fused, start: float = 2.0, step: float = 0.05, min_size: int = 100,
                 return_alpha: bool = False):
    """Box with an adaptive threshold (``STA_trial: coarse2fine/Coarse_refuse_SCAM.py``).

    The factor α starts at ``start`` and is lowered by ``step`` (repeated subtraction, as there) until the
    box of ``fused > α · mean(fused)`` is non-empty and spans at least ``min_size`` in both directions,
    measured as there: ``row1 - row0 >= min_size`` and ``col1 - col0 >= min_size`` (so at least
    ``min_size + 1`` pixels, inclusive). Once α < 0 every pixel passes, so the search stops there: if even the
    full map is smaller than ``min_size`` the full-map box is returned (STA_trial would loop forever).

    Returns:
        the box ``(row0, row1, col0, col1)`` (0-based, inclusive), or ``None`` for a map with no positive
        pixel and zero mean; with ``return_alpha``, ``(box, alpha)``.
    """
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    f = as_float_map(fused)
    alpha = float(start)
    box = None
    while True:
        box = crop_box(f, alpha)
        if box is not None and box[1] - box[0] >= min_size and box[3] - box[2] >= min_size:
            break
        if alpha < 0:  # every pixel (>= 0) already passes: nothing larger to find
            break
        alpha = alpha - step
    return (box, alpha) if return_alpha else box


def average_boxes(boxes: Mapping[int, Box], window: int = 3) -> dict[int, Box]:
    """Average each second's box with its neighbours (``STA_trial: coarse2fine/CAMsmooth_and_crop.py``).

    For second ``t`` the four coordinates are summed over ``t - k … t + k`` (``k = window // 2``); a neighbour
    without a box (outside the clip, or no CAM) counts as ``t``'s own box, as there at the clip ends; the
    sum is divided by ``window`` and truncated (``int``).

    Args:
        boxes: second → box of one clip.
        window: odd number of seconds (1 = unchanged).
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be odd and >= 1, got {window}")
    k = window // 2
    out = {}
    for t, own in boxes.items():
        acc = [0, 0, 0, 0]
        for j in range(-k, k + 1):
            b = boxes.get(t + j, own)
            acc = [a + int(v) for a, v in zip(acc, b)]
        out[t] = tuple(int(a / window) for a in acc)  # type: ignore[assignment]
    return out


def _grid_shape(grid) -> tuple[int, int]:
    if isinstance(grid, (int, np.integer)):
        return int(grid), int(grid)
    h, w = grid
    return int(h), int(w)


def paste_cam(cam, box: Box, grid=356, method: str = "matlab") -> np.ndarray:
    """Paste a fine CAM back into its box on a zero map (``RecoverCAM*.m``).

    The CAM (uint8 read as ``/255``, as ``im2double``) is resized to the box size
    ``(row1 - row0 + 1, col1 - col0 + 1)`` and written into ``zeros(grid)``. Values are clipped to [0, 1],
    which is what upstream's ``imwrite`` of the recovered ``_c.jpg`` does to the bicubic overshoot.

    Args:
        cam: ``[h, w]`` fine CAM (any size).
        box: ``(row0, row1, col0, col1)`` 0-based inclusive on the grid.
        grid: side (int) or ``(H, W)`` of the output map.
        method: see :func:`resize_map`.

    Returns:
        float64 ``[H, W]``.
    """
    gh, gw = _grid_shape(grid)
    r0, r1, c0, c1 = (int(v) for v in box)
    if not (0 <= r0 <= r1 < gh and 0 <= c0 <= c1 < gw):
        raise ValueError(f"box {box} is not inside the {gh}x{gw} grid")
    out = np.zeros((gh, gw), np.float64)
    out[r0:r1 + 1, c0:c1 + 1] = np.clip(resize_map(cam, (r1 - r0 + 1, c1 - c0 + 1), method), 0.0, 1.0)
    return out


def temporal_smooth(maps: Sequence[np.ndarray], window: int = 5, recursive: bool = True) -> list:
    """Recursive moving mean over consecutive frames of one video (``CAMsmooth*.m``).

    Upstream keeps a buffer of ``window`` (5) min-max normalised maps, starting with the first five; for each
    centre frame it computes ``S = minmax(mean(buffer))`` and then **replaces the newest buffer slot by S**,
    so later windows mix raw maps with earlier smoothed ones. Moving to the next centre drops the oldest
    slot and appends the next raw map. Exactly::

        buf = [minmax(m) for m in maps[:window]]; h = window // 2
        for c in h, h + 1, …, n - 1 - h:
            if c > h: buf = buf[1:] + [minmax(maps[c + h])]
            S[c] = minmax(((buf[0] + buf[1]) + …) / window)
            if recursive: buf[-1] = S[c]

    Args:
        maps: ``n`` maps ``[H, W]`` of consecutive frames (the caller splits a video at gaps).
        window: odd window length (upstream 5).
        recursive: replace the newest slot by the smoothed map (upstream); ``False`` is a plain centred
            moving mean.

    Returns:
        a list of ``n`` entries: the smoothed float64 map for every centre with a full window
        (``h <= c <= n - 1 - h``), ``None`` for the ``h`` frames at each end. See :func:`upstream_written`
        for the subset upstream actually writes.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be odd and >= 1, got {window}")
    n = len(maps)
    out: list = [None] * n
    if n < window:
        return out
    h = window // 2
    buf = [minmax(m) for m in maps[:window]]
    for c in range(h, n - h):
        if c > h:
            buf = buf[1:] + [minmax(maps[c + h])]
        acc = buf[0].copy()
        for b in buf[1:]:
            acc = acc + b
        s = minmax(acc / window)
        out[c] = s
        if recursive:
            buf[-1] = s
    return out


def upstream_written(n: int, window: int = 5) -> list[int]:
    """Positions (0-based) of a run of ``n`` frames for which ``CAMsmooth*.m`` writes a pseudo-GT.

    Upstream numbers frames from 1, computes the first window at ``index == 3`` without writing it, and
    writes ``index >= 4 & index < path_len - 5``, where ``path_len = length(dir(folder))`` counts ``.`` and
    ``..`` besides the ``n`` files, i.e. positions ``3 … n - 5``. Generalised to other windows as
    ``h + 1 … n - 1 - h - 2`` (``h = window // 2``).
    """
    h = window // 2
    return list(range(h + 1, n - h - 2))


def sparsify(m, factor: float = 3.0) -> np.ndarray:
    """Zero every value below ``factor · mean(m)`` (``CAMsmooth*.m``: ``VHH(VHH < 3*mean(mean(VHH))) = 0``).

    Values equal to the threshold are kept, as upstream. Returns a float64 copy.
    """
    a = as_float_map(m)
    a[a < factor * np.mean(a)] = 0.0
    return a
