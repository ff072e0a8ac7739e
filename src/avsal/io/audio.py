"""Audio input: decode the soundtrack to mono float32 at a chosen rate, and align it to video frames.

Resampling and down-mixing use FFmpeg's libswresample through PyAV's :class:`av.AudioResampler`.
"""

from __future__ import annotations

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


def load_audio(path: str | os.PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE,
               stream_index: int | None = None) -> AudioTrack | None:
    """Decode a file's audio to mono float32 at ``sample_rate`` Hz.

    The best audio stream is chosen by :func:`avsal.io.video.select_audio_stream` unless
    ``stream_index`` is given. Channels are averaged (FFmpeg's down-mix) and the rate converted with
    libswresample.

    Args:
        path: any media file PyAV opens.
        sample_rate: output rate in Hz (default 16 kHz).
        stream_index: container index of the audio stream to use.

    Returns:
        An :class:`AudioTrack`, or ``None`` when the file has no audio stream.

    Raises:
        InputError: the file cannot be opened, ``stream_index`` is not an audio stream, or the audio
            cannot be decoded.
    """
    path = os.fspath(path)
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
        resampler = av.AudioResampler(format="flt", layout="mono", rate=int(sample_rate))
        chunks: list[np.ndarray] = []
        start = None
        try:
            for frame in container.decode(stream):
                if start is None and frame.pts is not None and frame.time_base is not None:
                    start = float(frame.pts * frame.time_base)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as e:
            raise InputError(path, f"audio stream {stream.index} cannot be decoded ({e.strerror or e})") from None
        samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
        return AudioTrack(samples=samples, sample_rate=int(sample_rate), start_time=start or 0.0,
                          stream_index=stream.index, source_rate=int(cc.sample_rate),
                          source_channels=int(getattr(cc, "channels", 0) or len(cc.layout.channels)),
                          codec=cc.name)


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
