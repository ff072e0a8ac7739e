"""The one owner of the prepared-root and pseudo-GT CSV files of ``docs/weak_pipeline.md``.

* ``ROOT/manifest.csv`` (a prepared root, stage 1, and a crops root, stage 4)::

      clip,second,frame,audio,class_id,class_name,split

  one row per (clip, second); ``frame`` and ``audio`` are relative to ``ROOT``;
* ``PGT/pseudo_gt.csv`` (a pseudo-GT folder, stage 7)::

      clip,second,path

  ``path`` relative to ``PGT``.

Readers check the header (every column present, by name; extra columns are ignored) and every row
(``clip`` usable as a folder name, ``second`` an integer ≥ 0, ``class_id`` an integer ≥ 0, ``frame`` /
``path`` not empty, no (clip, second) twice) and raise one :class:`avsal.errors.InputError` naming the file,
the line and the column. Writers go through :func:`avsal.io.write.write_text_atomic` (temp file + rename),
so a reader never sees a half-written CSV.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import Iterable

from avsal.errors import InputError

__all__ = ["MANIFEST_COLUMNS", "MANIFEST_NAME", "PSEUDO_GT_COLUMNS", "PSEUDO_GT_NAME", "ManifestRow", "PseudoGtRow",
           "read_manifest", "read_pseudo_gt_csv", "write_manifest", "write_pseudo_gt_csv"]

#: File name of the manifest inside a prepared (or crops) root.
MANIFEST_NAME = "manifest.csv"
#: Columns of ``manifest.csv``, in the order written.
MANIFEST_COLUMNS = ("clip", "second", "frame", "audio", "class_id", "class_name", "split")
#: File name of the pseudo-GT list inside a pseudo-GT folder.
PSEUDO_GT_NAME = "pseudo_gt.csv"
#: Columns of ``pseudo_gt.csv``, in the order written.
PSEUDO_GT_COLUMNS = ("clip", "second", "path")


@dataclass(frozen=True)
class ManifestRow:
    """One row of ``manifest.csv``: one (clip, second).

    Attributes:
        clip: clip id, a valid folder name.
        second: whole second index (s) ≥ 0; the frame is the middle of ``[second, second + 1)``.
        frame: JPEG path relative to the root (``frames/<clip>/<ss>.jpg``).
        audio: HDF5 feature path relative to the root (``audio/<clip>/<ss>.h5``); may be empty (no audio).
        class_id: index into ``classes.json`` (≥ 0).
        class_name: class name (informational).
        split: ``train``, ``val``, ``test`` (or empty).
    """

    clip: str
    second: int
    frame: str
    audio: str
    class_id: int
    class_name: str = ""
    split: str = ""

    def as_list(self) -> list:
        """The row's values in :data:`MANIFEST_COLUMNS` order."""
        return [self.clip, self.second, self.frame, self.audio, self.class_id, self.class_name, self.split]


@dataclass(frozen=True)
class PseudoGtRow:
    """One row of ``pseudo_gt.csv``: the pseudo-GT PNG (``path``, relative to the folder) of (clip, second)."""

    clip: str
    second: int
    path: str

    def as_list(self) -> list:
        """The row's values in :data:`PSEUDO_GT_COLUMNS` order."""
        return [self.clip, self.second, self.path]


# ----------------------------------------------------------------------------------------------- helpers

def _csv_path(root: str | os.PathLike, name: str) -> str:
    root = os.fspath(root)
    return root if os.path.basename(root) == name and not os.path.isdir(root) else os.path.join(root, name)


def _read_dict_rows(path: str, columns: tuple[str, ...], missing_hint: str) -> list[tuple[int, dict]]:
    """``(line, {column: stripped text})`` for every data row, after checking the header."""
    if not os.path.exists(path):
        raise InputError(path, f"{os.path.basename(path)} not found: {missing_hint}")
    if os.path.isdir(path):
        raise InputError(path, f"is a folder, not a {os.path.basename(path)}")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise InputError(path, "not a UTF-8 text file") from None
    except OSError as e:
        raise InputError(path, f"cannot be read ({e.strerror})") from None
    try:
        reader = csv.reader(io.StringIO(text))
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise InputError(path, f"line 1: missing column(s) {', '.join(missing)} "
                                   f"(has: {', '.join(header) or 'none'}; expected {','.join(columns)})")
        pos = {c: header.index(c) for c in columns}
        out = []
        for line, values in enumerate(reader, start=2):
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise InputError(path, f"line {line}: {len(values)} fields, the header has {len(header)}")
            out.append((line, {c: values[i].strip() for c, i in pos.items()}))
        return out
    except csv.Error as e:
        raise InputError(path, f"not a readable CSV file ({e})") from None


def _clip(value: str, path: str, line: int) -> str:
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise InputError(path, f"line {line}: column clip: {value!r} cannot be used as a folder name")
    return value


def _int(value: str, column: str, path: str, line: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InputError(path, f"line {line}: column {column}: {value!r} is not an integer") from None
    if n < 0:
        raise InputError(path, f"line {line}: column {column}: negative value {n}")
    return n


def _nonempty(value: str, column: str, path: str, line: int) -> str:
    if not value:
        raise InputError(path, f"line {line}: column {column} is empty")
    return value


def _no_repeat(seen: set, key: tuple[str, int], path: str, line: int) -> None:
    if key in seen:
        raise InputError(path, f"line {line}: clip {key[0]} second {key[1]} is listed twice")
    seen.add(key)


def _write_rows(path: str, columns: tuple[str, ...], rows: Iterable[list]) -> None:
    from avsal.io.write import write_text_atomic  # lazy: avsal.io.write imports av, cv2, h5py

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(r)
    write_text_atomic(path, buf.getvalue())


# ----------------------------------------------------------------------------------------------- manifest

def read_manifest(root: str | os.PathLike) -> list[ManifestRow]:
    """Read ``ROOT/manifest.csv`` (``root`` may also be the file itself), rows in file order.

    Raises:
        InputError: no file, a missing column, a row with the wrong number of fields, a bad ``clip``, a
            ``second`` or ``class_id`` that is not an integer ≥ 0, an empty ``frame``, or a (clip, second)
            listed twice; the message names the file, the line and the column.
    """
    path = _csv_path(root, MANIFEST_NAME)
    rows, seen = [], set()
    for line, r in _read_dict_rows(path, MANIFEST_COLUMNS, "is this a prepared root (`avsal prepare`)?"):
        row = ManifestRow(clip=_clip(r["clip"], path, line), second=_int(r["second"], "second", path, line),
                          frame=_nonempty(r["frame"], "frame", path, line), audio=r["audio"],
                          class_id=_int(r["class_id"], "class_id", path, line), class_name=r["class_name"],
                          split=r["split"])
        _no_repeat(seen, (row.clip, row.second), path, line)
        rows.append(row)
    return rows


def write_manifest(root: str | os.PathLike, rows: Iterable[ManifestRow]) -> str:
    """Write ``ROOT/manifest.csv`` (header :data:`MANIFEST_COLUMNS`, ``\\n`` line ends) atomically.

    Returns:
        The path written.
    """
    path = os.path.join(os.fspath(root), MANIFEST_NAME)
    _write_rows(path, MANIFEST_COLUMNS, (r.as_list() for r in rows))
    return path


# ----------------------------------------------------------------------------------------------- pseudo-GT

def read_pseudo_gt_csv(folder: str | os.PathLike) -> list[PseudoGtRow]:
    """Read ``PGT/pseudo_gt.csv`` (``folder`` may also be the file itself), rows in file order.

    Raises:
        InputError: no file, a missing column, a bad ``clip``, a ``second`` that is not an integer ≥ 0, an
            empty ``path``, or a (clip, second) listed twice; the message names the file, line and column.
    """
    path = _csv_path(folder, PSEUDO_GT_NAME)
    rows, seen = [], set()
    hint = "is this a pseudo-GT folder (`avsal pseudo-gt finalize`)?"
    for line, r in _read_dict_rows(path, PSEUDO_GT_COLUMNS, hint):
        row = PseudoGtRow(_clip(r["clip"], path, line), _int(r["second"], "second", path, line),
                          _nonempty(r["path"], "path", path, line))
        _no_repeat(seen, (row.clip, row.second), path, line)
        rows.append(row)
    return rows


def write_pseudo_gt_csv(folder: str | os.PathLike, rows: Iterable[PseudoGtRow]) -> str:
    """Write ``PGT/pseudo_gt.csv`` (header :data:`PSEUDO_GT_COLUMNS`) atomically; returns the path."""
    path = os.path.join(os.fspath(folder), PSEUDO_GT_NAME)
    _write_rows(path, PSEUDO_GT_COLUMNS, (r.as_list() for r in rows))
    return path
