"""Reading image files (frames, CAMs, pseudo-GT maps) with errors that name the file.

The evaluation protocol has its own MATLAB-exact readers (:mod:`avsal.evaluate.readers`); these are the
plain ones the training pipeline uses.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from avsal.errors import InputError


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
