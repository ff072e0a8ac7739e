"""STAViS input preprocessing, exactly as upstream (``datasets/saliency_db.py``, ``spatial_transforms.py``,
``mean.py``; ``docs/stavis.md`` §Preprocessing).

* Frames: Pillow resize to 320×240 with Pillow's default filter (BICUBIC for RGB since Pillow 7), then to
  112×112 with BILINEAR (aspect not kept), values 0–255 minus the ActivityNet mean, std 1.
* Saliency (density) maps: grey, same two resizes, kept 0–255. Fixation maps: ``fixMap_*.mat['eyeMap']``
  resized bilinearly to 320×240 as float, ``> 0``, then the map transform, ``> 0``.
* Audio: the float waveform (mono; channels averaged) × 256 at the native rate Fs. Frame k (1-based) has
  centre ``(k−1)·Fs/fps`` and half-width ``Fs/(2·fps)``; a clip of frames ``first … last`` takes
  ``wav[start(first) : end(last) + 1]``, multiplies it by a symmetric Hann window (``np.hanning``) and writes it
  centred into 35,280 zeros. When that excerpt could be longer than the buffer (16·Fs/fps + 1 > 35,280;
  upstream overflows) the track is resampled to :func:`fitting_rate` first, with a warning.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
from PIL import Image

#: Samples of the network's audio input (``int(22050 / 10 * 16)``: 16 frames at 10 fps and 22.05 kHz).
AUDIO_LENGTH = 35280
#: ActivityNet RGB mean in 0–255 (upstream ``mean.py``), subtracted from every frame.
ACTIVITYNET_MEAN = (114.7748, 107.7354, 99.4750)
#: Intermediate size (W, H) of upstream's image loader.
LOAD_SIZE = (320, 240)
#: Network input size (W, H).
INPUT_SIZE = (112, 112)
#: Upstream's audio scale: a float waveform in [-1, 1] times 256 (SoundNet's range).
AUDIO_SCALE = 256.0

_RESAMPLING = getattr(Image, "Resampling", Image)


def _two_step_resize(img: Image.Image) -> Image.Image:
    # Pillow's default filter for RGB/L in Image.resize since Pillow 7 is BICUBIC (what upstream gets)
    img = img.resize(LOAD_SIZE, _RESAMPLING.BICUBIC)
    return img.resize(INPUT_SIZE, _RESAMPLING.BILINEAR)


def frame_tensor(rgb: np.ndarray) -> np.ndarray:
    """One video frame → network input.

    Args:
        rgb: uint8 ``[H, W, 3]`` RGB.

    Returns:
        float32 ``[3, 112, 112]``: 0–255 minus :data:`ACTIVITYNET_MEAN`.
    """
    img = _two_step_resize(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB"))
    x = np.asarray(img, dtype=np.float32) - np.asarray(ACTIVITYNET_MEAN, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def saliency_target(grey: np.ndarray) -> np.ndarray:
    """A ground-truth density map (uint8 ``[H, W]``) → float32 ``[112, 112]`` in 0–255 (upstream
    ``pil_loader_sal`` then the map transform)."""
    img = _two_step_resize(Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8), "L"))
    return np.asarray(img, dtype=np.float32)


def fixation_target(eye_map: np.ndarray) -> np.ndarray:
    """A binary fixation map (``fixMap_*.mat['eyeMap']``, any dtype ``[H, W]``) → float32 ``[112, 112]`` in {0, 1}."""
    f = Image.fromarray(np.asarray(eye_map, dtype=np.float64).astype(np.float32), "F")
    binary = np.asarray(f.resize(LOAD_SIZE, _RESAMPLING.BILINEAR)) > 0
    img = Image.fromarray((255 * binary).astype(np.uint8), "L").resize(INPUT_SIZE, _RESAMPLING.BILINEAR)
    return (np.asarray(img) > 0).astype(np.float32)


def frame_bounds(n_frames: int, n_samples: int, fs: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame sample bounds as upstream ``make_dataset`` (1-based; entry 0 is unused and 0).

    ``start[k] = int(max(0, (k−1)·(1/fps)·Fs − (Fs/fps)/2))``, ``end[k] = int(min(N, |(k−1)·(1/fps)·Fs + (Fs/fps)/2|))``.

    Returns:
        ``(starts, ends)``: int64 ``[n_frames + 1]``.
    """
    starts = np.zeros(n_frames + 1, dtype=np.int64)
    ends = np.zeros(n_frames + 1, dtype=np.int64)
    half = (fs / float(fps)) / 2
    for k in range(1, n_frames + 1):
        centre = (k - 1) * (1.0 / float(fps)) * fs
        starts[k] = int(max(0, centre - half))
        ends[k] = int(min(n_samples, abs(centre + half)))
    return starts, ends


def excerpt_bounds(first: int, last: int, n_samples: int, fs: float, fps: float) -> tuple[int, int]:
    """Sample range ``[start, stop)`` of the clip of 1-based frames ``first … last`` (upstream's
    ``wav[starts[first] : ends[last] + 1]``, clipped to the track)."""
    half = (fs / float(fps)) / 2
    start = int(max(0, (first - 1) * (1.0 / float(fps)) * fs - half))
    end = int(min(n_samples, abs((last - 1) * (1.0 / float(fps)) * fs + half)))
    return min(start, n_samples), max(min(end + 1, n_samples), min(start, n_samples))


def audio_excerpt(wav: np.ndarray, first: int, last: int, fs: float, fps: float,
                  length: int = AUDIO_LENGTH) -> np.ndarray:
    """The network's audio input for the clip of 1-based frames ``first … last``.

    Args:
        wav: float32 ``[N]``, the mono waveform already × 256.
        first, last: 1-based frame numbers of the clip's first and last frames.
        fs: sample rate of ``wav`` (Hz); fps: video frame rate.
        length: buffer length (35,280).

    Returns:
        float32 ``[length]``: ``wav[start:stop] · hanning(stop − start)`` written from
        ``length//2 − (stop − start)//2`` (upstream's centring), zeros elsewhere.

    Raises:
        ValueError: the excerpt is longer than the buffer (resample first: :func:`fitting_rate`).
    """
    start, stop = excerpt_bounds(first, last, len(wav), fs, fps)
    seg = np.asarray(wav[start:stop], dtype=np.float32)
    n = len(seg)
    if n > length:
        raise ValueError(f"audio excerpt of {n} samples does not fit the {length}-sample buffer "
                         f"(Fs {fs} Hz at {fps} fps); resample to fitting_rate() first")
    out = np.zeros(length, np.float32)
    if n:
        o = length // 2 - n // 2
        out[o:o + n] = np.hanning(n).astype(np.float32) * seg
    return out


def fitting_rate(fs: int, fps: float, clip_length: int = 16, length: int = AUDIO_LENGTH) -> int:
    """The sample rate at which a clip's excerpt fits the buffer: ``fs`` itself when
    ``clip_length·fs/fps + 2 ≤ length``, else the largest integer rate that satisfies it."""
    if clip_length * fs / fps + 2 <= length:
        return int(fs)
    return int(math.floor((length - 2) * fps / clip_length))


def resample(wav: np.ndarray, fs: int, target: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``, Kaiser window) of a mono float32 track."""
    from scipy.signal import resample_poly

    if target == fs:
        return np.asarray(wav, np.float32)
    r = Fraction(int(target), int(fs))
    return resample_poly(np.asarray(wav, np.float64), r.numerator, r.denominator).astype(np.float32)


def prepare_track(samples: np.ndarray, fs: int, fps: float, clip_length: int = 16,
                  source: str = "audio") -> tuple[np.ndarray, int]:
    """A mono float track in [-1, 1] → ``(wav × 256, rate)``, resampled down (with a ``UserWarning``)
    when a clip's excerpt would not fit the 35,280-sample buffer at ``fs``."""
    rate = fitting_rate(fs, fps, clip_length)
    wav = np.asarray(samples, np.float32)
    if rate != fs:
        warnings.warn(f"stavis: {source} at {fs} Hz and {fps:g} fps gives clip excerpts longer than the "
                      f"{AUDIO_LENGTH}-sample buffer; resampled to {rate} Hz (upstream would overflow)",
                      UserWarning, stacklevel=2)
        wav = resample(wav, fs, rate)
    return wav * np.float32(AUDIO_SCALE), rate
