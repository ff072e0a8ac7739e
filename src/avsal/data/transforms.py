"""Image transforms for training, written on numpy/torch (torchvision has no CPU build here).

Every random transform takes an explicit ``numpy.random.Generator``: the training datasets derive one per
(seed, epoch, sample), so augmentation is the same whatever the number of workers or processes, and a
resumed run sees exactly the augmentations of an uninterrupted one.

Semantics follow torchvision's ``Resize((s, s))`` (square, aspect not kept, as upstream's vendored
transforms; by default with PIL's bilinear filter as upstream, which averages over the whole footprint when
shrinking; ``"cv2"``: OpenCV's ``INTER_LINEAR``, which samples 2×2 pixels and so aliases), ``RandomCrop``
and ``ColorJitter(brightness, contrast, saturation, hue)`` (factors drawn uniformly
in ``[max(0, 1 − b), 1 + b]`` etc., hue shift in ``[−h, h]`` of a turn, applied in random order).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

IMAGENET_MEAN = np.array((0.485, 0.456, 0.406), np.float32)
IMAGENET_STD = np.array((0.229, 0.224, 0.225), np.float32)


#: Resize methods of :func:`resize_square`: ``"pil"`` (upstream) and ``"cv2"``.
RESIZE_METHODS = ("pil", "cv2")


def resize_square(img: np.ndarray, size: int, method: str = "pil") -> np.ndarray:
    """Bilinear resize to ``[size, size]`` (aspect ratio not kept), as upstream's ``Resize`` on a PIL image.

    Args:
        img: ``[H, W]`` or ``[H, W, C]``, uint8 (image values 0..255) or float (any range).
        size: output side (px).
        method: ``"pil"`` (default, upstream: ``PIL.Image.resize(..., BILINEAR)``, antialiased when
            shrinking; uint8 stays uint8, rounded as PIL rounds; float channels are resized one by one in
            PIL's 32-bit float mode) or ``"cv2"`` (``cv2.resize(INTER_LINEAR)``).

    Returns:
        ``[size, size]`` or ``[size, size, C]``, same dtype (float inputs come back float32 with ``"pil"``).

    Raises:
        ValueError: unknown ``method``.
    """
    if method == "cv2":
        return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    if method != "pil":
        raise ValueError(f"resize method must be one of {RESIZE_METHODS}, got {method!r}")
    from PIL import Image

    if img.dtype == np.uint8 and (img.ndim == 2 or img.shape[2] in (3, 4)):
        return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.BILINEAR))
    x = np.asarray(img, dtype=np.float32)
    chans = [x] if x.ndim == 2 else [x[..., c] for c in range(x.shape[2])]
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(c), mode="F").resize((size, size), Image.BILINEAR))
           for c in chans]
    out = out[0] if x.ndim == 2 else np.stack(out, axis=-1)
    return out.astype(img.dtype if img.dtype == np.uint8 else np.float32)


def random_crop_box(size: int, crop: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left ``(y, x)`` of a ``crop × crop`` window in a ``size × size`` image, uniformly at random."""
    if crop > size:
        raise ValueError(f"crop {crop} larger than image {size}")
    return int(rng.integers(0, size - crop + 1)), int(rng.integers(0, size - crop + 1))


def _gray(x: np.ndarray) -> np.ndarray:
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _rgb_to_hsv(x: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(x, cv2.COLOR_RGB2HSV_FULL if x.dtype == np.uint8 else cv2.COLOR_RGB2HSV)


@dataclass(frozen=True)
class ColorJitter:
    """Random brightness, contrast, saturation and hue (torchvision ``ColorJitter`` semantics).

    Args:
        brightness, contrast, saturation: factor ranges ``[max(0, 1 − v), 1 + v]``.
        hue: shift range ``[−hue, hue]`` in turns (≤ 0.5).

    ``__call__(rgb float32 [H, W, 3] in [0, 1], rng) -> float32 [H, W, 3] in [0, 1]``.
    """

    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.1

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        ops = rng.permutation(4)
        b = rng.uniform(max(0, 1 - self.brightness), 1 + self.brightness)
        c = rng.uniform(max(0, 1 - self.contrast), 1 + self.contrast)
        s = rng.uniform(max(0, 1 - self.saturation), 1 + self.saturation)
        h = rng.uniform(-self.hue, self.hue)
        for op in ops:
            if op == 0:
                x = np.clip(x * b, 0, 1)
            elif op == 1:
                x = np.clip(c * x + (1 - c) * _gray(x).mean(), 0, 1)
            elif op == 2:
                x = np.clip(s * x + (1 - s) * _gray(x)[..., None], 0, 1)
            elif op == 3 and h != 0:
                hsv = _rgb_to_hsv(x.astype(np.float32))  # H in degrees [0, 360)
                hsv[..., 0] = (hsv[..., 0] + 360.0 * h) % 360.0
                x = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0, 1)
        return x.astype(np.float32)


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """float32 ``[H, W, 3]`` in [0, 1] → ImageNet-normalised ``[3, H, W]`` tensor."""
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


@dataclass(frozen=True)
class TrainTransform:
    """Resize to ``resize²``, random ``crop²`` crop, colour jitter, ImageNet normalisation (training);
    with ``train=False``: resize to ``crop²`` only. ``interpolation``: :func:`resize_square`'s method
    (``"pil"``, upstream, or ``"cv2"``).

    Several frames (ST/STA triplets) can share one crop and one jitter: pass the same ``rng`` state via
    :meth:`params` + :meth:`apply`.
    """

    resize: int = 256
    crop: int = 224
    jitter: ColorJitter | None = ColorJitter()
    train: bool = True
    interpolation: str = "pil"

    def params(self, rng: np.random.Generator) -> dict:
        """Draw the random parameters once (crop position and the jitter's generator state)."""
        if not self.train:
            return {}
        y, x = random_crop_box(self.resize, self.crop, rng)
        return {"y": y, "x": x, "jitter_seed": int(rng.integers(0, 2**63 - 1))}

    def apply(self, rgb: np.ndarray, p: dict) -> torch.Tensor:
        """uint8 ``[H, W, 3]`` → float ``[3, crop, crop]`` with the given parameters."""
        if not self.train:
            return to_tensor(resize_square(rgb, self.crop, self.interpolation).astype(np.float32) / 255.0)
        x = resize_square(rgb, self.resize, self.interpolation).astype(np.float32) / 255.0
        x = x[p["y"]:p["y"] + self.crop, p["x"]:p["x"] + self.crop]
        if self.jitter is not None:
            x = self.jitter(x, np.random.default_rng(p["jitter_seed"]))
        return to_tensor(x)

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        return self.apply(rgb, self.params(rng))
