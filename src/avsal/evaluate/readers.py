"""Readers for the evaluation data people have: everything that reads ground truth from disk.

* **Fold lists** (``<name> <nframes> <fps>`` per line; STAViS ``data/fold_lists/*.txt``).
* **The STAViS release layout** (:class:`StavisLayout`)::

      ROOT/video_frames/<DB>/<vid>/img_%05d.jpg
      ROOT/video_audio/<DB>/<vid>/<vid>.wav
      ROOT/annotations/<DB>/<vid>/maps/eyeMap_%05d.jpg   continuous density (JPEG, /255)
      ROOT/annotations/<DB>/<vid>/fixMap_%05d.mat        binary fixations, variable ``eyeMap``
      ROOT/fold_lists/<DB>_list_test_<split>_fps.txt     (DIEM: DIEM_list_test_fps.txt)

  ``ROOT`` is STAViS's ``ANNOT_BASE_PATH`` (its ``<base>/data`` folder); ``<base>`` is accepted
  too.  Frame numbers are 1-based everywhere.
* **Prediction folders** in the layouts people have (:class:`PredictionSpec`,
  :func:`find_prediction_dir`, :func:`list_prediction_frames`): STAViS's ``pred_sal_%06d.jpg``,
  avsal's own ``<pred>/<video>/maps/%06d.png`` and a printf ``pattern`` for others.
* **DIEM raw gaze** (:func:`read_diem_event_file`, :func:`load_diem_video`, :class:`DiemGaze`):
  per-frame fixation points, binary fixation maps and Gaussian density maps in video coordinates
  (one of the gaze readers of :mod:`avsal.evaluate.gaze`, which shares its screen mapping and
  map rasterisation; :func:`avsal.evaluate.gaze.load_diem` turns it into a ``GazeRecording``).
* **Image datasets with fixations in the MIT1003 layout** (:func:`read_mit1003`) for static checks.
* **The DHF1K layout** (DHF1K, Hollywood-2, UCF-Sports; :func:`read_dhf1k_root`,
  :class:`Dhf1kVideo`): ``<video>/images/``, ``maps/``, ``fixation/``, ``fixation/maps/*.mat``,
  the one reader of ViNet training, ``avsal evaluate --dataset-layout dhf1k`` and ``--gaze``.
* **The ground truth of one video as the protocol reads it** (:class:`VideoGroundTruth` for the
  STAViS layout, :class:`Dhf1kGroundTruth` for the DHF1K layout): per-frame density and fixation
  maps, read lazily, and the union of the video's fixations for the sAUC other map.

Every reader raises :class:`avsal.errors.InputError` naming the offending file for missing,
unreadable or inconsistent input.

Sources: STAViS (github.com/atsiami/STAViS @ 71fd51f) ``eval_code/eval_*.m``,
``create_qsub_avsal.m``, ``datasets/saliency_db.py``, ``test_sal.py``; ``docs/evaluation.md`` §1
(the protocol's data) and §5 (fold lists, DIEM gaze and MIT1003 formats and origins).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from avsal.errors import InputError
from avsal.evaluate.gaze import ScreenMapping, points_to_density, points_to_fixation_map

__all__ = [
    "FoldEntry",
    "read_fold_list",
    "DatasetInfo",
    "DATASETS",
    "resolve_dataset",
    "StavisLayout",
    "read_image_map",
    "read_prediction",
    "read_mat_map",
    "PredictionSpec",
    "PREDICTION_LAYOUTS",
    "find_prediction_dir",
    "list_prediction_frames",
    "check_pattern",
    "DIEM_SCREEN",
    "DIEM_SIGMA_PX",
    "DiemGaze",
    "read_diem_event_file",
    "load_diem_video",
    "ImageFixations",
    "read_mit1003",
    "DHF1K_PARTS",
    "Dhf1kVideo",
    "is_dhf1k_video",
    "read_dhf1k_video",
    "read_dhf1k_root",
    "read_dhf1k_fixation",
    "VideoGroundTruth",
    "Dhf1kGroundTruth",
]


# --------------------------------------------------------------------------------------
# fold lists
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldEntry:
    """One line of a fold list: video ``name``, its number of frames and its frame rate.

    Attributes:
        name: video folder name (no spaces).
        nframes: number of frames (>= 1); frames are numbered 1..nframes.
        fps: frames per second (> 0), as written in the list.
    """

    name: str
    nframes: int
    fps: float


def read_fold_list(path: str | os.PathLike) -> list[FoldEntry]:
    """Read a STAViS fold list: one ``<name> <nframes> <fps>`` line per video.

    Blank lines are skipped; fields are separated by any whitespace (tabs, CRLF line ends
    are fine).  Same parsing as STAViS ``datasets/saliency_db.py: read_sal_text`` and
    ``eval_code/eval_*.m`` (``strsplit`` of each line; the fps is unused by the metrics).

    Returns:
        The entries in file order (a name may repeat only if the file repeats it).

    Raises:
        InputError: the file is missing or unreadable, a line does not have exactly three
            fields, ``nframes`` is not a positive integer or ``fps`` not a positive number
            (the message gives the line number), or the list has no entry.

    Source: ``docs/evaluation.md`` §1.1 and §5.1.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise InputError(path, "fold list not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"fold list cannot be read ({e})") from None
    out = []
    for ln, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise InputError(path, f"line {ln}: expected '<name> <nframes> <fps>', got {line.strip()!r}")
        name, nf, fps = fields
        try:
            nframes = int(nf)
            rate = float(fps)
        except ValueError:
            raise InputError(path, f"line {ln}: nframes/fps not numbers in {line.strip()!r}") from None
        if nframes < 1 or not (np.isfinite(rate) and rate > 0):
            raise InputError(path, f"line {ln}: nframes must be >= 1 and fps > 0, got {line.strip()!r}")
        out.append(FoldEntry(name, nframes, rate))
    if not out:
        raise InputError(path, "fold list is empty")
    return out


# --------------------------------------------------------------------------------------
# datasets and the STAViS layout
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset's files live in the STAViS layout and how its score is aggregated.

    Attributes:
        name: canonical name (``AVAD``, ``DIEM``, ``Coutrot1``, ``Coutrot2``, ``ETMD``, ``SumMe``
            or a custom folder name).
        folder: folder under ``annotations/``, ``video_frames/``, ``video_audio/``.
        list_prefix: fold-list prefix (``<prefix>_list_test_<split>_fps.txt``).
        pred_folder: folder of STAViS's ``split<s>_results/`` holding this dataset's videos.
        single_list: one test list for all splits (DIEM: ``DIEM_list_test_fps.txt``).
        aggregation: ``"pooled"`` (mean over all test-list entries of the splits, STAViS
            ``compute_all_<db>.m``) or ``"split_mean"`` (mean of the per-split means, DIEM).
    """

    name: str
    folder: str
    list_prefix: str
    pred_folder: str
    single_list: bool = False
    aggregation: str = "pooled"


#: The six STAViS datasets (folders from ``eval_code/eval_*.m``).
DATASETS: dict[str, DatasetInfo] = {
    "AVAD": DatasetInfo("AVAD", "AVAD", "AVAD", "avad"),
    "DIEM": DatasetInfo("DIEM", "DIEM", "DIEM", "diem", single_list=True, aggregation="split_mean"),
    "Coutrot1": DatasetInfo("Coutrot1", "Coutrot_db1", "Coutrot_db1", "coutrot1"),
    "Coutrot2": DatasetInfo("Coutrot2", "Coutrot_db2", "Coutrot_db2", "coutrot2"),
    "ETMD": DatasetInfo("ETMD", "ETMD_av", "ETMD_av", "etmd"),
    "SumMe": DatasetInfo("SumMe", "SumMe", "SumMe", "summe"),
}


def _key(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


_ALIASES = {}
for _ds in DATASETS.values():
    for _a in (_ds.name, _ds.folder, _ds.list_prefix, _ds.pred_folder):
        _ALIASES[_key(_a)] = _ds.name
_ALIASES.update({"coutrotdb1": "Coutrot1", "coutrotdb2": "Coutrot2", "etmdav": "ETMD"})


def resolve_dataset(name: str, annotations_root: str | os.PathLike | None = None) -> DatasetInfo:
    """The :class:`DatasetInfo` of a dataset name.

    Known names are matched ignoring case and punctuation (``avad``, ``Coutrot_db1``,
    ``coutrot1``, ``ETMD_av``, ...).  Any other name is accepted as a custom dataset when
    ``annotations_root/<name>`` is a folder (fold lists ``<name>_list_test_<s>_fps.txt``, or
    ``<name>_list_test_fps.txt`` for a single split; pooled aggregation).

    Raises:
        InputError: the name is neither known nor a folder of ``annotations_root`` (the
            message lists the known names and the folders found).
    """
    k = _key(name)
    if k in _ALIASES:
        return DATASETS[_ALIASES[k]]
    if annotations_root is not None:
        root = Path(annotations_root)
        if name and (root / name).is_dir() and "/" not in name and name not in (".", ".."):
            return DatasetInfo(name, name, name, name.lower())
        found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise InputError(root / name, f"unknown dataset {name!r}: not one of {', '.join(DATASETS)} "
                                      f"and not a folder of {root} (found: {', '.join(found) or 'none'})")
    raise InputError(name, f"unknown dataset {name!r}: not one of {', '.join(DATASETS)}")


class StavisLayout:
    """A dataset root in the STAViS release layout (see the module docstring).

    Args:
        root: STAViS's ``data`` folder (the one holding ``annotations/``), or its parent.
        fold_lists: folder of the fold lists; default ``root/fold_lists``.

    Raises:
        InputError: ``root`` is not a folder or holds no ``annotations/`` folder (neither
            directly nor in ``root/data``).
    """

    def __init__(self, root: str | os.PathLike, fold_lists: str | os.PathLike | None = None):
        root = Path(root)
        if not root.is_dir():
            raise InputError(root, "data root is not a folder")
        if not (root / "annotations").is_dir() and (root / "data" / "annotations").is_dir():
            root = root / "data"
        if not (root / "annotations").is_dir():
            raise InputError(root, "data root has no 'annotations' folder (expected the STAViS layout: "
                                   "annotations/<DB>/<video>/maps/eyeMap_%05d.jpg and fixMap_%05d.mat)")
        self.root = root
        self.fold_lists = Path(fold_lists) if fold_lists is not None else root / "fold_lists"

    @property
    def annotations(self) -> Path:
        return self.root / "annotations"

    def dataset(self, name: str) -> DatasetInfo:
        """Resolve ``name`` (:func:`resolve_dataset`) and check its annotation folder exists.

        Raises:
            InputError: unknown name, or ``annotations/<DB>`` missing.
        """
        ds = resolve_dataset(name, self.annotations)
        d = self.annotations / ds.folder
        if not d.is_dir():
            raise InputError(d, f"no annotation folder for dataset {ds.name}")
        return ds

    def fold_list_path(self, ds: DatasetInfo, split: int, subset: str = "test") -> Path:
        """``<fold_lists>/<prefix>_list_<subset>_<split>_fps.txt`` (DIEM: no split number)."""
        if ds.single_list or (not (self.fold_lists / f"{ds.list_prefix}_list_{subset}_{split}_fps.txt").exists()
                              and (self.fold_lists / f"{ds.list_prefix}_list_{subset}_fps.txt").exists()):
            return self.fold_lists / f"{ds.list_prefix}_list_{subset}_fps.txt"
        return self.fold_lists / f"{ds.list_prefix}_list_{subset}_{split}_fps.txt"

    def test_entries(self, ds: DatasetInfo, split: int) -> list[FoldEntry]:
        """The test videos of ``split`` (1, 2 or 3).  Raises InputError (see :func:`read_fold_list`)."""
        if split not in (1, 2, 3):
            raise ValueError(f"split must be 1, 2 or 3, got {split!r}")
        return read_fold_list(self.fold_list_path(ds, split))

    def annotation_dir(self, ds: DatasetInfo, video: str) -> Path:
        return self.annotations / ds.folder / video

    def eye_map_path(self, ds: DatasetInfo, video: str, frame: int) -> Path:
        """``annotations/<DB>/<vid>/maps/eyeMap_%05d.jpg`` (1-based frame)."""
        return self.annotation_dir(ds, video) / "maps" / f"eyeMap_{frame:05d}.jpg"

    def fix_map_path(self, ds: DatasetInfo, video: str, frame: int) -> Path:
        """``annotations/<DB>/<vid>/fixMap_%05d.mat`` (1-based frame)."""
        return self.annotation_dir(ds, video) / f"fixMap_{frame:05d}.mat"

    def frame_path(self, ds: DatasetInfo, video: str, frame: int) -> Path:
        """``video_frames/<DB>/<vid>/img_%05d.jpg`` (1-based frame)."""
        return self.root / "video_frames" / ds.folder / video / f"img_{frame:05d}.jpg"

    def audio_path(self, ds: DatasetInfo, video: str) -> Path:
        """``video_audio/<DB>/<vid>/<vid>.wav``."""
        return self.root / "video_audio" / ds.folder / video / f"{video}.wav"

    def list_frames(self, ds: DatasetInfo, video: str) -> list[Path]:
        """The ``img_%05d.jpg`` files of a video in frame order (empty if none)."""
        d = self.root / "video_frames" / ds.folder / video
        files = [p for p in d.glob("img_*.jpg") if re.fullmatch(r"img_\d+\.jpg", p.name)]
        return sorted(files, key=lambda p: int(p.stem[4:]))


# --------------------------------------------------------------------------------------
# image and .mat files
# --------------------------------------------------------------------------------------


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(path, f"not a readable image ({e})") from None
    return img


def _im2double(img, path: Path, first_channel: bool) -> np.ndarray:
    mode = img.mode
    if mode in ("P", "CMYK", "YCbCr", "LAB", "HSV", "PA"):
        img = img.convert("RGB")
        mode = "RGB"
    a = np.asarray(img)
    if mode == "1":
        return a.astype(np.float64)
    if mode == "F":
        out = a.astype(np.float64)
    elif a.dtype == np.uint8:
        out = a.astype(np.float64) / 255.0
    elif a.dtype in (np.uint16, np.dtype("<u2"), np.dtype(">u2")) or mode.startswith("I;16"):
        out = a.astype(np.float64) / 65535.0
    elif mode == "I":
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise InputError(path, "32-bit integer image with values outside 0..65535")
        out = a.astype(np.float64) / 65535.0
    else:
        raise InputError(path, f"unsupported image mode {mode!r}")
    if out.ndim == 3:
        if first_channel:
            out = out[:, :, 0]
        else:
            c = out[:, :, : min(out.shape[2], 3)]
            if not (np.array_equal(c[..., 0], c[..., 1 % c.shape[2]]) and np.array_equal(c[..., 0], c[..., -1])):
                raise InputError(path, f"expected a grayscale map, got a {mode} image with differing channels")
            out = out[:, :, 0]
    if out.ndim != 2 or out.size == 0:
        raise InputError(path, f"expected a 2-D map, got shape {out.shape}")
    return np.ascontiguousarray(out)


def read_image_map(path: str | os.PathLike) -> np.ndarray:
    """A grayscale map image as MATLAB ``im2double(imread(path))``: float64 ``[H, W]``.

    uint8 images are divided by 255 (values k/255 in [0, 1]), 16-bit ones by 65535; float
    (mode ``F``) images are returned as stored.  An RGB(A) image is accepted only when its
    colour channels are identical (a grey map saved as RGB); otherwise this raises, because
    the MATLAB code would silently compute the metrics on a 3-channel array.

    Used for the ground-truth density ``eyeMap_%05d.jpg`` (STAViS ``eval_*.m``: ``I_eye =
    im2double(imread(...))``) and MIT1003 fixation maps.  JPEG decoding is libjpeg(-turbo)'s
    through Pillow; MATLAB's decoder may differ by one grey level on some pixels.

    Raises:
        InputError: missing file, not a readable image (corrupt or truncated), unsupported
            mode, or a colour image with differing channels.
    """
    path = Path(path)
    with _open_image(path) as img:
        return _im2double(img, path, first_channel=False)


def read_prediction(path: str | os.PathLike) -> np.ndarray:
    """A prediction map as STAViS reads it: ``im2double(imread(path))(:, :, 1)``.

    Images: float64 ``[H, W]``, uint8 / 255 or uint16 / 65535, **first channel** of a colour
    image (red), as in ``eval_*.m``.  ``.npy`` files: a 2-D array (or the first channel of a
    3-D one) of any real dtype, converted to float64 without rescaling.

    Raises:
        InputError: missing or unreadable file, non-numeric or empty array.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise InputError(path, "file not found") from None
        except (OSError, ValueError, EOFError) as e:
            raise InputError(path, f"not a readable .npy array ({e})") from None
        if a.ndim == 3:
            a = a[:, :, 0]
        if a.ndim != 2 or a.size == 0 or a.dtype.kind not in "biuf":
            raise InputError(path, f"expected a non-empty 2-D numeric map, got {a.dtype} {a.shape}")
        return np.ascontiguousarray(a, dtype=np.float64)
    with _open_image(path) as img:
        return _im2double(img, path, first_channel=True)


def read_mat_map(path: str | os.PathLike, variable: str = "eyeMap") -> np.ndarray:
    """A 2-D numeric variable of a MATLAB ``.mat`` file (v4/v5/v7 via scipy, v7.3 via h5py).

    STAViS stores each frame's binary fixation map as ``fixMap_%05d.mat`` with variable
    ``eyeMap`` (``eval_*.m``: ``load(...)``, then ``double(I_bin.eyeMap)``).

    Returns:
        The array as stored (``[H, W]``, rows = image rows; dtype as stored, e.g. float64,
        uint8 or bool).  v7.3 files are transposed back to MATLAB's row/column order.

    Raises:
        InputError: missing file, not a readable .mat file (corrupt/truncated), no such
            variable (the message lists the variables present), or not a 2-D numeric array.
    """
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        d = scipy.io.loadmat(path, variable_names=[variable])
        names = None if variable in d else [k for k in scipy.io.whosmat(path)]
        a = d.get(variable)
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        a, names = _read_mat73(path, variable)
    except Exception as e:  # scipy raises ValueError, TypeError, OSError, zlib errors ... on corrupt files
        if not _is_hdf5(path):
            raise InputError(path, f"not a readable .mat file ({type(e).__name__}: {e})") from None
        a, names = _read_mat73(path, variable)  # HDF5 without MATLAB's 128-byte header
    if a is None:
        listed = ", ".join(n[0] if isinstance(n, tuple) else str(n) for n in (names or [])) or "none"
        raise InputError(path, f"has no variable {variable!r} (variables: {listed})")
    a = np.asarray(a)
    if a.dtype.kind not in "biuf" or a.ndim != 2 or a.size == 0:
        raise InputError(path, f"variable {variable!r} is not a non-empty 2-D numeric array "
                               f"({a.dtype}, shape {a.shape})")
    return a


def _is_hdf5(path: Path) -> bool:
    try:
        import h5py

        return bool(h5py.is_hdf5(path))
    except (ImportError, OSError):
        return False


def _read_mat73(path: Path, variable: str):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if variable not in f:
                return None, list(f.keys())
            a = np.asarray(f[variable][()])
    except OSError as e:
        raise InputError(path, f"not a readable .mat file ({e})") from None
    return (a.T if a.ndim == 2 else a), None


# --------------------------------------------------------------------------------------
# prediction folders
# --------------------------------------------------------------------------------------

#: Prediction layouts understood by :func:`list_prediction_frames`.
PREDICTION_LAYOUTS = ("auto", "stavis", "avsal", "numbered", "pattern")

_NUMBERED_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".npy")


@dataclass(frozen=True)
class PredictionSpec:
    """Where and how a run's prediction maps are stored.

    Attributes:
        root: the ``--pred`` folder.
        layout: ``auto`` (default; see :func:`list_prediction_frames`), ``stavis``, ``avsal``,
            ``numbered`` or ``pattern``.
        pattern: printf pattern relative to the video's folder with one integer field, e.g.
            ``%04d.png`` or ``maps/frame_%06d.jpg`` (implies ``layout="pattern"``).
        first_index: the file number that holds ground-truth frame 1 (default 1: STAViS's
            ``pred_sal_%06d.jpg`` and avsal's ``maps/%06d.png`` are numbered by the 1-based
            frame; use 0 for 0-based numbering).
    """

    root: str
    layout: str = "auto"
    pattern: str | None = None
    first_index: int = 1

    def __post_init__(self):
        if self.layout not in PREDICTION_LAYOUTS:
            raise ValueError(f"layout must be one of {PREDICTION_LAYOUTS}, got {self.layout!r}")
        if self.pattern is not None:
            check_pattern(self.pattern)
            object.__setattr__(self, "layout", "pattern")
        elif self.layout == "pattern":
            raise ValueError("layout 'pattern' needs a pattern")


def check_pattern(pattern: str) -> None:
    """Check a printf frame pattern: exactly one integer field (``%d``, ``%04d``, ...), no other ``%``.

    Raises:
        ValueError: otherwise (the message says what is wrong).
    """
    fields = re.findall(r"%(?:%|[-+ 0#]*\d*[di])", pattern)
    real = [f for f in fields if f != "%%"]
    stripped = re.sub(r"%(?:%|[-+ 0#]*\d*[di])", "", pattern)
    if len(real) != 1 or "%" in stripped:
        raise ValueError(f"pattern {pattern!r} must contain exactly one integer field such as %d or %06d")
    if os.path.isabs(pattern) or ".." in Path(pattern).parts:
        raise ValueError(f"pattern {pattern!r} must be relative to the video's prediction folder")


def find_prediction_dir(root: str | os.PathLike, ds: DatasetInfo, split: int, video: str) -> Path | None:
    """The folder holding one video's predictions, or None.

    Looked for, first match wins:

    1. ``root/split<s>_results/<pred_folder>/<video>`` (STAViS: ``test_sal.py`` writes
       ``<result_path>/<dataset>/<video>``, ``eval_*.m`` reads ``<EXP>/split<s>_results/<db>/``),
    2. ``root/split<s>_results/<DB folder>/<video>``,
    3. ``root/<pred_folder>/<video>``, ``root/<DB folder>/<video>``, ``root/<name>/<video>``,
    4. ``root/<video>`` (e.g. ``avsal predict`` output, one folder per video).

    Forms 3-4 have no split, so with several splits the same maps are scored for each split
    (right for models that are not trained on the folds).
    """
    root = Path(root)
    cands = [root / f"split{split}_results" / ds.pred_folder / video,
             root / f"split{split}_results" / ds.folder / video]
    for sub in dict.fromkeys((ds.pred_folder, ds.folder, ds.name)):
        cands.append(root / sub / video)
    cands.append(root / video)
    for c in cands:
        if c.is_dir():
            return c
    return None


def _frame_number(token: str) -> int | None:
    return int(token) if re.fullmatch(r"\d+", token) else None


def _add(files: dict, n: int, path: Path, first_index: int) -> None:
    frame = n - first_index + 1
    if frame in files and files[frame] != path:
        raise InputError(path, f"two prediction files for frame {frame}: {files[frame].name} and {path.name}")
    files[frame] = path


def list_prediction_frames(video_dir: str | os.PathLike, spec: PredictionSpec,
                           frames: Iterator[int] | None = None) -> tuple[str, dict[int, Path]]:
    """Map ground-truth frame numbers (1-based) to prediction files in one video's folder.

    Layouts:

    * ``stavis``: every file whose name ends in ``jpg`` (MATLAB ``dir('*jpg')``); its number
      is the part of the name before the first ``.`` after the last ``_``
      (``pred_sal_000123.jpg`` -> 123), as in ``eval_*.m``; names without a number are ignored
      (MATLAB's ``str2double`` gives NaN and the file is skipped).
    * ``avsal``: ``maps/<n>.png`` written by ``avsal predict`` (n = 1-based decoded frame).
    * ``numbered``: any ``.jpg/.jpeg/.png/.bmp/.tif/.tiff/.npy`` file whose stem ends in
      ``_<n>`` or is ``<n>``.
    * ``pattern``: ``spec.pattern % n`` for each wanted frame (needs ``frames``).
    * ``auto``: ``pattern`` if a pattern is given, else ``avsal`` if ``maps/`` exists, else
      ``stavis`` if any ``*jpg`` file exists, else ``numbered``.

    The frame of file number ``n`` is ``n - spec.first_index + 1``.

    Args:
        video_dir: the video's prediction folder.
        spec: the layout description.
        frames: the frames wanted (only used, and required, by the pattern layout).

    Returns:
        ``(layout used, {frame: path})``.

    Raises:
        InputError: the folder is unreadable, or two files claim the same frame.
    """
    d = Path(video_dir)
    layout = spec.layout
    if layout == "auto":
        if (d / "maps").is_dir():
            layout = "avsal"
        else:
            try:
                names = os.listdir(d)
            except OSError as e:
                raise InputError(d, f"prediction folder cannot be read ({e.strerror})") from None
            layout = "stavis" if any(n.endswith("jpg") for n in names) else "numbered"
    files: dict[int, Path] = {}
    if layout == "pattern":
        if frames is None:
            raise ValueError("the pattern layout needs the list of frames")
        for k in frames:
            p = d / (spec.pattern % (k - 1 + spec.first_index))
            if p.is_file():
                files[k] = p
        return layout, files
    base = d / "maps" if layout == "avsal" else d
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return layout, files
    except OSError as e:
        raise InputError(base, f"prediction folder cannot be read ({e.strerror})") from None
    for name in names:
        if layout == "stavis":
            if not name.endswith("jpg"):
                continue
            n = _frame_number(name.split(".")[0].split("_")[-1])
        elif layout == "avsal":
            if not name.lower().endswith(".png"):
                continue
            n = _frame_number(name[:-4])
        else:  # numbered
            stem, ext = os.path.splitext(name)
            if ext.lower() not in _NUMBERED_EXT:
                continue
            n = _frame_number(stem.split("_")[-1])
        if n is not None and (base / name).is_file():
            _add(files, n, base / name, spec.first_index)
    return layout, files


# --------------------------------------------------------------------------------------
# DIEM raw gaze
# --------------------------------------------------------------------------------------

#: DIEM presentation screen, (width, height) in pixels.  Inferred from the data (see
#: :func:`load_diem_video`), not from a DIEM document.
DIEM_SCREEN = (1280, 960)

#: Default Gaussian sigma of DIEM density maps, in video (= screen) pixels; see
#: :func:`load_diem_video` for how it was chosen.
DIEM_SIGMA_PX = 40.0

_DIEM_COLS = 9  # frame, left x, y, dil, event, right x, y, dil, event


def read_diem_event_file(path: str | os.PathLike) -> np.ndarray:
    """Parse one DIEM gaze file (one viewer, one video): float64 ``[n_rows, 9]``.

    Columns (DIEM "videos and data" documentation, ``docs/evaluation.md`` §5.2):
    ``frame, left_x, left_y, left_dil, left_event, right_x, right_y, right_dil, right_event``,
    tab separated, one row per video frame (30 fps, frames 1-based).  Events: -1 error or
    dropped sample, 0 blink, 1 fixation, 2 saccade.  x, y are screen pixels.

    Raises:
        InputError: missing or unreadable file, a row without 9 numeric columns, non-integer
            or non-positive frame numbers, repeated frame numbers, or no row at all.
    """
    path = Path(path)
    try:
        a = np.loadtxt(path, dtype=np.float64, ndmin=2, comments=None)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"not a DIEM gaze file ({e})") from None
    if a.shape[0] == 0:
        raise InputError(path, "DIEM gaze file has no rows")
    if a.shape[1] != _DIEM_COLS:
        raise InputError(path, f"DIEM gaze file must have 9 columns, got {a.shape[1]}")
    fr = a[:, 0]
    if not np.all(np.isfinite(fr)) or np.any(fr != np.round(fr)) or np.any(fr < 1):
        raise InputError(path, "frame column must hold positive integers")
    if np.unique(fr).size != fr.size:
        raise InputError(path, "a frame number appears twice")
    return a


@dataclass
class DiemGaze:
    """The gaze of all viewers of one DIEM video, in video coordinates.

    Attributes:
        video: video name (``arctic_bears_1066x710``).
        size: video ``(H, W)`` in pixels.
        viewers: viewer ids (file names without the ``_<video>.txt`` tail), sorted.
        x, y: float64 ``[V, T]`` gaze position in **video pixels** (continuous; pixel ``(r, c)``
            covers ``c <= x < c+1``, ``r <= y < r+1``), NaN where the viewer has no sample;
            column ``t`` is frame ``t + 1``.
        event: int8 ``[V, T]`` event code of the eye used (-1 error/no sample, 0 blink,
            1 fixation, 2 saccade).
        eye: ``"left"`` or ``"right"``.
        screen: the ``(width, height)`` screen the raw coordinates refer to.
    """

    video: str
    size: tuple[int, int]
    viewers: list[str]
    x: np.ndarray
    y: np.ndarray
    event: np.ndarray
    eye: str = "left"
    screen: tuple[int, int] = DIEM_SCREEN
    files: list[Path] = field(default_factory=list)

    @property
    def nframes(self) -> int:
        return self.x.shape[1]

    def _cols(self, frame: int) -> int:
        if not 1 <= frame <= self.nframes:
            raise IndexError(f"frame {frame} outside 1..{self.nframes}")
        return frame - 1

    def fixating(self, frame: int) -> np.ndarray:
        """bool ``[V]``: viewers whose eye is in a fixation (event 1) **inside the video** at ``frame``."""
        t = self._cols(frame)
        h, w = self.size
        x, y = self.x[:, t], self.y[:, t]
        with np.errstate(invalid="ignore"):
            return (self.event[:, t] == 1) & (x >= 0) & (x < w) & (y >= 0) & (y < h)

    def points(self, frame: int) -> np.ndarray:
        """float64 ``[n, 2]``: ``(x, y)`` video-pixel positions of the fixating viewers at ``frame`` (1-based)."""
        t = self._cols(frame)
        m = self.fixating(frame)
        return np.stack([self.x[m, t], self.y[m, t]], axis=1)

    def fixation_map(self, frame: int) -> np.ndarray:
        """uint8 ``[H, W]`` binary map: 1 at every pixel holding at least one fixation point.

        Several viewers in one pixel count once (as in STAViS's ``fixMap`` / MIT's maps).
        """
        return points_to_fixation_map(self.points(frame), self.size)

    def density_map(self, frame: int, sigma: float = DIEM_SIGMA_PX) -> np.ndarray:
        """float64 ``[H, W]`` continuous density in [0, 1].

        Sum over the frame's fixation points of isotropic Gaussians of std ``sigma`` video
        pixels, centred at the continuous gaze positions and evaluated at pixel centres
        (``c + 0.5, r + 0.5``), then divided by its maximum (1 at the peak).  All zero when
        no viewer fixates inside the video.

        Raises:
            ValueError: ``sigma`` not positive.
        """
        return points_to_density(self.points(frame), self.size, sigma)


_SIZE_RE = re.compile(r"_(\d+)x(\d+)$")


def load_diem_video(folder: str | os.PathLike, size: tuple[int, int] | None = None,
                    screen: tuple[int, int] = DIEM_SCREEN, eye: str = "left") -> DiemGaze:
    """Read all viewers' gaze of one DIEM video and map it to video coordinates.

    Args:
        folder: ``<video>/`` holding ``event_data/*.txt`` (or the ``event_data`` folder).
        size: video ``(H, W)``; default parsed from the name's ``_<W>x<H>`` tail.
        screen: presentation screen ``(width, height)``, default :data:`DIEM_SCREEN`.
        eye: ``"left"`` (default) or ``"right"``.  Only the left eye's event column
            distinguishes saccades (2); in these files the right eye's events are only
            -1/0/1 and its 1 also covers the left eye's saccade samples, so ``"right"``
            fixations include saccades.

    Screen-to-video mapping (documented choice, checked on the data): the video is shown at
    its native size, centred on a 1280x960 screen, so

        ``x_video = x_screen - (1280 - W) / 2``,  ``y_video = y_screen - (960 - H) / 2``.

    Evidence (``docs/evaluation.md`` §5.2 and the checks in ``tests/test_readers.py``): the fixation
    medians of both clips sit near the screen centre (640, 480), not the video centre; for the
    1066-pixel-wide ``arctic_bears`` clip the horizontal fixation density drops to ~0 outside
    x = 107..1173 screen pixels, the edges of a centred 1066-pixel frame (no offset would put
    fixations beyond x = 1066; scaling to the screen width would spread them to 0..1280); with
    this mapping 99.8 % (arctic_bears) and 99.2 % (dolphins) of the left-eye fixation samples
    fall inside the frame.  Samples outside the frame (e.g. the +-3270 outliers) are dropped,
    not clipped to the border.

    Density sigma: :data:`DIEM_SIGMA_PX` = 40 video pixels (screen and video pixels are the
    same size, so one value serves every DIEM video).  Chosen from the data: the mean
    leave-one-viewer-out log-likelihood of a viewer's fixation under the other viewers'
    Gaussian mixture peaks at sigma 30-50 px on both clips (maximum near 40).  DIEM's viewing
    distance was not available here, so this is not a visual-angle conversion.

    Raises:
        InputError: no ``event_data/*.txt`` files, an unreadable gaze file
            (:func:`read_diem_event_file`), or a size that cannot be parsed from the name.
        ValueError: bad ``eye`` or ``screen``.

    Source: DIEM format per ``docs/evaluation.md`` §5.2 (DIEM "videos and data" page).
    """
    if eye not in ("left", "right"):
        raise ValueError(f"eye must be 'left' or 'right', got {eye!r}")
    folder = Path(folder)
    ev = folder if folder.name == "event_data" else folder / "event_data"
    video = (folder.parent if folder.name == "event_data" else folder).name
    files = sorted(p for p in ev.glob("*.txt") if p.is_file()) if ev.is_dir() else []
    if not files:
        raise InputError(ev, "no DIEM gaze files (*.txt) found")
    if size is None:
        m = _SIZE_RE.search(video)
        if not m:
            raise InputError(folder, "cannot read the video size from the folder name (expected '..._<W>x<H>'); "
                                     "pass size=(H, W)")
        size = (int(m.group(2)), int(m.group(1)))
    h, w = (int(s) for s in size)
    sw, sh = (float(s) for s in screen)
    if h < 1 or w < 1 or sw <= 0 or sh <= 0:
        raise ValueError(f"bad size {size!r} or screen {screen!r}")
    rows = [read_diem_event_file(f) for f in files]
    T = int(max(r[:, 0].max() for r in rows))
    V = len(rows)
    x = np.full((V, T), np.nan)
    y = np.full((V, T), np.nan)
    event = np.full((V, T), -1, np.int8)
    cx, cy, ce = (1, 2, 4) if eye == "left" else (5, 6, 8)
    m = ScreenMapping.centred((sw, sh), (h, w))
    for i, r in enumerate(rows):
        t = r[:, 0].astype(np.int64) - 1
        x[i, t], y[i, t] = m.to_video(r[:, cx], r[:, cy])
        event[i, t] = r[:, ce].astype(np.int8)
    tail = f"_{video}.txt"
    viewers = [f.name[: -len(tail)] if f.name.endswith(tail) else f.stem for f in files]
    return DiemGaze(video, (h, w), viewers, x, y, event, eye, (int(sw), int(sh)), files)


# --------------------------------------------------------------------------------------
# MIT1003-style image datasets
# --------------------------------------------------------------------------------------


@dataclass
class ImageFixations:
    """One image of a static eye-tracking dataset.

    Attributes:
        name: image name (file stem).
        stimulus: the image file, or None if absent.
        density: float64 ``[H, W]`` continuous fixation map, ``im2double`` of the map file.
        fixations: ``[H, W]`` binary fixation map as stored (uint8/bool/float), or None when
            the dataset has no fixation locations for this image.
        baseline: float64 map of ``FIXATIONHISTOGRAM/<name>.*`` (any size), or None.
    """

    name: str
    stimulus: Path | None
    density: np.ndarray
    fixations: np.ndarray | None = None
    baseline: np.ndarray | None = None


_IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _first_dir(root: Path, names) -> Path | None:
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


def _find_image(d: Path | None, stem: str) -> Path | None:
    if d is None:
        return None
    for ext in _IMG_EXT + tuple(e.upper() for e in _IMG_EXT):
        if (d / f"{stem}{ext}").is_file():
            return d / f"{stem}{ext}"
    return None


def read_mit1003(root: str | os.PathLike, variables=("fixLocs", "fixations")) -> list[ImageFixations]:
    """Read an image dataset in the MIT1003 / MIT saliency benchmark layout.

    Recognised folders under ``root`` (first found wins):

    * stimuli: ``ALLSTIMULI``, ``STIMULI``, ``stimuli``;
    * continuous maps: ``FIXATIONMAPS/<name>.<img>``, ``fixation_maps/<name>.<img>`` or
      ``ALLFIXATIONMAPS/<name>_fixMap.jpg`` (MIT1003 download);
    * fixation locations: ``FIXATIONLOCS/<name>.mat`` (variable ``fixLocs`` or ``fixations``,
      binary ``[H, W]``), else ``ALLFIXATIONMAPS/<name>_fixPts.jpg`` thresholded at >= 0.5
      (that map is binary but JPEG-compressed);
    * baseline: ``FIXATIONHISTOGRAM/<name>.<img>``.

    Images are listed from the continuous-map folder, sorted by name.

    Returns:
        One :class:`ImageFixations` per map.

    Raises:
        InputError: ``root`` missing or without a map folder, an unreadable map/.mat file, or a
            fixation map whose size differs from its density map.

    Source: ``docs/evaluation.md`` §5.3 (cvzoya/saliency demo data and ICCV sample).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "image dataset folder not found")
    maps = _first_dir(root, ("FIXATIONMAPS", "fixation_maps"))
    allmaps = _first_dir(root, ("ALLFIXATIONMAPS",))
    if maps is None and allmaps is None:
        raise InputError(root, "no FIXATIONMAPS/, fixation_maps/ or ALLFIXATIONMAPS/ folder")
    stim = _first_dir(root, ("ALLSTIMULI", "STIMULI", "stimuli"))
    locs = _first_dir(root, ("FIXATIONLOCS",))
    hist = _first_dir(root, ("FIXATIONHISTOGRAM",))
    if maps is not None:
        items = sorted((p.stem, p) for p in maps.iterdir() if p.suffix.lower() in _IMG_EXT)
    else:
        items = sorted((p.name[: -len("_fixMap.jpg")], p) for p in allmaps.glob("*_fixMap.jpg"))
    out = []
    for name, mpath in items:
        dens = read_image_map(mpath)
        fix = None
        if locs is not None and (locs / f"{name}.mat").is_file():
            fix = _read_any_var(locs / f"{name}.mat", variables)
        elif allmaps is not None and (allmaps / f"{name}_fixPts.jpg").is_file():
            fix = (read_image_map(allmaps / f"{name}_fixPts.jpg") >= 0.5).astype(np.uint8)
        if fix is not None and fix.shape != dens.shape:
            raise InputError(mpath, f"density map size {dens.shape} differs from its fixation map's {fix.shape}")
        hp = _find_image(hist, name)
        out.append(ImageFixations(name, _find_image(stim, name), dens, fix,
                                  read_image_map(hp) if hp is not None else None))
    return out


def _read_any_var(path: Path, variables) -> np.ndarray:
    last = None
    for v in variables:
        try:
            return read_mat_map(path, v)
        except InputError as e:
            if "has no variable" not in e.problem:
                raise
            last = e
    raise last


# --------------------------------------------------------------------------------------
# DHF1K layout (DHF1K, Hollywood-2, UCF-Sports as ViNet ships them)
# --------------------------------------------------------------------------------------

#: Sub-folders of one DHF1K-layout video folder a reader can ask for (:func:`read_dhf1k_video`).
DHF1K_PARTS = ("images", "maps", "fixation")

#: Variable of DHF1K's ``fixation/maps/NNNN.mat`` files (binary fixation map, uint8 0/1).
DHF1K_MAT_VARIABLE = "I"

_DHF1K_IMAGE_EXT = (".png", ".jpg", ".jpeg")


@dataclass
class Dhf1kVideo:
    """One video folder of the DHF1K layout (``docs/vinet.md``, "DHF1K layout")::

        <video>/images/NNNN.png|jpg       frames (any size: the sample's are shrunk)
        <video>/maps/NNNN.png|jpg         continuous density maps, grey, /255
        <video>/fixation/NNNN.png         binary fixation maps (nonzero = fixated)
        <video>/fixation/maps/NNNN.mat    the same, variable ``I`` (used when the PNGs are absent)

    Frame ``k`` (1-based) is file number ``k``.  Lists are empty for parts not read.

    Attributes:
        name: the folder name.
        folder: the video folder.
        images, maps, fixations: one path per frame, frame 1 first.
    """

    name: str
    folder: Path
    images: list[Path] = field(default_factory=list)
    maps: list[Path] = field(default_factory=list)
    fixations: list[Path] = field(default_factory=list)

    @property
    def nframes(self) -> int:
        """Frames of the video: the density-map count (the image count when no maps were read)."""
        return len(self.maps) or len(self.images)


def _numbered_files(d: Path, exts: tuple[str, ...]) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for p in d.iterdir():
        if p.is_file() and p.suffix.lower() in exts and p.stem.isdigit():
            k = int(p.stem)
            if k in out:
                raise InputError(p, f"two files for frame {k}: {out[k].name} and {p.name}")
            out[k] = p
    return out


def _frames_1_to_n(d: Path, files: dict[int, Path], what: str) -> list[Path]:
    if not files:
        raise InputError(d, f"no numbered {what} (NNNN{'.mat' if what.endswith('(.mat)') else '.png|jpg'})")
    ks = sorted(files)
    if ks != list(range(1, len(ks) + 1)):
        gap = next(k for i, k in enumerate(ks, 1) if k != i)
        raise InputError(d, f"{what} must be numbered 1..N without gaps (frame {gap} follows frame "
                            f"{ks[ks.index(gap) - 1] if ks.index(gap) else 0})")
    return [files[k] for k in ks]


def is_dhf1k_video(folder: str | os.PathLike, parts: tuple[str, ...] = ("maps",)) -> bool:
    """True when ``folder`` has every sub-folder of ``parts`` (``images``, ``maps``, ``fixation``)."""
    return all((Path(folder) / p).is_dir() for p in parts)


def read_dhf1k_video(folder: str | os.PathLike, parts: tuple[str, ...] = ("maps", "fixation")) -> Dhf1kVideo:
    """List the frame files of one DHF1K-layout video folder (:class:`Dhf1kVideo`).

    Args:
        folder: ``<root>/<video>``.
        parts: sub-folders to read, from :data:`DHF1K_PARTS`.  ``("images", "maps")`` is what
            training needs; ``("maps", "fixation")`` what scoring needs.

    Returns:
        :class:`Dhf1kVideo`; only the requested lists are filled.

    Raises:
        InputError: a missing sub-folder; no numbered files, gaps or duplicates in the frame
            numbers; fixations (PNG or ``.mat``) or images for other frames than the maps.
    """
    folder = Path(folder)
    bad = [p for p in parts if p not in DHF1K_PARTS]
    if bad:
        raise ValueError(f"unknown DHF1K part(s) {bad}; known: {DHF1K_PARTS}")
    missing = [p for p in parts if not (folder / p).is_dir()]
    if missing:
        raise InputError(folder, f"not a DHF1K-layout video folder (needs {', '.join(p + '/' for p in parts)}; "
                                 f"missing {', '.join(p + '/' for p in missing)})")
    v = Dhf1kVideo(folder.name, folder)
    if "maps" in parts:
        v.maps = _frames_1_to_n(folder / "maps", _numbered_files(folder / "maps", _DHF1K_IMAGE_EXT), "density maps")
    if "images" in parts:
        v.images = _frames_1_to_n(folder / "images", _numbered_files(folder / "images", _DHF1K_IMAGE_EXT),
                                  "frame images")
        if v.maps and len(v.images) != len(v.maps):
            raise InputError(folder, f"{len(v.images)} images but {len(v.maps)} maps")
    if "fixation" in parts:
        fd = folder / "fixation"
        png = _numbered_files(fd, (".png",))
        if png:
            v.fixations = _frames_1_to_n(fd, png, "fixation maps")
        elif (fd / "maps").is_dir():
            v.fixations = _frames_1_to_n(fd / "maps", _numbered_files(fd / "maps", (".mat",)), "fixation maps (.mat)")
        else:
            raise InputError(fd, "no numbered fixation maps (NNNN.png, or maps/NNNN.mat)")
        if v.maps and len(v.fixations) != len(v.maps):
            raise InputError(folder, f"density maps cover frames 1..{len(v.maps)}, fixation maps "
                                     f"1..{len(v.fixations)}: they must match")
    return v


def read_dhf1k_root(root: str | os.PathLike, parts: tuple[str, ...] = ("maps", "fixation")) -> list[Dhf1kVideo]:
    """The videos of a DHF1K-layout root, sorted by name.

    ``root`` is either one video folder (it has all ``parts`` itself, like the shared sample
    ``video_dhf1k_0601``) or a folder of video folders; sub-folders lacking one of ``parts``
    are skipped (annotation-only or frame-only folders).

    Raises:
        InputError: ``root`` is not a folder, holds no video with all ``parts``, or a video
            folder is inconsistent (:func:`read_dhf1k_video`).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    if is_dhf1k_video(root, parts):
        return [read_dhf1k_video(root, parts)]
    vids = [read_dhf1k_video(d, parts) for d in sorted(root.iterdir()) if d.is_dir() and is_dhf1k_video(d, parts)]
    if not vids:
        raise InputError(root, f"no <video>/{' + <video>/'.join(parts)} folder (DHF1K layout)")
    return vids


def read_dhf1k_fixation(path: str | os.PathLike) -> np.ndarray:
    """uint8 ``[H, W]`` 0/1 fixation map from a DHF1K ``fixation/NNNN.png`` (nonzero = fixated) or
    ``fixation/maps/NNNN.mat`` (variable ``I``).

    Raises:
        InputError: missing or unreadable file, or no variable ``I``.
    """
    p = Path(path)
    a = read_mat_map(p, DHF1K_MAT_VARIABLE) if p.suffix.lower() == ".mat" else read_image_map(p)
    return (a > 0).astype(np.uint8)


# --------------------------------------------------------------------------------------
# the ground truth of one video, as the protocol reads it
# --------------------------------------------------------------------------------------


class VideoGroundTruth:
    """The ground truth of one video in the STAViS layout, read lazily per frame.

    On construction, ``fixMap_%05d.mat`` of every frame 1..nframes is read (needed for the
    sAUC union, ``eval_*.m`` does the same) and kept sparse.

    Args:
        annotation_dir: ``annotations/<DB>/<video>``.
        nframes: the fold list's frame count.

    Raises:
        InputError: the folder or a fixation map is missing or unreadable, or fixation maps
            differ in size.
    """

    def __init__(self, annotation_dir: str | Path, nframes: int):
        self.dir = Path(annotation_dir)
        if not self.dir.is_dir():
            raise InputError(self.dir, "annotation folder of this video not found")
        self.nframes = int(nframes)
        self.shape = None
        self._fix = {}
        self._binary = True  # every stored nonzero value is 1: fixations() can be uint8
        acc = None
        for k in range(1, self.nframes + 1):
            p = self.fix_path(k)
            if not p.exists():
                raise InputError(p, f"fixation map missing (the fold list gives {self.nframes} frames)")
            a = self._read_fix(p)
            if self.shape is None:
                self.shape = a.shape
                acc = np.zeros(a.size)
            elif a.shape != self.shape:
                raise InputError(p, f"fixation map size {a.shape[0]}x{a.shape[1]} differs from frame 1's "
                                    f"{self.shape[0]}x{self.shape[1]}")
            flat = np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
            idx = np.flatnonzero(flat)
            vals = flat[idx]
            self._binary = self._binary and bool(np.all(vals == 1.0))
            self._fix[k] = (idx, vals)
            acc[idx] += vals
        self.union = (acc > 0).reshape(self.shape)  # createShuffmap1.m: sum(...) > 0

    def _read_fix(self, p: Path) -> np.ndarray:
        return read_mat_map(p, "eyeMap")

    def fix_path(self, k: int) -> Path:
        return self.dir / f"fixMap_{k:05d}.mat"

    def eye_path(self, k: int) -> Path:
        return self.dir / "maps" / f"eyeMap_{k:05d}.jpg"

    def fixations(self, k: int) -> np.ndarray:
        """``[H, W]`` fixation map of frame ``k``: uint8 0/1 when every map of the video is binary
        (the usual case; the metrics only test ``> 0``, ``!= 0`` and ``== 1``), else float64
        with the stored values."""
        idx, vals = self._fix[k]
        if self._binary:
            f = np.zeros(self.shape[0] * self.shape[1], np.uint8)
            f[idx] = 1
        else:
            f = np.zeros(self.shape[0] * self.shape[1])
            f[idx] = vals
        return f.reshape(self.shape)

    def density(self, k: int) -> np.ndarray:
        """float64 ``[H, W]`` density of frame ``k`` (``im2double`` of the JPEG).

        Raises:
            InputError: missing/unreadable file, or its size differs from the fixation maps'.
        """
        p = self.eye_path(k)
        d = read_image_map(p)
        if d.shape != self.shape:
            raise InputError(p, f"density map size {d.shape[0]}x{d.shape[1]} differs from the fixation map "
                                f"{self.fix_path(k).name} size {self.shape[0]}x{self.shape[1]}")
        return d


class Dhf1kGroundTruth(VideoGroundTruth):
    """The ground truth of one DHF1K-layout video (DHF1K, Hollywood-2, UCF-Sports), read lazily per frame.

    Density ``<video>/maps/NNNN.png`` (/255), fixations ``<video>/fixation/NNNN.png`` (nonzero =
    fixated) or ``fixation/maps/NNNN.mat`` (variable ``I``), frames 1..N with N the map count
    (:func:`read_dhf1k_video`).  Everything else, including the sAUC
    union of the video's fixations, as :class:`VideoGroundTruth`.

    Raises:
        InputError: as :func:`read_dhf1k_video`, or a fixation map of
            another size than frame 1's.
    """

    def __init__(self, video_dir: str | Path, nframes: int | None = None):
        self.video = read_dhf1k_video(video_dir, ("maps", "fixation"))
        n = self.video.nframes if nframes is None else int(nframes)
        if n > self.video.nframes:
            raise InputError(video_dir, f"{n} frames asked, the folder holds {self.video.nframes} maps")
        super().__init__(video_dir, n)

    def _read_fix(self, p: Path) -> np.ndarray:
        return read_dhf1k_fixation(p)

    def fix_path(self, k: int) -> Path:
        return self.video.fixations[k - 1]

    def eye_path(self, k: int) -> Path:
        return self.video.maps[k - 1]
