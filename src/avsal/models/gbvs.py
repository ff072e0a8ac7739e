"""Graph-Based Visual Saliency (GBVS) over Itti-Koch-Niebur feature maps, training-free.

References:
    J. Harel, C. Koch, P. Perona, "Graph-Based Visual Saliency", NIPS 2006 (the method, §2.2–2.3).
    L. Itti, C. Koch, E. Niebur, "A model of saliency-based visual attention for rapid scene analysis",
    IEEE TPAMI 20(11), 1998 (the intensity, colour-opponency and orientation feature maps).

GBVS turns every feature map into a fully connected graph over its pixels and takes the equilibrium
distribution of a Markov chain on it, twice:

1. *Activation*: edge weight ``w(i, j) = |log(M_i / M_j)| · F(i, j)``, ``F`` a Gaussian of the distance
   between the two grid positions (σ = ``sigma_act`` × map width).
2. *Normalisation* ("mass concentration"): ``w(i, j) = A_j · F'(i, j)`` with the activation ``A``
   (σ' = ``sigma_norm`` × map width).

The upstream MATLAB code finds both equilibria by power iteration. Both chains are *reversible*, so
their equilibria have a closed form, which we use (exact, not an approximation; the test suite
checks it against power iteration):

* activation: ``w`` is symmetric, so the chain is a random walk on an undirected weighted graph and
  ``π_i ∝ Σ_j w(i, j)`` (the weighted degree);
* normalisation: with ``Z_i = Σ_k A_k F'(i, k)``, ``π_i = A_i Z_i`` satisfies detailed balance
  ``π_i P(i, j) = A_i A_j F'(i, j) = π_j P(j, i)``, so ``π_i ∝ A_i · Σ_k A_k F'(i, k)``.

Every equilibrium is a distribution (sums to 1), so the maps of all features are on one scale and are
averaged within a channel (intensity, colour, orientation) and then across channels, as GBVS does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np


#: Feature responses (on a [0, 1] image scale) below this are treated as absent rather than rescaled.
FEATURE_FLOOR = 1e-3


@dataclass(frozen=True)
class GBVSConfig:
    """Parameters of :func:`gbvs`.

    Attributes:
        levels: pyramid levels (0 = the input, each level halves the size) whose features are used.
        grid_max_side: the graph grid's longer side in nodes (GBVS's ``salmapmaxsize``, 32).
        n_orientations: Gabor orientations (0°, 45°, 90°, 135° for 4).
        gabor_sigma, gabor_wavelength: Gabor envelope σ and wavelength, pixels of each pyramid level.
        sigma_act: activation-graph Gaussian σ as a fraction of the grid width (GBVS: 0.15).
        sigma_norm: normalisation-graph Gaussian σ as a fraction of the grid width (GBVS: 0.06).
        log_eps: offset inside ``log(M + eps)`` after each feature map is scaled to max 1.
        luminance_floor: colour opponency is set to 0 where ``max(r, g, b)`` is below this (Itti 1998
            uses 1/10 of the maximum) since hue is meaningless in the dark.
        blur_frac: final Gaussian blur σ as a fraction of the grid width.
    """

    levels: tuple[int, ...] = (1, 2, 3)
    grid_max_side: int = 32
    n_orientations: int = 4
    gabor_sigma: float = 1.5
    gabor_wavelength: float = 4.0
    sigma_act: float = 0.15
    sigma_norm: float = 0.06
    log_eps: float = 0.05
    luminance_floor: float = 0.1
    blur_frac: float = 0.04


def grid_shape(height: int, width: int, max_side: int) -> tuple[int, int]:
    """Grid ``(rows, cols)`` with the longer side ``max_side`` and the image's aspect ratio (≥ 2 each)."""
    scale = max_side / max(height, width)
    return max(2, int(round(height * scale))), max(2, int(round(width * scale)))


@lru_cache(maxsize=32)
def _distance_kernel(rows: int, cols: int, sigma_frac: float) -> np.ndarray:
    """``F[i, j] = exp(-|p_i - p_j|² / (2 σ²))`` over grid positions, σ = ``sigma_frac · cols``: ``[N, N]``."""
    y, x = np.mgrid[0:rows, 0:cols]
    p = np.stack([y.ravel(), x.ravel()], 1).astype(np.float32)
    d2 = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    sigma = sigma_frac * cols
    k = np.exp(-d2 / (2.0 * sigma * sigma)).astype(np.float32)
    k.setflags(write=False)
    return k


@lru_cache(maxsize=8)
def _gabor_kernels(n: int, sigma: float, wavelength: float) -> tuple[np.ndarray, ...]:
    size = int(2 * np.ceil(2.5 * sigma) + 1)
    ks = []
    for i in range(n):
        theta = np.pi * i / n
        k = cv2.getGaborKernel((size, size), sigma, theta, wavelength, 1.0, 0, ktype=cv2.CV_32F)
        k -= k.mean()  # zero DC: no response to flat regions
        ks.append(k / np.abs(k).sum())
    return tuple(ks)


def feature_maps(rgb: np.ndarray, cfg: GBVSConfig = GBVSConfig()) -> dict[str, list[np.ndarray]]:
    """Itti-Koch-Niebur feature maps, resized to the GBVS grid.

    Args:
        rgb: float32 ``[H, W, 3]`` in [0, 1].
        cfg: parameters.

    Returns:
        ``{"intensity": [...], "colour": [...], "orientation": [...]}``: lists of float32 ``[gh, gw]``
        maps, all ≥ 0: intensity ``(r+g+b)/3``; colour ``|R−G|`` and ``|B−Y|`` opponency (Itti 1998,
        Walther & Koch normalisation by ``max(r, g, b)``); orientation ``|Gabor|`` on intensity at
        ``n_orientations`` angles; for each pyramid level in ``cfg.levels``.
    """
    h, w = rgb.shape[:2]
    gh, gw = grid_shape(h, w, cfg.grid_max_side)
    out: dict[str, list[np.ndarray]] = {"intensity": [], "colour": [], "orientation": []}
    level_img = rgb
    gabors = _gabor_kernels(cfg.n_orientations, cfg.gabor_sigma, cfg.gabor_wavelength)

    def to_grid(m):
        return cv2.resize(m, (gw, gh), interpolation=cv2.INTER_AREA)

    for lev in range(max(cfg.levels) + 1):
        if lev > 0:
            if min(level_img.shape[:2]) < 4:
                break
            level_img = cv2.pyrDown(level_img)
        if lev not in cfg.levels:
            continue
        r, g, b = level_img[..., 0], level_img[..., 1], level_img[..., 2]
        inten = (r + g + b) / 3.0
        mx = np.maximum(np.maximum(r, g), b)
        valid = mx > cfg.luminance_floor
        denom = np.where(valid, mx, 1.0)
        rg = np.where(valid, np.abs(r - g) / denom, 0.0).astype(np.float32)
        by = np.where(valid, np.abs(b - np.minimum(r, g)) / denom, 0.0).astype(np.float32)
        out["intensity"].append(to_grid(inten))
        out["colour"].append(to_grid(rg))
        out["colour"].append(to_grid(by))
        for k in gabors:
            out["orientation"].append(to_grid(np.abs(cv2.filter2D(inten, cv2.CV_32F, k,
                                                                   borderType=cv2.BORDER_REFLECT))))
    return out


def gbvs_activation(maps: np.ndarray, f_act: np.ndarray, log_eps: float) -> np.ndarray:
    """Equilibrium of the GBVS activation chain for a stack of maps (closed form, see module doc).

    Args:
        maps: float32 ``[K, N]`` feature maps (≥ 0), flattened grids.
        f_act: float32 ``[N, N]`` distance kernel.
        log_eps: offset in ``log(M / max(M, FEATURE_FLOOR) + eps)``.

    Returns:
        float32 ``[K, N]``, each row a distribution (sums to 1; all zeros for a constant map).
    """
    # Scale each map to max 1, but never amplify a map whose peak is below ``FEATURE_FLOOR``: such a
    # map is rounding noise (e.g. a zero-mean filter on a flat image) and must give no activation.
    mx = np.maximum(maps.max(axis=1, keepdims=True), FEATURE_FLOOR)
    logm = np.log(maps / mx + log_eps).astype(np.float32)
    act = np.empty_like(logm)
    for k in range(logm.shape[0]):  # one [N, N] at a time keeps memory small and cache-friendly
        d = np.abs(logm[k][:, None] - logm[k][None, :])
        d *= f_act
        act[k] = d.sum(axis=1)
    # A map without contrast (range below FEATURE_FLOOR) has no activation: its rounding noise must not
    # be normalised up to a full distribution.
    flat = (maps.max(axis=1) - maps.min(axis=1)) < FEATURE_FLOOR
    act[flat] = 0.0
    s = act.sum(axis=1, keepdims=True)
    return np.where(s > 0, act / np.where(s > 0, s, 1.0), 0.0).astype(np.float32)


def gbvs_normalisation(act: np.ndarray, f_norm: np.ndarray) -> np.ndarray:
    """Equilibrium of the GBVS mass-concentration chain (closed form ``π ∝ A · (F' A)``).

    Args:
        act: float32 ``[K, N]`` activations (≥ 0).
        f_norm: float32 ``[N, N]`` distance kernel.

    Returns:
        float32 ``[K, N]``, each row a distribution (all zeros where ``act`` is all zero).
    """
    pi = act * (act @ f_norm.T)
    s = pi.sum(axis=1, keepdims=True)
    return np.where(s > 0, pi / np.where(s > 0, s, 1.0), 0.0).astype(np.float32)


def gbvs(rgb: np.ndarray, cfg: GBVSConfig = GBVSConfig()) -> np.ndarray:
    """GBVS saliency of one image on the graph grid.

    Args:
        rgb: float32 ``[H, W, 3]`` in [0, 1] (a small working-resolution copy of the frame is enough:
            the grid has ``cfg.grid_max_side`` nodes on its longer side).
        cfg: parameters.

    Returns:
        float32 ``[gh, gw]`` in [0, 1] (max 1; all zeros for a featureless image), see :func:`grid_shape`.
    """
    h, w = rgb.shape[:2]
    gh, gw = grid_shape(h, w, cfg.grid_max_side)
    f_act = _distance_kernel(gh, gw, cfg.sigma_act)
    f_norm = _distance_kernel(gh, gw, cfg.sigma_norm)
    feats = feature_maps(rgb, cfg)
    total = np.zeros(gh * gw, np.float32)
    for name, maps in feats.items():
        stack = np.stack([m.reshape(-1) for m in maps]).astype(np.float32)
        eq = gbvs_normalisation(gbvs_activation(stack, f_act, cfg.log_eps), f_norm)
        total += eq.mean(axis=0)
    sal = total.reshape(gh, gw)
    sigma = cfg.blur_frac * gw
    if sigma > 0:
        sal = cv2.GaussianBlur(sal, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    mx = float(sal.max())
    return (sal / mx if mx > 0 else sal).astype(np.float32)
