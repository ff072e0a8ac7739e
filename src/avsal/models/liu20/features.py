"""Liu'20 inputs: frames, and the log-mel images of the audio branch.

Everything follows upstream ``utils1.py`` as described in ``docs/liu20.md`` §Inputs:

* frames: 256×256 (cv2 bilinear), RGB, 0–255 minus :data:`RGB_MEAN`;
* audio: mono at 22,050 Hz; power mel spectrogram (n_fft 2048, hop 512, Hann, centred with reflect
  padding, 128 Slaney mel bands 0–11,025 Hz, Slaney area normalisation) → ``power_to_db(ref=max,
  amin=1e-10, top_db=80)`` → shifted and scaled **per video** to 0–255 (:func:`log_mel`);
* per video frame at time ``t``: the 20 columns around column ``⌊t · 22050 / 512⌋`` (moved to stay inside
  the spectrogram), resized to 64×64 (:func:`frame_mel_image`);
* per predicted frame ``i``: the per-frame images of frames ``i − 8 … i + 7``, the window moved to stay
  inside the video (:func:`mel_window`).

The mel spectrogram is computed with numpy following librosa's definitions (``librosa.filters.mel``,
``librosa.stft``, ``librosa.power_to_db``; upstream used librosa 0.7) rather than depending on librosa,
whose dependency tree (numba, llvmlite, scikit-learn, soxr, …) is large for one spectrogram. The
agreement with librosa and the effect of resampling with libswresample instead of librosa 0.7's resampy
``kaiser_best`` are measured in ``docs/liu20.md`` and checked by ``tests/test_liu20.py``.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

__all__ = ["HOP", "MEL_WINDOW", "N_FFT", "N_MELS", "RGB_MEAN", "SAMPLE_RATE", "frame_mel_image", "log_mel",
           "mel_column",
           "mel_filterbank", "mel_window", "preprocess_frame"]

SAMPLE_RATE = 22050
N_FFT = 2048
HOP = 512
N_MELS = 128
#: Mel columns per video frame (``hop_len`` upstream; 20 × 23.2 ms ≈ 464 ms).
FRAME_COLUMNS = 20
#: Per-frame images per predicted frame (the 3D CNN's time axis).
MEL_WINDOW = 16
#: Mean subtracted from 0–255 RGB frames (upstream ``config.py``).
RGB_MEAN = (123.68, 116.779, 103.939)
#: STFT frames per chunk in :func:`log_mel` (≈ 24 s of audio, ≈ 25 MB of float64 per chunk).
_CHUNK = 1024


def preprocess_frame(rgb: np.ndarray, size: int = 256) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` → float32 ``[3, size, size]``: cv2 bilinear resize, 0–255 minus the RGB mean.

    Upstream resizes the BGR frame and then converts it to RGB; resizing is per channel, so the order
    does not matter.
    """
    x = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    x -= np.asarray(RGB_MEAN, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa ``hz_to_mel(htk=False)``): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=4)
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular Slaney-normalised mel filters, float32 ``[n_mels, 1 + n_fft // 2]`` (librosa
    ``filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm="slaney")``)."""
    fft_f = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    w.setflags(write=False)
    return w.astype(np.float32)


def log_mel(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Per-video log-mel spectrogram scaled to 0–255, float32 ``[128, 1 + len(y) // 512]``.

    Args:
        y: mono float samples in [−1, 1] at ``sr`` (22,050 Hz for the released network).
        sr: sample rate in Hz.

    Returns:
        ``power_to_db(mel, ref=max)`` (floored at max − 80 dB), minus its minimum, times 255 / its maximum;
        an all-silent or constant track gives zeros.

    Raises:
        ValueError: ``y`` is not one-dimensional or is empty.
    """
    y = np.asarray(y, np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"log_mel needs a non-empty mono signal, got shape {y.shape}")
    pad = N_FFT // 2
    mode = "reflect" if y.size > pad else "constant"
    yp = np.pad(y.astype(np.float64), pad, mode=mode)
    n = 1 + (yp.size - N_FFT) // HOP
    window = np.hanning(N_FFT + 1)[:-1]  # periodic Hann (scipy get_window("hann", fftbins=True))
    frames = np.lib.stride_tricks.sliding_window_view(yp, N_FFT)[::HOP][:n]
    fb = mel_filterbank(sr, N_FFT, N_MELS).astype(np.float64)
    mel = np.empty((N_MELS, n))
    for i in range(0, n, _CHUNK):  # bounded memory for long soundtracks
        power = np.abs(np.fft.rfft(frames[i:i + _CHUNK] * window, axis=1)) ** 2  # [chunk, 1025]
        mel[:, i:i + _CHUNK] = fb @ power.T
    db = 10.0 * np.log10(np.maximum(1e-10, mel))
    db -= 10.0 * np.log10(max(1e-10, mel.max()))
    db = np.maximum(db, db.max() - 80.0)
    db -= db.min()
    top = db.max()
    return (db * (255.0 / top) if top > 0 else db).astype(np.float32)


def mel_column(time: float, sr: int = SAMPLE_RATE, hop: int = HOP) -> int:
    """Spectrogram column of a frame at ``time`` seconds from the start of the audio: ``⌊t · sr / hop⌋``
    (upstream ``int(1000/fps · i / (hop · 1000 / sr))`` for frame ``i`` of a constant-rate video)."""
    return int(np.floor(time * sr / hop + 1e-9))


def frame_mel_image(logmel: np.ndarray, time: float, size: int = 64) -> np.ndarray:
    """The audio image of one video frame: float32 ``[size, size]``, 0–255.

    The 20 columns ``c − 10 … c + 9`` around :func:`mel_column` (moved inside the spectrogram when they
    stick out; a spectrogram shorter than 20 columns is used whole), resized with cv2 bilinear.
    """
    n = logmel.shape[1]
    c = mel_column(time)
    start, end = c - FRAME_COLUMNS // 2, c + FRAME_COLUMNS // 2
    if start < 0:
        start, end = 0, FRAME_COLUMNS
    elif end > n:
        start, end = n - FRAME_COLUMNS, n
    start, end = max(start, 0), min(end, n)
    return cv2.resize(np.ascontiguousarray(logmel[:, start:end]), (size, size), interpolation=cv2.INTER_LINEAR)


def mel_window(i: int, n_frames: int, length: int = MEL_WINDOW) -> list[int]:
    """Frames whose audio images feed predicted frame ``i``: ``i − 8 … i + 7``, moved inside
    ``[0, n_frames)`` (upstream ``load_one_batch_audio_melspectr``); a video shorter than 16 frames repeats
    its last frame."""
    start = i - length // 2
    if start < 0:
        start = 0
    elif start + length > n_frames:
        start = n_frames - length
    start = max(start, 0)
    return [min(j, n_frames - 1) for j in range(start, start + length)]
