"""The per-video runner of ``avsal evaluate``: jobs, per-video scores, dataset aggregation.

One (split, video) entry of a test list is a :class:`VideoJob`; :func:`evaluate_video` scores it
(ground truth from :mod:`avsal.evaluate.readers`, prediction post-processing, frame selection,
other map and seeds from :mod:`avsal.evaluate.protocol`, metrics from :mod:`avsal.metrics`) into a
:class:`VideoResult`; :func:`run_jobs` runs many jobs, sequentially or in the process pool of
:mod:`avsal.parallel`; :func:`aggregate` turns the per-video means into the dataset score
(:class:`DatasetScores`).  The command line around it is :mod:`avsal.evaluate.command`, the report
:mod:`avsal.evaluate.report`.
"""

from __future__ import annotations

import math
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avsal import metrics as _metrics
from avsal.errors import InputError
from avsal.evaluate.protocol import (ProtocolConfig, nan_means, other_map, prepare_prediction, select_frames,
                                     video_rng)
from avsal.evaluate.readers import Dhf1kGroundTruth, VideoGroundTruth, list_prediction_frames, read_prediction
from avsal.parallel import run_pool

__all__ = [
    "VideoJob",
    "VideoResult",
    "evaluate_video",
    "run_jobs",
    "DatasetScores",
    "aggregate",
]


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
        config: :class:`avsal.evaluate.protocol.ProtocolConfig`.
        seed: the run's seed (``--seed``).
        example: also return one frame's maps for the report's figure.
        index: position in the run (for ordering).
        gt_layout: ``"stavis"`` (:class:`avsal.evaluate.readers.VideoGroundTruth`) or ``"dhf1k"``
            (:class:`avsal.evaluate.readers.Dhf1kGroundTruth`).
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

    Frame loop (``eval_<db>.m``): for each selected frame
    (:func:`~avsal.evaluate.protocol.select_frames`) that has a prediction file, in frame order:
    read it (:func:`~avsal.evaluate.readers.read_prediction`),
    :func:`~avsal.evaluate.protocol.prepare_prediction`, read the density and fixation map
    (:class:`~avsal.evaluate.readers.VideoGroundTruth` or
    :class:`~avsal.evaluate.readers.Dhf1kGroundTruth`), build
    :func:`~avsal.evaluate.protocol.other_map`, and :func:`avsal.metrics.compute_metrics` with this
    video's generator (:func:`~avsal.evaluate.protocol.video_rng`).
    Selected frames without a file are listed in ``missing`` (a report item, not an error).

    Never raises for bad input: an :class:`~avsal.errors.InputError` (or any other error)
    makes the result ``status="failed"`` with the message; a video with no prediction at all
    fails with "no prediction files".

    Returns:
        :class:`VideoResult`.
    """
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


def run_jobs(jobs: list[VideoJob], n_jobs: int = 1, progress: bool = True, log=None) -> list[VideoResult]:
    """Score the jobs, sequentially or in a process pool; results in job order.

    Each job's numbers depend only on the job (its seed comes from
    :func:`avsal.evaluate.protocol.video_seed`), so ``n_jobs`` does not change them.  A worker
    that dies is reported as a failed video.

    Args:
        jobs: the entries to score; their ``index`` is set to their position in this list.
        n_jobs: worker processes (1: in this process), :func:`avsal.parallel.run_pool`.
        progress: show a tqdm bar on stderr.
        log: when true, write one line per failed video above the bar.

    Returns:
        One :class:`VideoResult` per job, in job order (never raises for a failed video).
    """
    from tqdm.auto import tqdm

    results: list[VideoResult | None] = [None] * len(jobs)
    bar = tqdm(total=len(jobs), unit="video", desc="evaluate", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)

    def done(j: VideoJob, r: VideoResult) -> None:
        results[j.index] = r
        if r.status != "ok" and log:
            bar.write(f"failed: split {r.split}, {r.video}: {r.error}", file=sys.stderr)
        bar.update(1)

    for i, j in enumerate(jobs):
        j.index = i

    def crashed(j: VideoJob, e: BaseException) -> None:  # the worker died (BrokenProcessPool, out of memory, ...)
        done(j, VideoResult(j.split, j.video, j.nframes, status="failed", pred_dir=j.pred_dir,
                            error=f"{j.video}: worker process failed ({type(e).__name__}: {e})", index=j.index))

    try:
        run_pool(evaluate_video, jobs, n_jobs, on_result=done, on_crash=crashed)
    finally:
        bar.close()
    return results  # type: ignore[return-value]


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
