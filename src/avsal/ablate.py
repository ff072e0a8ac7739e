"""``avsal ablate-audio``: how much does the soundtrack change an audio-visual model's saliency maps?

Each video is run through the model under three audio **conditions**, every other input identical:

* ``original``: its own soundtrack, decoded at the model's :class:`~avsal.models.base.AudioSpec`;
* ``silence``: zeros of the same length, rate and start time;
* ``other``: the soundtrack of another video of the set, chosen by a seeded **derangement** (no video is
  ever paired with itself, :func:`derangement`), resampled to the same rate if needed, looped or cut to
  the original's length and placed on the original's timeline (:func:`transplant`); with a single video
  (or a single video with sound) its own soundtrack circularly shifted by half its length
  (:func:`time_shifted`).

The video is decoded **once**; the decoded frames are shared by the three runs, which advance in lock
step (:func:`lockstep`, ``itertools.tee`` over one decoder, so memory holds only the frames between the
slowest and the fastest run, about one model look-ahead). A clip model's per-frame ``encode`` output is
also shared across the conditions when the model declares ``encode_uses_audio = False`` (its ``encode``
is then visual-only); otherwise ``encode`` runs once per condition, because the contract hands it the
audio (STANet's ``encode`` computes the audio branch too). A model with ``audio = None`` receives no
audio at all, so the three conditions are the same input: it is run once and shows exactly zero change.

Measures, per predicted frame, between the original-audio map and each ablated map, both resized to the
**analysis size** (the frame scaled so that its longer side is at most ``analysis_max_side`` px, the size
of ``avsal predict``'s ``saliency.h5``):

* CC and KLD (:func:`avsal.metrics.cc`, :func:`avsal.metrics.kld` with the original map as the
  reference distribution, i.e. KL(original || ablated));
* MAD: mean absolute difference of the two maps (values in [0, 1]; exactly 0 for identical maps);
* the displacement of the map's peak (arg max) in frame pixels, and whether it exceeds
  ``peak_frac`` x the frame diagonal (default 5 %; 36.7 px on a 640 x 360 frame).

With ground truth (the STAViS layout ``avsal evaluate`` reads, :mod:`avsal.evaluate.readers`, or a raw
gaze recording as ``avsal evaluate --gaze`` reads it, :mod:`avsal.evaluate.gaze`), every predicted frame
that the protocol selects (gaze: that somebody fixates in) is also scored under each condition exactly as
``avsal evaluate`` scores ``avsal predict``'s PNGs (map at the frame size, 8-bit quantised, then
:func:`avsal.evaluate.protocol.prepare_prediction` and :func:`avsal.metrics.compute_metrics`; gaze: the
``model`` row, all viewers' fixations and density); the three conditions use identically seeded
generators, so AUC-Judd's jitter and sAUC's draws are paired.

Over videos, the mean of each per-video number comes with a seeded percentile-bootstrap confidence
interval (:func:`bootstrap_ci`, ``scipy.stats.bootstrap``).

Outputs in ``OUT/`` (see ``docs/ablation.md``): ``ablation.csv`` (per video and condition),
``per_frame.csv``, ``summary.md``, ``summary.json``, ``overlay_<video>.mp4`` (original | silence, for
the video whose maps move most under silence) and per video ``videos/<name>/{result.json, maps.h5,
change.png}``. A video's folder appears only when complete (:func:`avsal.io.write.atomic_dir`); a rerun
keeps and skips finished videos.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from avsal import metrics as metric_table
from avsal.errors import InputError, OutputError

if TYPE_CHECKING:  # pragma: no cover
    from avsal.io.audio import AudioTrack
    from avsal.io.video import Frame, Sampling

# PyAV and OpenCV are imported inside the functions, so that building the CLI parser stays light.

__all__ = ["ABLATED", "CHANGE_MEASURES", "CONDITIONS", "AblateOptions", "AblationRun", "GazeOptions",
           "GroundTruthOptions",
           "VideoAblation", "ablate_video", "add_parser", "analysis_size", "assign_audio_sources", "bootstrap_ci",
           "derangement", "lockstep", "map_change", "plot_video", "run", "run_ablation", "run_settings",
           "silence_like", "time_shifted", "transplant", "write_report", "write_side_by_side"]

#: The three audio conditions, in output order.
CONDITIONS = ("original", "silence", "other")
#: The conditions compared with ``original``.
ABLATED = ("silence", "other")
#: Per-frame map-change measures (see the module docstring).
CHANGE_MEASURES = ("cc", "kld", "mad", "peak_shift_px")
#: Version of ``result.json``; a folder written by another version is redone.
RESULT_VERSION = 1


# ----------------------------------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroundTruthOptions:
    """Where the ground truth is, in a layout ``avsal evaluate`` reads (the STAViS release layout).

    A video is matched to ``ROOT/annotations/<DB>/<output name>/`` (the file stem); its frame count comes
    from the first test fold list (split 1, 2, 3) that lists it, else from the number of ``fixMap_*.mat``
    files. Decoded frame ``i`` (0-based) is ground-truth frame ``i + 1``. The metrics' random draws are
    seeded as ``avsal evaluate`` seeds that (split, video) (:func:`avsal.evaluate.protocol.video_seed`;
    split 0 when no fold list names it), so the ``original`` scores equal ``avsal evaluate``'s on
    ``avsal predict``'s maps of the same frames.

    Attributes:
        data_root: STAViS ``data`` folder (holding ``annotations/``) or its parent.
        dataset: dataset name (``AVAD``, ``DIEM``, …, or a folder of ``annotations/``).
        fold_lists: folder of the fold lists (default ``ROOT/fold_lists``).
        protocol: :class:`avsal.evaluate.protocol.ProtocolConfig` (protocol, frames, metrics).
    """

    data_root: str
    dataset: str
    fold_lists: str | None = None
    protocol: Any = None

    def to_dict(self) -> dict:
        return {"data_root": os.path.abspath(self.data_root), "dataset": self.dataset,
                "fold_lists": self.fold_lists and os.path.abspath(self.fold_lists),
                "protocol": self.protocol.to_dict() if self.protocol is not None else None}

    def describe(self) -> str:
        """One phrase for the report."""
        return (f"{self.dataset} in the STAViS layout, {self.protocol.protocol} protocol, frames "
                f"{self.protocol.frames}")


@dataclass(frozen=True)
class GazeOptions:
    """Ground truth from raw gaze recordings, read as ``avsal evaluate --gaze`` reads them (``docs/gaze.md``).

    ``path`` is either one recording used for a single input video (a CSV, an Andersson ``.mat`` file, a
    DIEM folder with ``event_data/``, or a DHF1K-layout folder with ``fixation/`` and ``maps/``), or a
    folder holding, per video (matched by its output name, the file stem): ``<stem>.csv``, a sub-folder
    ``<stem>/`` (DIEM or DHF1K layout), or Andersson files ``*_video_<stem>_labelled_*.mat``.
    Frame ``k`` of the video covers ``[gaze_offset + (k−1)/fps, gaze_offset + k/fps)`` on the gaze clock.

    Attributes:
        path: recording or folder of recordings.
        screen: ``(W, H)`` screen px; the video is centred on it at native size (default: gaze samples are
            video px, or the reader's own geometry).
        px_per_degree: video px per degree (CSV: sets the 1° density σ and the I-VT unit).
        ivt_threshold: I-VT velocity threshold for unlabelled CSV samples (deg/s with ``px_per_degree``,
            else px/s).
        sigma: density σ in video px (default 1° when the geometry is known, else 40 px).
        coder: Andersson event coder (default the first).
        gaze_offset: time (s) of the video's first frame on the gaze clock.
        protocol: :class:`avsal.evaluate.protocol.ProtocolConfig` (post-processing and metrics).
    """

    path: str
    screen: tuple[float, float] | None = None
    px_per_degree: float | None = None
    ivt_threshold: float | None = None
    sigma: float | None = None
    coder: str | None = None
    gaze_offset: float = 0.0
    protocol: Any = None

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("screen", "px_per_degree", "ivt_threshold", "sigma", "coder",
                                           "gaze_offset")}
        return {"gaze": os.path.abspath(self.path), **d,
                "protocol": self.protocol.to_dict() if self.protocol is not None else None}

    def describe(self) -> str:
        return f"gaze recordings `{os.path.basename(os.path.abspath(self.path))}`, {self.protocol.protocol} protocol"

    def single_recording(self) -> bool:
        """True when ``path`` is one recording (usable for one video only), not a folder of them."""
        p = Path(self.path)
        if p.is_file():
            return True
        return (p / "event_data").is_dir() or p.name == "event_data" or ((p / "fixation").is_dir()
                                                                         and (p / "maps").is_dir())

    def source(self, name: str) -> str | None:
        """The recording of video ``name`` (see the class docstring), or ``None``."""
        p = Path(self.path)
        if self.single_recording():
            return str(p)
        if (p / f"{name}.csv").is_file():
            return str(p / f"{name}.csv")
        if (p / name).is_dir():
            return str(p / name)
        if any(p.glob(f"*_{name}_labelled_*.mat")):
            return str(p)
        return None


@dataclass
class AblateOptions:
    """Options of an ablation run.

    Attributes:
        model: registry name (see ``avsal models``).
        weights: weights file for models that need one.
        model_config: overrides of the model's configuration (``--set KEY=VALUE``).
        every, fps: sampling of the predicted frames (at most one; default every frame).
        device, batch_size: for network models.
        seed: seed of the derangement, of the metrics' random draws and of the bootstrap.
        peak_frac: a peak "moves" when it is displaced by more than this fraction of the frame diagonal.
        analysis_max_side: longer side (px) of the maps the change measures are computed on.
        shift_frac: circular shift (fraction of the track's length) of the single-video ``other`` audio.
        n_boot: bootstrap resamples; ``ci``: confidence level of the intervals.
        overlay: write the side-by-side overlay video of the most audio-sensitive clip.
        overwrite: redo videos whose results exist.
        gt: ground truth (:class:`GroundTruthOptions` or :class:`GazeOptions`), or ``None``.
    """

    model: str = "classic-av"
    weights: str | None = None
    model_config: dict = field(default_factory=dict)
    every: int | None = None
    fps: float | None = None
    device: str = "cpu"
    batch_size: int = 8
    seed: int = 0
    peak_frac: float = 0.05
    analysis_max_side: int = 320
    shift_frac: float = 0.5
    n_boot: int = 2000
    ci: float = 0.95
    overlay: bool = True
    overwrite: bool = False
    gt: GroundTruthOptions | GazeOptions | None = None

    def sampling(self) -> "Sampling":
        from avsal.io.video import Sampling

        return Sampling(every=self.every, fps=self.fps)

    def check(self) -> None:
        """Raises ValueError for inconsistent options."""
        if self.every is not None and self.fps is not None:
            raise ValueError("give at most one of --every and --fps")
        self.sampling()
        if not 0 < self.peak_frac < 1:
            raise ValueError(f"--peak-frac must be in (0, 1), got {self.peak_frac}")
        if not 0 < self.shift_frac < 1:
            raise ValueError(f"shift_frac must be in (0, 1), got {self.shift_frac}")
        if self.analysis_max_side < 8:
            raise ValueError(f"analysis_max_side must be >= 8, got {self.analysis_max_side}")
        if self.n_boot < 100 or not 0 < self.ci < 1:
            raise ValueError("need n_boot >= 100 and 0 < ci < 1")
        if self.batch_size < 1:
            raise ValueError("--batch-size must be >= 1")


# ----------------------------------------------------------------------------------------------------
# audio conditions
# ----------------------------------------------------------------------------------------------------

def derangement(n: int, seed: int) -> list[int]:
    """A permutation ``p`` of ``0..n-1`` with ``p[i] != i`` for every ``i``, drawn uniformly and seeded.

    Rejection sampling: ``numpy.random.default_rng(seed).permutation(n)`` until no element is fixed
    (about e ≈ 2.7 draws on average), so the result depends only on ``(n, seed)``.

    Args:
        n: number of items, ``>= 2``.
        seed: integer seed.

    Returns:
        ``list[int]`` of length ``n``: item ``i`` takes the audio of item ``p[i]``.

    Raises:
        ValueError: ``n < 2`` (no derangement exists).
    """
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {n}")
    rng = np.random.default_rng(seed)
    while True:
        p = rng.permutation(n)
        if not np.any(p == np.arange(n)):
            return [int(x) for x in p]


def silence_like(track: AudioTrack) -> AudioTrack:
    """Digital silence with the track's length, rate and start time (float32 zeros)."""
    from avsal.io.audio import AudioTrack

    return AudioTrack(np.zeros_like(track.samples, dtype=np.float32), track.sample_rate, track.start_time)


def time_shifted(track: AudioTrack, frac: float = 0.5) -> AudioTrack:
    """The track circularly shifted later by ``round(frac · n)`` samples (same length, rate, start time).

    Args:
        track: the soundtrack (``n`` samples).
        frac: shift as a fraction of the track's length, in (0, 1).

    Returns:
        An :class:`AudioTrack`; ``samples[i] = track.samples[(i − shift) mod n]``.
    """
    from avsal.io.audio import AudioTrack

    n = len(track.samples)
    shift = int(round(frac * n)) if n else 0
    return AudioTrack(np.roll(track.samples, shift).astype(np.float32, copy=False), track.sample_rate,
                      track.start_time)


def transplant(donor: AudioTrack, target: AudioTrack) -> AudioTrack:
    """The donor's soundtrack on the target's timeline: same rate, length and start time as ``target``.

    The donor is resampled to ``target.sample_rate`` if the rates differ (``scipy.signal.resample_poly``),
    then looped (``numpy.resize``) or cut to ``len(target.samples)``, so the ``other`` condition never has
    a silent tail that would mix it up with the ``silence`` condition. An empty donor gives silence.

    Returns:
        float32 :class:`AudioTrack` with ``len(target.samples)`` samples.
    """
    from avsal.io.audio import AudioTrack

    x = np.asarray(donor.samples, dtype=np.float32)
    if donor.sample_rate != target.sample_rate and x.size:
        from scipy.signal import resample_poly

        g = math.gcd(int(target.sample_rate), int(donor.sample_rate))
        x = resample_poly(x, target.sample_rate // g, donor.sample_rate // g).astype(np.float32)
    n = len(target.samples)
    out = np.resize(x, n).astype(np.float32) if x.size else np.zeros(n, np.float32)
    return AudioTrack(out, target.sample_rate, target.start_time)


def assign_audio_sources(names: list[str], has_audio: list[bool], seed: int) -> dict[str, str | None]:
    """The donor of each video's ``other`` condition.

    Videos with sound are deranged among themselves (:func:`derangement` in the given order, seeded);
    a lone video with sound gets ``None`` (its own audio, time-shifted); videos without sound get ``None``.

    Returns:
        ``{name: donor name or None}``.
    """
    with_audio = [n for n, a in zip(names, has_audio) if a]
    out: dict[str, str | None] = {n: None for n in names}
    if len(with_audio) >= 2:
        p = derangement(len(with_audio), seed)
        for i, n in enumerate(with_audio):
            out[n] = with_audio[p[i]]
    return out


# ----------------------------------------------------------------------------------------------------
# running the model under several conditions at once
# ----------------------------------------------------------------------------------------------------

class _SharedEncode:
    """Per-frame ``encode`` outputs shared by ``n`` runs of a clip model whose ``encode`` ignores audio.

    Each run asks for a frame's encoding at most once (:func:`avsal.models.base.run_clips`), so an entry is
    dropped after ``n`` hand-outs; ``calls`` counts the frames actually encoded.
    """

    def __init__(self, model, n: int):
        self.model, self.n = model, n
        self.cache: dict[int, list] = {}  # frame index -> [encoding, hand-outs left]
        self.calls = 0

    def encode(self, frames: list[Frame], audio) -> list:
        missing = [f for f in frames if f.index not in self.cache]
        if missing:
            self.calls += len(missing)
            for f, e in zip(missing, self.model.encode(missing, audio)):
                self.cache[f.index] = [e, self.n]
        out = []
        for f in frames:
            entry = self.cache[f.index]
            out.append(entry[0])
            entry[1] -= 1
            if entry[1] <= 0:
                del self.cache[f.index]
        return out


class _EncodeView:
    """A clip model seen through a :class:`_SharedEncode` (same ``clip``, ``audio``, ``decode``)."""

    def __init__(self, model, shared: _SharedEncode):
        self._model, self._shared = model, shared
        self.clip, self.audio = model.clip, model.audio
        self.batch_size = getattr(model, "batch_size", 8)
        self.name = getattr(model, "name", type(model).__name__)

    def encode(self, frames, audio):
        return self._shared.encode(frames, audio)

    def decode(self, clips, audio, frame_hw):
        return self._model.decode(clips, audio, frame_hw)


def lockstep(model, frames: Iterable[Frame], tracks: dict[str, AudioTrack | None],
             frame_hw: tuple[int, int] | None = None) -> Iterator[tuple[int, float, dict[str, np.ndarray]]]:
    """Run one model under several soundtracks over one decoded frame stream, in lock step.

    The frames are decoded once and handed to every run (``itertools.tee``): each ``Frame`` object, and
    its RGB conversion, is shared. Runs use :func:`avsal.models.base.model_stream` with the same model
    instance (a streaming model must keep its state inside ``stream``, as ``classic-av`` does). A clip
    model with ``encode_uses_audio = False`` also shares its per-frame ``encode`` work
    (:class:`_SharedEncode`).

    Args:
        model: a video model (contract of :mod:`avsal.models.base`).
        frames: :class:`avsal.io.video.Frame` objects in presentation order.
        tracks: ``{condition: soundtrack or None}``, e.g. from the three conditions.
        frame_hw: ``(H, W)`` of the video in pixels.

    Yields:
        ``(index, time, {condition: saliency float32 [h, w] in [0, 1]})`` per selected frame, in order.

    Raises:
        RuntimeError: the runs disagree on the frames they predict (a model whose output frames depend on
            the audio breaks the comparison).
    """
    from avsal.models.base import model_stream

    names = list(tracks)
    streams_in = itertools.tee(frames, len(names))
    share = (getattr(model, "clip", None) is not None and getattr(model, "encode_uses_audio", True) is False
             and len(names) > 1)
    shared = _SharedEncode(model, len(names)) if share else None
    runs = [model_stream(_EncodeView(model, shared) if shared else model, it, tracks[n], frame_hw)
            for n, it in zip(names, streams_in)]
    for preds in zip(*runs, strict=True):
        idx = preds[0].index
        if any(p.index != idx for p in preds):
            raise RuntimeError(f"the runs predicted different frames ({[p.index for p in preds]})")
        yield idx, preds[0].time, {n: np.asarray(p.saliency, np.float32) for n, p in zip(names, preds)}


# ----------------------------------------------------------------------------------------------------
# measures
# ----------------------------------------------------------------------------------------------------

def analysis_size(height: int, width: int, max_side: int = 320) -> tuple[int, int]:
    """``(h, w)`` of the maps the change measures use: longer side ``max_side`` px at most, aspect kept."""
    s = min(1.0, max_side / max(height, width))
    return max(1, round(height * s)), max(1, round(width * s))


def _peak(m: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(m)), m.shape))  # type: ignore[return-value]


def map_change(original: np.ndarray, ablated: np.ndarray, frame_hw: tuple[int, int]) -> dict[str, float]:
    """How much one map moved: CC, KLD, MAD and the peak displacement.

    Args:
        original: float32 ``[h, w]`` map under the original audio (the analysis size).
        ablated: float32 ``[h, w]`` map under an ablated audio, same shape.
        frame_hw: ``(H, W)`` of the video frame in pixels (the peak displacement is in frame pixels).

    Returns:
        ``{"cc": CC(ablated, original), "kld": KL(original || ablated) (cvzoya KLdiv, natural log),
        "mad": mean |ablated − original|, "peak_shift_px": distance between the two arg-max pixel
        centres in frame pixels}``. Identical maps give CC 1 (NaN if the map is constant), KLD ≈ 0
        (the EPS terms), MAD 0 and shift 0 exactly.
    """
    from avsal import metrics

    h, w = original.shape
    H, W = frame_hw
    (y0, x0), (y1, x1) = _peak(original), _peak(ablated)
    dy, dx = (y1 - y0) * H / h, (x1 - x0) * W / w
    return {"cc": metrics.cc(ablated, original), "kld": metrics.kld(ablated, original),
            "mad": float(np.mean(np.abs(ablated.astype(np.float64) - original))),
            "peak_shift_px": float(math.hypot(dy, dx))}


def bootstrap_ci(values, seed: int, n_boot: int = 2000, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of per-video values with a percentile-bootstrap confidence interval over videos.

    ``scipy.stats.bootstrap`` (percentile method, ``n_boot`` resamples of the videos with replacement,
    ``numpy.random.default_rng(seed)``); NaN values are left out first.

    Returns:
        ``(mean, low, high)``; the interval is ``(nan, nan)`` with fewer than 2 values, and
        ``(mean, mean)`` when all values are equal.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if v.size < 2:
        return mean, float("nan"), float("nan")
    if np.all(v == v[0]):
        return mean, mean, mean
    from scipy.stats import bootstrap

    res = bootstrap((v,), np.mean, n_resamples=n_boot, confidence_level=level, method="percentile",
                    random_state=np.random.default_rng(seed))
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


# ----------------------------------------------------------------------------------------------------
# ground truth
# ----------------------------------------------------------------------------------------------------

class _VideoGT:
    """The ground truth of one video (STAViS layout) and the frames the protocol scores."""

    def __init__(self, gt: GroundTruthOptions, name: str):
        from avsal.evaluate.protocol import select_frames
        from avsal.evaluate.readers import StavisLayout, VideoGroundTruth, read_fold_list

        layout = StavisLayout(gt.data_root, gt.fold_lists)
        ds = layout.dataset(gt.dataset)
        self.dir = layout.annotation_dir(ds, name)
        if not self.dir.is_dir():
            raise FileNotFoundError(str(self.dir))
        nframes, self.split = None, 0
        for s in (1, 2, 3):
            p = layout.fold_list_path(ds, s)
            if p.exists():
                for e in read_fold_list(p):
                    if e.name == name:
                        nframes, self.split = e.nframes, s
                        break
            if nframes is not None:
                break
        if nframes is None:
            nframes = len(list(self.dir.glob("fixMap_*.mat")))
        self.gt = VideoGroundTruth(self.dir, nframes)
        cfg = gt.protocol
        self.config = cfg
        self.frames = set(select_frames(nframes, cfg.frames, cfg.first_frame))
        self.seed_key = (name, self.split)  # avsal evaluate's video_rng(seed, video, split)

    def score(self, full_map: np.ndarray, k: int, rng) -> dict[str, float] | None:
        """Metrics of one prediction (float ``[H, W]`` in [0, 1] at the frame size) on GT frame ``k``."""
        from avsal import metrics
        from avsal.evaluate.protocol import other_map, prepare_prediction
        from avsal.io.write import to_uint8

        names = self.config.metrics
        pred = to_uint8(full_map).astype(np.float64) / 255.0  # what evaluate reads from predict's PNGs
        S = prepare_prediction(pred, self.gt.shape, self.config)
        fix = self.gt.fixations(k)
        dens = self.gt.density(k)
        other = other_map(self.gt.union, fix) if metric_table.needs_input(names, "other") else None
        return metrics.compute_metrics(S, fix=fix, dens=dens, other=other, names=names, rng=rng)


class _GazeGT:
    """Per-frame fixations of one video from a raw gaze recording, scored as ``avsal evaluate --gaze``
    scores its ``model`` row (all viewers' fixations and density; frames without a fixation skipped)."""

    def __init__(self, g: GazeOptions, name: str, info):
        from avsal.evaluate import gaze as G

        src = g.source(name)
        if src is None:
            raise FileNotFoundError(f"a gaze recording of {name} in {g.path}")
        p = Path(src)
        hw = (info.height, info.width)
        if p.is_dir() and (p / "fixation").is_dir() and (p / "maps").is_dir():
            self.fix = G.load_dhf1k(p)
            self.sigma = None
        else:
            n = info.n_frames or int(round(info.duration * info.fps))
            mapping = G.ScreenMapping.centred(tuple(g.screen), hw) if g.screen else None
            ivt = {"threshold": g.ivt_threshold} if g.ivt_threshold is not None else None
            rec = G.load_gaze(p, size=hw, video=name, mapping=mapping, px_per_degree=g.px_per_degree,
                              coder=g.coder, ivt=ivt)
            self.fix = G.fixation_maps(rec, G.video_frame_times(n, info.fps, start=g.gaze_offset), hw)
            self.sigma = g.sigma if g.sigma is not None else self.fix.default_sigma
        self.config = g.protocol
        self.union = self.fix.union() if metric_table.needs_input(self.config.metrics, "other") else None
        self.frames = set(range(1, self.fix.nframes + 1))
        self.seed_key = (f"{name}/model", 0)  # evaluate --gaze: video_rng(seed, "<name>/model", 0)

    def score(self, full_map: np.ndarray, k: int, rng) -> dict[str, float] | None:
        """Metrics of one prediction (float ``[H, W]`` in [0, 1] at the frame size) on frame ``k``, or
        ``None`` (no draw made) when nobody fixates in that frame."""
        from avsal import metrics
        from avsal.evaluate.protocol import other_map, prepare_prediction
        from avsal.io.write import to_uint8

        fix = self.fix.fixation_map(k)
        if not fix.any():
            return None
        S = prepare_prediction(to_uint8(full_map).astype(np.float64) / 255.0, tuple(self.fix.size), self.config)
        dens = self.fix.density_map(k, self.sigma)
        other = other_map(self.union, fix) if self.union is not None else None
        return metrics.compute_metrics(S, fix=fix, dens=dens, other=other, names=self.config.metrics, rng=rng)


# ----------------------------------------------------------------------------------------------------
# one video
# ----------------------------------------------------------------------------------------------------

@dataclass
class VideoAblation:
    """The results of one video (stored as ``videos/<name>/result.json``).

    Attributes:
        name: output name of the video; ``input``: its file name.
        sources: per condition, where its audio came from (``"own"``, ``"silence"``, ``"<donor> (looped
            or cut)"``, ``"own, shifted by X s"``, or ``"none (model takes no audio)"``).
        donor: the donor video's name for ``other``, or ``None``.
        frame_size: ``[H, W]`` px; ``analysis_size``: ``[h, w]`` of the compared maps.
        peak_threshold_px: ``peak_frac`` × the frame diagonal, px.
        frame_indices: 0-based decoded index of each predicted frame; ``times``: seconds.
        change: ``{ablated condition: {measure: [value per frame]}}`` (:data:`CHANGE_MEASURES`).
        loudness: ``{condition: [RMS amplitude of a 0.1 s window at each frame time]}``.
        gt_frames: positions (into ``frame_indices``) of the frames scored against the ground truth.
        gt: ``{condition: {metric: [value per scored frame]}}`` or ``None`` without ground truth.
        model_uses_audio: the model declares an ``AudioSpec``.
        warnings: messages about this video.
        settings: the run fingerprint this result was computed with.
        wall_time_s: seconds.
    """

    name: str
    input: str
    sources: dict[str, str]
    donor: str | None
    frame_size: list[int]
    analysis_size: list[int]
    peak_threshold_px: float
    frame_indices: list[int]
    times: list[float]
    change: dict[str, dict[str, list[float]]]
    loudness: dict[str, list[float]]
    gt_frames: list[int] = field(default_factory=list)
    gt: dict[str, dict[str, list[float]]] | None = None
    model_uses_audio: bool = True
    warnings: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    wall_time_s: float = 0.0

    # ---- per-video summaries
    def moved(self, cond: str) -> np.ndarray:
        """bool ``[T]``: the peak moved more than the threshold under ``cond``."""
        return np.asarray(self.change[cond]["peak_shift_px"]) > self.peak_threshold_px

    def mean(self, cond: str, measure: str) -> float:
        """NaN-dropped mean over frames of a change measure (``"moved"``: the share of moved peaks)."""
        v = self.moved(cond).astype(np.float64) if measure == "moved" else np.asarray(self.change[cond][measure],
                                                                                      np.float64)
        v = v[~np.isnan(v)]
        return float(v.mean()) if v.size else float("nan")

    def gt_mean(self, cond: str, metric: str) -> float:
        if not self.gt:
            return float("nan")
        v = np.asarray(self.gt[cond][metric], np.float64)
        v = v[~np.isnan(v)]
        return float(v.mean()) if v.size else float("nan")

    def to_json(self) -> dict:
        from avsal.evaluate.report import _jsonable

        return {"version": RESULT_VERSION, **_jsonable(asdict(self))}

    @classmethod
    def from_json(cls, d: dict) -> "VideoAblation":
        d = dict(d)
        d.pop("version", None)

        def nan(x):
            if isinstance(x, list):
                return [float("nan") if v is None else v for v in x]
            if isinstance(x, dict):
                return {k: nan(v) for k, v in x.items()}
            return x

        d["change"] = nan(d["change"])
        d["loudness"] = nan(d["loudness"])
        if d.get("gt") is not None:
            d["gt"] = nan(d["gt"])
        return cls(**d)


class _MapStore:
    """``maps.h5``: per condition a dataset uint8 ``[T, h, w]`` (``round(255 · map)``, gzip), with
    ``frame_indices`` int64 ``[T]`` (0-based) and ``times`` float64 ``[T]`` (s); attribute ``frame_size``."""

    def __init__(self, path: str, size: tuple[int, int], frame_hw: tuple[int, int]):
        import h5py

        self.file = h5py.File(path, "w")
        h, w = size
        self.maps = {c: self.file.create_dataset(c, shape=(0, h, w), maxshape=(None, h, w), dtype="uint8",
                                                 chunks=(1, h, w), compression="gzip", compression_opts=4)
                     for c in CONDITIONS}
        self.idx = self.file.create_dataset("frame_indices", shape=(0,), maxshape=(None,), dtype="int64")
        self.times = self.file.create_dataset("times", shape=(0,), maxshape=(None,), dtype="float64")
        self.file.attrs["frame_size"] = frame_hw
        self.n = 0

    def append(self, maps: dict[str, np.ndarray], index: int, time_s: float) -> None:
        from avsal.io.write import to_uint8

        n = self.n
        for c, d in self.maps.items():
            d.resize(n + 1, axis=0)
            d[n] = to_uint8(maps[c])
        self.idx.resize(n + 1, axis=0)
        self.times.resize(n + 1, axis=0)
        self.idx[n], self.times[n] = index, time_s
        self.n += 1

    def close(self) -> None:
        self.file.close()


def _load_audio_at(path: str, spec, stream_index=None) -> "AudioTrack | None":
    from avsal.io.audio import load_audio

    return load_audio(path, sample_rate=spec.sample_rate, stream_index=stream_index, mix=spec.mix,
                      resampler=getattr(spec, "resampler", "swr"))


def ablate_video(path: str, model, opts: AblateOptions, name: str | None = None, donor: str | None = None,
                 donor_name: str | None = None, out_dir: str | None = None, progress: bool = False,
                 settings: dict | None = None) -> VideoAblation:
    """Run the three conditions on one video and measure the change (see the module docstring).

    Args:
        path: the video file.
        model: a video model (contract of :mod:`avsal.models.base`).
        opts: :class:`AblateOptions` (sampling, thresholds, seed, ground truth).
        name: output name (default the file stem); also the ground-truth folder name.
        donor, donor_name: the file and name whose audio is the ``other`` condition; ``None``: own audio
            time-shifted by ``opts.shift_frac`` of its length.
        out_dir: an existing empty folder for ``maps.h5`` (:class:`_MapStore`: the maps of the three
            conditions at the analysis size) and ``change.png``; ``None``: no files.
        progress: a progress bar over decoded frames.
        settings: the run fingerprint to record.

    Returns:
        :class:`VideoAblation`.

    Raises:
        InputError: the video (or the donor's audio) cannot be used, the video has no audio stream while
            the model takes audio, or the sampling selects no frame.
    """
    from tqdm.auto import tqdm

    from avsal.io.audio import load_audio, rms_envelope
    from avsal.io.video import iter_frames, probe
    from avsal.models.base import upsample

    t0 = time.perf_counter()
    name = name or os.path.splitext(os.path.basename(path))[0]
    info = probe(path)
    H, W = info.height, info.width
    ah, aw = analysis_size(H, W, opts.analysis_max_side)
    spec = getattr(model, "audio", None)
    notes: list[str] = []
    sources: dict[str, str]
    if spec is None:
        tracks: dict[str, AudioTrack | None] = {"original": None}
        sources = {c: "none (model takes no audio)" for c in CONDITIONS}
        loud_tracks = {}
        if info.has_audio:
            own = load_audio(path, stream_index=info.audio_stream)
            loud_tracks = {"original": own, "silence": silence_like(own), "other": own}
    else:
        if not info.has_audio:
            raise InputError(path, "has no audio stream: there is no soundtrack to ablate")
        own = _load_audio_at(path, spec, info.audio_stream)
        if own is None or own.samples.size == 0:
            raise InputError(path, "the audio stream decodes to no samples: there is no soundtrack to ablate")
        if donor is not None:
            dinfo = probe(donor)
            dtrack = _load_audio_at(donor, spec, dinfo.audio_stream) if dinfo.has_audio else None
            if dtrack is None or dtrack.samples.size == 0:
                raise InputError(donor, "has no decodable audio to lend to the 'other' condition")
            other = transplant(dtrack, own)
            fit = "looped" if dtrack.duration < own.duration else "cut"
            sources = {"original": "own", "silence": "silence",
                       "other": f"{donor_name or os.path.basename(donor)} ({fit} to {own.duration:.2f} s)"}
        else:
            other = time_shifted(own, opts.shift_frac)
            sources = {"original": "own", "silence": "silence",
                       "other": f"own, circularly shifted by {opts.shift_frac * own.duration:.2f} s"}
        rms = own.rms()
        if rms < 1e-3:
            notes.append(f"the soundtrack is near-silent ({20 * math.log10(max(rms, 1e-12)):.1f} dBFS)")
        tracks = {"original": own, "silence": silence_like(own), "other": other}
        loud_tracks = tracks
    gt = None
    if opts.gt is not None:
        try:
            gt = _GazeGT(opts.gt, name, info) if isinstance(opts.gt, GazeOptions) else _VideoGT(opts.gt, name)
        except FileNotFoundError as e:
            notes.append(f"no ground truth ({e.args[0]} not found)")
    threshold = opts.peak_frac * math.hypot(H, W)
    res = VideoAblation(name=name, input=os.path.basename(path), sources=sources,
                        donor=donor_name if spec is not None and donor is not None else None,
                        frame_size=[H, W], analysis_size=[ah, aw], peak_threshold_px=threshold,
                        frame_indices=[], times=[], change={c: {m: [] for m in CHANGE_MEASURES} for c in ABLATED},
                        loudness={c: [] for c in CONDITIONS}, gt=None, model_uses_audio=spec is not None,
                        settings=settings or {})
    if gt is not None:
        res.gt = {c: {m: [] for m in gt.config.metrics} for c in CONDITIONS}
        from avsal.evaluate.protocol import video_rng

        # One generator per condition, each seeded as `avsal evaluate` seeds this video: paired draws.
        rngs = {c: video_rng(opts.seed, *gt.seed_key) for c in CONDITIONS}
    store = _MapStore(os.path.join(out_dir, "maps.h5"), (ah, aw), (H, W)) if out_dir is not None else None
    bar = tqdm(total=info.n_frames or None, desc=name, unit="frame", disable=not progress, leave=False)

    def counted(frames):
        for f in frames:
            bar.update(1)
            yield f

    try:
        frames = counted(iter_frames(path, opts.sampling(), info=info))
        for idx, t, maps in lockstep(model, frames, tracks, (H, W)):
            if spec is None:
                maps = {c: maps["original"] for c in CONDITIONS}
            small = {c: upsample(m, ah, aw) for c, m in maps.items()}
            res.frame_indices.append(int(idx))
            res.times.append(float(t))
            for c in ABLATED:
                for k, v in map_change(small["original"], small[c], (H, W)).items():
                    res.change[c][k].append(v)
            if gt is not None and idx + 1 in gt.frames:
                scores = {c: gt.score(upsample(maps[c], H, W), idx + 1, rngs[c]) for c in CONDITIONS}
                if scores["original"] is not None:
                    res.gt_frames.append(len(res.frame_indices) - 1)
                    for c in CONDITIONS:
                        for m, v in scores[c].items():
                            res.gt[c][m].append(float(v))
            if store is not None:
                store.append(small, idx, t)
    finally:
        bar.close()
        if store is not None:
            store.close()
    if not res.frame_indices:
        raise InputError(path, "the sampling selected no frame (is --fps/--every larger than the video?)")
    for c in CONDITIONS:
        tr = loud_tracks.get(c)
        res.loudness[c] = (rms_envelope(tr, res.times).astype(np.float64).tolist() if tr is not None
                           else [float("nan")] * len(res.times))
    if gt is not None and not res.gt_frames:
        notes.append(f"no predicted frame could be scored against the ground truth (frames "
                     f"{min(gt.frames, default=0)}..{max(gt.frames, default=0)}, with a fixation)")
    res.warnings = notes
    if out_dir is not None:
        plot_video(os.path.join(out_dir, "change.png"), res, loud_tracks)
    res.wall_time_s = round(time.perf_counter() - t0, 3)
    return res


# ----------------------------------------------------------------------------------------------------
# figures and the overlay video
# ----------------------------------------------------------------------------------------------------

def _save_png(fig, path: str) -> None:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from avsal.evaluate.report import atomic_path

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buf.getvalue())


def plot_video(path: str, res: VideoAblation, tracks: dict[str, AudioTrack | None] | None = None) -> None:
    """``change.png``: map change over time (CC with the original map; peak displacement) above the loudness.

    Panels (shared time axis, s): CC(original, ablated) for ``silence`` and ``other``; peak displacement
    (px) with the threshold; the RMS loudness (dBFS, 0.1 s windows every 20 ms) of the original soundtrack
    and of the ``other`` soundtrack.
    """
    from matplotlib.figure import Figure

    from avsal.io.audio import rms_envelope

    t = np.asarray(res.times)
    fig = Figure(figsize=(9, 6.2))
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1.4, 1.2]})
    colours = {"silence": "tab:red", "other": "tab:blue"}
    for c in ABLATED:
        label = c if c == "silence" else f"{c}: {res.sources[c]}"
        axes[0].plot(t, res.change[c]["cc"], ".-", ms=3, lw=1, color=colours[c], label=label)
        axes[1].plot(t, res.change[c]["peak_shift_px"], ".-", ms=3, lw=1, color=colours[c], label=c)
    axes[0].set_ylabel("CC with the\noriginal-audio map")
    ccs = np.asarray([v for c in ABLATED for v in res.change[c]["cc"]] + [1.0], np.float64)
    axes[0].set_ylim(min(-0.05, float(np.nanmin(ccs)) - 0.05), 1.05)
    axes[0].legend(fontsize=7, loc="lower left")
    axes[0].grid(alpha=0.3)
    axes[1].axhline(res.peak_threshold_px, color="k", ls="--", lw=0.8,
                    label=f"threshold {res.peak_threshold_px:.1f} px")
    axes[1].set_ylabel("peak moved (px)")
    axes[1].legend(fontsize=7, loc="upper left")
    axes[1].grid(alpha=0.3)
    if tracks and tracks.get("original") is not None and len(t):
        lo, hi = float(t.min()), float(t.max())
        grid = np.arange(lo, hi + 1e-9, 0.02) if hi > lo else np.array([lo])
        for c, style in (("original", "-"), ("other", "--")):
            tr = tracks.get(c)
            if tr is not None:
                db = 20 * np.log10(np.maximum(rms_envelope(tr, grid), 1e-5))
                axes[2].plot(grid, db, style, lw=1, color="k" if c == "original" else colours["other"], label=c)
        axes[2].legend(fontsize=7, loc="upper left")
    else:
        axes[2].text(0.5, 0.5, "no soundtrack", ha="center", va="center", transform=axes[2].transAxes)
    axes[2].set_ylabel("loudness\n(dBFS, 0.1 s RMS)")
    axes[2].set_xlabel("time (s)")
    axes[2].grid(alpha=0.3)
    fig.suptitle(f"{res.name}: map change under ablated audio ({len(t)} frames)", fontsize=10)
    fig.tight_layout()
    _save_png(fig, path)


def write_side_by_side(video: str, maps_dir: str, out_path: str, alpha: float = 0.6, max_height: int = 360) -> None:
    """``original | silence`` overlay video: each frame blended with the latest map of each condition.

    Each half is the frame scaled to at most ``max_height`` rows (aspect kept) with the JET overlay
    (:func:`avsal.io.write.jet_overlay`) of the map at or before it; the original soundtrack is muxed in
    (:class:`avsal.io.write.OverlayWriter`). Written to a temporary file and renamed into place.
    """
    import cv2
    import h5py

    from avsal.evaluate.report import atomic_path
    from avsal.io.video import iter_frames, probe
    from avsal.io.write import OverlayWriter, jet_overlay
    from avsal.models.base import upsample

    info = probe(video)
    H, W = info.height, info.width
    s = min(1.0, max_height / H)
    h, w = max(2, round(H * s)), max(2, round(W * s))
    fh = h5py.File(os.path.join(maps_dir, "maps.h5"), "r")
    try:
        idx = fh["frame_indices"][:]
        with atomic_path(out_path) as tmp:
            writer = OverlayWriter(tmp, 2 * w, h, info.fps, info.time_base,
                                   audio_source=video if info.has_audio else None,
                                   audio_stream=info.audio_stream if info.has_audio else None)
            try:
                k, cur_k, cur = 0, -1, {}
                for f in iter_frames(video, info=info):
                    while k + 1 < len(idx) and idx[k + 1] <= f.index:
                        k += 1
                    if k != cur_k:
                        cur = {c: upsample(fh[c][k].astype(np.float32) / 255.0, h, w) for c in ("original", "silence")}
                        cur_k = k
                    rgb = cv2.resize(f.rgb, (w, h), interpolation=cv2.INTER_AREA) if (h, w) != (H, W) else f.rgb
                    halves = []
                    for c in ("original", "silence"):
                        im = jet_overlay(rgb, cur[c], alpha)
                        cv2.putText(im, f"{c} audio" if c == "original" else "silence", (6, 18),
                                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
                        halves.append(im)
                    writer.write(np.concatenate(halves, axis=1), f.pts)
            finally:
                writer.close()
    finally:
        fh.close()


# ----------------------------------------------------------------------------------------------------
# the whole run
# ----------------------------------------------------------------------------------------------------

@dataclass
class AblationRun:
    """Outcome of :func:`run_ablation`.

    Attributes:
        results: per finished (or kept) video, its :class:`VideoAblation`, in input order.
        done, skipped: input paths computed now / kept from an earlier run.
        failed: ``{path: message}``.
        summary: the ``summary.json`` content.
    """

    results: list[VideoAblation] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def _model_config(model) -> dict:
    cfg = getattr(model, "config", None)
    out = cfg.to_dict() if hasattr(cfg, "to_dict") else {}
    net = getattr(model, "net", None)
    if net is not None and hasattr(getattr(net, "config", None), "to_dict"):
        out["network"] = net.config.to_dict()
    return out


def run_settings(model, opts: AblateOptions) -> dict:
    """The fingerprint a finished video's results must match to be kept on a rerun."""
    from avsal.io.write import sha256_file

    return json.loads(json.dumps({
        "model": getattr(model, "name", type(model).__name__),
        "model_config": _model_config(model),
        "model_audio": model.audio.to_dict() if getattr(model, "audio", None) is not None else None,
        "weights_sha256": sha256_file(opts.weights) if opts.weights else None,
        "sampling": opts.sampling().to_dict(),
        "seed": opts.seed,
        "peak_frac": opts.peak_frac,
        "analysis_max_side": opts.analysis_max_side,
        "shift_frac": opts.shift_frac,
        "gt": opts.gt.to_dict() if opts.gt is not None else None,
        "result_version": RESULT_VERSION,
    }, default=str))


def run_ablation(inputs: list[str], out: str, opts: AblateOptions, model=None, progress: bool = True,
                 log: Callable[[str], None] = print) -> AblationRun:
    """Ablate the audio of every input video and write the report (Python API of ``avsal ablate-audio``).

    Args:
        inputs: video files and folders of videos (folders: their video files, sorted).
        out: the report folder (created if needed).
        opts: :class:`AblateOptions`.
        model: a ready video model; default ``create_video_model(opts.model, …)``.
        progress: progress bars (videos, frames).
        log: receives one line per video.

    Returns:
        :class:`AblationRun`.

    Raises:
        OutputError: ``out`` cannot be written, or it holds results computed with other settings (use
            ``overwrite`` or another folder).
        KeyError, ValueError: unknown model or bad options.
    """
    from tqdm.auto import tqdm

    from avsal.io.video import probe
    from avsal.io.write import atomic_dir, ensure_writable_dir
    from avsal.predict import collect_inputs, output_names, resolve_device

    opts.check()
    root = ensure_writable_dir(out)
    if model is None:
        from avsal.models import create_video_model

        resolve_device(opts.device)
        model = create_video_model(opts.model, weights=opts.weights, device=opts.device,
                                   batch_size=opts.batch_size, **opts.model_config)
    settings = run_settings(model, opts)
    paths = collect_inputs(inputs)
    if not paths:
        raise ValueError("no input video")
    if isinstance(opts.gt, GazeOptions) and opts.gt.single_recording() and len(paths) > 1:
        raise ValueError(f"{opts.gt.path} is one gaze recording: give one video, or a folder of recordings "
                         "named after the videos")
    names = output_names(paths)
    vdir = os.path.join(root, "videos")
    os.makedirs(vdir, exist_ok=True)
    run = AblationRun()
    kept: dict[str, VideoAblation] = {}
    for p in paths:
        rj = os.path.join(vdir, names[p], "result.json")
        if os.path.exists(rj) and not opts.overwrite:
            try:
                with open(rj, encoding="utf-8") as f:
                    r = VideoAblation.from_json(json.load(f))
            except (OSError, ValueError, TypeError, KeyError):
                continue  # unreadable: redo it
            if r.settings != settings:
                raise OutputError(rj, "was computed with other settings (model, config, sampling, seed, "
                                      "thresholds or ground truth); use --overwrite or another --out")
            kept[p] = r
    has_audio = {}
    for p in paths:
        try:
            has_audio[p] = probe(p).has_audio
        except InputError:
            has_audio[p] = False
    donors = assign_audio_sources(paths, [has_audio[p] for p in paths], opts.seed)
    for path in tqdm(paths, desc="videos", unit="video", disable=not progress or len(paths) < 2):
        name = names[path]
        if path in kept:
            run.skipped.append(path)
            run.results.append(kept[path])
            log(f"skip  {path}: results exist in {os.path.join(vdir, name)}")
            continue
        donor = donors[path]
        try:
            with atomic_dir(os.path.join(vdir, name), overwrite=True) as tmp:
                res = ablate_video(path, model, opts, name=name, donor=donor,
                                   donor_name=names[donor] if donor else None, out_dir=tmp,
                                   progress=progress, settings=settings)
                from avsal.evaluate.report import write_json

                write_json(os.path.join(tmp, "result.json"), res.to_json())
        except (InputError, OutputError) as e:
            run.failed[path] = str(e)
            log(f"FAIL  {e}")
            continue
        except Exception as e:  # one video's unexpected failure must not stop the batch
            import traceback

            tb = traceback.extract_tb(e.__traceback__)[-1]
            run.failed[path] = f"{path}: {type(e).__name__}: {e} (at {Path(tb.filename).name}:{tb.lineno})"
            log(f"FAIL  {run.failed[path]}")
            continue
        run.done.append(path)
        run.results.append(res)
        for w in res.warnings:
            log(f"warn  {path}: {w}")
        log(f"done  {path}: {len(res.frame_indices)} frames x 3 conditions in {res.wall_time_s:.1f} s; "
            f"CC(original, silence) {res.mean('silence', 'cc'):.3f}, CC(original, other) "
            f"{res.mean('other', 'cc'):.3f}")
    run.summary = write_report(root, run.results, opts, settings, failed=run.failed)
    if opts.overlay and run.results:
        best = _most_sensitive(run.results)
        if best is not None:
            target = os.path.join(root, f"overlay_{best.name}.mp4")
            for old in Path(root).glob("overlay_*.mp4"):
                if str(old) != target:
                    old.unlink()
            src = next(p for p in paths if names[p] == best.name)
            if not os.path.exists(target) or src in run.done:  # a recomputed video gets a fresh overlay
                try:
                    write_side_by_side(src, os.path.join(vdir, best.name), target)
                except (InputError, OSError) as e:
                    log(f"warn  overlay video not written: {e}")
    return run


def _most_sensitive(results: list[VideoAblation]) -> VideoAblation | None:
    """The video whose maps move most under silence: the largest mean MAD (ties: input order)."""
    cand = [(r.mean("silence", "mad"), -i, r) for i, r in enumerate(results)
            if not math.isnan(r.mean("silence", "mad"))]
    return max(cand, key=lambda x: (x[0], x[1]))[2] if cand else None


# ----------------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------------

def _video_rows(results: list[VideoAblation], metrics: tuple[str, ...]) -> tuple[list[str], list[list]]:
    cols = ["video", "condition", "audio", "frames", "cc_vs_original", "kld_vs_original", "mad_vs_original",
            "peak_shift_px_mean", "peak_moved_share", "peak_threshold_px", "loudness_rms_mean", "gt_frames"]
    cols += [*metrics, *(f"delta_{m}" for m in metrics)]
    rows = []
    for r in results:
        for c in CONDITIONS:
            if c == "original":
                ch = [1.0, 0.0, 0.0, 0.0, 0.0]
            else:
                ch = [r.mean(c, "cc"), r.mean(c, "kld"), r.mean(c, "mad"), r.mean(c, "peak_shift_px"),
                      r.mean(c, "moved")]
            loud = np.asarray(r.loudness[c], np.float64)
            loud_mean = float(np.nanmean(loud)) if np.any(~np.isnan(loud)) else float("nan")
            g = [r.gt_mean(c, m) for m in metrics]
            d = [r.gt_mean(c, m) - r.gt_mean("original", m) for m in metrics]
            rows.append([r.name, c, r.sources[c], len(r.frame_indices), *ch, r.peak_threshold_px, loud_mean,
                         len(r.gt_frames) if r.gt else 0, *g, *d])
    return cols, rows


def _frame_rows(results: list[VideoAblation], metrics: tuple[str, ...]) -> tuple[list[str], list[list]]:
    cols = ["video", "condition", "frame_index", "time_s", *CHANGE_MEASURES, "peak_moved", "loudness_rms",
            *metrics]
    rows = []
    for r in results:
        gpos = {p: j for j, p in enumerate(r.gt_frames)}
        for c in ABLATED:
            moved = r.moved(c)
            for i, (k, t) in enumerate(zip(r.frame_indices, r.times)):
                g = [r.gt[c][m][gpos[i]] if r.gt and i in gpos else float("nan") for m in metrics]
                rows.append([r.name, c, k, t, *(r.change[c][m][i] for m in CHANGE_MEASURES), int(moved[i]),
                             r.loudness[c][i], *g])
        if r.gt:
            for i, (k, t) in enumerate(zip(r.frame_indices, r.times)):
                if i in gpos:
                    rows.append([r.name, "original", k, t, 1.0, 0.0, 0.0, 0.0, 0, r.loudness["original"][i],
                                 *(r.gt["original"][m][gpos[i]] for m in metrics)])
    return cols, rows


def _f(v: float, nd: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def _ci(m: float, lo: float, hi: float, nd: int = 3) -> str:
    if math.isnan(m):
        return "n/a"
    if math.isnan(lo):
        return _f(m, nd)
    return f"{_f(m, nd)} [{_f(lo, nd)}, {_f(hi, nd)}]"


def write_report(root: str, results: list[VideoAblation], opts: AblateOptions, settings: dict,
                 failed: dict[str, str] | None = None) -> dict:
    """Write ``ablation.csv``, ``per_frame.csv``, ``summary.json`` and ``summary.md`` (each atomically).

    Returns:
        The ``summary.json`` content: per measure and ablated condition the mean over videos with its
        bootstrap interval, the same for the ground-truth metrics and their differences, and the settings.
    """
    from avsal.evaluate.report import atomic_path, write_csv, write_json

    metrics = tuple(opts.gt.protocol.metrics) if opts.gt is not None else ()
    write_csv(os.path.join(root, "ablation.csv"), *_video_rows(results, metrics))
    write_csv(os.path.join(root, "per_frame.csv"), *_frame_rows(results, metrics))
    level = opts.ci
    change: dict[str, dict[str, list[float]]] = {}
    for c in ABLATED:
        change[c] = {}
        for j, m in enumerate(("cc", "kld", "mad", "peak_shift_px", "moved")):
            change[c][m] = list(bootstrap_ci([r.mean(c, m) for r in results], opts.seed + j, opts.n_boot, level))
    gt_summary: dict[str, Any] = {}
    with_gt = [r for r in results if r.gt and r.gt_frames]
    for j, m in enumerate(metrics):
        gt_summary[m] = {c: list(bootstrap_ci([r.gt_mean(c, m) for r in with_gt], opts.seed + 100 + j,
                                              opts.n_boot, level)) for c in CONDITIONS}
        for c in ABLATED:
            gt_summary[m][f"delta_{c}"] = list(bootstrap_ci(
                [r.gt_mean(c, m) - r.gt_mean("original", m) for r in with_gt], opts.seed + 200 + j, opts.n_boot,
                level))
    best = _most_sensitive(results)
    summary = {
        "videos": [r.name for r in results],
        "failed": failed or {},
        "change": change,
        "gt": gt_summary,
        "gt_videos": [r.name for r in with_gt],
        "most_sensitive": best.name if best else None,
        "ci_level": level,
        "n_boot": opts.n_boot,
        "settings": settings,
    }
    write_json(os.path.join(root, "summary.json"), summary)

    pct = round(100 * opts.peak_frac, 2)
    L = [f"# Audio ablation: `{settings['model']}`", ""]
    L.append(f"{len(results)} video{'s' if len(results) != 1 else ''}; sampling "
             f"{_sampling_text(settings['sampling'])}; seed {opts.seed}. "
             "Each video was run three times with every other input identical: its own soundtrack "
             "(**original**), zeros of the same length (**silence**), and the soundtrack of another video of "
             "the set (**other**, a seeded derangement; with one video, its own soundtrack circularly shifted "
             f"by {opts.shift_frac:.0%} of its length).")
    if not any(r.model_uses_audio for r in results) and results:
        L.append("")
        L.append("The model declares no audio input (`audio = None`): the three conditions are the same input "
                 "and it was run once per video, so every change below is exactly zero.")
    L += ["", "## How much the map moves", "",
          f"Maps compared at the analysis size (longer side ≤ {opts.analysis_max_side} px). CC and KLD "
          "between the original-audio map and the ablated map (KL(original ‖ ablated)); MAD: mean absolute "
          f"difference (maps in [0, 1]); *moved*: share of frames whose peak moves by more than {pct:g} % of "
          "the frame diagonal (px per video below). Means over videos with "
          f"{level:.0%} percentile-bootstrap intervals over videos ({opts.n_boot} resamples, seeded).", ""]
    L.append("| condition | CC | KLD | MAD | peak shift (px) | moved |")
    L.append("|---|---|---|---|---|---|")
    for c in ABLATED:
        s = change[c]
        L.append(f"| {c} | {_ci(*s['cc'])} | {_ci(*s['kld'])} | {_ci(*s['mad'], 4)} | {_ci(*s['peak_shift_px'], 1)} "
                 f"| {_ci(*s['moved'], 2)} |")
    L += ["", "Per video (the *other* column names the donor):", "",
          "| video | frames | threshold (px) | CC silence | KLD silence | moved silence | other audio | CC other "
          "| KLD other | moved other |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        L.append(f"| {r.name} | {len(r.frame_indices)} | {r.peak_threshold_px:.1f} | {_f(r.mean('silence', 'cc'))} "
                 f"| {_f(r.mean('silence', 'kld'))} | {_f(r.mean('silence', 'moved'), 2)} | {r.sources['other']} "
                 f"| {_f(r.mean('other', 'cc'))} | {_f(r.mean('other', 'kld'))} | {_f(r.mean('other', 'moved'), 2)} |")
    if metrics:
        L += ["", "## Against the ground truth", "",
              f"{len(with_gt)} of {len(results)} videos have ground truth ({opts.gt.describe()}); each "
              "condition scored as `avsal evaluate` scores `avsal predict`'s maps, with identically seeded "
              "random draws. "
              f"Means over videos, Δ = condition − original, {level:.0%} bootstrap intervals.", "",
              "| metric | original | silence | other | Δ silence | Δ other |", "|---|---|---|---|---|---|"]
        for m in metrics:
            g = gt_summary[m]
            L.append(f"| {metric_table.metric_label(m)} | {_ci(*g['original'])} | {_ci(*g['silence'])} | "
                     f"{_ci(*g['other'])} | {_ci(*g['delta_silence'])} | {_ci(*g['delta_other'])} |")
    if best is not None:
        L += ["", f"Most audio-sensitive clip (largest MAD under silence): **{best.name}**"
              + (f" — `overlay_{best.name}.mp4` (original | silence)." if opts.overlay else ".")]
    notes = [(r.name, w) for r in results for w in r.warnings]
    if notes or failed:
        L += ["", "## Problems", ""]
        L += [f"- {n}: {w}" for n, w in notes]
        L += [f"- failed: {msg}" for msg in (failed or {}).values()]
    L += ["", "Files: `ablation.csv` (per video and condition), `per_frame.csv`, `summary.json`, "
          "`videos/<name>/change.png` (map change over time above the loudness), "
          "`videos/<name>/maps.h5` (uint8 maps per condition).", ""]
    with atomic_path(os.path.join(root, "summary.md")) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(L))
    return summary


def _sampling_text(s: dict) -> str:
    if s.get("mode") == "every":
        return f"every {s['every']}th frame"
    if s.get("mode") == "fps":
        return f"{s['fps']:g} frames/s"
    return "every frame"


# ----------------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------------

_DESCRIPTION = """\
Run a model three times per video (original audio, silence, the audio of another video of the set:
a seeded derangement, or its own audio circularly shifted when only one video is given) with every
other input identical, and report how much the saliency maps move: CC and KLD against the
original-audio map, and the share of frames whose peak moves by more than --peak-frac of the frame
diagonal. With --data-root/--dataset (the STAViS layout `avsal evaluate` reads) or --gaze (raw gaze,
as `avsal evaluate --gaze`) each condition is also scored against the ground truth, with bootstrap
intervals over videos.

Writes OUT/{ablation.csv, per_frame.csv, summary.md, summary.json, overlay_<video>.mp4} and
OUT/videos/<name>/{result.json, change.png, maps.h5}. Finished videos are kept and
skipped on a rerun (unless --overwrite).

Exit codes: 0 all done; 1 some videos failed (the others are reported); 2 bad usage or output."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``ablate-audio`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    from avsal.evaluate.protocol import FRAME_MODES, PROTOCOLS, STAVIS_FIRST_FRAME

    p = subparsers.add_parser("ablate-audio", help="how much does the sound change a model's maps?",
                              description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="VIDEO", help="video files or folders of videos")
    p.add_argument("--model", default="classic-av", help="model name (see `avsal models`); default classic-av")
    p.add_argument("--weights", metavar="FILE", help="weights file, for models that need one")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model config override, JSON value (e.g. --set w_sync=0); repeatable")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder (created if needed)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--every", type=int, metavar="N", help="predict every N-th frame")
    g.add_argument("--fps", type=float, metavar="F", help="predict F frames per second")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=int, default=8, metavar="B", help="clips per batch for network models")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the derangement, the metrics' random draws and the bootstrap (default 0)")
    p.add_argument("--peak-frac", type=float, default=0.05, metavar="F",
                   help="a peak moves when displaced by more than F x the frame diagonal (default 0.05)")
    p.add_argument("--no-overlay", action="store_true", help="do not write the side-by-side overlay video")
    p.add_argument("--overwrite", action="store_true", help="redo videos whose results exist")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    gt = p.add_argument_group("ground truth (as avsal evaluate; optional)")
    gt.add_argument("--data-root", metavar="ROOT", help="STAViS data folder (holding annotations/), or its parent")
    gt.add_argument("--dataset", metavar="NAME", help="AVAD, DIEM, Coutrot1, … (or a folder of ROOT/annotations); "
                    "videos are matched by file stem")
    gt.add_argument("--fold-lists", metavar="DIR", help="folder of the fold lists (default ROOT/fold_lists)")
    gt.add_argument("--protocol", default="stavis", choices=PROTOCOLS, help="stavis (default) or vinet")
    gt.add_argument("--frames", default=None, choices=FRAME_MODES,
                    help=f"stavis: frames {STAVIS_FIRST_FRAME}..nframes; all: every frame")
    gt.add_argument("--first-frame", type=int, default=STAVIS_FIRST_FRAME, metavar="K",
                    help=f"first frame scored with --frames stavis (default {STAVIS_FIRST_FRAME})")
    gt.add_argument("--metrics", default=None, metavar="LIST",
                    help=f"comma-separated metrics (default {','.join(metric_table.PAPER_METRICS)}; "
                         "with --gaze also kld)")
    gz = p.add_argument_group("real gaze (as avsal evaluate --gaze; optional, instead of --data-root)")
    gz.add_argument("--gaze", metavar="PATH",
                    help="one recording (CSV viewer,t_s,x_px,y_px[,event]; Andersson .mat; DIEM or DHF1K folder) "
                         "for a single video, or a folder with <stem>.csv, <stem>/ or Andersson "
                         "*_video_<stem>_labelled_*.mat per video")
    gz.add_argument("--screen", metavar="WxH", help="screen size in px; the video is centred on it at native size")
    gz.add_argument("--px-per-degree", type=float, metavar="P", help="video px per degree of visual angle (CSV)")
    gz.add_argument("--ivt-threshold", type=float, metavar="V",
                    help="I-VT threshold for unlabelled CSV samples (deg/s with --px-per-degree, else px/s)")
    gz.add_argument("--sigma", type=float, metavar="PX", help="density sigma in video px (default 1 degree or 40 px)")
    gz.add_argument("--coder", metavar="ID", help="Andersson event coder (default the first)")
    gz.add_argument("--gaze-offset", type=float, default=0.0, metavar="S",
                    help="time (s) of the video's first frame on the gaze clock (default 0)")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``avsal ablate-audio`` from parsed arguments; returns the exit code (0, 1 or 2)."""
    from avsal.cli import _parse_overrides

    def err(msg: str) -> int:
        print(f"avsal ablate-audio: error: {msg}", file=sys.stderr)
        return 2

    try:
        gt = None
        if (args.data_root is None) != (args.dataset is None):
            raise ValueError("--data-root and --dataset go together")
        if args.data_root is not None and args.gaze is not None:
            raise ValueError("give either --data-root/--dataset or --gaze")
        from avsal.evaluate.protocol import ProtocolConfig

        if args.data_root is not None:
            from avsal.evaluate.readers import StavisLayout

            cfg = ProtocolConfig(protocol=args.protocol, frames=args.frames, first_frame=args.first_frame,
                                 metrics=args.metrics or ",".join(metric_table.PAPER_METRICS))
            StavisLayout(args.data_root, args.fold_lists).dataset(args.dataset)  # fail early on a bad root
            gt = GroundTruthOptions(args.data_root, args.dataset, args.fold_lists, cfg)
        elif args.gaze is not None:
            from avsal.evaluate.gaze import GAZE_METRICS

            if not os.path.exists(args.gaze):
                raise InputError(args.gaze, "gaze recording not found")
            screen = None
            if args.screen:
                try:
                    screen = tuple(float(v) for v in args.screen.lower().split("x"))
                except ValueError:
                    screen = ()
                if len(screen) != 2:
                    raise ValueError(f"--screen expects WxH, got {args.screen!r}")
            cfg = ProtocolConfig(protocol=args.protocol, frames="all",
                                 metrics=args.metrics or ",".join(GAZE_METRICS))
            gt = GazeOptions(args.gaze, screen, args.px_per_degree, args.ivt_threshold, args.sigma, args.coder,
                             args.gaze_offset, cfg)
        opts = AblateOptions(model=args.model, weights=args.weights, model_config=_parse_overrides(args.set),
                             every=args.every, fps=args.fps, device=args.device, batch_size=args.batch_size,
                             seed=args.seed, peak_frac=args.peak_frac, overlay=not args.no_overlay,
                             overwrite=args.overwrite, gt=gt)
        res = run_ablation(args.inputs, args.out, opts, progress=not args.quiet,
                           log=lambda m: print(m, file=sys.stderr))
    except (OutputError, InputError, KeyError, ValueError, TypeError) as e:
        return err(e.args[0] if isinstance(e, KeyError) else str(e))
    n = len(res.done) + len(res.skipped) + len(res.failed)
    print(f"{len(res.done)} done, {len(res.skipped)} kept, {len(res.failed)} failed (of {n}); "
          f"report: {os.path.join(args.out, 'summary.md')}", file=sys.stderr)
    return 1 if res.failed else 0
