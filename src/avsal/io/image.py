"""Reading image files (frames, CAMs, pseudo-GT maps) with errors that name the file.

The evaluation protocol has its own MATLAB-exact readers (:mod:`avsal.evaluate.readers`); these are the
plain ones the training pipeline uses.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from avsal.errors import InputError, OutputError

#: JPEG quality of every frame avsal writes (prepared frames and crops, ``docs/weak_pipeline.md``).
JPEG_QUALITY = 95


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY, path: str | os.PathLike = "<memory>") -> bytes:
    """JPEG bytes (OpenCV) of an RGB frame ``uint8 [H, W, 3]``, at ``quality`` (default :data:`JPEG_QUALITY`).

    Raises:
        OutputError: OpenCV could not encode it (named ``path``, the file the bytes are for).
    """
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OutputError(path, "JPEG could not be encoded")
    return buf.tobytes()


def _read(path: str | os.PathLike, flag: int) -> np.ndarray:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, "image file not found")
    img = cv2.imread(path, flag)
    if img is None or img.size == 0:
        raise InputError(path, "not a readable image (corrupt or unsupported format)")
    return img


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image as RGB uint8 ``[H, W, 3]`` (grey images are replicated, alpha dropped).

    Raises:
        InputError: missing or unreadable file.
    """
    return cv2.cvtColor(_read(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit image as grey uint8 ``[H, W]`` (a colour image is converted with the BT.601 luma weights).

    Raises:
        InputError: missing or unreadable file.
    """
    img = _read(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    return img
