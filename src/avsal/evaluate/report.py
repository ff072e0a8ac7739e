"""The report of ``avsal evaluate``: CSV tables, JSON and Markdown summaries, figures.

Files written into the report folder (each to a temporary file in the same folder first, then
renamed into place, so a file is either complete or absent):

* ``per_frame.csv``: one row per scored frame: split, video, frame, one column per metric
  (full precision, ``nan`` where the metric is undefined), prediction file.
* ``per_video.csv``: one row per (split, video) test-list entry: status, frames scored and
  missing (count and ranges), the per-metric NaN-dropped means and frame counts, error.
* ``summary.json``: the dataset scores, per-split scores, run settings and problems
  (NaN written as ``null``).
* ``summary.md``: the score table in the papers' column order (CC, NSS, AUC-J, SIM, sAUC),
  4 decimals like STAViS's ``final_results_<DB>.txt``.
* ``per_video.png``: per-frame metric distributions per video (box plots, mean marked).
* ``examples.png``: a few frames with the ground-truth density, the fixations and the
  (post-processed, resized) prediction side by side.

Figures use matplotlib's Agg canvas directly (no pyplot, no global backend change).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from avsal.errors import OutputError
from avsal.evaluate.runner import DatasetScores, VideoResult
from avsal.io.write import atomic_file
from avsal.metrics import metric_label

__all__ = [
    "atomic_path",
    "frame_ranges",
    "per_frame_rows",
    "per_video_rows",
    "write_csv",
    "write_json",
    "summary_markdown",
    "plot_per_video",
    "plot_examples",
    "write_report",
]


#: The one temp-and-rename writer (:func:`avsal.io.write.atomic_file`), under the name this module exports.
atomic_path = atomic_file


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return "" if v is None else str(v)


def frame_ranges(frames: list[int]) -> str:
    """``[1, 2, 3, 5, 7, 8]`` -> ``"1-3,5,7-8"`` (sorted input expected)."""
    out = []
    i = 0
    while i < len(frames):
        j = i
        while j + 1 < len(frames) and frames[j + 1] == frames[j] + 1:
            j += 1
        out.append(str(frames[i]) if i == j else f"{frames[i]}-{frames[j]}")
        i = j + 1
    return ",".join(out)


def per_frame_rows(results: list[VideoResult], metrics: tuple[str, ...]) -> tuple[list[str], list[list]]:
    """Columns and rows of ``per_frame.csv`` (scored frames of the successful entries)."""
    cols = ["split", "video", "frame", *metrics, "pred_file"]
    rows = []
    for r in results:
        for i, k in enumerate(r.frames):
            rows.append([r.split, r.video, k, *(r.values[m][i] for m in metrics), r.pred_files[i]])
    return cols, rows


def per_video_rows(results: list[VideoResult], metrics: tuple[str, ...]) -> tuple[list[str], list[list]]:
    """Columns and rows of ``per_video.csv`` (every test-list entry, failed ones included)."""
    cols = ["split", "video", "nframes", "status", "n_scored", "n_missing", "missing_frames", *metrics,
            *(f"n_{m}" for m in metrics), "layout", "pred_dir", "error"]
    rows = []
    for r in results:
        rows.append([r.split, r.video, r.nframes, r.status, len(r.frames), len(r.missing),
                     frame_ranges(r.missing), *(r.means.get(m, float("nan")) for m in metrics),
                     *(r.counts.get(m, 0) for m in metrics), r.layout, r.pred_dir, r.error])
    return cols, rows


def write_csv(path: str | os.PathLike, columns: list[str], rows: list[list]) -> None:
    """Write a CSV table atomically (floats at full precision, NaN as ``nan``)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            w.writerow([_fmt(v) for v in row])


def _jsonable(o):
    if isinstance(o, float):
        return None if not math.isfinite(o) else o
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return _jsonable(o.item())
    if isinstance(o, Path):
        return str(o)
    return o


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON atomically; non-finite floats become ``null``."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(_jsonable(obj), f, indent=1, allow_nan=False)
        f.write("\n")


def _cell(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def summary_markdown(summary: dict) -> str:
    """The Markdown summary: score table (papers' column order) and the run's problems.

    ``summary`` is the dict written to ``summary.json`` (see :func:`write_report`).
    """
    ms = summary["metrics"]
    labels = [metric_label(m) for m in ms]
    agg = summary["aggregation"]
    lines = [f"# avsal evaluate: {summary['dataset']} ({summary['config']['protocol']} protocol)", ""]
    lines.append("| split | videos | " + " | ".join(labels) + " |")
    lines.append("|---|---|" + "---|" * len(labels))
    for s, sc in summary["per_split"].items():
        n = summary["videos_per_split"].get(s, 0)
        lines.append(f"| {s} | {n} | " + " | ".join(_cell(sc.get(m)) for m in ms) + " |")
    how = ("mean of the split means" if agg == "split_mean" else
           "mean over all test-list entries" + (" pooled over the splits" if len(summary["per_split"]) > 1 else ""))
    lines.append(f"| **{summary['dataset']}** ({how}) | {summary['n_listed']} | "
                 + " | ".join(f"**{_cell(summary['scores'].get(m))}**" for m in ms) + " |")
    lines.append("")
    cfg = summary["config"]
    frames = (f"frames {cfg['first_frame']}..nframes (STAViS)" if cfg["frames"] == "stavis" else "every frame")
    post = (f"min-max + Gaussian blur sigma {cfg['blur_sigma']:g} px at prediction size, MATLAB bicubic resize "
            "to the ground-truth size" if cfg["protocol"] == "stavis" else "MATLAB bicubic resize only (ViNet)")
    lines += [
        f"- Protocol: {cfg['protocol']}; {post}{'; uint8 round trip' if cfg['uint8'] else ''}.",
        f"- Frames: {frames}; per video, NaN frames dropped per metric, then the mean.",
        f"- Seed: {summary['seed']} (per video: derived from the seed, split and video name).",
        f"- Predictions: {summary['pred']}; ground truth: {summary['data_root']}.",
    ]
    problems = summary["problems"]
    if problems["failed"] or problems["missing_frames"] or not summary["complete"]:
        lines += ["", "## Problems", ""]
        if not summary["complete"]:
            lines.append("- **Partial result**: not every listed video entered every score "
                         f"(videos per metric: {', '.join(f'{metric_label(m)} {n}' for m, n in summary['n_videos'].items())}"
                         f" of {summary['n_listed']}).")
        for f in problems["failed"]:
            lines.append(f"- split {f['split']}, {f['video']}: failed: {f['error']}")
        if problems["missing_frames"]:
            lines.append(f"- {problems['missing_frames']} selected frames had no prediction file, in "
                         f"{len(problems['videos_with_missing'])} videos (see per_video.csv: n_missing).")
        for e in problems.get("excluded_metric", []):
            lines.append(f"- split {e['split']}, {e['video']}: {e['reason']}")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


def _save(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buf.getvalue())


def _horizontal() -> dict:
    import matplotlib

    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 9) else {"vert": False}


def plot_per_video(path: str | os.PathLike, results: list[VideoResult], metrics: tuple[str, ...]) -> None:
    """``per_video.png``: one panel per metric, one box per (split, video) of its per-frame values.

    The NaN-dropped per-video mean (the number that is averaged) is marked by a dot.
    """
    from matplotlib.figure import Figure

    ok = [r for r in results if r.status == "ok"]
    n = max(1, len(ok))
    fig = Figure(figsize=(2.8 * len(metrics) + 1.8, min(60.0, max(3.0, 1.4 + 0.28 * n))))
    labels = [f"s{r.split} {r.video}" for r in ok]
    for i, m in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        data = []
        for r in ok:
            v = np.asarray(r.values[m], dtype=float)
            v = v[~np.isnan(v)]
            data.append(v if v.size else np.array([np.nan]))
        if ok:
            ax.boxplot(data, widths=0.6, showfliers=False, **_horizontal())
            ax.plot([r.means[m] for r in ok], np.arange(1, n + 1), "o", ms=3, color="tab:red")
            ax.set_yticks(np.arange(1, n + 1))
            ax.set_yticklabels(labels if i == 0 else [""] * n, fontsize=7)
            ax.invert_yaxis()
        ax.set_title(metric_label(m), fontsize=10)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("per-frame values per video (box: quartiles, whiskers 1.5 IQR; dot: video mean)", fontsize=9)
    fig.tight_layout()
    _save(fig, Path(path))


def plot_examples(path: str | os.PathLike, results: list[VideoResult], max_examples: int = 4) -> None:
    """``examples.png``: per example frame, GT density | fixations | prediction (at GT size)."""
    from matplotlib.figure import Figure

    ex = [r for r in results if r.status == "ok" and r.example is not None][:max_examples]
    rows = max(1, len(ex))
    fig = Figure(figsize=(10.5, 2.6 * rows + 0.4))
    if not ex:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no example frame (no video was scored)", ha="center", va="center")
        ax.set_axis_off()
    for i, r in enumerate(ex):
        e = r.example
        d, p, yx = e["dens"], e["pred"], e["fix_yx"]
        panels = [("GT density", d, None), (f"fixations ({len(yx)})", np.zeros_like(d), yx), ("prediction", p, None)]
        for j, (title, img, pts) in enumerate(panels):
            ax = fig.add_subplot(rows, 3, 3 * i + j + 1)
            ax.imshow(img, cmap="gray" if pts is not None else "inferno", interpolation="nearest",
                      vmin=0 if pts is not None else None)
            if pts is not None and len(pts):
                ax.imshow(d, cmap="gray", alpha=0.35, interpolation="nearest")
                ax.plot(pts[:, 1], pts[:, 0], "o", ms=2.5, mfc="none", mec="tab:cyan", mew=0.8)
                ax.set_xlim(-0.5, d.shape[1] - 0.5)
                ax.set_ylim(d.shape[0] - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"s{r.split} {r.video} #{e['frame']}: {title}" if j == 0 else title, fontsize=8)
    fig.tight_layout()
    _save(fig, Path(path))


# --------------------------------------------------------------------------------------
# everything
# --------------------------------------------------------------------------------------


def write_report(out_dir: str | os.PathLike, results: list[VideoResult], scores: DatasetScores,
                 metrics: tuple[str, ...], meta: dict, plots: bool = True) -> dict:
    """Write the whole report into ``out_dir`` (which must exist and be writable).

    Args:
        results: per-entry results in run order.
        scores: :func:`avsal.evaluate.runner.aggregate` output.
        metrics: metric names (column order).
        meta: run settings copied into the summary (``dataset``, ``config``, ``seed``, ``pred``,
            ``data_root``, ``splits``, ... ).
        plots: also draw ``per_video.png`` and ``examples.png``.

    Returns:
        The summary dict (as written to ``summary.json``).

    Raises:
        OutputError: a file cannot be written.
    """
    out = Path(out_dir)
    try:
        write_csv(out / "per_frame.csv", *per_frame_rows(results, metrics))
        write_csv(out / "per_video.csv", *per_video_rows(results, metrics))
        failed = [{"split": r.split, "video": r.video, "error": r.error} for r in results if r.status != "ok"]
        with_missing = [{"split": r.split, "video": r.video, "n_missing": len(r.missing),
                         "frames": frame_ranges(r.missing)} for r in results if r.missing]
        excl = [{"split": s, "video": v, "reason": why} for s, v, why in scores.excluded
                if not any(f["split"] == s and f["video"] == v for f in failed)]
        vps = {}
        for r in results:
            vps[r.split] = vps.get(r.split, 0) + 1
        summary = {
            **meta,
            "metrics": list(metrics),
            "labels": {m: metric_label(m) for m in metrics},
            "aggregation": scores.aggregation,
            "scores": scores.scores,
            "per_split": {s: v for s, v in scores.per_split.items()},
            "videos_per_split": vps,
            "n_listed": scores.n_listed,
            "n_videos": scores.n_videos,
            "n_frames_scored": int(sum(len(r.frames) for r in results)),
            "complete": scores.complete,
            "problems": {"failed": failed, "missing_frames": int(sum(len(r.missing) for r in results)),
                         "videos_with_missing": with_missing, "excluded_metric": excl},
        }
        write_json(out / "summary.json", summary)
        md = summary_markdown(summary)
        with atomic_path(out / "summary.md") as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(md)
        if plots:
            plot_per_video(out / "per_video.png", results, metrics)
            plot_examples(out / "examples.png", results)
    except OSError as e:
        raise OutputError(getattr(e, "filename", None) or out, f"cannot write the report ({e.strerror or e})") from None
    return summary
