"""Raw eye-tracking samples -> per-frame fixation maps, density maps and scores.

The family of gaze readers (all give a :class:`GazeRecording`, samples in **video pixels**):

* :func:`read_gaze_csv`: a plain CSV ``viewer,t_s,x_px,y_px[,event]`` (header required);
* :func:`load_andersson`: the ``ETdata`` ``.mat`` files of Andersson et al. (2017), 500 Hz,
  hand-coded events (``docs/gaze.md``);
* :func:`load_diem`: DIEM per-frame gaze (the reader of :func:`avsal.evaluate.readers.load_diem_video`,
  one sample per 30 fps frame, turned into a recording);
* :func:`load_gaze`: picks one of the above from the path.

Coordinates: a :class:`ScreenMapping` turns screen pixels into video pixels
(``x_video = (x_screen - offset_x) / scale_x``); :meth:`ScreenMapping.centred` is the usual
"video shown centred on the screen" case (DIEM, Andersson).  A video pixel ``(r, c)`` covers
``c <= x < c + 1``, ``r <= y < r + 1``.

Events: one vocabulary for every reader (:data:`FIXATION` 1, :data:`SACCADE` 2, :data:`PSO` 3,
:data:`PURSUIT` 4, :data:`BLINK` 5, :data:`UNDEFINED` 6, :data:`LOST` -1; Andersson's codes).
Recordings without labels are classified by :func:`ivt_classify` (velocity threshold).

Per-frame maps (:func:`fixation_maps` -> :class:`FrameFixations`): for video frame ``k``
(1-based) covering ``[frame_times[k-1], frame_times[k])`` seconds, each viewer contributes one
point per fixation (or pursuit) **event** that has samples in that interval: the mean position of
those samples inside the frame.  Points are kept per viewer, so inter-observer scores can be
computed; :meth:`FrameFixations.fixation_map` rasterises them to a binary map and
:meth:`FrameFixations.density_map` blurs them with an isotropic Gaussian of stated sigma (px).

Scoring (:func:`score_against_gaze`): a model's maps, a centre Gaussian and the inter-observer
reference (each viewer's fixations predicted by the other viewers' density, leave one out) with
:func:`avsal.metrics.compute_metrics`.  Method and choices: ``docs/gaze.md``.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from avsal import metrics as _metrics
from avsal.errors import InputError

__all__ = [
    "LOST", "FIXATION", "SACCADE", "PSO", "PURSUIT", "BLINK", "UNDEFINED", "EVENT_NAMES",
    "DEFAULT_FIXATION_EVENTS", "IVT_THRESHOLD_DEG_S", "DEFAULT_SIGMA_DEG", "DEFAULT_SIGMA_PX",
    "ScreenMapping", "ViewerGaze", "GazeRecording", "ivt_classify", "pixels_per_degree",
    "read_gaze_csv", "load_andersson", "load_diem", "load_gaze",
    "points_to_fixation_map", "points_to_density", "FrameFixations", "FrameMaps", "fixation_maps",
    "load_dhf1k", "video_frame_times", "centre_gaussian", "GazeScoreConfig", "GazeScores",
    "score_against_gaze", "write_gaze_report", "GAZE_METRICS", "REFERENCES",
]

# ---- event vocabulary (Andersson et al. 2017 codes; -1 for track loss) ----------------
LOST = -1
FIXATION = 1
SACCADE = 2
PSO = 3
PURSUIT = 4
BLINK = 5
UNDEFINED = 6
EVENT_NAMES = {LOST: "lost", FIXATION: "fixation", SACCADE: "saccade", PSO: "pso", PURSUIT: "pursuit",
               BLINK: "blink", UNDEFINED: "undefined"}
_EVENT_ALIASES = {"fix": FIXATION, "fixation": FIXATION, "f": FIXATION, "sac": SACCADE, "saccade": SACCADE,
                  "s": SACCADE, "pso": PSO, "pursuit": PURSUIT, "smooth_pursuit": PURSUIT, "sp": PURSUIT,
                  "blink": BLINK, "b": BLINK, "undefined": UNDEFINED, "other": UNDEFINED, "lost": LOST,
                  "": LOST, "nan": LOST}

#: Events that make fixation-map points by default.  On video, smooth pursuit is foveal viewing
#: of a moving object (the Andersson clips have ~1/3 pursuit samples); see ``docs/gaze.md``.
DEFAULT_FIXATION_EVENTS = (FIXATION, PURSUIT)

#: Default I-VT threshold, deg/s (Salvucci & Goldberg 2000; Tobii's I-VT filter default).
IVT_THRESHOLD_DEG_S = 30.0

#: Default density sigma in degrees of visual angle when a recording knows its geometry.
DEFAULT_SIGMA_DEG = 1.0

#: Default density sigma in video pixels when it does not (DIEM's, ``readers.DIEM_SIGMA_PX``).
DEFAULT_SIGMA_PX = 40.0


# --------------------------------------------------------------------------------------
# screen -> video mapping
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenMapping:
    """Screen pixels -> video pixels: ``x_v = (x_s - offset_x) / scale_x``, same for y.

    Attributes:
        offset_x, offset_y: screen position (px) of the video's top-left corner.
        scale_x, scale_y: screen pixels per video pixel (1 = shown at native size).
    """

    offset_x: float = 0.0
    offset_y: float = 0.0
    scale_x: float = 1.0
    scale_y: float = 1.0

    def __post_init__(self):
        for k in ("offset_x", "offset_y", "scale_x", "scale_y"):
            if not math.isfinite(getattr(self, k)):
                raise ValueError(f"ScreenMapping.{k} must be finite")
        if self.scale_x <= 0 or self.scale_y <= 0:
            raise ValueError(f"ScreenMapping scales must be positive, got {self.scale_x}, {self.scale_y}")

    @classmethod
    def centred(cls, screen_wh: tuple[float, float], video_hw: tuple[int, int], fit: bool = False) -> "ScreenMapping":
        """The video centred on a ``(width, height)`` screen: at native size (``fit=False``), or
        scaled to fit the screen keeping its aspect (``fit=True``, letter/pillar-boxed)."""
        sw, sh = (float(v) for v in screen_wh)
        h, w = (float(v) for v in video_hw)
        s = min(sw / w, sh / h) if fit else 1.0
        return cls((sw - w * s) / 2.0, (sh - h * s) / 2.0, s, s)

    def to_video(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float64 arrays of video-pixel coordinates for screen-pixel ``x``, ``y`` (any shape)."""
        return ((np.asarray(x, np.float64) - self.offset_x) / self.scale_x,
                (np.asarray(y, np.float64) - self.offset_y) / self.scale_y)

    def to_dict(self) -> dict:
        return {"offset_x": self.offset_x, "offset_y": self.offset_y, "scale_x": self.scale_x,
                "scale_y": self.scale_y}


def pixels_per_degree(screen_res_px: float, screen_size_m: float, view_dist_m: float) -> float:
    """Screen pixels per degree of visual angle at the screen centre:
    ``view_dist * tan(1 deg) * res / size`` (same axis for ``res`` and ``size``).

    Raises:
        ValueError: a non-positive argument.
    """
    if not (screen_res_px > 0 and screen_size_m > 0 and view_dist_m > 0):
        raise ValueError("screen resolution, screen size and viewing distance must be positive")
    return float(view_dist_m * math.tan(math.radians(1.0)) * screen_res_px / screen_size_m)


# --------------------------------------------------------------------------------------
# recordings
# --------------------------------------------------------------------------------------


@dataclass
class ViewerGaze:
    """One viewer's samples.

    Attributes:
        viewer: id.
        t: float64 ``[N]`` sample times in s from the video onset, non-decreasing.
        x, y: float64 ``[N]`` gaze position in video pixels (NaN: no sample / track loss).
        event: int8 ``[N]`` event code (:data:`EVENT_NAMES`).
        source: the file it was read from.
    """

    viewer: str
    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    event: np.ndarray
    source: str = ""


@dataclass
class GazeRecording:
    """The gaze of several viewers on one video, in video pixels.

    Attributes:
        name: recording / video name.
        size: video ``(H, W)`` in pixels, or None when not known yet (then the frame size must
            be given to :func:`fixation_maps`).
        viewers: one :class:`ViewerGaze` per viewer, sorted by id.
        mapping: the :class:`ScreenMapping` applied to the raw coordinates.
        px_per_degree: video pixels per degree of visual angle, or None when unknown.
        sample_rate: nominal samples/s (None: unknown).
        events_from: ``"file"`` (labels read) or ``"ivt"`` (classified by :func:`ivt_classify`).
        meta: reader-specific facts (screen, coder, I-VT settings, ...).
    """

    name: str
    size: tuple[int, int] | None
    viewers: list[ViewerGaze]
    mapping: ScreenMapping = field(default_factory=ScreenMapping)
    px_per_degree: float | None = None
    sample_rate: float | None = None
    events_from: str = "file"
    meta: dict = field(default_factory=dict)

    @property
    def viewer_ids(self) -> list[str]:
        return [v.viewer for v in self.viewers]

    @property
    def duration(self) -> float:
        """Last sample time (s)."""
        return max((float(v.t[-1]) for v in self.viewers if v.t.size), default=0.0)

    def default_sigma(self) -> float:
        """Density sigma in video px: :data:`DEFAULT_SIGMA_DEG` degrees when ``px_per_degree`` is
        known, else :data:`DEFAULT_SIGMA_PX`."""
        return DEFAULT_SIGMA_DEG * self.px_per_degree if self.px_per_degree else DEFAULT_SIGMA_PX


def ivt_classify(t: np.ndarray, x: np.ndarray, y: np.ndarray, threshold: float = IVT_THRESHOLD_DEG_S,
                 px_per_degree: float | None = None, window_s: float = 0.02,
                 min_fixation_s: float = 0.0) -> np.ndarray:
    """Velocity-threshold (I-VT) event classification (Salvucci & Goldberg 2000).

    Velocity of sample ``i``: distance between samples ``i - k`` and ``i + k`` over their time
    difference (one-sided at the ends), ``k = max(1, round(window_s / 2 / median dt))``, i.e. over
    about ``window_s`` seconds (20 ms: 10 samples at 500 Hz, 1 sample at 30-60 Hz).  Speed in
    deg/s = px/s / ``px_per_degree`` when given, otherwise ``threshold`` is in px/s.

    Args:
        t: float ``[N]`` s, non-decreasing; x, y: float ``[N]`` px (NaN = track loss).
        threshold: deg/s with ``px_per_degree``, px/s without (default 30 deg/s).
        px_per_degree: pixels (of x, y) per degree, or None.
        window_s: velocity window (s).
        min_fixation_s: fixation runs shorter than this become :data:`UNDEFINED` (0: keep all).

    Returns:
        int8 ``[N]``: :data:`FIXATION` below the threshold, :data:`SACCADE` at or above it,
        :data:`LOST` where the sample or its velocity is NaN.

    Raises:
        ValueError: shapes differ, threshold or window not positive, ``t`` decreasing.
    """
    t = np.asarray(t, np.float64)
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if not (t.shape == x.shape == y.shape) or t.ndim != 1:
        raise ValueError("t, x, y must be 1-D arrays of the same length")
    if not (threshold > 0 and window_s > 0):
        raise ValueError("threshold and window_s must be positive")
    n = t.size
    ev = np.full(n, LOST, np.int8)
    if n < 2:
        return ev
    dt = np.diff(t)
    if np.any(dt < 0):
        raise ValueError("sample times must be non-decreasing")
    med = float(np.median(dt[dt > 0])) if np.any(dt > 0) else 1.0
    k = max(1, int(round(window_s / 2.0 / med)))
    i0 = np.clip(np.arange(n) - k, 0, n - 1)
    i1 = np.clip(np.arange(n) + k, 0, n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.hypot(x[i1] - x[i0], y[i1] - y[i0]) / (t[i1] - t[i0])
        if px_per_degree:
            v = v / float(px_per_degree)
        ok = np.isfinite(v) & np.isfinite(x) & np.isfinite(y)
        ev[ok & (v < threshold)] = FIXATION
        ev[ok & (v >= threshold)] = SACCADE
    if min_fixation_s > 0:
        fix = ev == FIXATION
        starts = np.flatnonzero(fix & ~np.r_[False, fix[:-1]])
        ends = np.flatnonzero(fix & ~np.r_[fix[1:], False])
        for a, b in zip(starts, ends):
            if t[b] - t[a] < min_fixation_s:
                ev[a:b + 1] = UNDEFINED
    return ev


def _parse_event(token: str, path, line: int) -> int:
    s = token.strip().lower()
    if s in _EVENT_ALIASES:
        return _EVENT_ALIASES[s]
    try:
        v = int(float(s))
    except ValueError:
        raise InputError(path, f"line {line}: unknown event {token!r} (use {sorted(set(_EVENT_ALIASES) - {''})} "
                               f"or a code {sorted(EVENT_NAMES)})") from None
    if v not in EVENT_NAMES:
        raise InputError(path, f"line {line}: unknown event code {v} (codes: {EVENT_NAMES})")
    return v


def _finish(name, size, per_viewer: dict, mapping, ppd, rate, labelled: bool, ivt: dict | None, meta) -> GazeRecording:
    """Map to video px, classify when unlabelled, build the recording."""
    ivt = dict(ivt or {})
    viewers = []
    for vid in sorted(per_viewer):
        src, t, xs, ys, ev = per_viewer[vid]
        order = np.argsort(t, kind="stable")
        t, xs, ys, ev = t[order], xs[order], ys[order], ev[order]
        x, y = mapping.to_video(xs, ys)
        if not labelled:
            ev = ivt_classify(t, x, y, px_per_degree=ppd, **ivt)
        viewers.append(ViewerGaze(vid, t, x, y, ev.astype(np.int8), src))
    meta = dict(meta)
    if not labelled:
        thr = ivt.get("threshold", IVT_THRESHOLD_DEG_S)
        meta["ivt"] = {"threshold": thr, "unit": "deg/s" if ppd else "px/s", **{k: v for k, v in ivt.items()
                                                                               if k != "threshold"}}
    return GazeRecording(name, size, viewers, mapping, ppd, rate, "file" if labelled else "ivt", meta)


def read_gaze_csv(path: str | os.PathLike, size: tuple[int, int] | None = None,
                  mapping: ScreenMapping | None = None, px_per_degree: float | None = None,
                  ivt: dict | None = None, name: str | None = None) -> GazeRecording:
    """Read a CSV of raw samples: header ``viewer,t_s,x_px,y_px`` and optional ``event``.

    ``t_s``: seconds from the video onset; ``x_px, y_px``: screen pixels (video pixels with
    the default identity ``mapping``); empty or NaN position = track loss.  ``event``: a name
    (``fixation``, ``saccade``, ``pso``, ``pursuit``, ``blink``, ``undefined``, ``lost``) or a
    code of :data:`EVENT_NAMES`.  Without an ``event`` column, events come from
    :func:`ivt_classify` (``ivt``: its keyword arguments; threshold in deg/s when
    ``px_per_degree`` is given, else px/s).

    Args:
        path: the CSV file.
        size: video ``(H, W)`` (optional here).
        mapping: screen -> video mapping (default identity).
        px_per_degree: video pixels per degree, if known.
        ivt: I-VT options (``threshold``, ``window_s``, ``min_fixation_s``).
        name: recording name (default: file stem).

    Raises:
        InputError: missing/unreadable file, missing columns, a non-numeric value, unknown
            event, no rows, or no event column and neither ``px_per_degree`` nor an explicit
            ``ivt['threshold']`` (the I-VT threshold would have no unit).
    """
    path = Path(path)
    mapping = mapping or ScreenMapping()
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as e:
        raise InputError(path, f"cannot read ({e.strerror})") from None
    rows: dict[str, list] = {}
    with f:
        r = csv.reader(f)
        try:
            header = [h.strip().lower() for h in next(r)]
        except StopIteration:
            raise InputError(path, "empty CSV (expected a header viewer,t_s,x_px,y_px[,event])") from None
        need = ["viewer", "t_s", "x_px", "y_px"]
        missing = [c for c in need if c not in header]
        if missing:
            raise InputError(path, f"CSV header lacks {missing} (expected viewer,t_s,x_px,y_px[,event])")
        ci = [header.index(c) for c in need]
        ce = header.index("event") if "event" in header else None
        for line, row in enumerate(r, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise InputError(path, f"line {line}: {len(row)} fields, header has {len(header)}")
            try:
                t = float(row[ci[1]])
                x = float(row[ci[2]]) if row[ci[2]].strip() else math.nan
                y = float(row[ci[3]]) if row[ci[3]].strip() else math.nan
            except ValueError:
                raise InputError(path, f"line {line}: t_s, x_px, y_px must be numbers") from None
            if not math.isfinite(t):
                raise InputError(path, f"line {line}: t_s must be finite")
            ev = _parse_event(row[ce], path, line) if ce is not None else LOST
            rows.setdefault(row[ci[0]].strip(), []).append((t, x, y, ev))
    if not rows:
        raise InputError(path, "CSV has no samples")
    if ce is None and not px_per_degree and not (ivt and "threshold" in ivt):
        raise InputError(path, "no event column: I-VT needs px_per_degree (threshold in deg/s) or an explicit "
                               "threshold in px/s")
    per = {}
    for vid, rr in rows.items():
        a = np.asarray(rr, np.float64)
        per[vid] = (str(path), a[:, 0], a[:, 1], a[:, 2], a[:, 3].astype(np.int8))
    dts = [np.median(np.diff(np.sort(p[1]))) for p in per.values() if p[1].size > 1]
    rate = float(1.0 / np.median(dts)) if dts and np.median(dts) > 0 else None
    return _finish(name or path.stem, size, per, mapping, px_per_degree, rate, ce is not None, ivt,
                   {"format": "csv", "files": [str(path)]})


# ---- Andersson et al. 2017 ------------------------------------------------------------

_ANDERSSON_RE = re.compile(r"^(?P<viewer>[^_]+)_(?P<kind>[a-z]+)_(?P<stim>.+)_labelled_(?P<coder>[A-Za-z]+)\.mat$")


def _read_andersson_file(path: Path) -> dict:
    import scipy.io

    try:
        m = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except Exception as e:  # scipy raises several types for non-MAT input
        raise InputError(path, f"not a MATLAB v5 file ({type(e).__name__}: {e})") from None
    if "ETdata" not in m:
        raise InputError(path, "no ETdata struct (expected an Andersson et al. 2017 labelled file)")
    e = m["ETdata"]
    try:
        pos = np.asarray(e.pos, np.float64)
        rate = float(e.sampFreq)
        res = np.asarray(e.screenRes, np.float64).reshape(-1)
        dim = np.asarray(e.screenDim, np.float64).reshape(-1)
        dist = float(e.viewDist)
    except AttributeError as err:
        raise InputError(path, f"ETdata lacks a field ({err})") from None
    if pos.ndim != 2 or pos.shape[1] < 6 or pos.shape[0] < 1:
        raise InputError(path, f"ETdata.pos must be N x 6, got {pos.shape}")
    return {"pos": pos, "rate": rate, "res": res, "dim": dim, "dist": dist}


def load_andersson(paths: str | os.PathLike | Sequence[str | os.PathLike], video: str | None = None,
                   coder: str | None = None, size: tuple[int, int] | None = None,
                   mapping: ScreenMapping | None = None) -> GazeRecording:
    """Read Andersson et al. (2017) ``<viewer>_video_<stim>_labelled_<coder>.mat`` files.

    ``ETdata.pos`` columns (``docs/gaze.md``): 1 time stamp in microseconds, 4-5 gaze x, y in
    screen pixels, 6 the hand-coded event (1 fixation, 2 saccade, 3 PSO, 4 smooth pursuit,
    5 blink, 6 undefined; the codes of this module).  ``(0, 0)`` is track loss (NaN here).
    Times are made relative to each file's first sample (the recordings start at the video
    onset: 4025 samples = 8.05 s for the 8.1 s BergoDalbana clip).

    Args:
        paths: a folder of such files, one file, or a list of files.
        video: stimulus name to keep (e.g. ``BergoDalbana``); required when the files name
            several stimuli.
        coder: which coder's labels (``MN`` or ``RA``); default the first in alphabetical order
            for each viewer (both coders label the same samples).
        size: video ``(H, W)``; with it and no ``mapping``, the video is taken as centred at native
            size on ``ETdata.screenRes`` (for these files ``(152, 96)`` px offset for 720x576).
        mapping: explicit screen -> video mapping.

    Returns:
        :class:`GazeRecording`; ``px_per_degree`` from ``screenRes``, ``screenDim``, ``viewDist``
        (:func:`pixels_per_degree`, horizontal, divided by the mapping's scale).

    Raises:
        InputError: no matching file, several stimuli and no ``video``, a file that is not an
            Andersson ``ETdata`` file, or files with different screens.
        ValueError: no ``size`` and no ``mapping``.
    """
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        files = sorted(p.glob("*.mat")) if p.is_dir() else [p]
    else:
        files = [Path(p) for p in paths]
    if not files:
        raise InputError(paths, "no .mat files found")
    cands: dict[str, dict[str, Path]] = {}
    stims = set()
    for f in files:
        m = _ANDERSSON_RE.match(f.name)
        if not m:
            if len(files) == 1:
                raise InputError(f, "file name is not <viewer>_video_<stim>_labelled_<coder>.mat")
            continue
        if video is not None and m["stim"] != video:
            continue
        stims.add(m["stim"])
        cands.setdefault(m["viewer"], {})[m["coder"]] = f
    if not cands:
        raise InputError(paths, f"no Andersson gaze file for video {video!r}" if video else "no Andersson gaze file")
    if len(stims) > 1:
        raise InputError(paths, f"files of several videos {sorted(stims)}: pass video=")
    per, geo, used = {}, None, {}
    for vid, by_coder in cands.items():
        c = coder if coder is not None else sorted(by_coder)[0]
        if c not in by_coder:
            raise InputError(paths, f"viewer {vid}: no file labelled by coder {c!r} (have {sorted(by_coder)})")
        f = by_coder[c]
        d = _read_andersson_file(f)
        g = (tuple(d["res"]), tuple(d["dim"]), d["dist"], d["rate"])
        if geo is None:
            geo = g
        elif g != geo:
            raise InputError(f, f"screen geometry {g} differs from the other files' {geo}")
        pos = d["pos"]
        t = (pos[:, 0] - pos[0, 0]) * 1e-6
        xs, ys = pos[:, 3].copy(), pos[:, 4].copy()
        lost = (xs == 0) & (ys == 0) | ~np.isfinite(xs) | ~np.isfinite(ys)
        xs[lost] = np.nan
        ys[lost] = np.nan
        ev = pos[:, 5].astype(np.int64)
        ev = np.where(np.isin(ev, list(EVENT_NAMES)), ev, UNDEFINED).astype(np.int8)
        per[vid] = (str(f), t, xs, ys, ev)
        used[vid] = c
    res, dim, dist, rate = geo
    if mapping is None:
        if size is None:
            raise ValueError("load_andersson needs size=(H, W) of the video (or an explicit mapping)")
        mapping = ScreenMapping.centred((res[0], res[1]), size)
    ppd = pixels_per_degree(res[0], dim[0], dist) / mapping.scale_x
    stim = next(iter(stims))
    meta = {"format": "andersson2017", "screen_res": list(res), "screen_dim_m": list(dim), "view_dist_m": dist,
            "coders": used, "files": [per[v][0] for v in sorted(per)]}
    return _finish(stim, size, per, mapping, ppd, rate, True, None, meta)


# ---- DIEM -----------------------------------------------------------------------------

_DIEM_EVENTS = {-1: LOST, 0: BLINK, 1: FIXATION, 2: SACCADE}
DIEM_FPS = 30.0


def load_diem(folder: str | os.PathLike, eye: str = "left", **kw) -> GazeRecording:
    """A DIEM video's gaze (:func:`avsal.evaluate.readers.load_diem_video`) as a recording.

    DIEM gives one sample per 30 fps video frame; sample of frame ``k`` gets time
    ``(k - 1) / 30`` s, so it falls in frame ``k``'s interval.  Events: -1 -> :data:`LOST`,
    0 -> :data:`BLINK`, 1 -> :data:`FIXATION`, 2 -> :data:`SACCADE`.  Coordinates are already
    mapped to video pixels by the DIEM reader (centred on a 1280x960 screen).

    Raises:
        InputError: as :func:`avsal.evaluate.readers.load_diem_video`.
    """
    from avsal.evaluate.readers import load_diem_video

    g = load_diem_video(folder, eye=eye, **kw)
    t = np.arange(g.nframes) / DIEM_FPS
    lut = np.vectorize(lambda c: _DIEM_EVENTS.get(int(c), UNDEFINED))
    viewers = [ViewerGaze(v, t.copy(), g.x[i].copy(), g.y[i].copy(), lut(g.event[i]).astype(np.int8),
                          str(g.files[i]) if g.files else "")
               for i, v in enumerate(g.viewers)]
    order = np.argsort([v.viewer for v in viewers], kind="stable")
    sw, sh = g.screen
    h, w = g.size
    return GazeRecording(g.video, g.size, [viewers[i] for i in order], ScreenMapping.centred((sw, sh), (h, w)),
                         None, DIEM_FPS, "file", {"format": "diem", "eye": eye})


def load_gaze(path: str | os.PathLike | Sequence[str | os.PathLike], size: tuple[int, int] | None = None,
              video: str | None = None, mapping: ScreenMapping | None = None,
              px_per_degree: float | None = None, coder: str | None = None,
              ivt: dict | None = None) -> GazeRecording:
    """Read a gaze recording, choosing the reader from the path.

    * ``*.csv`` -> :func:`read_gaze_csv`;
    * ``*.mat`` files or a folder of them -> :func:`load_andersson` (``video`` picks the stimulus);
    * a folder with ``event_data/*.txt`` (or named ``event_data``) -> :func:`load_diem`.

    Args:
        path: file, folder, or a list of ``.mat`` files.
        size: video ``(H, W)`` (needed by the Andersson reader's default centred mapping).
        video: stimulus name (Andersson folders holding several videos).
        mapping: screen -> video mapping (CSV default: identity; Andersson default: centred).
        px_per_degree: video px per degree (CSV; the other formats know theirs or have none).
        coder: Andersson coder.
        ivt: I-VT options for unlabelled CSV samples.

    Raises:
        InputError: unknown kind of path, or the reader's errors.
    """
    if not isinstance(path, (str, os.PathLike)):
        return load_andersson(path, video=video, coder=coder, size=size, mapping=mapping)
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".csv":
        return read_gaze_csv(p, size=size, mapping=mapping, px_per_degree=px_per_degree, ivt=ivt)
    if (p.is_file() and p.suffix.lower() == ".mat") or (p.is_dir() and any(p.glob("*.mat"))):
        return load_andersson(p, video=video, coder=coder, size=size, mapping=mapping)
    if p.is_dir() and (p.name == "event_data" or (p / "event_data").is_dir()):
        return load_diem(p, size=size) if size else load_diem(p)
    if not p.exists():
        raise InputError(p, "gaze recording not found")
    raise InputError(p, "unknown gaze format (expected a .csv, Andersson .mat file(s) or a DIEM folder)")


# --------------------------------------------------------------------------------------
# per-frame fixations
# --------------------------------------------------------------------------------------


def points_to_fixation_map(points: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """uint8 ``[H, W]`` binary map, 1 at each pixel ``(floor y, floor x)`` holding a point.

    ``points``: float ``[n, 2]`` ``(x, y)`` video px; points outside the frame are ignored.
    Several points in one pixel count once (as STAViS's ``fixMap`` / MIT's maps).
    """
    h, w = hw
    out = np.zeros((h, w), np.uint8)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        ok = (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
    p = p[ok]
    out[np.floor(p[:, 1]).astype(int), np.floor(p[:, 0]).astype(int)] = 1
    return out


def points_to_density(points: np.ndarray, hw: tuple[int, int], sigma: float) -> np.ndarray:
    """float64 ``[H, W]`` density in [0, 1]: sum of isotropic Gaussians of std ``sigma`` px at the
    continuous ``(x, y)`` points, evaluated at pixel centres ``(c + 0.5, r + 0.5)``, divided by
    its maximum.  All zero when there is no point.

    Raises:
        ValueError: ``sigma`` not positive.
    """
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    h, w = hw
    p = np.asarray(points, np.float64).reshape(-1, 2)
    if p.shape[0] == 0:
        return np.zeros((h, w))
    gx = np.exp(-((np.arange(w) + 0.5)[None, :] - p[:, :1]) ** 2 / (2.0 * sigma * sigma))
    gy = np.exp(-((np.arange(h) + 0.5)[None, :] - p[:, 1:]) ** 2 / (2.0 * sigma * sigma))
    d = gy.T @ gx
    m = d.max()
    return d / m if m > 0 else d


class _MapsMixin:
    """Shared :meth:`union` / :meth:`as_array` of the per-frame fixation classes."""

    def union(self) -> np.ndarray:
        """bool ``[H, W]``: pixels fixated by anyone in any frame (sAUC's other-map source)."""
        u = np.zeros(self.size, bool)
        for k in range(1, self.nframes + 1):
            u |= self.fixation_map(k) > 0
        return u

    def as_array(self, viewers: Iterable[int] | None = None) -> np.ndarray:
        """uint8 ``[T, H, W]`` binary fixation maps of the given viewer indices (default all;
        e.g. ``[v]`` for one viewer's maps).  Memory: T*H*W bytes."""
        return np.stack([self.fixation_map(k, viewers) for k in range(1, self.nframes + 1)])


@dataclass
class FrameFixations(_MapsMixin):
    """Fixation points per video frame and per viewer (from :func:`fixation_maps`).

    Frames are numbered from 1 (frame ``k`` covers ``[frame_times[k-1], frame_end[k-1])`` s).

    Attributes:
        size: video ``(H, W)`` px.
        viewers: viewer ids.
        frame_times: float64 ``[T]`` frame start times (s).
        frame_end: float64 ``[T]`` frame end times (s).
        points: ``points[k-1][v]`` = float64 ``[n, 2]`` ``(x, y)`` video px of viewer ``v``'s fixations
            in frame ``k`` (one point per fixation event; n is usually 0 or 1).
        default_sigma: density sigma (px) used when none is given.
    """

    size: tuple[int, int]
    viewers: list[str]
    frame_times: np.ndarray
    frame_end: np.ndarray
    points: list[list[np.ndarray]]
    default_sigma: float = DEFAULT_SIGMA_PX
    per_viewer: bool = True

    @property
    def nframes(self) -> int:
        return len(self.points)

    def _frame(self, frame: int) -> list[np.ndarray]:
        if not 1 <= frame <= self.nframes:
            raise IndexError(f"frame {frame} outside 1..{self.nframes}")
        return self.points[frame - 1]

    def frame_points(self, frame: int, viewers: Iterable[int] | None = None,
                     exclude: int | None = None) -> np.ndarray:
        """float64 ``[n, 2]`` points of frame ``frame`` of the given viewer indices (default all),
        without viewer index ``exclude``."""
        pts = self._frame(frame)
        idx = range(len(pts)) if viewers is None else viewers
        sel = [pts[i] for i in idx if i != exclude]
        return np.concatenate(sel, axis=0) if sel else np.zeros((0, 2))

    def counts(self) -> np.ndarray:
        """int ``[T, V]``: fixation points per frame and viewer."""
        return np.array([[p.shape[0] for p in fr] for fr in self.points], dtype=np.int64).reshape(
            self.nframes, len(self.viewers))

    def fixation_map(self, frame: int, viewers: Iterable[int] | None = None, exclude: int | None = None) -> np.ndarray:
        """uint8 ``[H, W]`` binary fixation map of frame ``frame`` (1-based); see :func:`points_to_fixation_map`."""
        return points_to_fixation_map(self.frame_points(frame, viewers, exclude), self.size)

    def density_map(self, frame: int, sigma: float | None = None, viewers: Iterable[int] | None = None,
                    exclude: int | None = None) -> np.ndarray:
        """float64 ``[H, W]`` density in [0, 1] of frame ``frame`` (sigma px; default
        ``default_sigma``); see :func:`points_to_density`."""
        return points_to_density(self.frame_points(frame, viewers, exclude), self.size,
                                 self.default_sigma if sigma is None else sigma)


def video_frame_times(n_frames: int, fps: float, start: float = 0.0) -> np.ndarray:
    """float64 ``[n_frames]`` frame start times ``start + (k - 1) / fps`` for k = 1..n (s).

    Raises:
        ValueError: ``n_frames < 1`` or ``fps <= 0``.
    """
    if n_frames < 1 or not fps > 0:
        raise ValueError(f"need n_frames >= 1 and fps > 0, got {n_frames}, {fps}")
    return start + np.arange(int(n_frames), dtype=np.float64) / float(fps)


def fixation_maps(recording: GazeRecording, frame_times: Sequence[float] | np.ndarray,
                  frame_hw: tuple[int, int] | None = None, frame_duration: float | None = None,
                  events: Iterable[int] = DEFAULT_FIXATION_EVENTS) -> FrameFixations:
    """Per-frame, per-viewer fixation points of a recording.

    Frame ``k`` (1-based) covers ``[frame_times[k-1], frame_times[k])`` s; the last frame lasts
    ``frame_duration`` (default: the median frame spacing; with a single frame, until the end of
    the recording).  Each viewer contributes, per frame, one point per run of consecutive
    samples whose event is in ``events`` (default fixation and smooth pursuit): the mean
    position of the run's samples that fall in the frame's interval and inside the frame.

    Args:
        recording: the gaze (video px).
        frame_times: float ``[T]`` increasing frame start times (s, on the gaze clock; use
            :func:`video_frame_times`).
        frame_hw: video ``(H, W)``; default ``recording.size``.
        frame_duration: length (s) of the last frame.
        events: event codes that count as fixating.

    Returns:
        :class:`FrameFixations` (``default_sigma`` = :meth:`GazeRecording.default_sigma`).
        Binary maps: ``.fixation_map(k)``; dense ``[T, H, W]``: ``.as_array()``.

    Raises:
        ValueError: no frame size, or frame times not strictly increasing.
    """
    hw = tuple(int(v) for v in (frame_hw or recording.size or ()))
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError("fixation_maps needs frame_hw=(H, W) (the recording has no size)")
    starts = np.asarray(frame_times, np.float64).reshape(-1)
    if starts.size < 1 or np.any(np.diff(starts) <= 0):
        raise ValueError("frame_times must be a non-empty, strictly increasing array")
    if frame_duration is None:
        frame_duration = float(np.median(np.diff(starts))) if starts.size > 1 else math.inf
    ends = np.r_[starts[1:], starts[-1] + frame_duration]
    T = starts.size
    evs = np.asarray(list(events), np.int8)
    h, w = hw
    pts: list[list[np.ndarray]] = [[] for _ in range(T)]
    for vg in recording.viewers:
        fixing = np.isin(vg.event, evs)
        run = np.cumsum(fixing & ~np.r_[False, fixing[:-1]])  # run id, valid where fixing
        k = np.searchsorted(starts, vg.t, side="right") - 1
        with np.errstate(invalid="ignore"):
            ok = (fixing & (k >= 0) & np.isfinite(vg.x) & np.isfinite(vg.y) & (vg.x >= 0) & (vg.x < w)
                  & (vg.y >= 0) & (vg.y < h))
        ok[ok] &= vg.t[ok] < ends[k[ok]]
        kk, rr, xx, yy = k[ok], run[ok], vg.x[ok], vg.y[ok]
        per_frame = [np.zeros((0, 2)) for _ in range(T)]
        if kk.size:
            key = kk.astype(np.int64) * (int(rr.max()) + 1) + rr
            uk, inv = np.unique(key, return_inverse=True)
            n = np.bincount(inv)
            mx = np.bincount(inv, xx) / n
            my = np.bincount(inv, yy) / n
            fk = uk // (int(rr.max()) + 1)
            for f in np.unique(fk):
                m = fk == f
                per_frame[int(f)] = np.stack([mx[m], my[m]], axis=1)
        for t in range(T):
            pts[t].append(per_frame[t])
    return FrameFixations(hw, recording.viewer_ids, starts, ends, pts, recording.default_sigma())


# ---- DHF1K layout (per-frame maps, no raw samples) -------------------------------------


@dataclass
class FrameMaps(_MapsMixin):
    """Per-frame fixation and density maps from a dataset's files (no per-viewer data).

    Layout (DHF1K annotations, ``docs/gaze.md``): ``FOLDER/fixation/%04d.png`` binary fixation
    maps (nonzero = fixated) and ``FOLDER/maps/%04d.png`` continuous density maps, frame ``k``
    1-based.  Sizes must match.  :meth:`density_map` returns the dataset's map (``sigma`` must
    be None: its blur is fixed by the dataset).

    Attributes:
        folder: the annotation folder.
        size: ``(H, W)``.
        fixation_files, density_files: one path per frame.
    """

    folder: Path
    size: tuple[int, int]
    fixation_files: list[Path]
    density_files: list[Path]
    viewers: list[str] = field(default_factory=lambda: ["all"])
    per_viewer: bool = False
    default_sigma: float | None = None

    @property
    def nframes(self) -> int:
        return len(self.fixation_files)

    def fixation_map(self, frame: int, viewers=None, exclude=None) -> np.ndarray:
        """uint8 ``[H, W]`` binary fixation map of frame ``frame`` (1-based)."""
        from avsal.evaluate.readers import read_dhf1k_fixation

        if exclude is not None:
            raise ValueError(f"{self.folder}: no per-viewer fixations (cannot leave a viewer out)")
        p = self.fixation_files[frame - 1]
        a = read_dhf1k_fixation(p)
        if a.shape != self.size:
            raise InputError(p, f"size {a.shape} differs from frame 1's {self.size}")
        return a

    def density_map(self, frame: int, sigma=None, viewers=None, exclude=None) -> np.ndarray:
        """float64 ``[H, W]`` density map of frame ``frame`` as stored (``/255``)."""
        from avsal.evaluate.readers import read_image_map

        if exclude is not None:
            raise ValueError(f"{self.folder}: no per-viewer fixations (cannot leave a viewer out)")
        if sigma is not None:
            raise ValueError(f"{self.folder}: the density maps are given; sigma cannot be chosen")
        p = self.density_files[frame - 1]
        a = read_image_map(p)
        if a.shape != self.size:
            raise InputError(p, f"size {a.shape} differs from the fixation maps' {self.size}")
        return a


def load_dhf1k(folder: str | os.PathLike) -> FrameMaps:
    """Read a DHF1K-layout annotation folder (``fixation/NNNN.png`` or ``fixation/maps/NNNN.mat``,
    ``maps/NNNN.png``) with :func:`avsal.evaluate.readers.read_dhf1k_video`.

    Raises:
        InputError: missing folders, frame numbers with gaps or not starting at 1, fixation and
            density files for different frames, or an unreadable first map.
    """
    from avsal.evaluate.readers import read_dhf1k_fixation, read_dhf1k_video

    v = read_dhf1k_video(folder, ("maps", "fixation"))
    size = read_dhf1k_fixation(v.fixations[0]).shape
    return FrameMaps(Path(folder), size, v.fixations, v.maps)


# --------------------------------------------------------------------------------------
# scoring: model, centre Gaussian, inter-observer
# --------------------------------------------------------------------------------------

#: Metrics scored by default (all of :mod:`avsal.metrics` the STAViS tables use, plus KLD).
GAZE_METRICS = (*_metrics.PAPER_METRICS, "kld")

#: Report rows, in order.  ``model``/``centre``: against all viewers' fixations (the usual
#: benchmark number); ``*_per_viewer`` and ``inter_observer``: against each viewer alone
#: (mean over viewers), so the three are directly comparable (``docs/gaze.md``).
REFERENCES = ("model", "centre", "model_per_viewer", "centre_per_viewer", "inter_observer")


def centre_gaussian(hw: tuple[int, int], sigma: tuple[float, float] = (0.25, 0.25)) -> np.ndarray:
    """float64 ``[H, W]`` centre Gaussian, max 1, std ``sigma = (sy, sx)`` as fractions of H and W
    (the centre prior of ``classic-av``, :func:`avsal.models.classic.centre_prior`)."""
    from avsal.models.classic import centre_prior

    return centre_prior(int(hw[0]), int(hw[1]), tuple(sigma)).astype(np.float64)


@dataclass(frozen=True)
class GazeScoreConfig:
    """Options of :func:`score_against_gaze`.

    Attributes:
        metrics: :func:`avsal.metrics.compute_metrics` names (default :data:`GAZE_METRICS`).
        sigma: density sigma in video px for CC/SIM/KLD targets and the inter-observer
            prediction (None: the fixations' ``default_sigma``; must be None for :class:`FrameMaps`,
            whose density maps are given).
        centre_sigma: centre Gaussian std as fractions ``(of H, of W)``.
        protocol: prediction post-processing (:func:`avsal.evaluate.protocol.prepare_prediction`):
            ``stavis`` (min-max + sigma-2 blur, then bicubic resize) or ``vinet`` (resize only).
        seed: seed of AUC-Judd's jitter and sAUC's draws; each reference draws from its own
            generator (:func:`avsal.evaluate.protocol.video_rng` of ``seed``, ``"<name>/<reference>"``),
            so a reference's numbers do not depend on which others are scored.
        frame_step: score every ``frame_step``-th frame (1 = all).
    """

    metrics: tuple[str, ...] = GAZE_METRICS
    sigma: float | None = None
    centre_sigma: tuple[float, float] = (0.25, 0.25)
    protocol: str = "stavis"
    seed: int = 0
    frame_step: int = 1

    def __post_init__(self):
        object.__setattr__(self, "metrics", _metrics.parse_metrics(self.metrics))
        if self.sigma is not None and not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"sigma must be positive, got {self.sigma!r}")
        if int(self.frame_step) != self.frame_step or self.frame_step < 1:
            raise ValueError(f"frame_step must be a positive integer, got {self.frame_step!r}")
        if len(self.centre_sigma) != 2 or min(self.centre_sigma) <= 0:
            raise ValueError(f"centre_sigma must be two positive fractions, got {self.centre_sigma!r}")


@dataclass
class GazeScores:
    """Result of :func:`score_against_gaze`.

    Attributes:
        name: recording name.
        frames: the scored frames (1-based).
        values: ``{reference: {metric: [value per scored frame]}}`` (NaN where undefined, e.g. a
            frame where no other viewer fixates for ``inter_observer``).
        means, counts: ``{reference: {metric: NaN-dropped mean / frames in it}}``.
        n_targets: ``{reference: [viewers scored per frame]}`` (1 for the pooled rows).
        sigma: density sigma used (px; None: dataset maps).
        pred_files: prediction file per scored frame ('' when arrays were given), or [] without a model.
        missing: frames without a prediction.
        notes: remarks for the report (e.g. why inter-observer is absent).
    """

    name: str
    frames: list[int]
    values: dict[str, dict[str, list[float]]]
    means: dict[str, dict[str, float]]
    counts: dict[str, dict[str, int]]
    n_targets: dict[str, list[int]]
    sigma: float | None
    pred_files: list[str] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _mean_rows(rows: list[dict], metrics) -> dict:
    out = {}
    for m in metrics:
        v = np.array([r[m] for r in rows], np.float64)
        v = v[np.isfinite(v)]
        out[m] = float(v.mean()) if v.size else float("nan")
    return out


def score_against_gaze(pred_maps: Mapping[int, "np.ndarray | str | os.PathLike"] | Callable[[int], np.ndarray] | None,
                       fixations: FrameFixations | FrameMaps, config: GazeScoreConfig | None = None,
                       name: str = "video", frames: Iterable[int] | None = None) -> GazeScores:
    """Score a model's saliency maps, a centre Gaussian and the inter-observer reference.

    For every scored frame ``k`` (1-based; default every ``frame_step``-th frame that has a
    prediction, or every frame without a model, and at least one fixation):

    * ``model`` / ``centre``: the map vs all viewers' fixation map (NSS, AUC-J, sAUC) and density
      (CC, SIM, KLD).
    * ``model_per_viewer`` / ``centre_per_viewer`` / ``inter_observer``: for each viewer ``v``
      with a fixation in frame ``k``: the map (for inter-observer: the density of the *other*
      viewers' fixations in frame ``k``, NaN if they have none) vs ``v``'s fixation map and
      ``v``'s density; the frame value is the mean over those viewers.  Absent (NaN, with a note)
      for :class:`FrameMaps`, which have no per-viewer data.

    sAUC's other map: the union of all viewers' fixations over all frames, minus the target's
    pixels (:func:`avsal.evaluate.protocol.other_map`).  Predictions go through
    :func:`avsal.evaluate.protocol.prepare_prediction` (``config.protocol``) to the video size;
    the centre Gaussian and inter-observer densities are used as they are.

    Args:
        pred_maps: ``{frame: float [h, w] array or image path}`` or ``frame -> array``, or None
            (references only).
        fixations: :func:`fixation_maps` output, or :func:`load_dhf1k` maps.
        config: :class:`GazeScoreConfig`.
        name: recording name (seeds and messages).
        frames: frames to consider (default ``1..T`` with ``config.frame_step``).

    Returns:
        :class:`GazeScores`.

    Raises:
        ValueError: a frame outside ``1..T``; ``sigma`` given for :class:`FrameMaps`.
        InputError: an unreadable prediction file.
    """
    from avsal import metrics as M
    from avsal.evaluate.protocol import ProtocolConfig, other_map, prepare_prediction, video_rng
    from avsal.evaluate.readers import read_prediction

    cfg = config or GazeScoreConfig()
    names = cfg.metrics
    hw = tuple(fixations.size)
    T = fixations.nframes
    per_viewer = bool(getattr(fixations, "per_viewer", False))
    sigma = cfg.sigma if cfg.sigma is not None else fixations.default_sigma
    if isinstance(fixations, FrameMaps) and cfg.sigma is not None:
        raise ValueError(f"{fixations.folder}: the density maps are given, sigma cannot be set")
    cand = list(range(1, T + 1, cfg.frame_step)) if frames is None else [int(k) for k in frames]
    for k in cand:
        if not 1 <= k <= T:
            raise ValueError(f"frame {k} outside 1..{T}")
    missing: list[int] = []
    if pred_maps is not None and not callable(pred_maps):
        missing = [k for k in cand if k not in pred_maps]
        cand = [k for k in cand if k in pred_maps]
    pcfg = ProtocolConfig(protocol=cfg.protocol, metrics=names)
    centre = centre_gaussian(hw, cfg.centre_sigma)
    union = fixations.union() if _metrics.needs_input(names, "other") else None
    refs = [r for r in REFERENCES if pred_maps is not None or not r.startswith("model")]
    if not per_viewer:
        refs = [r for r in refs if r in ("model", "centre")]
    gens = {r: video_rng(cfg.seed, f"{name}/{r}", 0) for r in refs}
    values = {r: {m: [] for m in names} for r in refs}
    ntar = {r: [] for r in refs}
    scored, pred_files = [], []
    nv = len(fixations.viewers)

    def run(ref, sal, fix, dens):
        other = other_map(union, fix) if union is not None else None
        return M.compute_metrics(sal, fix=fix, dens=dens, other=other, names=names, rng=gens[ref])

    for k in cand:
        fix_all = fixations.fixation_map(k)
        if not fix_all.any():
            continue
        S = None
        if pred_maps is not None:
            src = pred_maps(k) if callable(pred_maps) else pred_maps[k]
            arr = read_prediction(src) if isinstance(src, (str, os.PathLike)) else np.asarray(src, np.float64)
            pred_files.append(str(src) if isinstance(src, (str, os.PathLike)) else "")
            S = prepare_prediction(arr, hw, pcfg)
        dens_all = fixations.density_map(k, None if isinstance(fixations, FrameMaps) else sigma)
        scored.append(k)
        pooled = {"model": S, "centre": centre}
        for r in ("model", "centre"):
            if r in refs:
                out = run(r, pooled[r], fix_all, dens_all)
                for m in names:
                    values[r][m].append(out[m])
                ntar[r].append(1)
        if not per_viewer:
            continue
        rows = {r: [] for r in refs if r not in ("model", "centre")}
        for v in range(nv):
            pts = fixations.frame_points(k, [v])
            if pts.shape[0] == 0:
                continue
            fix_v = points_to_fixation_map(pts, hw)
            dens_v = points_to_density(pts, hw, sigma)
            for r in rows:
                if r == "inter_observer":
                    others = fixations.frame_points(k, exclude=v)
                    if others.shape[0] == 0:
                        continue
                    sal = points_to_density(others, hw, sigma)
                else:
                    sal = S if r == "model_per_viewer" else centre
                rows[r].append(run(r, sal, fix_v, dens_v))
        for r, rr in rows.items():
            mean = _mean_rows(rr, names)
            for m in names:
                values[r][m].append(mean[m])
            ntar[r].append(len(rr))
    means, counts = {}, {}
    for r in refs:
        means[r], counts[r] = {}, {}
        for m in names:
            a = np.asarray(values[r][m], np.float64)
            a = a[np.isfinite(a)]
            counts[r][m] = int(a.size)
            means[r][m] = float(a.mean()) if a.size else float("nan")
    notes = []
    if not per_viewer:
        notes.append("no per-viewer fixations in this recording: no inter-observer reference")
    elif nv < 2:
        notes.append("one viewer only: no inter-observer reference")
    return GazeScores(name, scored, values, means, counts, ntar,
                      None if isinstance(fixations, FrameMaps) else float(sigma), pred_files, missing, notes)


def write_gaze_report(out_dir: str | os.PathLike, scores: GazeScores, meta: dict) -> dict:
    """Write ``per_frame.csv``, ``summary.csv``, ``summary.json`` and ``summary.md`` into ``out_dir``.

    ``per_frame.csv``: one row per (reference, scored frame): ``reference, frame, n_targets,
    <metrics>, pred_file``.  ``summary.csv``: one row per reference, the NaN-dropped frame means
    and their frame counts.  Files are written atomically (:func:`avsal.evaluate.report.atomic_path`).

    Returns:
        The summary dictionary written to ``summary.json``.

    Raises:
        OutputError: the folder is not writable.
    """
    from avsal.evaluate.report import atomic_path, write_csv, write_json

    out = Path(out_dir)
    refs = list(scores.means)
    metrics = list(next(iter(scores.means.values()))) if scores.means else []
    rows = []
    for r in refs:
        for i, k in enumerate(scores.frames):
            pf = scores.pred_files[i] if r.startswith("model") and scores.pred_files else ""
            rows.append([r, k, scores.n_targets[r][i], *(scores.values[r][m][i] for m in metrics), pf])
    write_csv(out / "per_frame.csv", ["reference", "frame", "n_targets", *metrics, "pred_file"], rows)
    write_csv(out / "summary.csv", ["reference", *metrics, *(f"n_{m}" for m in metrics)],
              [[r, *(scores.means[r][m] for m in metrics), *(scores.counts[r][m] for m in metrics)] for r in refs])
    summary = {**meta, "name": scores.name, "sigma_px": scores.sigma, "n_frames_scored": len(scores.frames),
               "frames_missing_prediction": scores.missing, "scores": scores.means, "counts": scores.counts,
               "notes": scores.notes}
    write_json(out / "summary.json", summary)

    def cell(v):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"

    lines = [f"# Gaze evaluation: {scores.name}", ""]
    lines.append("| reference | " + " | ".join(_metrics.metric_label(m) for m in metrics) + " |")
    lines.append("|---|" + "---|" * len(metrics))
    for r in refs:
        lines.append(f"| {r} | " + " | ".join(cell(scores.means[r][m]) for m in metrics) + " |")
    lines += ["", "`model`, `centre`: against all viewers' fixations. `*_per_viewer`, `inter_observer`: against "
              "each viewer alone (mean over viewers); `inter_observer` predicts a viewer with the other viewers' "
              "density (leave one out), the ceiling for the per-viewer rows (not for KLD, which punishes the "
              "sharp density of a few viewers wherever they miss).", ""]
    lines.append(f"- frames scored: {len(scores.frames)}"
                 + (f"; frames without prediction: {len(scores.missing)}" if scores.missing else ""))
    lines.append("- density sigma: " + (f"{scores.sigma:.2f} px" if scores.sigma else "the dataset's maps"))
    for k in ("gaze", "video", "pred", "viewers", "coders", "mapping", "event_labels", "ivt", "fixation_events",
              "px_per_degree",
              "centre_sigma", "protocol", "seed"):
        if k in meta:
            lines.append(f"- {k}: {meta[k]}")
    lines += [f"- note: {n}" for n in scores.notes]
    with atomic_path(out / "summary.md") as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return summary
