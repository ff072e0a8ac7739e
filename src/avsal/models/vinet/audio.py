"""AViNet's audio input: the STAViS excerpt of a 32-frame clip, Hann-windowed, centred in 70,560 zeros.

Upstream ``generate_result_audio_visual.py`` (``make_dataset``, ``get_audio_feature``), described in
``docs/vinet.md`` §Audio:

* the waveform is the native-rate soundtrack in SoundNet's ±256 range (upstream: ``torchaudio.load(...,
  normalization=False) · 2^-23`` = float waveform × 256), channels averaged;
* frame k (0-based) is centred at ``c_k = k · Fs / fps`` samples with half-width ``hw = Fs / (2 · fps)``;
  ``start = int(max(0, c_first − hw))``, ``end = int(min(N, c_last + hw))``;
* the excerpt ``wav[start : end + 1]`` is multiplied by ``np.hanning(len)`` and written into zeros of
  70,560 samples starting at ``35,280 − len // 2``.

Deviation (documented): an excerpt longer than 70,560 samples (upstream would crash: e.g. 48 kHz at
20 fps gives 76,801) is resampled down to 70,560 samples (FFT resampling) with a warning.
Frame centres are taken from the frames' presentation times relative to the soundtrack's start
(``(time − track.start_time) · Fs``), which equals upstream's ``k · Fs / fps`` for a constant-rate
video whose streams start together.
"""

from __future__ import annotations

import warnings

import numpy as np

from avsal.io.audio import AudioTrack
from avsal.models.vinet.networks import AUDIO_SAMPLES

#: SoundNet's input range: float waveform × 256 (upstream's int32-scaled samples × 2^-23).
SOUNDNET_SCALE = 256.0


class AudioTooLongWarning(UserWarning):
    """A clip's audio excerpt exceeded 70,560 samples and was resampled down to fit."""


def excerpt_bounds(t_first: float, t_last: float, frame_period: float, sample_rate: int, n_samples: int,
                   start_time: float = 0.0) -> tuple[int, int]:
    """Upstream's sample bounds ``(start, end)`` (inclusive end) of the excerpt of frames ``t_first…t_last``.

    Args:
        t_first, t_last: presentation times (s) of the first and last frame of the clip (forward order).
        frame_period: 1 / fps (s).
        sample_rate: Fs (Hz).
        n_samples: length of the soundtrack (samples).
        start_time: presentation time (s) of the soundtrack's first sample.
    """
    hw = sample_rate * frame_period / 2.0
    c_first = (t_first - start_time) * sample_rate
    c_last = (t_last - start_time) * sample_rate
    return int(max(0.0, c_first - hw)), int(min(float(n_samples), abs(c_last + hw)))


def centred_buffer(excerpt: np.ndarray, size: int = AUDIO_SAMPLES) -> np.ndarray:
    """Hann-window ``excerpt`` (already scaled) and centre it in ``size`` zeros (upstream's placement).

    Returns:
        float32 ``[size]``. An excerpt longer than ``size`` is resampled to ``size`` samples first, with an
        :class:`AudioTooLongWarning`.
    """
    x = np.asarray(excerpt, dtype=np.float64)
    if len(x) > size:
        from scipy.signal import resample

        warnings.warn(f"AViNet audio excerpt of {len(x)} samples exceeds the network's {size}; resampled down "
                      f"to fit (upstream would fail here)", AudioTooLongWarning, stacklevel=3)
        x = resample(x, size)
    out = np.zeros(size, dtype=np.float32)
    n = len(x)
    if n:
        lo = size // 2 - n // 2
        out[lo:lo + n] = (np.hanning(n) * x).astype(np.float32)
    return out


def clip_audio(track: AudioTrack | None, times, frame_period: float | None = None, flip: bool = False
               ) -> np.ndarray:
    """AViNet's audio input for one clip.

    Args:
        track: the soundtrack (mono, channels averaged, native rate, nominally in [-1, 1]); ``None`` =
            silence.
        times: presentation times (s) of the clip's frames (any order; repeats allowed).
        frame_period: 1 / fps in s; default: the median step between the clip's distinct times
            (1/30 s when the clip has a single distinct frame).
        flip: reverse the buffer in time (upstream does this for its time-flipped clips).

    Returns:
        float32 ``[70560]``: the Hann-windowed excerpt × 256, centred.
    """
    if track is None or len(track.samples) == 0:
        return np.zeros(AUDIO_SAMPLES, dtype=np.float32)
    ts = np.unique(np.asarray(times, dtype=np.float64))
    if frame_period is None:
        steps = np.diff(ts)
        frame_period = float(np.median(steps)) if len(steps) else 1.0 / 30.0
    start, end = excerpt_bounds(ts[0], ts[-1], frame_period, track.sample_rate, len(track.samples),
                                track.start_time)
    excerpt = track.samples[start:end + 1].astype(np.float64) * SOUNDNET_SCALE
    buf = centred_buffer(excerpt)
    return buf[::-1].copy() if flip else buf
