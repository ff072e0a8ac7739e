"""Saliency metrics, numerically faithful to cvzoya's MATLAB ``code_forMetrics``.

These are the metrics of the MIT saliency benchmark code (github.com/cvzoya/saliency,
``code_forMetrics/``, commit ``5951cdc``), which STAViS (and, by its README, STANet) use
for their tables: CC, NSS, AUC-Judd, SIM and shuffled AUC, plus AUC-Borji, KL divergence
and information gain.  The definitions, index conventions and NaN conventions are written
down in ``docs/evaluation.md`` (§2, notation at its top); the parity fixtures in
``tests/data/parity`` check them against the original code run under GNU Octave 7.3.

Conventions shared by every function
------------------------------------
* Maps are 2-D arrays ``[H, W]`` indexed ``[row, col]``.  Every map passed to one call
  must have the same shape; **no resizing is done here** (MATLAB's ``imresize`` to the
  fixation-map size belongs to the evaluation protocol, see
  :func:`avsal.evaluate.imresize`).  A shape mismatch raises ``ValueError``.
* All arithmetic is float64.  Inputs of any real dtype are converted with their values
  unchanged (like MATLAB ``double``; there is no ``/255`` for integer input: pass maps
  already scaled as ``im2double`` would, which only matters for AUC-Judd's jitter).
* Linear pixel indices (the injected draws of AUC-Borji / shuffled AUC) are 0-based and
  **column-major** (MATLAB order): pixel ``(r, c)`` has index ``r + c * H``.
* "min-max" means ``(x - min x) / (max x - min x)`` over the whole map; ``std`` is
  normalised by ``N - 1``; ``EPS = 2**-52`` (MATLAB ``eps``).
* A saliency map (or density / baseline) containing NaN or inf gives NaN.  (STAViS's
  post-processing turns an all-zero prediction into an all-NaN map, for which the original
  code returns NaN from every metric.)
* Randomness: the functions that draw random numbers take ``rng``, a
  :class:`numpy.random.Generator` (consumed in place) or an int seed.  ``rng=None`` uses a
  fresh ``numpy.random.default_rng(DEFAULT_SEED)`` (``DEFAULT_SEED = 0``) on every call, so
  results are deterministic.  MATLAB's own random streams cannot be reproduced
  (``docs/evaluation.md`` §4); the test hooks ``jitter=<array>``, ``indices=`` and
  ``permutations=`` replay recorded draws instead.
* Speed: the per-map work is vectorised, and full-size temporaries live in per-thread
  scratch buffers kept between calls (a few arrays of H*W values per thread, only for maps
  of at most 2**21 pixels), because fresh multi-megabyte allocations cost more in page
  faults than the arithmetic.  No returned value ever aliases them.
"""

from __future__ import annotations

import numbers
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

__all__ = [
    "EPS",
    "DEFAULT_SEED",
    "cc",
    "nss",
    "sim",
    "kld",
    "info_gain",
    "auc_judd",
    "auc_borji",
    "auc_shuffled",
    "compute_metrics",
    "MetricSpec",
    "METRICS",
    "PAPER_METRICS",
    "METRIC_LABELS",
    "METRIC_NAMES",
    "metric_label",
    "needs_input",
    "parse_metrics",
]

#: MATLAB ``eps`` (2**-52).
EPS = 2.0 ** -52

#: Seed of the generator used when ``rng`` is None.
DEFAULT_SEED = 0

# Tolerance of the end-point test of Octave's / MATLAB's colon operator (3 eps relative).
_RANGE_TOL = 3.0 * EPS


# --------------------------------------------------------------------------------------
# scratch buffers and input handling
# --------------------------------------------------------------------------------------

_tls = threading.local()
_MAX_CACHED = 1 << 21  # elements; larger scratch arrays are allocated per call


def _scratch(slot: str, n: int, dtype=np.float64) -> np.ndarray:
    """A per-thread reusable 1-D buffer of ``n`` elements (contents undefined).

    Each slot is used by at most one live array at a time within a call.
    """
    if n > _MAX_CACHED:
        return np.empty(n, dtype)
    bufs = getattr(_tls, "bufs", None)
    if bufs is None:
        bufs = _tls.bufs = {}
    key = (slot, np.dtype(dtype).char)
    buf = bufs.get(key)
    if buf is None or buf.size < n:
        buf = bufs[key] = np.empty(n, dtype)
    return buf[:n]


def _mask(slot: str, a: np.ndarray, op) -> np.ndarray:
    """Boolean ``op(a, 0)`` in a scratch buffer, shaped like ``a``."""
    out = _scratch(slot, a.size, np.bool_).reshape(a.shape)
    op(a, 0, out=out)
    return out


def _as_map(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [H, W], got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _as_fix(x, name: str = "fix") -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [H, W], got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric or boolean array, got dtype {a.dtype}")
    return a


def _same_shape(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} shape {a.shape} != {b_name} shape {b.shape}; maps must already have the "
            "same size (resize the prediction to the fixation-map size first, e.g. with "
            "avsal.evaluate.imresize)"
        )


def _get_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(DEFAULT_SEED)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng)!r}")


def _check_splits(n_splits, step) -> tuple[int, float]:
    if not isinstance(n_splits, numbers.Integral) or isinstance(n_splits, bool) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer, got {n_splits!r}")
    step = float(step)
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive finite number, got {step!r}")
    return int(n_splits), step


class _Map:
    """A float64 map plus lazily computed statistics shared between metrics."""

    __slots__ = ("a", "role", "flat", "n", "mn", "mx", "finite", "const", "_norm", "_centred",
                 "_ss")

    def __init__(self, a: np.ndarray, role: str):
        self.a = a
        self.role = role  # names this map's scratch slots
        self.flat = a.reshape(-1)
        self.n = a.size
        self.mn = float(a.min()) if a.size else np.nan
        self.mx = float(a.max()) if a.size else np.nan
        # np.min / np.max propagate NaN, and an inf shows up in one of them.
        self.finite = bool(np.isfinite(self.mn) and np.isfinite(self.mx))
        self.const = self.mn == self.mx
        self._norm = None
        self._centred = None
        self._ss = None

    @property
    def any_nonzero(self) -> bool:
        return not (self.mn == 0.0 and self.mx == 0.0)

    def norm(self) -> np.ndarray:
        """Full min-max normalised map (flat); callers must not modify it."""
        if self._norm is None:
            out = np.subtract(self.flat, self.mn, out=_scratch(self.role + ".norm", self.n))
            out /= self.mx - self.mn
            self._norm = out
        return self._norm

    def norm_at(self, idx) -> np.ndarray:
        """Min-max normalised values at flat (row-major) indices / mask ``idx``.

        Elementwise identical to ``norm()[idx]`` without normalising the whole map.
        """
        if self._norm is not None:
            return self._norm[idx]
        out = np.subtract(self.flat[idx], self.mn)
        out /= self.mx - self.mn
        return out

    def centred(self) -> tuple[np.ndarray, float]:
        """``(a - mean(a)).ravel()`` and its sum of squares."""
        if self._centred is None:
            c = np.subtract(self.flat, self.flat.mean(), out=_scratch(self.role + ".cent", self.n))
            self._centred = c
            self._ss = float(np.dot(c, c))
        return self._centred, self._ss


def _trapz_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Trapezoidal area along the last axis (MATLAB/Octave ``trapz(x, y)``)."""
    return 0.5 * np.sum(np.diff(x, axis=-1) * (y[..., :-1] + y[..., 1:]), axis=-1)


# --------------------------------------------------------------------------------------
# CC, NSS, SIM, KLdiv, InfoGain
# --------------------------------------------------------------------------------------


def _cc(S: _Map, G: _Map) -> float:
    if not (S.finite and G.finite) or S.const or G.const:
        return np.nan
    a, ssa = S.centred()
    b, ssb = G.centred()
    return float(np.dot(a, b) / np.sqrt(ssa * ssb))


def cc(sal, dens) -> float:
    """Pearson linear correlation coefficient CC between a saliency map and a density map.

    Definition (cvzoya ``CC.m``; both maps z-scored with ``std`` normalised by N-1, then
    ``corr2``, which is invariant to the z-scoring)::

        CC = sum((S - mean S) * (G - mean G)) / sqrt(sum((S - mean S)**2) * sum((G - mean G)**2))

    Parameters
    ----------
    sal : array_like [H, W], real
        Saliency map, any range (negative values from resizing overshoot are kept).
    dens : array_like [H, W], real
        Continuous fixation density ("fixation map", STAViS ``eyeMap_*.jpg`` / 255).

    Returns
    -------
    float
        In [-1, 1].  NaN if either map is exactly constant (this includes an all-zero
        density, the ``0/0`` of the original) or contains NaN/inf.

    Raises
    ------
    ValueError
        If the maps are not 2-D or their shapes differ.

    Source: cvzoya ``code_forMetrics/CC.m``, commit 5951cdc (``docs/evaluation.md`` §2.5).
    """
    S = _Map(_as_map(sal, "sal"), "S")
    G = _Map(_as_map(dens, "dens"), "G")
    _same_shape(S.a, "sal", G.a, "dens")
    return _cc(S, G)


def _nss(S: _Map, fmask: np.ndarray) -> float:
    if not S.finite or S.const or not fmask.any():
        return np.nan
    c, ss = S.centred()
    sd = np.sqrt(ss / (S.n - 1))
    return float(np.mean(c[fmask.reshape(-1)] / sd))


def nss(sal, fix) -> float:
    """Normalized Scanpath Saliency.

    Definition (cvzoya ``NSS.m``)::

        z = (S - mean(S)) / std(S)          # std normalised by N-1
        NSS = mean(z[fix != 0])             # each fixated pixel counted once

    Parameters
    ----------
    sal : array_like [H, W], real
        Saliency map, any range (no min-max: the z-score makes it irrelevant).
    fix : array_like [H, W], bool or real
        Binary fixation map; every nonzero pixel is a fixation.

    Returns
    -------
    float
        NaN if ``fix`` has no nonzero pixel (``mean([])``), if ``sal`` is exactly constant
        (``0/0``), or if ``sal`` contains NaN/inf.

    Raises
    ------
    ValueError
        If the maps are not 2-D or their shapes differ.

    Source: cvzoya ``code_forMetrics/NSS.m``, commit 5951cdc (``docs/evaluation.md`` §2.4).
    """
    S = _Map(_as_map(sal, "sal"), "S")
    F = _as_fix(fix)
    _same_shape(S.a, "sal", F, "fix")
    return _nss(S, _mask("mask.nz", F, np.not_equal))


def _sim_dist(M: _Map, slot: str) -> np.ndarray | None:
    """similarity.m's per-map normalisation (in a scratch buffer); None = all-NaN map (0/0)."""
    out = _scratch(slot, M.n)
    if not M.any_nonzero:
        out[...] = 0.0
        return out
    if M.const:
        return None
    if M._norm is not None:
        np.copyto(out, M._norm)
    else:
        np.subtract(M.flat, M.mn, out=out)
        out /= M.mx - M.mn
    out /= out.sum()
    return out


def _sim(S: _Map, G: _Map) -> float:
    if not (S.finite and G.finite):
        return np.nan
    a = _sim_dist(S, "sim.a")
    if a is None:
        return np.nan
    b = _sim_dist(G, "sim.b")
    if b is None:
        return np.nan
    np.minimum(a, b, out=b)
    return float(b.sum())


def sim(sal, dens) -> float:
    """Similarity SIM (histogram intersection) between a saliency map and a density map.

    Definition (cvzoya ``similarity.m``): each map that has any nonzero value is min-max
    normalised to [0, 1] and then divided by its sum; an all-zero map stays all zero::

        SIM = sum(min(P, Q)),   P = mm(S) / sum(mm(S)),   Q = mm(G) / sum(mm(G))

    The min-max step is what distinguishes this SIM from pysaliency's.

    Parameters
    ----------
    sal, dens : array_like [H, W], real
        Saliency map and continuous fixation density (any range).

    Returns
    -------
    float
        In [0, 1].  NaN if either map is a nonzero constant (min-max gives ``0/0``) or
        contains NaN/inf.  An **all-zero density gives 0, not NaN** (and so does an all-zero
        saliency map).

    Raises
    ------
    ValueError
        If the maps are not 2-D or their shapes differ.

    Source: cvzoya ``code_forMetrics/similarity.m``, commit 5951cdc (``docs/evaluation.md`` §2.6).
    """
    S = _Map(_as_map(sal, "sal"), "S")
    G = _Map(_as_map(dens, "dens"), "G")
    _same_shape(S.a, "sal", G.a, "dens")
    return _sim(S, G)


def _kld(S: _Map, G: _Map) -> float:
    if not (S.finite and G.finite):
        return np.nan
    p = _scratch("kld.p", S.n)
    q = _scratch("kld.q", G.n)
    if S.any_nonzero:
        np.divide(S.flat, S.flat.sum(), out=p)
    else:
        p[...] = S.flat
    if G.any_nonzero:
        np.divide(G.flat, G.flat.sum(), out=q)
    else:
        q[...] = G.flat
    with np.errstate(divide="ignore", invalid="ignore"):
        p += EPS  # p + eps
        np.divide(q, p, out=p)  # q ./ (p + eps)
        p += EPS  # eps + q ./ (p + eps)
        np.log(p, out=p)
        p *= q
        return float(p.sum())


def kld(sal, dens) -> float:
    """Kullback-Leibler divergence KL(density || saliency), natural log.

    Definition (cvzoya ``KLdiv.m``): each map with any nonzero value is divided by its sum
    (no min-max, no clipping, negative values pass through)::

        KL = sum(Q * log(EPS + Q / (P + EPS))),   P = S / sum(S),   Q = G / sum(G)

    Parameters
    ----------
    sal, dens : array_like [H, W], real
        Saliency map and continuous fixation density.

    Returns
    -------
    float
        >= 0 up to the ``EPS`` terms (a perfect prediction gives about -5e-11).  An all-zero
        density gives 0; a constant saliency map is valid (not NaN).  NaN if a map contains
        NaN/inf.

    Raises
    ------
    ValueError
        If the maps are not 2-D or their shapes differ.

    Source: cvzoya ``code_forMetrics/KLdiv.m``, commit 5951cdc (``docs/evaluation.md`` §2.7).
    """
    S = _Map(_as_map(sal, "sal"), "S")
    G = _Map(_as_map(dens, "dens"), "G")
    _same_shape(S.a, "sal", G.a, "dens")
    return _kld(S, G)


def info_gain(sal, fix, baseline) -> float:
    """Information gain of a saliency map over a baseline map, in bits per fixated pixel.

    Definition (cvzoya ``InfoGain.m``): both maps are min-max normalised, then divided by
    their sums::

        P = mm(S) / sum(mm(S)),   B = mm(baseline) / sum(mm(baseline))
        IG = mean over pixels with fix != 0 of  log2(EPS + P) - log2(EPS + B)

    Parameters
    ----------
    sal : array_like [H, W], real
        Saliency map.
    fix : array_like [H, W], bool or real
        Binary fixation map (nonzero = fixated).
    baseline : array_like [H, W], real
        Baseline map (e.g. a centre bias), same size as ``fix``.

    Returns
    -------
    float
        NaN if ``sal`` or ``baseline`` is exactly constant (``0/0``) or contains NaN/inf, or if
        ``fix`` has no nonzero pixel.

    Raises
    ------
    ValueError
        If the maps are not 2-D or their shapes differ.

    Source: cvzoya ``code_forMetrics/InfoGain.m``, commit 5951cdc (``docs/evaluation.md`` §2.8).
    """
    S = _Map(_as_map(sal, "sal"), "S")
    F = _as_fix(fix)
    B = _Map(_as_map(baseline, "baseline"), "B")
    _same_shape(S.a, "sal", F, "fix")
    _same_shape(B.a, "baseline", F, "fix")
    locs = _mask("mask.nz", F, np.not_equal).reshape(-1)
    if not (S.finite and B.finite) or S.const or B.const or not locs.any():
        return np.nan
    p = S.norm()
    b = B.norm()
    p_loc = p[locs] / p.sum()
    b_loc = b[locs] / b.sum()
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log2(EPS + p_loc) - np.log2(EPS + b_loc)))


# --------------------------------------------------------------------------------------
# AUC-Judd
# --------------------------------------------------------------------------------------


def _judd_from_normalised(v: np.ndarray, pmask: np.ndarray) -> float:
    """AUC-Judd of a min-max normalised flat map ``v`` (values in [0, 1]).

    ``A_i = #{v >= t_i}`` for the fixated values ``t_i`` is counted exactly without sorting
    the whole map: pixels are binned by ``floor(v * M)`` (M a power of two, so the binning is
    monotone); pixels in bins that hold no threshold are counted from the bin histogram, the
    few pixels that share a bin with some threshold are sorted and searched exactly.
    """
    n = v.size
    pos = v[pmask]
    n_f = pos.size
    u = np.sort(pos)  # thresholds, ascending
    m_bins = int(min(1 << 16, max(1 << 10, 1 << int(np.ceil(np.log2(64 * n_f))))))
    b = _scratch("judd.bin", n, np.int32)
    np.multiply(v, m_bins, out=b, casting="unsafe")  # truncation: 0..m_bins, monotone in v
    bt = np.multiply(u, m_bins).astype(np.int32)
    hist = np.bincount(b, minlength=m_bins + 1)
    flag = np.zeros(m_bins + 1, dtype=bool)
    flag[bt] = True
    in_shared = flag.take(b, out=_scratch("judd.sel", n, np.bool_), mode="clip")
    shared = np.sort(v[in_shared])  # pixels sharing a bin with some threshold
    hist[flag] = 0
    # above[k] = number of non-shared pixels in bins >= k (above[m_bins + 1] = 0)
    above = np.zeros(m_bins + 2, dtype=np.int64)
    above[:-1] = np.cumsum(hist[::-1])[::-1]
    a_asc = above[bt + 1] + (shared.size - np.searchsorted(shared, u, side="left"))
    a_desc = a_asc[::-1]  # thresholds sorted descending, as in the original
    i = np.arange(1, n_f + 1)
    x = np.empty(n_f + 2)
    y = np.empty(n_f + 2)
    x[0] = y[0] = 0.0
    x[-1] = y[-1] = 1.0
    y[1:-1] = i / n_f
    with np.errstate(divide="ignore", invalid="ignore"):  # every pixel fixated: 0/0 -> NaN
        x[1:-1] = (a_desc - i) / (n - n_f)
    return float(_trapz_rows(x, y))


def _auc_judd(S: _Map, pmask: np.ndarray, jitter, rng) -> float:
    if not pmask.any() or not S.finite:
        return np.nan
    if jitter is None or isinstance(jitter, (bool, np.bool_, numbers.Integral)):
        if jitter:
            draws = _get_rng(rng).random(out=_scratch("judd.v", S.n))
        else:
            draws = None
    else:
        draws = np.asarray(jitter, dtype=np.float64)
        if draws.shape != S.a.shape:
            raise ValueError(f"jitter array shape {draws.shape} != sal shape {S.a.shape}")
    if draws is None:
        if S.const:
            return np.nan
        v = S.norm()
    else:
        v = _scratch("judd.v", S.n)
        np.divide(draws.reshape(-1), 1e7, out=v)  # rand(size(S)) / 10000000, raw scale
        v += S.flat
        mn = v.min()
        mx = v.max()
        if not mx > mn:
            return np.nan
        v -= mn
        v /= mx - mn
    return _judd_from_normalised(v, pmask.reshape(-1))


def auc_judd(sal, fix, jitter=True, rng=None) -> float:
    """AUC-Judd: ROC area with the fixated saliency values as thresholds.

    Definition (cvzoya ``AUC_Judd.m``):

    1. If ``jitter``: ``S = S + U / 1e7`` with ``U`` uniform in [0, 1) per pixel, added on
       the raw scale, before normalisation (breaks ties at random).
    2. ``S`` = min-max(S).
    3. Thresholds ``t_1 >= ... >= t_n`` = the values of ``S`` at the ``n`` pixels with
       ``fix > 0``, sorted descending, duplicates kept.
    4. ``TP_i = i / n`` (rank based, also for tied thresholds) and
       ``FP_i = (#{all N pixels with S >= t_i} - i) / (N - n)``.
    5. Score = trapezoidal area under (0,0), (FP_i, TP_i)..., (1,1), FP on the x axis.

    Computed exactly with one sort of the fixated values and a histogram of the map (no
    per-threshold pass over the map).

    Parameters
    ----------
    sal : array_like [H, W], real
        Saliency map (any range; the jitter is relative to its raw scale, so pass maps in
        [0, 1] like MATLAB's ``im2double`` output).
    fix : array_like [H, W], bool or real
        Binary fixation map; pixels with ``fix > 0`` are fixated (each counted once).
    jitter : bool or array_like [H, W] of float, default True
        True (or 1): draw the jitter from ``rng``; False (or 0): no jitter (deterministic);
        an array:
        the uniform [0, 1) draws to use, element ``[r, c]`` added to pixel ``[r, c]`` as
        ``draw / 1e7`` (replays a recorded ``rand(size(S))``).
    rng : numpy.random.Generator or int, optional
        Source of the jitter; None means ``default_rng(DEFAULT_SEED)`` (seed 0).

    Returns
    -------
    float
        In [0, 1].  NaN if ``fix`` has no fixated pixel (or every pixel is fixated:
        ``FP = 0/0``), if ``sal`` contains NaN/inf, or if the (jittered) map is exactly constant (with ``jitter=False`` a constant map is NaN;
        with jitter on it scores about 0.5 at random, as in the original).

    Raises
    ------
    ValueError
        If the maps are not 2-D, their shapes differ, or the jitter array has another shape.

    Source: cvzoya ``code_forMetrics/AUC_Judd.m``, commit 5951cdc (``docs/evaluation.md`` §2.1).
    """
    S = _Map(_as_map(sal, "sal"), "S")
    F = _as_fix(fix)
    _same_shape(S.a, "sal", F, "fix")
    return _auc_judd(S, _mask("mask.pos", F, np.greater), jitter, rng)


# --------------------------------------------------------------------------------------
# AUC-Borji and shuffled AUC: the 0.1-grid ROC, vectorised over splits
# --------------------------------------------------------------------------------------


def _grid_index(v: np.ndarray, step: float) -> np.ndarray:
    """Exact ``max{k >= 0 : k * step <= v}`` for values ``v >= 0`` (int64)."""
    c = np.floor(v / step).astype(np.int64)
    c -= (c * step > v)
    c += ((c + 1) * step <= v)
    return c


def _near_grid(v: np.ndarray, c: np.ndarray, step: float) -> np.ndarray:
    """True where the colon range ``0:step:v`` gets an extra end point clipped to ``v``.

    MATLAB's and Octave's colon operator accept a last element that exceeds the limit by
    rounding only (relative tolerance 3 eps) and clip it to the limit: ``0:0.1:0.6`` ends at
    0.6 although ``6 * 0.1 > 0.6`` in floating point.  ``c`` is ``_grid_index(v, step)``.
    """
    nxt = (c + 1) * step
    return (nxt - v) < nxt * _RANGE_TOL


def _ge_counts(c: np.ndarray, nk: int) -> np.ndarray:
    """``#{c >= k}`` for k = 0 .. nk-1, from grid indices ``c`` (any shape, flattened)."""
    return np.cumsum(np.bincount(c.reshape(-1), minlength=nk)[::-1])[::-1]


def _grid_roc_area(tp_ge: np.ndarray, fp_ge: np.ndarray, n_pos: int, n_neg: int) -> np.ndarray:
    """Per-split trapezoidal ROC areas from threshold counts on the grid.

    ``tp_ge[s, k]`` / ``fp_ge[s, k]`` = number of positives / negatives ``>=`` the k-th grid
    threshold, k ascending (shape (n_splits, nk), ``tp_ge`` may be (nk,)).  Points are taken
    highest threshold first after (0, 0), then (1, 1).  Grid values above a split's own
    maximum give (0, 0) points, which add zero area, so every split can use the same grid.
    """
    n_splits, nk = fp_ge.shape
    x = np.zeros((n_splits, nk + 2))
    y = np.zeros((n_splits, nk + 2))
    np.divide(fp_ge[:, ::-1], n_neg, out=x[:, 1:-1])
    np.divide(np.broadcast_to(tp_ge, (n_splits, nk))[:, ::-1], n_pos, out=y[:, 1:-1])
    x[:, -1] = 1.0
    y[:, -1] = 1.0
    return _trapz_rows(x, y)


def _grid_auc(pos: np.ndarray, neg: np.ndarray, step: float) -> np.ndarray:
    """Per-split ROC area of AUC_Borji.m / AUC_shuffled.m.

    ``pos``: (n_pos,) normalised values at the fixated pixels; ``neg``: (n_neg, n_splits)
    normalised values of each split's negatives.  For split s the thresholds are the colon
    range ``0:step:m_s`` (m_s = max of pos and of that split's negatives), highest first:
    ``k * step`` for every k >= 0 with ``k * step <= m_s`` and, when ``m_s`` is a multiple of
    ``step`` up to rounding (see :func:`_near_grid`), a last element equal to ``m_s``.
    ``TP(t) = #{pos >= t} / n_pos``, ``FP(t) = #{neg >= t} / n_neg``; ROC (0,0),
    thresholds, (1,1); trapezoid.  Counted with one histogram per split (exact ``>=``).
    """
    n_pos = pos.size
    n_neg, n_splits = neg.shape
    cp = _grid_index(pos, step)
    cn = _grid_index(neg, step)
    cm = np.maximum(cn.max(axis=0), cp.max())  # grid index of m_s, per split
    nk = int(cm.max()) + 2  # k = 0 .. max(cm) + 1 (the last slot for the clipped end point)
    tp = np.broadcast_to(_ge_counts(cp, nk), (n_splits, nk))
    fp = np.empty((n_splits, nk), dtype=np.int64)
    chunk = max(1, min(n_splits, (1 << 22) // nk))  # bounds memory when step is tiny
    for s0 in range(0, n_splits, chunk):
        s1 = min(n_splits, s0 + chunk)
        keys = cn[:, s0:s1] + np.arange(s1 - s0) * nk
        h = np.bincount(keys.reshape(-1), minlength=(s1 - s0) * nk).reshape(s1 - s0, nk)
        fp[s0:s1] = np.cumsum(h[:, ::-1], axis=1)[:, ::-1]
    m = np.maximum(neg.max(axis=0), pos.max())
    extra = _near_grid(m, cm, step)
    if extra.any():
        tp = tp.copy()
        se = np.flatnonzero(extra)
        me = m[se]
        tp[se, cm[se] + 1] = np.count_nonzero(pos[:, None] >= me, axis=0)
        fp[se, cm[se] + 1] = np.count_nonzero(neg[:, se] >= me, axis=0)
    return _grid_roc_area(tp, fp, n_pos, n_neg)


def _auc_borji(S: _Map, pmask: np.ndarray, n_splits: int, step: float, indices, rng) -> float:
    n_f = int(np.count_nonzero(pmask))
    if n_f <= 1 or not S.finite or S.const:
        return np.nan
    h, w = S.a.shape
    n = S.n
    if indices is None:
        idx = _get_rng(rng).integers(0, n, size=(n_f, n_splits))
    else:
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise ValueError(f"indices must be an integer array, got dtype {idx.dtype}")
        if idx.shape != (n_f, n_splits):
            raise ValueError(
                f"indices shape {idx.shape} != (n_fix, n_splits) = {(n_f, n_splits)}"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"indices must be 0-based pixel indices in [0, {n})")
        idx = idx.astype(np.int64)
    # column-major linear index k -> row-major flat index
    flat = (idx % h) * w + idx // h
    pos = S.norm_at(pmask.reshape(-1))
    neg = S.norm_at(flat)
    return float(np.mean(_grid_auc(pos, neg, step)))


def auc_borji(sal, fix, n_splits=100, step=0.1, indices=None, rng=None) -> float:
    """AUC-Borji: 0.1-grid ROC against uniformly random pixels, averaged over splits.

    Definition (cvzoya ``AUC_Borji.m``):

    1. ``S`` = min-max(S) (no jitter).  ``pos`` = S at the ``n`` pixels with ``fix > 0``.
    2. For each of ``n_splits`` splits, ``n`` negatives = S at pixels drawn uniformly
       **with replacement from all pixels** (fixated ones included).
    3. Per split, thresholds ``0:step:m`` highest first (``k * step``, k = 0..floor(m/step),
       0 included; m = max over pos and this split's negatives; the colon end point rule of
       MATLAB/Octave is kept, see below), ``TP(t) = #{pos >= t}/n``,
       ``FP(t) = #{neg >= t}/n``; ROC (0,0), thresholds, (1,1); trapezoidal area.
    4. Score = mean of the split areas.

    Vectorised over splits (one histogram per split on the threshold grid; exact ``>=``
    semantics for values on the grid).  Colon end point: like MATLAB/Octave's ``0:step:m``,
    when ``(k+1)*step`` exceeds ``m`` by less than 3 eps relative (``m`` is itself a multiple
    of ``step`` up to rounding, e.g. 0.6 = 153/255) the range gets a last element equal to
    ``m``.

    Parameters
    ----------
    sal : array_like [H, W], real
        Saliency map.
    fix : array_like [H, W], bool or real
        Binary fixation map (``fix > 0`` = fixated).
    n_splits : int, default 100
    step : float, default 0.1
        Threshold step.
    indices : int array [n_fix, n_splits], optional
        Replay hook: the random pixels, 0-based **column-major** linear indices
        (``k = row + col * H``); column s = negatives of split s.  ``n_fix`` is the number
        of pixels with ``fix > 0``.
    rng : numpy.random.Generator or int, optional
        Used when ``indices`` is None; None means ``default_rng(DEFAULT_SEED)`` (seed 0).

    Returns
    -------
    float
        NaN if ``fix`` has at most one fixated pixel, if ``sal`` is exactly constant, or if
        ``sal`` contains NaN/inf.

    Raises
    ------
    ValueError
        Maps not 2-D or of different shapes; bad ``n_splits`` / ``step``; ``indices`` of the
        wrong shape, dtype or range.

    Source: cvzoya ``code_forMetrics/AUC_Borji.m``, commit 5951cdc (``docs/evaluation.md`` §2.2).
    """
    n_splits, step = _check_splits(n_splits, step)
    S = _Map(_as_map(sal, "sal"), "S")
    F = _as_fix(fix)
    _same_shape(S.a, "sal", F, "fix")
    return _auc_borji(S, _mask("mask.pos", F, np.greater), n_splits, step, indices, rng)


def _sample_subsets(rng: np.random.Generator, n: int, k: int, n_splits: int) -> np.ndarray:
    """(k, n_splits) array; each column a uniformly random k-subset of range(n) (k < n)."""
    if 4 * k >= n:
        keys = rng.random((n_splits, n))
        return np.argpartition(keys, k - 1, axis=1)[:, :k].T
    out = np.empty((n_splits, k), dtype=np.int64)
    todo = np.arange(n_splits)
    lam = k * k / n
    extra = int(np.ceil(lam + 4.0 * np.sqrt(lam))) + 8
    while todo.size:
        kk = k + extra
        draws = rng.integers(0, n, size=(todo.size, kk))
        draws.sort(axis=1)
        dup = np.zeros(draws.shape, dtype=bool)
        dup[:, 1:] = draws[:, 1:] == draws[:, :-1]
        ok = kk - np.count_nonzero(dup, axis=1) >= k
        # a uniformly random k-subset of the distinct values drawn: random keys, duplicates
        # excluded.  The law is invariant under relabelling of range(n), hence uniform.
        keys = rng.random(draws.shape)
        keys[dup] = 2.0
        rows = np.flatnonzero(ok)
        sel = np.argpartition(keys[rows], k - 1, axis=1)[:, :k]
        out[todo[rows]] = np.take_along_axis(draws[rows], sel, axis=1)
        todo = todo[~ok]
        extra *= 2
    return out.T


def _other_pixels(other: np.ndarray) -> np.ndarray:
    """Row-major flat indices of ``other > 0``, listed in column-major order (MATLAB find)."""
    h, w = other.shape
    flat = np.flatnonzero(_mask("mask.oth", other, np.greater))
    rows, cols = np.divmod(flat, w)
    return flat[np.argsort(rows + cols * h, kind="stable")]


def _shuffled_from_counts(pos, vo, n_neg, n_splits, step, rng) -> np.ndarray | None:
    """sAUC split areas with each split's negatives drawn as bin counts.

    The split ROC depends on the negatives only through how many fall in each threshold-grid
    bin, and the bin counts of a uniformly random ``n_neg``-subset of the ``L`` other pixels
    follow the multivariate hypergeometric law: drawing them directly is exact and costs
    O(n_splits * bins).  Returns None (caller samples pixels instead) when some value sits on
    the grid up to rounding, where the colon end-point rule needs each split's maximum.
    """
    cp = _grid_index(pos, step)
    co = _grid_index(vo, step)
    if _near_grid(pos, cp, step).any() or _near_grid(vo, co, step).any():
        return None
    nk = int(max(cp.max(), co.max())) + 2
    hist = np.bincount(co, minlength=nk)
    if n_neg == vo.size:
        counts = np.broadcast_to(hist, (n_splits, nk))
    else:
        counts = rng.multivariate_hypergeometric(hist, n_neg, size=n_splits)
    fp = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    return _grid_roc_area(_ge_counts(cp, nk), fp, pos.size, n_neg)


def _auc_shuffled(S: _Map, pmask, other, n_splits, step, permutations, rng) -> float:
    if not pmask.any() or not S.finite or S.const:
        return np.nan
    ind = _other_pixels(other)
    n_oth = ind.size
    if n_oth == 0:
        return np.nan  # FP = 0/0 in the original
    pos = S.norm_at(pmask.reshape(-1))
    vo = S.norm_at(ind)  # normalised values of the other pixels, in find() order
    n_neg = min(pos.size, n_oth)
    if permutations is not None:
        perm = np.asarray(permutations)
        if perm.dtype.kind not in "iu" or perm.ndim != 2:
            raise ValueError("permutations must be a 2-D integer array [L, n_splits]")
        if perm.shape[1] != n_splits or perm.shape[0] < n_neg:
            raise ValueError(
                f"permutations shape {perm.shape} incompatible with L = {n_oth} other pixels, "
                f"{n_neg} negatives per split and n_splits = {n_splits} (expected [L, n_splits])"
            )
        sel = perm[:n_neg].astype(np.int64)
        if sel.min() < 0 or sel.max() >= n_oth:
            raise ValueError(f"permutations must hold 0-based indices in [0, {n_oth})")
        srt = np.sort(sel, axis=0)
        if np.any(srt[1:] == srt[:-1]):
            raise ValueError(
                "permutations: the first min(n_fix, L) entries of each column must be distinct")
        return float(np.mean(_grid_auc(pos, vo[sel], step)))
    gen = _get_rng(rng) if n_neg < n_oth else None
    auc = _shuffled_from_counts(pos, vo, n_neg, n_splits, step, gen)
    if auc is None:
        if n_neg == n_oth:
            sel = np.broadcast_to(np.arange(n_oth)[:, None], (n_oth, n_splits))
        else:
            sel = _sample_subsets(gen, n_oth, n_neg, n_splits)
        auc = _grid_auc(pos, vo[sel], step)
    return float(np.mean(auc))


def auc_shuffled(sal, fix, other, n_splits=100, step=0.1, permutations=None, rng=None) -> float:
    """Shuffled AUC (sAUC): 0.1-grid ROC against other-fixation pixels, averaged over splits.

    Definition (cvzoya ``AUC_shuffled.m``):

    1. ``S`` = min-max(S).  ``pos`` = S at the ``n`` pixels with ``fix > 0``.
    2. ``ind`` = pixels with ``other > 0`` in column-major order (MATLAB ``find``),
       ``L = len(ind)``, ``n_neg = min(n, L)``.
    3. For each split: a random permutation of ``ind``; negatives = S at its first ``n_neg``
       entries (distinct pixels, without replacement within a split).
    4. Per split, the ROC of :func:`auc_borji` (thresholds ``0:step:m`` highest first,
       ``>=``), with ``FP(t) = #{neg >= t} / n_neg``; score = mean over splits.

    In STAViS, ``other`` is the union of the binary fixation maps of all frames of the same
    video minus the current frame's fixated pixels.  If ``L <= n`` every split uses all other
    pixels and the score is deterministic.

    Parameters
    ----------
    sal : array_like [H, W], real
        Saliency map.
    fix : array_like [H, W], bool or real
        Binary fixation map (``fix > 0`` = fixated).
    other : array_like [H, W], bool or real
        Other-fixations map; only ``other > 0`` matters.  Same shape as ``fix`` (the original
        does not resize it either).
    n_splits : int, default 100
    step : float, default 0.1
    permutations : int array [L, n_splits], optional
        Replay hook: column s is a 0-based permutation of ``range(L)`` applied to ``ind``
        (the other pixels in column-major order); split s uses its first ``n_neg`` entries
        (the rest is ignored; at least ``n_neg`` rows are required).
    rng : numpy.random.Generator or int, optional
        Used when ``permutations`` is None; None means ``default_rng(DEFAULT_SEED)``.  Only
        the set of the first ``n_neg`` pixels of each permutation matters, and a split's ROC
        only depends on how many of them fall in each threshold-grid bin, so those counts
        are drawn directly from their multivariate hypergeometric law (exactly the
        distribution ``randperm`` gives; a uniformly random pixel subset is drawn instead
        when some value lies on the grid up to rounding).  The random stream therefore
        differs from a permutation-based one, as MATLAB's does anyway.

    Returns
    -------
    float
        NaN if ``fix`` has no fixated pixel, ``other`` has no positive pixel, ``sal`` is
        exactly constant, or ``sal`` contains NaN/inf.

    Raises
    ------
    ValueError
        Maps not 2-D or of different shapes; bad ``n_splits`` / ``step``; ``permutations`` of
        the wrong shape, dtype or range, or with repeated entries among the used rows.

    Source: cvzoya ``code_forMetrics/AUC_shuffled.m``, commit 5951cdc (``docs/evaluation.md`` §2.3).
    """
    n_splits, step = _check_splits(n_splits, step)
    S = _Map(_as_map(sal, "sal"), "S")
    F = _as_fix(fix)
    O = _as_fix(other, "other")
    _same_shape(S.a, "sal", F, "fix")
    _same_shape(O, "other", F, "fix")
    return _auc_shuffled(S, _mask("mask.pos", F, np.greater), O, n_splits, step, permutations, rng)


# --------------------------------------------------------------------------------------
# several metrics at once
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table :data:`METRICS`, the single owner of what a metric is called.

    Attributes:
        name: canonical name (a key of :data:`METRICS`, a column of the per-frame CSVs).
        label: column label of reports and tables (``"AUC-J"``).
        aliases: further spellings accepted by :func:`parse_metrics` (lower case; the name
            itself is always accepted).
        inputs: maps besides the saliency map that the metric needs, from
            ``("dens", "fix", "other")``.
        random: True when the metric draws from the generator ``rng`` (AUC-J's jitter,
            AUC-B's and sAUC's pixel draws).
        paper: True for the five metrics of the STAViS/ViNet tables (:data:`PAPER_METRICS`).
        fn: the per-frame kernel ``fn(S, G, F, O, pmask, gen) -> float`` over the prepared maps
            of :func:`compute_metrics` (``S``/``G``: saliency/density ``_Map``; ``F``/``O``:
            fixation / other-fixation arrays; ``pmask``: ``F > 0``; ``gen``: the generator).
    """

    name: str
    label: str
    aliases: tuple[str, ...]
    inputs: tuple[str, ...]
    random: bool
    paper: bool
    fn: Callable = field(repr=False, compare=False)


def _spec(name, label, aliases, inputs, random, paper, fn) -> tuple[str, MetricSpec]:
    return name, MetricSpec(name, label, tuple(aliases), tuple(inputs), random, paper, fn)


#: The metric table, in the papers' column order (CC, NSS, AUC-J, SIM, sAUC) and then the rest.
#: :func:`compute_metrics`, :func:`parse_metrics`, the evaluation reports and the CLI read it.
METRICS: dict[str, MetricSpec] = dict([
    _spec("cc", "CC", (), ("dens",), False, True,
          lambda S, G, F, O, pmask, gen: _cc(S, G)),
    _spec("nss", "NSS", (), ("fix",), False, True,
          lambda S, G, F, O, pmask, gen: _nss(S, _mask("mask.nz", F, np.not_equal))),
    _spec("auc_j", "AUC-J", ("aucj", "auc-j", "aucjudd", "auc_judd"), ("fix",), True, True,
          lambda S, G, F, O, pmask, gen: _auc_judd(S, pmask, True, gen)),
    _spec("sim", "SIM", ("similarity",), ("dens",), False, True,
          lambda S, G, F, O, pmask, gen: _sim(S, G)),
    _spec("sauc", "sAUC", ("s-auc", "aucshuffled", "auc_shuffled", "shuffled_auc"), ("fix", "other"), True, True,
          lambda S, G, F, O, pmask, gen: _auc_shuffled(S, pmask, O, 100, 0.1, None, gen)),
    _spec("kld", "KLD", ("kl", "kldiv"), ("dens",), False, False,
          lambda S, G, F, O, pmask, gen: _kld(S, G)),
    _spec("auc_b", "AUC-B", ("aucb", "auc-b", "aucborji", "auc_borji"), ("fix",), True, False,
          lambda S, G, F, O, pmask, gen: _auc_borji(S, pmask, 100, 0.1, None, gen)),
    _spec("auc_j_nojitter", "AUC-J (no jitter)", ("aucjnojitter",), ("fix",), False, False,
          lambda S, G, F, O, pmask, gen: _auc_judd(S, pmask, False, None)),
])

#: The papers' metrics, in the papers' column order (CC, NSS, AUC-J, SIM, sAUC).
PAPER_METRICS: tuple[str, ...] = tuple(n for n, m in METRICS.items() if m.paper)

#: Report label of each metric, ``{name: label}`` (from :data:`METRICS`).
METRIC_LABELS: dict[str, str] = {n: m.label for n, m in METRICS.items()}

#: Names accepted by :func:`compute_metrics`, with the inputs each one needs (from :data:`METRICS`).
METRIC_NAMES: dict[str, tuple[str, ...]] = {n: m.inputs for n, m in METRICS.items()}

_ALIASES: dict[str, str] = {a: n for n, m in METRICS.items() for a in (n, *m.aliases)}


def metric_label(name: str) -> str:
    """Report label of metric ``name`` (``"auc_j"`` -> ``"AUC-J"``); an unknown name is returned as is."""
    m = METRICS.get(name)
    return m.label if m is not None else name


def needs_input(names: Iterable[str], inp: str) -> bool:
    """True when any metric of ``names`` needs map ``inp`` (``"dens"``, ``"fix"`` or ``"other"``),
    e.g. whether the other-fixations map of sAUC must be built."""
    return any(inp in METRICS[n].inputs for n in names)


def parse_metrics(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Metric names from ``"cc,nss,auc_j,sim,sauc"`` (or a list), normalised and de-duplicated.

    Accepted (case-insensitive, surrounding blanks ignored): each name of :data:`METRICS` and
    its aliases (``sim``/``similarity``, ``auc_j``/``auc-j``/``auc_judd``, ``sauc``/
    ``auc_shuffled``, ``kld``/``kl``, ``auc_b``/``auc_borji``, ...).  Returned as
    :func:`compute_metrics` names, in the given order.

    Raises:
        ValueError: empty list or an unknown name (the message lists the accepted ones).
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for it in items:
        k = it.strip().lower()
        if not k:
            continue
        if k not in _ALIASES:
            raise ValueError(f"unknown metric {it.strip()!r}; use any of {', '.join(METRICS)}")
        name = _ALIASES[k]
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no metric given")
    return tuple(out)


def compute_metrics(
    sal,
    fix=None,
    dens=None,
    other=None,
    names: Iterable[str] = PAPER_METRICS,
    rng=None,
) -> dict:
    """Compute several metrics of one frame at once, sharing the per-map work.

    The saliency map's min/max, its min-max normalised version and its centred version
    (and the density's) are computed once and reused, so this is faster than calling the
    functions one by one; the values are identical to theirs.

    Parameters
    ----------
    sal : array_like [H, W]
        Saliency map, already at the fixation-map size.
    fix, dens, other : array_like [H, W], optional
        Binary fixation map, continuous density and other-fixations map; each is required
        only by the metrics that use it (see ``METRIC_NAMES``).
    names : iterable of str
        Names of :data:`METRICS`: ``cc, nss, sim, kld, auc_j`` (jitter on), ``auc_j_nojitter``,
        ``auc_b`` (AUC-Borji) and ``sauc`` (shuffled AUC); default: the five STAViS metrics.
        ``auc_b`` and ``sauc`` use 100 splits and step 0.1.
    rng : numpy.random.Generator or int, optional
        One generator, consumed by the random metrics in the order of ``names`` (the
        STAViS order draws AUC-Judd's jitter before sAUC's permutations, like the MATLAB
        scripts); None means ``default_rng(DEFAULT_SEED)``.

    Returns
    -------
    dict
        ``{name: float}`` in the order of ``names``; NaN conventions as in each function.

    Raises
    ------
    ValueError
        Unknown metric name, a required map missing, or shapes that differ.
    """
    names = tuple(names)
    for nm in names:
        if nm not in METRIC_NAMES:
            raise ValueError(f"unknown metric {nm!r}; known: {sorted(METRIC_NAMES)}")
    needed = {inp for nm in names for inp in METRIC_NAMES[nm]}
    given = {"fix": fix, "dens": dens, "other": other}
    for inp in sorted(needed):
        if given[inp] is None:
            users = [nm for nm in names if inp in METRIC_NAMES[nm]]
            raise ValueError(f"{inp} is required by {users}")

    S = _Map(_as_map(sal, "sal"), "S")
    G = F = O = None
    if "dens" in needed:
        G = _Map(_as_map(dens, "dens"), "G")
        _same_shape(S.a, "sal", G.a, "dens")
    if "fix" in needed:
        F = _as_fix(fix)
        _same_shape(S.a, "sal", F, "fix")
    if "other" in needed:
        O = _as_fix(other, "other")
        _same_shape(O, "other", S.a, "sal")
    gen = _get_rng(rng) if any(METRICS[nm].random for nm in names) else None

    pmask = _mask("mask.pos", F, np.greater) if F is not None else None
    return {nm: METRICS[nm].fn(S, G, F, O, pmask, gen) for nm in names}
