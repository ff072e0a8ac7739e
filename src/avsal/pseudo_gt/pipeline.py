"""Folder-level stages of STANet's pseudo-ground-truth pipeline: ``crop`` and ``finalize``.

Folder contracts: ``docs/weak_pipeline.md`` (prepared root, CAM folder, crops root + ``boxes.csv``,
pseudo-GT folder). Both stages are resumable: every file is written to a temporary name and renamed into
place, a re-run with the same settings keeps the files already there, and a folder made with other
settings is refused unless ``overwrite=True``. The CSV files and the config JSON are rewritten at the end.

Branches are named freely (``S``, ``SA``, ``ST`` for STANet); a frame's branches are matched on
``(clip, second)``. Upstream's MATLAB reads three line-aligned lists, so it needs every branch's CAM for
a frame; that is the default (``require_all=True``). With ``require_all=False`` a frame is used when at
least one branch has a CAM, and the fusion weights are renormalised over the branches present (the
fusion formula divides by their probability sum), which keeps the frames that one branch misclassified.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

import cv2
import numpy as np
from tqdm import tqdm

from avsal.data.layout import ManifestRow, PseudoGtRow, read_manifest, write_manifest, write_pseudo_gt_csv
from avsal.errors import InputError, OutputError
from avsal.io.image import JPEG_QUALITY, encode_jpeg
from avsal.io.write import atomic_file, write_bytes_atomic, write_json_atomic
from avsal.pseudo_gt.fusion import (Box, adaptive_box, as_float_map, average_boxes, crop_box, fuse_cams,
                                    paste_cam, resize_map, sparsify, temporal_smooth, upstream_written)

__all__ = ["CamEntry", "read_cam_index", "read_boxes", "load_cam", "load_frame", "resize_rgb", "crop_stage",
           "finalize_stage", "CROP_CONFIG", "PGT_CONFIG"]

CAM_COLUMNS = ["clip", "second", "prob", "cam"]
BOX_COLUMNS = ["clip", "second", "row0", "row1", "col0", "col1"]
CROP_CONFIG = "crop_config.json"
PGT_CONFIG = "pseudo_gt_config.json"


# ----------------------------------------------------------------------------------------------- file helpers

def _write_csv(path: str, header: list[str], rows: Iterable[Iterable]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(list(r))
    write_bytes_atomic(path, buf.getvalue().encode("utf-8"))


def _read_csv(path: str, required: list[str]) -> list[dict]:
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            missing = [c for c in required if c not in cols]
            if missing:
                raise InputError(path, f"missing column(s) {', '.join(missing)} (has: {', '.join(cols) or 'none'})")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(path, f"not a readable CSV file ({e})") from None


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(path, f"not a readable JSON file ({e})") from None


def _second(value: str, path: str, line: int) -> int:
    try:
        s = int(str(value).strip())
    except ValueError:
        raise InputError(path, f"line {line}: second {value!r} is not an integer") from None
    if s < 0:
        raise InputError(path, f"line {line}: negative second {s}")
    return s


def _check_clip(clip: str, path: str, line: int) -> str:
    if not clip or clip in (".", "..") or "/" in clip or "\\" in clip or "\0" in clip:
        raise InputError(path, f"line {line}: clip name {clip!r} cannot be used as a folder name")
    return clip


def load_cam(path: str) -> np.ndarray:
    """A CAM image as float64 ``[H, W]`` (uint8 / 255; a colour image is converted to grey).

    Raises:
        InputError: missing or unreadable file.
    """
    from avsal.io.image import read_gray

    return as_float_map(read_gray(path))


def load_frame(path: str) -> np.ndarray:
    """An RGB frame as uint8 ``[H, W, 3]``.

    Raises:
        InputError: missing or unreadable file.
    """
    from avsal.io.image import read_rgb

    return read_rgb(path)


def resize_rgb(rgb: np.ndarray, shape, method: str = "matlab") -> np.ndarray:
    """Resize a uint8 RGB image to ``shape = (rows, cols)`` (aspect not kept), rounded back to uint8.

    ``method="matlab"`` is MATLAB ``imresize`` per channel (upstream's ``imresize(imread(...), [356, 356])``
    on uint8, which rounds and saturates); ``"bilinear"`` is ``cv2.resize``.
    """
    rows, cols = int(shape[0]), int(shape[1])
    if rgb.shape[:2] == (rows, cols):
        return rgb.copy()
    if method == "bilinear":
        shrink = rows < rgb.shape[0] or cols < rgb.shape[1]
        return cv2.resize(rgb, (cols, rows), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    chans = [resize_map(rgb[..., c].astype(np.float64), (rows, cols), method) for c in range(rgb.shape[2])]
    return np.clip(np.rint(np.stack(chans, axis=-1)), 0, 255).astype(np.uint8)


def _encode_png(m: np.ndarray, path: str) -> bytes:
    u8 = np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8)  # MATLAB im2uint8 of a double map
    ok, buf = cv2.imencode(".png", u8, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OutputError(path, "PNG could not be encoded")
    return buf.tobytes()


# ----------------------------------------------------------------------------------------------- CAM folders

@dataclass(frozen=True)
class CamEntry:
    """One row of a CAM folder's ``cams.csv``: the fusion weight and the CAM file (absolute path)."""

    prob: float
    path: str


def read_cam_index(cam_dir: str | os.PathLike, correct_only: bool = False) -> dict[tuple[str, int], CamEntry]:
    """``(clip, second) → CamEntry`` from ``CAM_DIR/cams.csv`` (``docs/weak_pipeline.md``, CAM folder).

    Rows with an empty ``cam`` (no CAM written) are ignored, and with ``correct_only`` also rows whose
    ``correct`` is not 1 (for CAM folders written without the selective setting).

    Raises:
        InputError: missing folder or ``cams.csv``, missing columns, a bad ``second``/``prob``, or a frame
            listed twice.
    """
    cam_dir = os.fspath(cam_dir)
    if not os.path.isdir(cam_dir):
        raise InputError(cam_dir, "CAM folder not found")
    path = os.path.join(cam_dir, "cams.csv")
    rows = _read_csv(path, CAM_COLUMNS + (["correct"] if correct_only else []))
    out: dict[tuple[str, int], CamEntry] = {}
    for i, r in enumerate(rows, start=2):
        cam = (r.get("cam") or "").strip()
        if not cam:
            continue
        if correct_only and str(r.get("correct", "")).strip() not in ("1", "1.0", "True", "true"):
            continue
        key = (_check_clip((r["clip"] or "").strip(), path, i), _second(r["second"], path, i))
        try:
            prob = float(r["prob"])
        except (TypeError, ValueError):
            raise InputError(path, f"line {i}: prob {r['prob']!r} is not a number") from None
        if not np.isfinite(prob) or prob < 0:
            raise InputError(path, f"line {i}: prob must be finite and >= 0, got {prob}")
        if key in out:
            raise InputError(path, f"line {i}: clip {key[0]} second {key[1]} is listed twice")
        out[key] = CamEntry(prob, os.path.normpath(os.path.join(cam_dir, cam)))
    return out


def _read_cam_indexes(cams: Mapping[str, str | os.PathLike], correct_only: bool):
    if not cams:
        raise ValueError("cams: give at least one branch (e.g. S=DIR SA=DIR ST=DIR)")
    return OrderedDict((str(b), read_cam_index(d, correct_only)) for b, d in cams.items())


def _branches_for(key, indexes, require_all: bool) -> dict[str, CamEntry] | None:
    present = {b: idx[key] for b, idx in indexes.items() if key in idx}
    if not present or (require_all and len(present) < len(indexes)):
        return None
    return present


def _missing_reason(key, indexes) -> str:
    missing = [b for b, idx in indexes.items() if key not in idx]
    return "no CAM for branch " + "/".join(missing)


def read_boxes(path: str | os.PathLike, grid: tuple[int, int]) -> "OrderedDict[tuple[str, int], Box]":
    """``(clip, second) → (row0, row1, col0, col1)`` from a crops root's ``boxes.csv`` (0-based, inclusive).

    Raises:
        InputError: missing file or columns, non-integer values, or a box outside the grid.
    """
    path = os.fspath(path)
    rows = _read_csv(path, BOX_COLUMNS)
    out: OrderedDict[tuple[str, int], Box] = OrderedDict()
    for i, r in enumerate(rows, start=2):
        key = (_check_clip((r["clip"] or "").strip(), path, i), _second(r["second"], path, i))
        try:
            box = tuple(int(r[c]) for c in ("row0", "row1", "col0", "col1"))
        except (TypeError, ValueError):
            raise InputError(path, f"line {i}: box values must be integers") from None
        r0, r1, c0, c1 = box
        if not (0 <= r0 <= r1 < grid[0] and 0 <= c0 <= c1 < grid[1]):
            raise InputError(path, f"line {i}: box {box} is not inside the {grid[0]}x{grid[1]} grid")
        if key in out:
            raise InputError(path, f"line {i}: clip {key[0]} second {key[1]} is listed twice")
        out[key] = box  # type: ignore[assignment]
    return out


# ----------------------------------------------------------------------------------------------- out folder

def _prepare_out(out_root: str, config_name: str, identity: dict, overwrite: bool, inputs: list[str]) -> None:
    """Create ``out_root``; refuse a folder that holds another run's output unless ``overwrite``."""
    out_abs = os.path.abspath(out_root)
    for src in inputs:
        if os.path.abspath(src) == out_abs:
            raise OutputError(out_root, "output folder is one of the input folders")
    cfg_path = os.path.join(out_root, config_name)
    if os.path.isdir(out_root) and not overwrite:
        if os.path.isfile(cfg_path):
            try:
                old = _read_json(cfg_path)
            except InputError:
                old = None
            if not isinstance(old, dict) or {k: old.get(k) for k in identity} != identity:
                raise OutputError(out_root, f"holds the output of a run with other settings ({config_name}); "
                                            "use overwrite (--overwrite) to replace it")
        elif any(not n.startswith(".") for n in os.listdir(out_root)):
            raise OutputError(out_root, f"folder is not empty and has no {config_name}; "
                                        "use overwrite (--overwrite) to write into it anyway")
    elif os.path.exists(out_root) and not os.path.isdir(out_root):
        raise OutputError(out_root, "output path is not a folder")
    try:
        os.makedirs(out_root, exist_ok=True)
    except OSError as e:
        raise OutputError(out_root, f"output folder cannot be created ({e.strerror})") from None


def _version() -> str:
    import avsal

    return avsal.__version__


def _place_audio(src: str, dst: str, mode: str) -> None:
    """Hard-link (``link``, falling back to a copy) or copy ``src`` to ``dst`` atomically."""
    with atomic_file(dst) as tmp:
        os.remove(tmp)
        linked = False
        if mode == "link":
            try:
                os.link(src, tmp)
                linked = True
            except OSError:
                linked = False
        if not linked:
            shutil.copyfile(src, tmp)


# ----------------------------------------------------------------------------------------------- crop stage

def crop_stage(data_root: str | os.PathLike, cams: Mapping[str, str | os.PathLike], out_root: str | os.PathLike,
               grid: int = 356, factor: float = 2.0, box: str = "upstream", require_all: bool = True, *,
               start: float = 2.0, step: float = 0.05, min_size: int = 100, box_window: int | None = None,
               eps: float = 1e-4, split: str | None = None, correct_only: bool = False, audio: str = "link",
               resize: str = "matlab", overwrite: bool = False, progress: bool = True,
               empty_box: str = "skip") -> dict:
    """Stage 4: fuse the coarse CAMs, box the salient region and write a crops root.

    Replaces ``Coarse_Fine_crop.m`` (and its copies ``Coarse_Fine_crop1…12.m``); with ``box="adaptive"``,
    ``STA_trial: coarse2fine/Coarse_refuse_SCAM.py`` + ``CAMsmooth_and_crop.py``. Per frame that has CAMs:

    1. each branch CAM is read (``/255``), **resized to the ``grid × grid`` frame grid** (upstream takes the
       box of its 256² CAMs on the 356² image; resizing first puts the box where the CAM points, and lets
       branches of different input sizes be fused), min-max normalised, and the branches are fused with
       :func:`~avsal.pseudo_gt.fusion.fuse_cams` weighted by ``cams.csv``'s ``prob``;
    2. box = :func:`~avsal.pseudo_gt.fusion.crop_box` (``F > factor · mean F``; a frame with an empty box is
       skipped, as upstream, or given the whole frame with ``empty_box="full"``, useful for weak early
       models whose CAMs are flat) or, with ``box="adaptive"``, :func:`~avsal.pseudo_gt.fusion.adaptive_box`
       (``start``, ``step``, ``min_size``), then averaged over ``box_window`` seconds
       (:func:`~avsal.pseudo_gt.fusion.average_boxes`; default 1 for upstream, 3 for adaptive as STA_trial);
    3. the frame ``frames/<clip>/<s>.jpg`` (original size) is resized to ``grid × grid`` (square, aspect not
       kept), cut to the box, resized back to ``grid × grid`` for the fine stage and written as JPEG q95.

    Writes ``OUT/manifest.csv`` (the source rows of the cropped frames, ``frame`` pointing at the crop),
    ``classes.json`` (copied), ``frames/<clip>/<ss>.jpg``, ``audio/<clip>/<ss>.h5`` (``audio="link"``: hard
    link, or a copy across file systems; ``"copy"``; ``"reference"``: no file, the manifest points at the
    source file by a relative path), ``boxes.csv`` (``clip,second,row0,row1,col0,col1``, 0-based inclusive
    on the grid), ``failures.csv`` (``clip,reason``; header only, kept for the prepared-root layout),
    ``skipped.csv`` (``clip,second,reason`` of frames with CAMs that were not cropped) and
    ``crop_config.json``.

    Args:
        data_root: the prepared root (``manifest.csv``, ``classes.json``, ``frames/``, ``audio/``).
        cams: branch → coarse CAM folder (``cams.csv`` + PNGs), e.g. ``{"S": …, "SA": …, "ST": …}``.
        out_root: the crops root to write.
        grid: side of the square frame grid (upstream 356).
        factor: threshold factor of the upstream box (2.0).
        box: ``"upstream"`` or ``"adaptive"``.
        require_all: only frames with a CAM from every branch (upstream); ``False``: any branch.
        start, step, min_size: the adaptive threshold (STA_trial: 2.0, 0.05, 100).
        box_window: seconds over which boxes are averaged (odd; ``None`` = 1 upstream, 3 adaptive).
        eps: fusion epsilon (1e-4).
        split: only manifest rows of this split (``None``: every row that has CAMs).
        correct_only: ignore ``cams.csv`` rows whose ``correct`` is not 1.
        audio: ``"link"``, ``"copy"`` or ``"reference"``.
        resize: ``"matlab"`` (bicubic ``imresize``, upstream) or ``"bilinear"``, for CAMs and frames.
        overwrite: replace an output made with other settings, and rewrite existing crops.
        progress: show a tqdm bar.

    Returns:
        a summary dict (counts and the output path).

    Raises:
        InputError: a missing/corrupt manifest, ``cams.csv``, CAM or frame (the message names the file), or
            no manifest frame with CAMs at all.
        OutputError: the output folder cannot be used.
        ValueError: bad parameters.
    """
    data_root, out_root = os.fspath(data_root), os.fspath(out_root)
    if box not in ("upstream", "adaptive"):
        raise ValueError(f"box must be 'upstream' or 'adaptive', got {box!r}")
    if audio not in ("link", "copy", "reference"):
        raise ValueError(f"audio must be 'link', 'copy' or 'reference', got {audio!r}")
    if resize not in ("matlab", "bilinear"):
        raise ValueError(f"resize must be 'matlab' or 'bilinear', got {resize!r}")
    if int(grid) < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    grid = int(grid)
    if box_window is None:
        box_window = 3 if box == "adaptive" else 1
    if box_window < 1 or box_window % 2 == 0:
        raise ValueError(f"box_window must be odd and >= 1, got {box_window}")

    if not os.path.isdir(data_root):
        raise InputError(data_root, "prepared root not found")
    manifest_path = os.path.join(data_root, "manifest.csv")
    manifest = read_manifest(data_root)
    classes_path = os.path.join(data_root, "classes.json")
    classes = _read_json(classes_path)
    prep_cfg_path = os.path.join(data_root, "prepare_config.json")
    prep_cfg = _read_json(prep_cfg_path) if os.path.isfile(prep_cfg_path) else None
    indexes = _read_cam_indexes(cams, correct_only)
    cam_dirs = {b: os.path.abspath(os.fspath(d)) for b, d in cams.items()}

    # frames of the manifest that have CAMs, grouped by clip (manifest order)
    by_clip: "OrderedDict[str, list[tuple[int, dict, dict[str, CamEntry]]]]" = OrderedDict()
    skipped: list[tuple[str, int, str]] = []
    for r in manifest:
        clip, sec = r.clip, r.second
        if split is not None and r.split != split:
            continue
        key = (clip, sec)
        if not any(key in idx for idx in indexes.values()):
            continue
        present = _branches_for(key, indexes, require_all)
        if present is None:
            skipped.append((clip, sec, _missing_reason(key, indexes)))
            continue
        by_clip.setdefault(clip, []).append((sec, r, present))
    n_frames = sum(len(v) for v in by_clip.values())
    if n_frames == 0:
        first = os.path.join(next(iter(cam_dirs.values())), "cams.csv")
        raise InputError(first, f"no frame of {manifest_path}"
                                + (f" (split {split})" if split is not None else "")
                                + " has " + ("a CAM in every branch" if require_all else "a CAM")
                                + f" ({', '.join(cam_dirs)}); do the CAM folders belong to this prepared root?")

    settings = {"grid": grid, "factor": factor, "box": box, "start": start, "step": step, "min_size": min_size,
                "box_window": box_window, "eps": eps, "require_all": require_all, "split": split,
                "correct_only": correct_only, "audio": audio, "resize": resize, "jpeg_quality": JPEG_QUALITY,
                "empty_box": empty_box}
    inputs = {"data_root": os.path.abspath(data_root), "cams": cam_dirs}
    identity = {"settings": settings, "inputs": inputs}
    _prepare_out(out_root, CROP_CONFIG, identity, overwrite, [data_root, *cam_dirs.values()])
    config = {"stage": "pseudo-gt crop", "avsal_version": _version(), **identity, "complete": False,
              "source_prepare_config": prep_cfg}
    write_json_atomic(os.path.join(out_root, CROP_CONFIG), config)
    write_json_atomic(os.path.join(out_root, "classes.json"), classes)

    out_manifest: list[ManifestRow] = []
    out_boxes: list[list] = []
    reused = 0
    bar = tqdm(total=n_frames, desc="crop", unit="frame", disable=not progress)
    try:
        for clip, frames in by_clip.items():
            boxes: dict[int, Box] = {}
            for sec, _r, present in frames:
                maps = {b: resize_map(load_cam(e.path), (grid, grid), resize) for b, e in present.items()}
                fused = fuse_cams(maps, {b: e.prob for b, e in present.items()}, eps)
                if box == "adaptive":
                    bx = adaptive_box(fused, start, step, min_size)
                else:
                    bx = crop_box(fused, factor)
                if bx is None and empty_box == "full":
                    bx = (0, grid - 1, 0, grid - 1)
                if bx is None:
                    skipped.append((clip, sec, "empty box (no pixel above the threshold)"))
                else:
                    boxes[sec] = bx
            if box_window > 1 and boxes:
                boxes = average_boxes(boxes, box_window)
            for sec, r, _present in frames:
                bar.update(1)
                if sec not in boxes:
                    continue
                r0, r1, c0, c1 = boxes[sec]
                rel_frame = f"frames/{clip}/{sec:02d}.jpg"
                dst = os.path.join(out_root, rel_frame)
                if overwrite or not os.path.isfile(dst):
                    src = os.path.join(data_root, r.frame)
                    rgb = resize_rgb(load_frame(src), (grid, grid), resize)
                    crop = resize_rgb(rgb[r0:r1 + 1, c0:c1 + 1], (grid, grid), resize)
                    write_bytes_atomic(dst, encode_jpeg(crop, path=dst))
                else:
                    reused += 1
                rel_audio = r.audio
                if rel_audio:
                    src_audio = os.path.join(data_root, rel_audio)
                    if not os.path.isfile(src_audio):
                        raise InputError(src_audio, "audio feature file not found")
                    if audio == "reference":
                        rel_audio = os.path.relpath(os.path.abspath(src_audio), os.path.abspath(out_root))
                    else:
                        rel_audio = f"audio/{clip}/{sec:02d}.h5"
                        dst_audio = os.path.join(out_root, rel_audio)
                        if overwrite or not os.path.isfile(dst_audio):
                            _place_audio(src_audio, dst_audio, audio)
                out_manifest.append(replace(r, frame=rel_frame, audio=rel_audio.replace(os.sep, "/")))
                out_boxes.append([clip, sec, r0, r1, c0, c1])
    finally:
        bar.close()

    write_manifest(out_root, out_manifest)
    _write_csv(os.path.join(out_root, "boxes.csv"), BOX_COLUMNS, out_boxes)
    _write_csv(os.path.join(out_root, "failures.csv"), ["clip", "reason"], [])
    _write_csv(os.path.join(out_root, "skipped.csv"), ["clip", "second", "reason"], skipped)
    counts = {"frames_with_cams": n_frames + sum(1 for s in skipped if s[2].startswith("no CAM")),
              "cropped": len(out_boxes), "reused": reused,
              "skipped_missing_branch": sum(1 for s in skipped if s[2].startswith("no CAM")),
              "skipped_empty_box": sum(1 for s in skipped if s[2].startswith("empty box"))}
    config.update(complete=True, counts=counts)
    write_json_atomic(os.path.join(out_root, CROP_CONFIG), config)
    return {"out": os.path.abspath(out_root), **counts}


# ----------------------------------------------------------------------------------------------- finalize

_VARIANTS = {
    # smoothing, sparsify factor, eps
    "upstream": (True, 3.0, 1e-4),
    "sta_trial": (False, None, 1e-5),
}


def _runs(seconds: list[int]) -> list[list[int]]:
    """Split sorted seconds into runs of consecutive seconds."""
    runs: list[list[int]] = []
    for s in seconds:
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return runs


def finalize_stage(crops_root: str | os.PathLike, cams: Mapping[str, str | os.PathLike],
                   out_root: str | os.PathLike, smoothing: bool | None = None, factor: float | None = None,
                   variant: str = "upstream", require_all: bool = True, *, window: int = 5,
                   recursive: bool = True, frames: str = "valid", eps: float | None = None,
                   grid: int | None = None, correct_only: bool = False, resize: str = "matlab",
                   overwrite: bool = False, progress: bool = True) -> dict:
    """Stage 7: recover the fine CAMs into their boxes, fuse, smooth, sparsify → pseudo-GT PNGs.

    ``variant="upstream"`` replaces ``RecoverCAM*.m`` + ``CAMFuse.m`` + ``CAMsmooth*.m``: each fine CAM is
    pasted into its ``boxes.csv`` box on a zero ``grid × grid`` map
    (:func:`~avsal.pseudo_gt.fusion.paste_cam`), the branches are fused with the fine ``cams.csv``
    probabilities (:func:`~avsal.pseudo_gt.fusion.fuse_cams`), each clip's maps are smoothed over time
    (:func:`~avsal.pseudo_gt.fusion.temporal_smooth`, 5 frames, recursive) and values below ``3 · mean``
    are zeroed (:func:`~avsal.pseudo_gt.fusion.sparsify`).

    ``variant="sta_trial"`` replaces ``STA_trial: coarse2fine/Fine_refuse_GT.py``: the fine CAMs are fused
    first (``eps = 1e-5``), the fused map is resized into the box on a zero map, with no smoothing and no
    threshold (its boxes come from ``crop_stage(box="adaptive")``).

    Smoothing runs over consecutive seconds: a second without a fused map (no box, or missing CAMs) splits
    the clip, and only centres with a full window get a map. ``frames="valid"`` writes every such centre;
    ``frames="upstream"`` writes the subset ``CAMsmooth*.m`` writes
    (:func:`~avsal.pseudo_gt.fusion.upstream_written`: it skips the first full window and stops two
    frames early). Without smoothing every fused frame is written.

    Writes ``OUT/<clip>/<ss>.png`` (uint8 ``round(255 · map)``, ``grid × grid``), ``pseudo_gt.csv``
    (``clip,second,path``), ``skipped.csv`` (``clip,second,reason``) and ``pseudo_gt_config.json``.

    Args:
        crops_root: the crops root of stage 4 (its ``boxes.csv``; ``crop_config.json`` gives the grid).
        cams: branch → fine CAM folder.
        out_root: the pseudo-GT folder to write.
        smoothing: temporal smoothing (``None``: the variant's default; upstream ``True``).
        factor: sparsify factor (``None``: the variant's default, upstream 3.0; ``0`` disables).
        variant: ``"upstream"`` or ``"sta_trial"``.
        require_all: see the module docstring.
        window, recursive: of :func:`~avsal.pseudo_gt.fusion.temporal_smooth`.
        frames: ``"valid"`` or ``"upstream"`` (only with smoothing).
        eps: fusion epsilon (``None``: 1e-4 upstream, 1e-5 sta_trial).
        grid: grid side (``None``: from ``crop_config.json``, else 356).
        correct_only, resize, overwrite, progress: as in :func:`crop_stage`.

    Returns:
        a summary dict (counts and the output path).

    Raises:
        InputError: missing/corrupt ``boxes.csv``, ``cams.csv`` or CAM (named), or no box with CAMs.
        OutputError: the output folder cannot be used.
        ValueError: bad parameters.
    """
    crops_root, out_root = os.fspath(crops_root), os.fspath(out_root)
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(_VARIANTS)}, got {variant!r}")
    if frames not in ("valid", "upstream"):
        raise ValueError(f"frames must be 'valid' or 'upstream', got {frames!r}")
    if resize not in ("matlab", "bilinear"):
        raise ValueError(f"resize must be 'matlab' or 'bilinear', got {resize!r}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be odd and >= 1, got {window}")
    d_smooth, d_factor, d_eps = _VARIANTS[variant]
    smoothing = d_smooth if smoothing is None else bool(smoothing)
    factor = d_factor if factor is None else float(factor)
    eps = d_eps if eps is None else float(eps)

    if not os.path.isdir(crops_root):
        raise InputError(crops_root, "crops root not found")
    crop_cfg_path = os.path.join(crops_root, CROP_CONFIG)
    crop_cfg = _read_json(crop_cfg_path) if os.path.isfile(crop_cfg_path) else None
    if grid is None:
        grid = 356
        if isinstance(crop_cfg, dict):
            grid = int((crop_cfg.get("settings") or {}).get("grid", 356))
    grid = int(grid)
    boxes_path = os.path.join(crops_root, "boxes.csv")
    boxes = read_boxes(boxes_path, (grid, grid))
    indexes = _read_cam_indexes(cams, correct_only)
    cam_dirs = {b: os.path.abspath(os.fspath(d)) for b, d in cams.items()}

    by_clip: "OrderedDict[str, list[tuple[int, Box, dict[str, CamEntry]]]]" = OrderedDict()
    skipped: list[tuple[str, int, str]] = []
    for key, bx in boxes.items():
        if not any(key in idx for idx in indexes.values()):
            skipped.append((key[0], key[1], "no fine CAM"))
            continue
        present = _branches_for(key, indexes, require_all)
        if present is None:
            skipped.append((key[0], key[1], _missing_reason(key, indexes)))
            continue
        by_clip.setdefault(key[0], []).append((key[1], bx, present))
    n_frames = sum(len(v) for v in by_clip.values())
    if n_frames == 0:
        first = os.path.join(next(iter(cam_dirs.values())), "cams.csv")
        raise InputError(first, f"no box of {boxes_path} has "
                                + ("a fine CAM in every branch" if require_all else "a fine CAM")
                                + f" ({', '.join(cam_dirs)}); do the CAM folders belong to this crops root?")

    settings = {"variant": variant, "smoothing": smoothing, "window": window, "recursive": recursive,
                "frames": frames, "factor": factor, "eps": eps, "grid": grid, "require_all": require_all,
                "correct_only": correct_only, "resize": resize}
    inputs = {"crops_root": os.path.abspath(crops_root), "cams": cam_dirs}
    identity = {"settings": settings, "inputs": inputs}
    _prepare_out(out_root, PGT_CONFIG, identity, overwrite, [crops_root, *cam_dirs.values()])
    config = {"stage": "pseudo-gt finalize", "avsal_version": _version(), **identity, "complete": False}
    write_json_atomic(os.path.join(out_root, PGT_CONFIG), config)

    rows: list[PseudoGtRow] = []
    reused = 0
    bar = tqdm(total=n_frames, desc="finalize", unit="frame", disable=not progress)
    try:
        for clip, items in by_clip.items():
            items.sort(key=lambda t: t[0])
            fused: dict[int, np.ndarray] = {}
            for sec, bx, present in items:
                probs = {b: e.prob for b, e in present.items()}
                if variant == "sta_trial":
                    size = (bx[1] - bx[0] + 1, bx[3] - bx[2] + 1)
                    maps = {b: resize_map(load_cam(e.path), size, resize) for b, e in present.items()}
                    fused[sec] = paste_cam(fuse_cams(maps, probs, eps), bx, grid, resize)
                else:
                    maps = {b: paste_cam(load_cam(e.path), bx, grid, resize) for b, e in present.items()}
                    fused[sec] = fuse_cams(maps, probs, eps)
                bar.update(1)
            out_maps: dict[int, np.ndarray] = {}
            if smoothing:
                for run in _runs(sorted(fused)):
                    sm = temporal_smooth([fused[s] for s in run], window, recursive)
                    keep = upstream_written(len(run), window) if frames == "upstream" else range(len(run))
                    keep = set(keep)
                    for p, s in enumerate(run):
                        if sm[p] is not None and p in keep:
                            out_maps[s] = sm[p]
                        else:
                            skipped.append((clip, s, "no full smoothing window" if sm[p] is None
                                            else "not written by upstream's frame range"))
            else:
                out_maps = fused
            for sec in sorted(out_maps):
                m = out_maps[sec]
                if factor:
                    m = sparsify(m, factor)
                rel = f"{clip}/{sec:02d}.png"
                dst = os.path.join(out_root, rel)
                if overwrite or not os.path.isfile(dst):
                    write_bytes_atomic(dst, _encode_png(m, dst))
                else:
                    reused += 1
                rows.append(PseudoGtRow(clip, sec, rel))
    finally:
        bar.close()

    write_pseudo_gt_csv(out_root, rows)
    _write_csv(os.path.join(out_root, "skipped.csv"), ["clip", "second", "reason"], skipped)
    counts = {"boxes": len(boxes), "fused": n_frames, "written": len(rows), "reused": reused,
              "skipped": len(skipped)}
    config.update(complete=True, counts=counts)
    write_json_atomic(os.path.join(out_root, PGT_CONFIG), config)
    return {"out": os.path.abspath(out_root), **counts}
