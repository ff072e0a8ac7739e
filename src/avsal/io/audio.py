"""Audio input: decode the soundtrack to mono float32 at a chosen rate, and align it to video frames.

Resampling and down-mixing use FFmpeg's libswresample through PyAV's :class:`av.AudioResampler`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import av
import numpy as np

from avsal.errors import InputError
from avsal.io.video import open_container, select_audio_stream

DEFAULT_SAMPLE_RATE = 16000


@dataclass
class AudioTrack:
    """A mono soundtrack on the video's timeline.

    Attributes:
        samples: float32 ``[n]``, nominally in [-1, 1].
        sample_rate: Hz.
        start_time: presentation time (s) of ``samples[0]`` on the container timeline.
        stream_index: the container stream it was decoded from.
        source_rate, source_channels, codec: what the stream held before conversion.
    """

    samples: np.ndarray
    sample_rate: int
    start_time: float = 0.0
    stream_index: int | None = None
    source_rate: int | None = None
    source_channels: int | None = None
    codec: str | None = None

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / float(self.sample_rate)

    def rms(self, block: int = 1 << 20) -> float:
        """Root mean square of the samples (0 for an empty track), accumulated in float64 block by block, so
        that no float64 copy of a long soundtrack is made."""
        n = len(self.samples)
        if n == 0:
            return 0.0
        total = 0.0
        for s in range(0, n, block):
            x = self.samples[s:s + block].astype(np.float64)
            total += float(np.dot(x, x))
        return math.sqrt(total / n)

    def windows(self, times: Sequence[float] | np.ndarray, length: float) -> np.ndarray:
        """Audio windows centred on the given times, zero-padded outside the track.

        Args:
            times: ``[T]`` centre times in seconds on the container timeline (e.g. ``Frame.time``).
            length: window length in seconds.

        Returns:
            float32 ``[T, L]`` with ``L = round(length * sample_rate)``; sample ``j`` of window ``i`` is the
            track at ``times[i] - length/2 + j / sample_rate``.
        """
        n = int(round(length * self.sample_rate))
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        first = np.round((times - self.start_time) * self.sample_rate).astype(np.int64) - n // 2
        idx = first[:, None] + np.arange(n)[None, :]
        valid = (idx >= 0) & (idx < len(self.samples))
        out = np.zeros(idx.shape, dtype=np.float32)
        out[valid] = self.samples[idx[valid]]
        return out

    def window(self, time: float, length: float) -> np.ndarray:
        """One window ``float32 [L]`` centred on ``time`` (s). See :meth:`windows`."""
        return self.windows([time], length)[0]


#: Ways to make one channel of several: FFmpeg's down-mix matrix, or the plain mean of the channels.
MIXES = ("ffmpeg", "mean")


def load_audio(path: str | os.PathLike, sample_rate: int | None = DEFAULT_SAMPLE_RATE,
               stream_index: int | None = None, mix: str = "ffmpeg", resampler: str = "swr") -> AudioTrack | None:
    """Decode a file's audio to mono float32 at ``sample_rate`` Hz.

    The best audio stream is chosen by :func:`avsal.io.video.select_audio_stream` unless
    ``stream_index`` is given. The rate is converted with libswresample.

    Args:
        path: any media file PyAV opens.
        sample_rate: output rate in Hz (default 16 kHz); ``None`` keeps the stream's native rate.
        stream_index: container index of the audio stream to use.
        mix: ``"ffmpeg"`` (libswresample's mono down-mix; stereo → (L+R)/√2) or ``"mean"`` (the arithmetic
            mean of the channels, ``np.mean(samples, axis=1)`` as the upstream Python code of STANet,
            STAViS and ViNet does).
        resampler: ``"swr"`` (libswresample, while decoding) or ``"resampy"`` (decode at the native rate,
            then :func:`resample_kaiser_best`, as upstream Python code that calls ``resampy.resample``).

    Returns:
        An :class:`AudioTrack`, or ``None`` when the file has no audio stream.

    Raises:
        InputError: the file cannot be opened, ``stream_index`` is not an audio stream, or the audio
            cannot be decoded.
    """
    path = os.fspath(path)
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    if resampler not in RESAMPLERS:
        raise ValueError(f"resampler must be one of {RESAMPLERS}, got {resampler!r}")
    if resampler == "resampy":
        track = load_audio(path, None, stream_index=stream_index, mix=mix)
        if track is not None and sample_rate is not None and track.sample_rate != int(sample_rate):
            track.samples = resample_kaiser_best(track.samples, track.sample_rate, int(sample_rate))
            track.sample_rate = int(sample_rate)
        return track
    with open_container(path) as container:
        if stream_index is None:
            stream = select_audio_stream(container)
            if stream is None:
                return None
        else:
            try:
                stream = container.streams[stream_index]
            except IndexError:
                raise InputError(path, f"has no stream {stream_index}") from None
            if stream.type != "audio":
                raise InputError(path, f"stream {stream_index} is {stream.type}, not audio")
        cc = stream.codec_context
        if sample_rate is None:
            sample_rate = int(cc.sample_rate)
        if mix == "ffmpeg":
            resampler = av.AudioResampler(format="flt", layout="mono", rate=int(sample_rate))
        else:  # keep the channels (planar), average them below
            resampler = av.AudioResampler(format="fltp", rate=int(sample_rate))
        seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else \
            (container.duration / 1e6 if container.duration else 10.0)
        buf = _Samples(int(seconds * sample_rate) + sample_rate)
        start = None
        try:
            for frame in container.decode(stream):
                if start is None and frame.pts is not None and frame.time_base is not None:
                    start = float(frame.pts * frame.time_base)
                for out in resampler.resample(frame):
                    buf.append(_mono(out.to_ndarray(), mix))
            for out in resampler.resample(None):
                buf.append(_mono(out.to_ndarray(), mix))
        except av.FFmpegError as e:
            raise InputError(path, f"audio stream {stream.index} cannot be decoded ({e.strerror or e})") from None
        samples = buf.array()
        return AudioTrack(samples=samples, sample_rate=int(sample_rate), start_time=start or 0.0,
                          stream_index=stream.index, source_rate=int(cc.sample_rate),
                          source_channels=int(getattr(cc, "channels", 0) or len(cc.layout.channels)),
                          codec=cc.name)


class _Samples:
    """A float32 sample buffer filled in place (decoded audio frames are small: collecting them in a list and
    concatenating held the soundtrack twice, and the freed pieces stayed in the process's heap)."""

    def __init__(self, capacity: int):
        self.data = np.empty(max(capacity, 1024), np.float32)  # pages never written cost no memory
        self.n = 0

    def append(self, x: np.ndarray) -> None:
        m = self.n + len(x)
        if m > len(self.data):
            grown = np.empty(max(m, 2 * len(self.data)), np.float32)
            grown[:self.n] = self.data[:self.n]
            self.data = grown
        self.data[self.n:m] = x
        self.n = m

    def array(self) -> np.ndarray:
        """The samples, float32 ``[n]`` (a copy only when much of the buffer went unused)."""
        if self.n < 0.9 * len(self.data):
            return self.data[:self.n].copy()
        return self.data[:self.n]


#: Ways to bring a soundtrack to 16 kHz for the STANet features: ``resampy`` (upstream
#: ``audiostft.py``: ``resampy.resample(x, sr, 16000)``, filter ``kaiser_best``) or ``swr`` (FFmpeg's
#: libswresample with its default settings, in the decoder).
RESAMPLERS = ("resampy", "swr")


def load_stanet_audio(path: str | os.PathLike, stream_index: int | None = None, mix: str = "mean",
                      resampler: str = "resampy") -> AudioTrack | None:
    """Decode a soundtrack the way upstream ``VGGClssfication/audiostft.py`` prepares it for STANet.

    Upstream reads the clip's wav (``soundfile.read``, float64), averages the channels
    (``np.mean(samples, axis=1)``) and, unless the file is already at 16 kHz, converts the rate with
    ``resampy.resample(samples, sr, 16000)`` (filter ``kaiser_best``). Here the stream is decoded at its
    native rate, down-mixed by ``mix`` and resampled by ``resampler``; the only difference left from the
    upstream path is the wav's 16-bit quantisation (≤ 3·10⁻⁵), since the compressed stream is decoded
    straight to float. ``docs/weak_pipeline.md`` ("Training recipe") gives the measured difference of the
    ``swr`` switch.

    Args:
        path: any media file PyAV opens.
        stream_index: container index of the audio stream (default: the best one).
        mix: ``"mean"`` (default, upstream) or ``"ffmpeg"``; see :func:`load_audio`.
        resampler: ``"resampy"`` (default, upstream) or ``"swr"``; see :data:`RESAMPLERS`.

    Returns:
        A 16 kHz mono :class:`AudioTrack` (float32), or ``None`` when the file has no audio stream.

    Raises:
        InputError: as :func:`load_audio`.
        ValueError: unknown ``mix`` or ``resampler``.
    """
    return load_audio(path, STFT_WINDOW, stream_index=stream_index, mix=mix, resampler=resampler)


def resample_kaiser_best(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """``resampy.resample(samples, rate_in, rate_out, filter="kaiser_best")`` in float64, returned as float32.

    Shapes: ``[n]`` → ``[ceil(n · rate_out / rate_in)]``; rates in Hz. An empty input gives an empty output.
    """
    import resampy

    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, np.float32)
    return resampy.resample(x, int(rate_in), int(rate_out), filter="kaiser_best").astype(np.float32)


def _mono(block: np.ndarray, mix: str) -> np.ndarray:
    """A resampler output block (``[1, n]`` packed mono, or ``[C, n]`` planar) → float32 ``[n]``."""
    if mix == "ffmpeg":
        return block.reshape(-1)
    return block.astype(np.float32, copy=False).mean(axis=0, dtype=np.float64).astype(np.float32)


def rms_envelope(track: AudioTrack, times: Sequence[float] | np.ndarray, length: float = 0.1) -> np.ndarray:
    """Root-mean-square loudness of windows centred on ``times``.

    Args:
        track: the soundtrack.
        times: ``[T]`` seconds.
        length: window length in seconds (default 0.1 s).

    Returns:
        float32 ``[T]``, RMS amplitude (same unit as the samples, ≥ 0).
    """
    w = track.windows(times, length)
    return np.sqrt(np.mean(np.square(w, dtype=np.float64), axis=1)).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# STANet audio features (upstream VGGClssfication/audiostft.py recipe)
# ----------------------------------------------------------------------------------------------------

#: Samples per feature window: one second at 16 kHz.
STFT_WINDOW = 16000
#: Shape of one window's feature map (frequency bins, time steps).
STFT_SHAPE = (81, 199)


def stft_features(wave: np.ndarray) -> np.ndarray:
    """Log-spectrogram features of consecutive one-second windows, as upstream STANet computes them.

    Recipe (upstream ``audiostft.py``): the 16 kHz mono signal is cut into ``n = len // 16000``
    non-overlapping windows of 16000 samples (a shorter tail is dropped), each clipped to [−1, 1];
    ``scipy.signal.spectrogram(w, 16000, nperseg=160, noverlap=80)`` (default Tukey(0.25) window, PSD
    scaling) gives 81 × 199; then ``log(x + 1e-7)`` and a z-score over the whole window map
    (``(x − mean) / (std + 1e-9)``, population std). An all-zero window gives all zeros, never NaN.

    Args:
        wave: float ``[N]`` mono samples at 16 kHz.

    Returns:
        float32 ``[n, 81, 199]`` (``n = N // 16000``; may be 0).

    Raises:
        ValueError: ``wave`` is not one-dimensional.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"stft_features expects a 1-D signal, got shape {wave.shape}")
    n = len(wave) // STFT_WINDOW
    if n == 0:
        return np.zeros((0, *STFT_SHAPE), np.float32)
    return stft_windows(wave[: n * STFT_WINDOW].reshape(n, STFT_WINDOW))


def stft_windows(windows: np.ndarray) -> np.ndarray:
    """The :func:`stft_features` map of each row of ``windows`` (float ``[T, 16000]``) → ``[T, 81, 199]``."""
    from scipy import signal

    w = np.clip(np.asarray(windows, dtype=np.float64), -1.0, 1.0)
    _, _, spec = signal.spectrogram(w, STFT_WINDOW, nperseg=160, noverlap=80, axis=-1)
    spec = np.log(spec + 1e-7)
    mean = spec.mean(axis=(1, 2), keepdims=True)
    std = spec.std(axis=(1, 2), keepdims=True)
    return ((spec - mean) / (std + 1e-9)).astype(np.float32)


def stft_features_at(track: AudioTrack | None, times) -> np.ndarray:
    """Per-frame variant: the one-second window **centred** on each time (zero-padded at the ends).

    Used at inference on arbitrary frame rates. ``track`` must be 16 kHz; ``None`` (no audio) gives the
    features of silence (all zeros).

    Args:
        track: the soundtrack at 16 kHz, or ``None``.
        times: ``[T]`` seconds.

    Returns:
        float32 ``[T, 81, 199]``.

    Raises:
        ValueError: the track is not at 16 kHz.
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if track is None:
        return np.zeros((len(times), *STFT_SHAPE), np.float32)
    if track.sample_rate != STFT_WINDOW:
        raise ValueError(f"STANet audio features need 16 kHz audio, got {track.sample_rate} Hz")
    return stft_windows(track.windows(times, 1.0))


def write_features_h5(path, features: np.ndarray) -> None:
    """Write features under the dataset key ``dataset`` (upstream-compatible), atomically.

    Args:
        path: output ``.h5``.
        features: ``[81, 199]`` (one window, as upstream writes per file) or ``[n, 81, 199]``.
    """
    import h5py

    from avsal.io.write import atomic_file

    with atomic_file(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("dataset", data=np.asarray(features, dtype=np.float32))


def read_features_h5(path) -> np.ndarray:
    """Read the ``dataset`` array of an upstream or avsal feature file (float32).

    Raises:
        InputError: missing file, not HDF5, or no ``dataset`` key.
    """
    import h5py

    path = os.fspath(path)
    try:
        with h5py.File(path, "r") as f:
            if "dataset" not in f:
                raise InputError(path, f"no 'dataset' key (keys: {', '.join(f.keys())})")
            return np.asarray(f["dataset"][()], dtype=np.float32)
    except (OSError, FileNotFoundError) as e:
        raise InputError(path, f"not a readable HDF5 feature file ({e})") from None
