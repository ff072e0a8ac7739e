"""Stage 1 of the weakly supervised STANet pipeline: category-labelled videos → a *prepared root*.

The layout written (``docs/weak_pipeline.md``, "Prepared root")::

    ROOT/
      manifest.csv        clip,second,frame,audio,class_id,class_name,split
      classes.json        class names, class_id = index
      frames/<clip>/<second:02d>.jpg    middle frame of that second, original size, RGB JPEG q95
      frames/<clip>/.done               per-clip completeness marker (JSON), written last
      audio/<clip>/<second:02d>.h5      STANet audio features float32 [81, 199], HDF5 key "dataset"
      wav/<clip>.wav                    16 kHz mono float32 soundtrack (only with keep_wav)
      failures.csv        clip,reason
      prepare_config.json

It replaces two upstream preprocessing scripts (``docs/stanet.md`` §1):

* the frame extraction of ``TR:AVE_modify.py`` (one frame per second, the middle one, at original
  resolution, named by the second index);
* ``VGGClssfication/audiostft.py`` (16 kHz mono audio cut into one-second windows → the 81×199
  log-spectrogram of :func:`avsal.io.audio.stft_windows`).

Timing conventions (all in seconds):

* **frames**: the frame nearest ``s + 0.5`` on the video timeline, whose origin is the first decoded
  frame; "nearest" is the rule of :class:`avsal.io.video.Sampling` (``times`` mode): each frame owns
  the times between the midpoints to its neighbours, the last one up to one nominal frame duration
  after its timestamp;
* **audio**: the samples ``[s·16000, (s+1)·16000)`` of the decoded 16 kHz mono track, counted from the
  first audio sample — the one-second window *starting* at ``s``, as upstream ``audiostft.py`` cuts it,
  not a window centred on the frame (that is :func:`avsal.io.audio.stft_features_at`, used at
  inference). A track that ends at most :data:`AUDIO_TAIL_TOLERANCE` s before the end of the last
  second is zero-padded; a shorter one is an error.

Every file is written under a temporary name and renamed into place; a clip is complete only when its
marker ``frames/<clip>/.done`` exists and names files that all exist, so an interrupted run resumes
where it stopped. Class ids of the AVE mode are the upstream ones
(:data:`avsal.models.stanet.networks.AVE_CLASSES`, imported lazily: importing this module does not
import torch).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from avsal.data.layout import MANIFEST_COLUMNS, ManifestRow, read_manifest, write_manifest
from avsal.errors import InputError, OutputError
from avsal.io.image import JPEG_QUALITY, encode_jpeg  # noqa: F401 (part of this module's API)
from avsal.io.video import VIDEO_EXTENSIONS
from avsal.io.write import write_bytes_atomic, write_json_atomic, write_text_atomic
from avsal.parallel import run_pool

__all__ = ["AUDIO_TAIL_TOLERANCE", "JPEG_QUALITY", "MANIFEST_COLUMNS", "MARKER", "SAMPLE_RATE", "SPLIT_FILES",
           "AveAnnotation", "ClipFailure", "LabelEntry", "ManifestRow", "PrepareResult", "ave_classes",
           "clip_is_complete", "encode_jpeg", "find_video", "prepare_ave", "prepare_clip", "prepare_folder",
           "read_ave_annotations", "read_ave_splits", "read_labels_csv", "read_manifest"]

#: Audio rate of the STANet features (Hz); also the number of samples in one feature window.
SAMPLE_RATE = 16000
#: Seconds of audio that may be missing at the end of the last second (zero-padded), e.g. a 9.95-s track
#: for a clip annotated up to 10 s. Also the slack on the video length in folder mode.
AUDIO_TAIL_TOLERANCE = 0.1
#: Split names and the AVE file that lists each split.
SPLIT_FILES = (("train", "trainSet.txt"), ("val", "valSet.txt"), ("test", "testSet.txt"))
#: Name of the per-clip completeness marker inside ``frames/<clip>/``.
MARKER = ".done"
_NOT_VIDEO = {".txt", ".json", ".csv", ".md", ".jpg", ".jpeg", ".png", ".wav", ".h5", ".part", ".partial"}


def ave_classes() -> tuple[str, ...]:
    """The 28 AVE class names in upstream class-id order (``AVE_CLASSES``; imports torch on first use)."""
    from avsal.models.stanet.networks import AVE_CLASSES

    return tuple(AVE_CLASSES)


# ----------------------------------------------------------------------------------------------------
# Annotation, split and label files
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AveAnnotation:
    """One line ``Category&VideoID&Quality&Start&End`` of an AVE annotation or split file.

    Attributes:
        category: AVE class name, e.g. ``"Race car, auto racing"``.
        video_id: YouTube id, e.g. ``"22olCB3wQaA"``.
        quality: the quality field as written (``"good"`` in AVE).
        start, end: the annotated event interval ``[start, end)`` in whole seconds from the clip start.
        line: 1-based line number in the file it was read from (not compared).
    """

    category: str
    video_id: str
    quality: str
    start: int
    end: int
    line: int = field(default=0, compare=False)

    @property
    def seconds(self) -> range:
        """The annotated seconds ``range(start, end)`` (one prepared row each)."""
        return range(self.start, self.end)

    @property
    def class_id(self) -> int:
        """Upstream class id: the index of :attr:`category` in ``AVE_CLASSES``.

        Raises:
            ValueError: not an AVE category (:func:`read_ave_annotations` rejects those already).
        """
        return ave_classes().index(self.category)


def _parse_whole(text: str) -> int | None:
    """``"5"`` or ``"5.0"`` → 5; anything else (``"5.5"``, ``"x"``) → None."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        return None
    return int(f) if math.isfinite(f) and f.is_integer() else None


def _read_text(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise InputError(path, f"{what} not found")
    if os.path.isdir(path):
        raise InputError(path, f"is a folder, not a {what}")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except UnicodeDecodeError:
        raise InputError(path, f"not a UTF-8 text file; expected a {what}") from None
    except OSError as e:
        raise InputError(path, f"{what} cannot be read ({e.strerror})") from None


def read_ave_annotations(path: str | os.PathLike, check_classes: bool = True) -> list[AveAnnotation]:
    """Read an AVE annotation file (``Annotations.txt``) or split file (``trainSet.txt`` …).

    Lines are ``Category&VideoID&Quality&Start&End`` with whole-second times. A header line
    (``Category&VideoID&Quality&StartTime&EndTime``: first non-empty line whose times are not numbers)
    is detected and skipped; empty lines, surrounding whitespace, CRLF line ends and a UTF-8 BOM are
    tolerated.

    Replaces the annotation parsing of upstream ``TR:utils/DataFromtxt.py`` (class ids here are the UP
    ones, see :attr:`AveAnnotation.class_id`).

    Args:
        path: the text file.
        check_classes: reject categories that are not one of the 28 AVE classes.

    Returns:
        The annotations in file order.

    Raises:
        InputError: missing/unreadable file, or a malformed line (wrong number of fields, empty
            category or id, a time that is not a whole number, ``start < 0`` or ``end < start``,
            an unknown category); the message names the file and the 1-based line number.
    """
    path = os.fspath(path)
    text = _read_text(path, "AVE annotation file")
    classes = ave_classes() if check_classes else None
    out: list[AveAnnotation] = []
    first = True
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split("&")]
        if first:
            first = False
            if (len(fields) == 5 and _parse_whole(fields[3]) is None and _parse_whole(fields[4]) is None
                    and (classes is None or fields[0] not in classes)):
                continue  # header line
        if len(fields) != 5:
            raise InputError(path, f"line {lineno}: expected 5 '&'-separated fields "
                             f"Category&VideoID&Quality&Start&End, got {len(fields)}: {line!r}")
        category, video_id, quality, s, e = fields
        if not category or not video_id:
            raise InputError(path, f"line {lineno}: empty category or video id: {line!r}")
        start, end = _parse_whole(s), _parse_whole(e)
        if start is None or end is None:
            raise InputError(path, f"line {lineno}: start and end must be whole seconds, got {s!r} and {e!r}")
        if start < 0 or end < start:
            raise InputError(path, f"line {lineno}: bad interval [{start}, {end}) (need 0 <= start <= end)")
        if classes is not None and category not in classes:
            raise InputError(path, f"line {lineno}: unknown AVE category {category!r} "
                             f"(expected one of the 28 AVE classes, e.g. {classes[0]!r})")
        out.append(AveAnnotation(category, video_id, quality, start, end, lineno))
    return out


def read_ave_splits(splits_dir: str | os.PathLike) -> dict[tuple[str, str], str]:
    """Read ``trainSet.txt``, ``valSet.txt`` and ``testSet.txt`` (AVE format, no header) from a folder.

    Missing files are allowed (their clips will be reported as "not in any split file"), as long as one
    is present.

    Args:
        splits_dir: the folder.

    Returns:
        ``{(category, video_id): "train" | "val" | "test"}``. Keyed by the pair because AVE annotates
        45 videos under two categories.

    Raises:
        InputError: the folder is missing or holds none of the three files, a file is malformed (see
            :func:`read_ave_annotations`), or one (category, video) pair is in two different splits.
    """
    folder = os.fspath(splits_dir)
    if not os.path.isdir(folder):
        raise InputError(folder, "split folder not found (expected trainSet.txt, valSet.txt, testSet.txt)")
    found: dict[tuple[str, str], str] = {}
    present = 0
    for split, name in SPLIT_FILES:
        p = os.path.join(folder, name)
        if not os.path.isfile(p):
            continue
        present += 1
        for a in read_ave_annotations(p):
            key = (a.category, a.video_id)
            if found.get(key, split) != split:
                raise InputError(p, f"line {a.line}: {a.video_id} ({a.category}) is also in the "
                                 f"{found[key]} split")
            found[key] = split
    if not present:
        raise InputError(folder, "holds none of the split files " + ", ".join(n for _, n in SPLIT_FILES))
    return found


@dataclass(frozen=True)
class LabelEntry:
    """One row of a folder-mode ``labels.csv``.

    Attributes:
        video: the ``video`` value as written (a file in the videos folder, with or without extension).
        class_name: the label; an integer label is an AVE class id and is replaced by its AVE name.
        split: ``train`` (default), ``val`` or ``test``.
        line: 1-based line number in the file.
    """

    video: str
    class_name: str
    split: str = "train"
    line: int = 0


def read_labels_csv(path: str | os.PathLike) -> list[LabelEntry]:
    """Read a folder-mode ``labels.csv``: header ``video,label`` (plus an optional ``split`` column).

    ``label`` is a class name (any text) or an integer AVE class id (0–27, upstream order).

    Raises:
        InputError: missing file, missing ``video``/``label`` columns, an empty value, an integer label
            outside 0–27, a split other than train/val/test, or a video listed twice (message names the
            file and line).
    """
    path = os.fspath(path)
    text = _read_text(path, "labels CSV file")
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError(path, "is empty; expected a header line 'video,label'") from None
    if "video" not in header or "label" not in header:
        raise InputError(path, f"line 1: header must name the columns 'video' and 'label', got {header}")
    iv, il = header.index("video"), header.index("label")
    isp = header.index("split") if "split" in header else None
    classes = None
    out: list[LabelEntry] = []
    seen: dict[str, int] = {}
    for row in reader:
        lineno = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise InputError(path, f"line {lineno}: expected {len(header)} fields, got {len(row)}: {row}")
        video, label = row[iv].strip(), row[il].strip()
        split = row[isp].strip().lower() if isp is not None else "train"
        if not video or not label:
            raise InputError(path, f"line {lineno}: empty video or label")
        if split not in ("train", "val", "test"):
            raise InputError(path, f"line {lineno}: split must be train, val or test, got {split!r}")
        as_int = int(label) if re.fullmatch(r"[+-]?[0-9]+", label) else None
        if as_int is not None:
            classes = classes or ave_classes()
            if not 0 <= as_int < len(classes):
                raise InputError(path, f"line {lineno}: class id {as_int} is not an AVE class id "
                                 f"(0-{len(classes) - 1})")
            label = classes[as_int]
        if video in seen:
            raise InputError(path, f"line {lineno}: video {video!r} is already listed on line {seen[video]}")
        seen[video] = lineno
        out.append(LabelEntry(video, label, split, lineno))
    return out


# ----------------------------------------------------------------------------------------------------
# Small helpers: atomic writes, clip ids, video lookup
# ----------------------------------------------------------------------------------------------------

def _check_clip_id(clip_id: str) -> str:
    if (not isinstance(clip_id, str) or not clip_id or clip_id in (".", "..") or clip_id.startswith(".")
            or any(c in clip_id for c in "/\\\0\n\r")):
        raise ValueError(f"invalid clip id {clip_id!r}: it must be a plain folder name (no '/', no leading '.')")
    return clip_id


class _VideoIndex:
    """The files of a videos folder, listed once, by stem (name without extension)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.by_stem: dict[str, list[str]] = {}
        with os.scandir(folder) as it:
            for e in it:
                if e.name.startswith(".") or not e.is_file():
                    continue
                stem, ext = os.path.splitext(e.name)
                if ext.lower() in _NOT_VIDEO:
                    continue
                self.by_stem.setdefault(stem, []).append(e.name)

    def find(self, stem: str) -> str | None:
        names = self.by_stem.get(stem)
        if not names:
            return None
        order = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
        best = min(names, key=lambda n: (order.get(os.path.splitext(n)[1].lower(), len(order)), n))
        return os.path.join(self.folder, best)


def find_video(videos_dir: str | os.PathLike, video_id: str) -> str | None:
    """``<videos_dir>/<video_id>.mp4`` if present, else another ``<video_id>.<ext>`` file (mkv, webm,
    avi, mov, … in :data:`avsal.io.video.VIDEO_EXTENSIONS` order, then any other extension); ``None`` if
    there is none."""
    return _VideoIndex(os.fspath(videos_dir)).find(video_id)


# ----------------------------------------------------------------------------------------------------
# One clip
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipFailure:
    """A clip that could not be prepared (one row of ``failures.csv``)."""

    clip: str
    reason: str


def _frame_rel(clip: str, s: int) -> str:
    return f"frames/{clip}/{s:02d}.jpg"


def _audio_rel(clip: str, s: int) -> str:
    return f"audio/{clip}/{s:02d}.h5"


def _rows(clip: str, seconds: Iterable[int], class_id: int, class_name: str, split: str) -> list[ManifestRow]:
    return [ManifestRow(clip, int(s), _frame_rel(clip, s), _audio_rel(clip, s), int(class_id), class_name, split)
            for s in seconds]


def _decode_middle_frames(path: str, info, targets: Sequence[float],
                          emit: Callable[[list[int], np.ndarray], None], threads: int = 0,
                          stop_early: bool = True) -> float:
    """Decode a video once and hand over the frame nearest each target time.

    A thin layer over ``iter_frames(path, Sampling(times=targets))``: only the selected frames are
    converted to RGB (frames convert lazily) and, with ``stop_early``, decoding stops once every target is
    served, which makes it several times faster on HD video.

    Args:
        path: the video.
        info: its :func:`avsal.io.video.probe` result.
        targets: increasing times in seconds relative to the first frame.
        emit: called as ``emit(target_indices, rgb)`` for each selected frame, in order, with the indices
            (into ``targets``) of the targets it is nearest to and its ``uint8 [H, W, 3]`` RGB pixels.
        threads: decoder threads; 0 lets FFmpeg choose (frame + slice threading).
        stop_early: stop decoding once every target is served (then the video's length is unknown).

    Returns:
        The time (s, relative to the first frame) up to which the decoded frames cover the video:
        the last decoded frame's time plus one nominal frame duration. ``inf`` when decoding stopped
        early because every target was served.

    Raises:
        InputError: unreadable/corrupt file, no decodable frame, or a truncated file.
    """
    from avsal.io.video import Sampling, iter_frames

    targets = list(targets)
    t0 = last = None
    served = 0
    for f in iter_frames(path, Sampling(times=targets), info=info, threads=threads):
        if t0 is None:
            t0 = f.time
        last = f
        if f.selected:
            emit(list(f.targets), f.rgb)
            served += len(f.targets)
            if stop_early and served >= len(targets):
                return math.inf
    return (last.time - t0) + 1.0 / max(info.fps, 1e-6)


def _remove_clip_outputs(out_root: str, clip_id: str) -> None:
    for d in (os.path.join(out_root, "frames", clip_id), os.path.join(out_root, "audio", clip_id)):
        shutil.rmtree(d, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(out_root, "wav", clip_id + ".wav"))


def _write_wav(path: str, samples: np.ndarray) -> None:
    from scipy.io import wavfile

    buf = io.BytesIO()
    wavfile.write(buf, SAMPLE_RATE, np.asarray(samples, dtype=np.float32))
    write_bytes_atomic(path, buf.getvalue())


def clip_is_complete(out_root: str | os.PathLike, clip_id: str, seconds: range | None = None,
                     keep_wav: bool = False) -> list[int] | None:
    """Whether a clip's outputs are all in place, judged from its marker ``frames/<clip>/.done``.

    Args:
        out_root: the prepared root.
        clip_id: the clip.
        seconds: the seconds it must hold (``None``: whatever the marker lists, as in folder mode).
        keep_wav: also require ``wav/<clip>.wav``.

    Returns:
        The prepared seconds (sorted), or ``None`` when the clip must be (re)done: no or unreadable marker,
        other seconds than asked, or a listed file missing.
    """
    out_root = os.fspath(out_root)
    try:
        with open(os.path.join(out_root, "frames", clip_id, MARKER), encoding="utf-8") as f:
            marker = json.load(f)
        secs = [int(s) for s in marker["seconds"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not secs or (seconds is not None and secs != list(seconds)):
        return None
    if keep_wav and not os.path.isfile(os.path.join(out_root, "wav", clip_id + ".wav")):
        return None
    for s in secs:
        if not (os.path.isfile(os.path.join(out_root, _frame_rel(clip_id, s)))
                and os.path.isfile(os.path.join(out_root, _audio_rel(clip_id, s)))):
            return None
    return secs


def prepare_clip(video_path: str | os.PathLike, clip_id: str, seconds: range | None, class_id: int,
                 out_root: str | os.PathLike, keep_wav: bool = False, *, class_name: str = "",
                 split: str = "", threads: int = 0, audio_mix: str = "mean",
                 resampler: str = "resampy") -> list[ManifestRow]:
    """Write one clip's frames, audio features (and optionally its wav) into a prepared root.

    For each second ``s`` (whole seconds from the start of the clip):

    * ``frames/<clip>/<s:02d>.jpg``: the frame nearest ``s + 0.5`` s on the video timeline (origin: the
      first frame), original resolution, RGB JPEG quality 95 — upstream ``TR:AVE_modify.py`` saves the
      middle frame of each second the same way;
    * ``audio/<clip>/<s:02d>.h5``: float32 ``[81, 199]`` under the key ``"dataset"``, the STANet
      features (:func:`avsal.io.audio.stft_windows`) of exactly the samples ``[s·16000, (s+1)·16000)``
      of the 16 kHz mono track (:func:`avsal.io.audio.load_stanet_audio`: channel mean, then
      ``resampy`` kaiser_best, as upstream) — the one-second window **starting** at ``s``, as upstream
      ``VGGClssfication/audiostft.py`` cuts the track, not one centred on the frame. Up to
      :data:`AUDIO_TAIL_TOLERANCE` s missing at the end of the track are zero-padded;
    * with ``keep_wav``: ``wav/<clip>.wav``, the whole decoded track, 16 kHz mono float32
      (``scipy.io.wavfile``), i.e. the exact samples the features were computed from.

    Any earlier outputs of the clip are removed first, each file is written atomically, and the
    marker ``frames/<clip>/.done`` (JSON: seconds, class, source) is written last. On failure the
    clip's partial outputs are removed.

    Args:
        video_path: any file PyAV opens, with a video and an audio stream.
        clip_id: folder name of the clip (no ``/``, no leading ``.``).
        seconds: the seconds to write, e.g. ``range(start, end)`` of an AVE annotation; ``None``: every
            whole second the video and its audio both cover (folder mode).
        class_id: written into the rows (and the marker).
        out_root: the prepared root (created if needed).
        keep_wav: also write the 16 kHz wav.
        class_name, split: written into the rows (and the marker).
        threads: video decoder threads (0: FFmpeg's choice; 1 in pool workers).
        audio_mix: ``"mean"`` (default, upstream ``np.mean(samples, axis=1)``) or ``"ffmpeg"`` (libswresample's
            (L+R)/√2 down-mix).
        resampler: ``"resampy"`` (default, upstream, kaiser_best) or ``"swr"`` (libswresample defaults).

    Returns:
        The manifest rows of the clip, one per second, in order.

    Raises:
        InputError: the file is missing, unreadable or corrupt; it has no audio stream; the video or
            the audio ends before the last requested second (message says how long it is); an empty
            ``seconds``; a video shorter than one second (folder mode).
        ValueError: an invalid ``clip_id`` or a negative second.
        OSError: the root cannot be written.
    """
    _check_clip_id(clip_id)
    if seconds is not None and any(s < 0 for s in seconds):
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    out_root = os.fspath(out_root)
    _remove_clip_outputs(out_root, clip_id)
    try:
        return _prepare_clip(os.fspath(video_path), clip_id, seconds, int(class_id), out_root, keep_wav,
                             class_name, split, threads, audio_mix, resampler)
    except BaseException:
        _remove_clip_outputs(out_root, clip_id)
        raise


def _prepare_clip(video_path: str, clip_id: str, seconds: range | None, class_id: int, out_root: str,
                  keep_wav: bool, class_name: str, split: str, threads: int, audio_mix: str,
                  resampler: str) -> list[ManifestRow]:
    from avsal.io.audio import load_stanet_audio, stft_windows, write_features_h5
    from avsal.io.video import probe

    if seconds is not None and len(seconds) == 0:
        raise InputError(video_path, f"the annotated interval {_fmt_range(seconds)} s is empty")
    info = probe(video_path)
    if not info.has_audio:
        raise InputError(video_path, "has no audio stream (the STANet audio features need one)")
    track = load_stanet_audio(video_path, stream_index=info.audio_stream, mix=audio_mix, resampler=resampler)
    samples = track.samples if track is not None else np.zeros(0, np.float32)
    if len(samples) == 0:
        raise InputError(video_path, "its audio stream holds no samples")
    tol = int(round(AUDIO_TAIL_TOLERANCE * SAMPLE_RATE))
    n_audio = (len(samples) + tol) // SAMPLE_RATE  # seconds the audio covers (with the tail tolerance)
    audio_len = len(samples) / SAMPLE_RATE
    if seconds is not None:
        wanted = list(seconds)
        if wanted[-1] >= n_audio:
            raise InputError(video_path, f"the audio is {audio_len:.2f} s long, shorter than the annotated "
                             f"interval {_fmt_range(seconds)} s")
    else:
        wanted = list(range(n_audio))
        if not wanted:
            raise InputError(video_path, f"the audio is {audio_len:.2f} s long, shorter than one second")

    frame_dir = os.path.join(out_root, "frames", clip_id)
    audio_dir = os.path.join(out_root, "audio", clip_id)
    os.makedirs(frame_dir, exist_ok=True)
    os.makedirs(audio_dir, exist_ok=True)
    written: set[int] = set()

    def emit(indices: list[int], rgb: np.ndarray) -> None:
        data = encode_jpeg(rgb)
        for i in indices:
            write_bytes_atomic(os.path.join(out_root, _frame_rel(clip_id, wanted[i])), data)
            written.add(wanted[i])

    cover = _decode_middle_frames(video_path, info, [s + 0.5 for s in wanted], emit, threads,
                                  stop_early=seconds is not None)
    if seconds is None:
        n_video = int(math.floor(cover + AUDIO_TAIL_TOLERANCE + 1e-9))
        for s in wanted[n_video:]:
            if s in written:
                os.remove(os.path.join(out_root, _frame_rel(clip_id, s)))
        wanted = wanted[:n_video]
        if not wanted:
            raise InputError(video_path, f"the video is {cover:.2f} s long, shorter than one second")
    else:
        missing = [s for s in wanted if s not in written]
        if missing:
            raise InputError(video_path, f"the video is {cover:.2f} s long, shorter than the annotated "
                             f"interval {_fmt_range(seconds)} s (no frame for second(s) "
                             f"{', '.join(map(str, missing))})")

    windows = np.zeros((len(wanted), SAMPLE_RATE), np.float32)
    for i, s in enumerate(wanted):
        seg = samples[s * SAMPLE_RATE:(s + 1) * SAMPLE_RATE]
        windows[i, :len(seg)] = seg
    feats = stft_windows(windows)
    for i, s in enumerate(wanted):
        write_features_h5(os.path.join(out_root, _audio_rel(clip_id, s)), feats[i])
    if keep_wav:
        os.makedirs(os.path.join(out_root, "wav"), exist_ok=True)
        _write_wav(os.path.join(out_root, "wav", clip_id + ".wav"), samples)
    marker = {
        "clip": clip_id, "seconds": wanted, "class_id": class_id, "class_name": class_name, "split": split,
        "video": os.path.abspath(video_path), "video_size": os.path.getsize(video_path),
        "width": info.width, "height": info.height, "fps": info.fps,
        "audio_seconds": audio_len,
        "audio_padded_seconds": [s for s in wanted if (s + 1) * SAMPLE_RATE > len(samples)],
        "wav": keep_wav, "audio_mix": audio_mix, "resampler": resampler,
    }
    write_json_atomic(os.path.join(frame_dir, MARKER), marker, ensure_ascii=False)
    return _rows(clip_id, wanted, class_id, class_name, split)


def _fmt_range(r: range) -> str:
    return f"[{r.start}, {r.stop})"


# ----------------------------------------------------------------------------------------------------
# Batches of clips
# ----------------------------------------------------------------------------------------------------

@dataclass
class _ClipJob:
    clip: str
    video: str
    seconds: tuple[int, int] | None
    class_id: int
    class_name: str
    split: str
    out_root: str
    keep_wav: bool
    threads: int = 0
    audio_mix: str = "mean"
    resampler: str = "resampy"

    @property
    def range(self) -> range | None:
        return range(*self.seconds) if self.seconds is not None else None


def _run_job(job: _ClipJob) -> tuple[str, list[ManifestRow] | None, str | None]:
    """Prepare one clip; never raises for a bad clip (returns its failure reason instead)."""
    try:
        rows = prepare_clip(job.video, job.clip, job.range, job.class_id, job.out_root, job.keep_wav,
                            class_name=job.class_name, split=job.split, threads=job.threads,
                            audio_mix=job.audio_mix, resampler=job.resampler)
        return job.clip, rows, None
    except (InputError, OutputError) as e:
        return job.clip, None, e.problem
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # a bug or a disk problem: record it and let the batch go on
        return job.clip, None, f"{type(e).__name__}: {e}"


def _init_worker() -> None:
    """Pool worker start-up: one thread for OpenCV (and torch, if something imported it)."""
    import cv2

    cv2.setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)




def _run_jobs(jobs: list[_ClipJob], n_jobs: int, progress: bool, skipped: int,
              ) -> tuple[dict[str, list[ManifestRow]], list[ClipFailure]]:
    from tqdm.auto import tqdm

    done: dict[str, list[ManifestRow]] = {}
    failures: list[ClipFailure] = []
    bar = tqdm(total=len(jobs) + skipped, initial=skipped, unit="clip", desc="prepare", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def record(clip: str, rows, reason) -> None:
        if rows is not None:
            done[clip] = rows
        else:
            failures.append(ClipFailure(clip, reason))
            if progress:
                bar.write(f"failed: {clip}: {reason}", file=sys.stderr)
                bar.set_postfix(failed=len(failures))
        bar.update(1)

    try:
        if n_jobs <= 1 or len(jobs) <= 1:
            for j in jobs:
                record(*_run_job(j))
        else:
            for j in jobs:
                j.threads = 1
            run_pool(_run_job, jobs, n_jobs, on_result=lambda j, r: record(*r),
                     on_crash=lambda j, e: record(j.clip, None, f"worker process failed ({type(e).__name__}: {e})"),
                     initializer=_init_worker)
    finally:
        bar.close()
    return done, failures


@dataclass
class PrepareResult:
    """What :func:`prepare_ave` / :func:`prepare_folder` did.

    Attributes:
        out_root: the prepared root.
        rows: the manifest rows (all complete clips of this run, including skipped ones), sorted by
            clip then second.
        prepared: clips written by this run.
        skipped: clips already complete (left untouched).
        failures: clips that failed, with the reason (also in ``failures.csv``).
        classes: the class names (``classes.json``).
        elapsed: wall time in seconds.
    """

    out_root: str
    rows: list[ManifestRow]
    prepared: list[str]
    skipped: list[str]
    failures: list[ClipFailure]
    classes: list[str]
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no clip failed."""
        return not self.failures

    @property
    def clips(self) -> list[str]:
        """The clips in the manifest, sorted."""
        return sorted({r.clip for r in self.rows})


def _write_failures(path: str, failures: list[ClipFailure]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("clip", "reason"))
    for f in sorted(failures, key=lambda f: f.clip):
        w.writerow((f.clip, f.reason))
    write_text_atomic(path, buf.getvalue())


def _resolve_jobs(jobs: int) -> int:
    if jobs < 0:
        raise ValueError(f"jobs must be >= 0, got {jobs}")
    return jobs if jobs > 0 else (os.cpu_count() or 1)


def _run_batch(mode: str, arguments: dict, jobs: list[_ClipJob], pre_failures: list[ClipFailure],
               out_root: str, classes: list[str], n_jobs: int, progress: bool, t_start: float) -> PrepareResult:
    """Shared driver: skip complete clips, run the rest, then write manifest/failures/classes/config."""
    import avsal

    config = {"stage": "prepare", "mode": mode, "arguments": arguments, "avsal_version": avsal.__version__,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "settings": {
                  "frame": "frame nearest the middle (s + 0.5 s) of each second on the video timeline "
                           "(origin = first frame), original resolution, RGB JPEG",
                  "jpeg_quality": JPEG_QUALITY,
                  "audio": "samples [s*16000, (s+1)*16000) of the 16 kHz mono track (window starting at s, "
                           "not centred), STANet v2022 log-spectrogram float32 [81, 199], HDF5 key 'dataset'",
                  "audio_mix": arguments.get("audio_mix", "mean"),
                  "resampler": arguments.get("resampler", "resampy"),
                  "sample_rate": SAMPLE_RATE, "audio_tail_tolerance_s": AUDIO_TAIL_TOLERANCE,
                  "wav": "16 kHz mono float32" if arguments.get("keep_wav") else None}}
    write_json_atomic(os.path.join(out_root, "prepare_config.json"), config, ensure_ascii=False)

    complete: dict[str, list[ManifestRow]] = {}
    pending: list[_ClipJob] = []
    for j in jobs:
        secs = clip_is_complete(out_root, j.clip, j.range, j.keep_wav)
        if secs is not None:
            complete[j.clip] = _rows(j.clip, secs, j.class_id, j.class_name, j.split)
        else:
            pending.append(j)
    skipped = sorted(complete)
    done, failures = _run_jobs(pending, n_jobs, progress, skipped=len(complete) + len(pre_failures))
    complete.update(done)
    failures = pre_failures + failures
    rows = sorted((r for rs in complete.values() for r in rs), key=lambda r: (r.clip, r.second))
    write_manifest(out_root, rows)
    _write_failures(os.path.join(out_root, "failures.csv"), failures)
    write_json_atomic(os.path.join(out_root, "classes.json"), list(classes), ensure_ascii=False)
    elapsed = time.perf_counter() - t_start
    config.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), elapsed_s=round(elapsed, 3),
                  counts={"clips": len(jobs) + len(pre_failures), "prepared": len(done), "skipped": len(skipped),
                          "failed": len(failures), "rows": len(rows)})
    write_json_atomic(os.path.join(out_root, "prepare_config.json"), config, ensure_ascii=False)
    return PrepareResult(out_root, rows, sorted(done), skipped, sorted(failures, key=lambda f: f.clip),
                         list(classes), elapsed)


def _check_dirs(videos_dir: str, out_root: str) -> None:
    if not os.path.isdir(videos_dir):
        raise InputError(videos_dir, "videos folder not found")
    from avsal.io.write import ensure_writable_dir

    ensure_writable_dir(out_root)
    for sub in ("frames", "audio"):
        os.makedirs(os.path.join(out_root, sub), exist_ok=True)


def prepare_ave(videos_dir: str | os.PathLike, annotations: str | os.PathLike, splits_dir: str | os.PathLike,
                out_root: str | os.PathLike, jobs: int = 1, keep_wav: bool = False,
                progress: bool = True, audio_mix: str = "mean", resampler: str = "resampy") -> PrepareResult:
    """Prepare AVE-format data: one clip per annotation line, one row per annotated second.

    Replaces upstream ``TR:AVE_modify.py`` (frames) and ``VGGClssfication/audiostft.py`` (audio
    features); see :func:`prepare_clip` for what each second gets.

    * The video of ``VideoID`` is ``<videos_dir>/<VideoID>.mp4``, or another ``<VideoID>.<ext>``
      (:func:`find_video`); a missing one is a failure row ``video file not found``.
    * The clip id is the ``VideoID``; a video annotated under several categories (45 in AVE) gets one
      clip per category, ``<VideoID>__<class_id:02d>``.
    * ``class_id`` is the upstream id (index in ``AVE_CLASSES``); ``split`` comes from the split files,
      matched on (category, video id). A clip in no split file, or with an empty interval (AVE has one,
      ``Church bell&VWi2ENBuTbw&good&0&0``), is a failure row.
    * Resumable: clips already complete (marker) are skipped; clips are processed in parallel by
      ``jobs`` processes; failures are recorded and the batch goes on. ``manifest.csv``, ``failures.csv``,
      ``classes.json`` (the 28 AVE names) and ``prepare_config.json`` are rewritten at the end. The
      manifest lists the complete clips of *this* annotation file; other clips already in the root are
      left on disk but not listed.

    Args:
        videos_dir: folder of the videos.
        annotations: ``Annotations.txt`` (or any file in that format; header optional).
        splits_dir: folder with ``trainSet.txt``, ``valSet.txt``, ``testSet.txt``.
        out_root: the prepared root (created if needed).
        jobs: worker processes (0: one per CPU).
        keep_wav: also write ``wav/<clip>.wav``.
        progress: show a tqdm bar on stderr.
        audio_mix, resampler: how the soundtrack becomes 16 kHz mono (:func:`prepare_clip`; defaults upstream).

    Returns:
        A :class:`PrepareResult`.

    Raises:
        InputError: missing videos folder, malformed annotation or split file, duplicate annotation.
        OutputError: the root cannot be written.
        ValueError: ``jobs < 0``.
    """
    t0 = time.perf_counter()
    videos_dir, out_root = os.fspath(videos_dir), os.fspath(out_root)
    annotations, splits_dir = os.fspath(annotations), os.fspath(splits_dir)
    n_jobs = _resolve_jobs(jobs)
    anns = read_ave_annotations(annotations)
    splits = read_ave_splits(splits_dir)
    _check_dirs(videos_dir, out_root)
    classes = list(ave_classes())
    index = _VideoIndex(videos_dir)

    by_id: dict[str, int] = {}
    seen: dict[tuple[str, str], int] = {}
    for a in anns:
        key = (a.category, a.video_id)
        if key in seen:
            raise InputError(annotations, f"line {a.line}: {a.video_id} ({a.category}) is already annotated "
                             f"on line {seen[key]}")
        seen[key] = a.line
        by_id[a.video_id] = by_id.get(a.video_id, 0) + 1
    id_split: dict[str, set[str]] = {}
    for (_, vid), sp in splits.items():
        id_split.setdefault(vid, set()).add(sp)

    jobs_: list[_ClipJob] = []
    pre: list[ClipFailure] = []
    for a in anns:
        cid = a.class_id
        clip = a.video_id if by_id[a.video_id] == 1 else f"{a.video_id}__{cid:02d}"
        try:
            _check_clip_id(clip)
        except ValueError as e:
            pre.append(ClipFailure(clip, str(e)))
            continue
        split = splits.get((a.category, a.video_id))
        if split is None and len(id_split.get(a.video_id, ())) == 1:
            split = next(iter(id_split[a.video_id]))
        video = index.find(a.video_id)
        if video is None:
            pre.append(ClipFailure(clip, f"video file not found ({a.video_id}.mp4 or {a.video_id}.* in {videos_dir})"))
        elif split is None:
            pre.append(ClipFailure(clip, "not in any split file (trainSet.txt, valSet.txt, testSet.txt)"))
        elif a.end <= a.start:
            pre.append(ClipFailure(clip, f"the annotated interval [{a.start}, {a.end}) s is empty "
                                   f"({os.path.basename(annotations)} line {a.line})"))
        else:
            jobs_.append(_ClipJob(clip, video, (a.start, a.end), cid, a.category, split, out_root, keep_wav,
                                  audio_mix=audio_mix, resampler=resampler))
    arguments = {"videos": os.path.abspath(videos_dir), "annotations": os.path.abspath(annotations),
                 "splits": os.path.abspath(splits_dir), "out": os.path.abspath(out_root), "jobs": jobs,
                 "keep_wav": keep_wav, "progress": progress, "audio_mix": audio_mix, "resampler": resampler}
    return _run_batch("ave", arguments, jobs_, pre, out_root, classes, n_jobs, progress, t0)


def prepare_folder(videos_dir: str | os.PathLike, labels_csv: str | os.PathLike, out_root: str | os.PathLike,
                   jobs: int = 1, keep_wav: bool = False, progress: bool = True, audio_mix: str = "mean",
                   resampler: str = "resampy") -> PrepareResult:
    """Prepare a folder of category-labelled videos: one clip per ``labels.csv`` row, every whole second.

    ``labels.csv`` has the columns ``video,label`` (and optionally ``split``, default ``train``); see
    :func:`read_labels_csv`. ``video`` names a file in ``videos_dir`` (with or without its extension);
    the clip id is that name without extension. ``classes.json`` lists the class names found, sorted,
    and ``class_id`` is the index in that list. Each clip gets every whole second ``s`` that both the
    video and the audio cover (``s + 1 <=`` length, with :data:`AUDIO_TAIL_TOLERANCE` s of slack).
    Frames and features as in :func:`prepare_clip` (upstream ``TR:AVE_modify.py`` and
    ``VGGClssfication/audiostft.py``); resumability, parallelism, outputs and ``audio_mix``/``resampler`` as
    in :func:`prepare_ave`.

    Returns:
        A :class:`PrepareResult`.

    Raises:
        InputError: missing videos folder, malformed ``labels.csv``, two videos with the same clip id.
        OutputError: the root cannot be written.
        ValueError: ``jobs < 0``.
    """
    t0 = time.perf_counter()
    videos_dir, out_root, labels_csv = os.fspath(videos_dir), os.fspath(out_root), os.fspath(labels_csv)
    n_jobs = _resolve_jobs(jobs)
    entries = read_labels_csv(labels_csv)
    _check_dirs(videos_dir, out_root)
    classes = sorted({e.class_name for e in entries})
    index = _VideoIndex(videos_dir)
    jobs_: list[_ClipJob] = []
    pre: list[ClipFailure] = []
    clip_line: dict[str, int] = {}
    for e in entries:
        clip = os.path.splitext(os.path.basename(e.video))[0]
        try:
            _check_clip_id(clip)
        except ValueError:
            raise InputError(labels_csv, f"line {e.line}: {e.video!r} does not give a usable clip id") from None
        if clip in clip_line:
            raise InputError(labels_csv, f"line {e.line}: {e.video!r} gives the clip id {clip!r} of line "
                             f"{clip_line[clip]}")
        clip_line[clip] = e.line
        direct = os.path.join(videos_dir, e.video)
        video = direct if os.path.isfile(direct) else index.find(e.video)
        if video is None:
            pre.append(ClipFailure(clip, f"video file not found ({e.video} or {e.video}.* in {videos_dir})"))
            continue
        jobs_.append(_ClipJob(clip, video, None, classes.index(e.class_name), e.class_name, e.split, out_root,
                              keep_wav, audio_mix=audio_mix, resampler=resampler))
    arguments = {"videos": os.path.abspath(videos_dir), "labels": os.path.abspath(labels_csv),
                 "out": os.path.abspath(out_root), "jobs": jobs, "keep_wav": keep_wav, "progress": progress,
                 "audio_mix": audio_mix, "resampler": resampler}
    return _run_batch("folder", arguments, jobs_, pre, out_root, classes, n_jobs, progress, t0)
