"""Video input: stream selection, probing and streaming frame decoding with PyAV.

Frames come out as RGB ``uint8`` arrays ``[H, W, 3]`` in display orientation (the container's rotation
metadata is applied, as ``ffmpeg`` does by default), each with its presentation timestamp in seconds, so
variable-frame-rate files keep their real timing. Decoding is streaming: one frame (plus one of look-ahead
for the sampling decision) is held at a time, so memory does not grow with the length of the video.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np

from avsal.errors import InputError

#: Video file extensions, most common first: what ``avsal predict`` collects from a folder, and the order
#: ``avsal prepare`` tries for ``<VideoID>.*`` (any other extension last).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ts", ".3gp",
                    ".ogv", ".wmv")

#: Smallest frame side (pixels) that avsal accepts; a saliency map of a smaller frame carries no information.
MIN_FRAME_SIDE = 8


# ----------------------------------------------------------------------------------------------------
# Stream selection
# ----------------------------------------------------------------------------------------------------

def _disposition_flags(stream) -> set[str]:
    try:
        return {str(flag.name).lower() for flag in av.stream.Disposition if stream.disposition & flag}
    except Exception:  # pragma: no cover - very old PyAV
        return set()


def select_video_stream(container) -> "av.video.stream.VideoStream | None":
    """Choose the main video stream of an opened container, never assuming it is stream 0.

    Rules, in order: streams that are attached pictures (cover art) or have no decoder are skipped;
    a stream flagged ``default`` wins; then the largest frame area; then the lowest index.

    Args:
        container: an ``av.container.InputContainer``.

    Returns:
        The chosen stream, or ``None`` when the file has no usable video stream.
    """
    candidates = []
    for s in container.streams.video:
        flags = _disposition_flags(s)
        if "attached_pic" in flags or s.codec_context is None:
            continue
        area = (s.codec_context.width or 0) * (s.codec_context.height or 0)
        candidates.append((("default" in flags), area, -s.index, s))
    if not candidates:
        return None
    return max(candidates, key=lambda c: c[:3])[3]


def select_audio_stream(container) -> "av.audio.stream.AudioStream | None":
    """Choose the main audio stream of an opened container, never assuming a fixed index.

    Rules, in order: streams without a decoder or a sample rate are skipped; a stream flagged ``default``
    wins; then the most channels; then the highest sample rate; then the lowest index.

    Returns:
        The chosen stream, or ``None`` when the file has no usable audio stream.
    """
    candidates = []
    for s in container.streams.audio:
        cc = s.codec_context
        if cc is None or not cc.sample_rate:
            continue
        flags = _disposition_flags(s)
        channels = getattr(cc, "channels", None) or len(getattr(cc.layout, "channels", ())) or 1
        candidates.append((("default" in flags), channels, cc.sample_rate, -s.index, s))
    if not candidates:
        return None
    return max(candidates, key=lambda c: c[:4])[4]


# ----------------------------------------------------------------------------------------------------
# Probing
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoInfo:
    """What avsal knows about a video file before decoding it.

    Attributes:
        path: the file.
        width, height: frame size in pixels **after** the rotation metadata is applied.
        fps: average frame rate (frames/s) from the container; for variable-frame-rate files only a mean.
        duration: seconds, of the video stream when known, otherwise of the container (may be ``nan``).
        n_frames: frame count declared by the container, 0 when it declares none (e.g. WebM/MKV).
        start_time: presentation time (s) of the stream start; frame times are on this timeline.
        rotation: clockwise rotation (degrees, multiple of 90) applied to decoded frames.
        video_stream: index of the chosen video stream in the container.
        video_codec: its codec name.
        time_base: the video stream's time base (s per pts tick).
        has_audio: whether a decodable audio stream exists.
        audio_stream, audio_codec, audio_rate, audio_channels: the chosen audio stream (``None`` if absent).
    """

    path: str
    width: int
    height: int
    fps: float
    duration: float
    n_frames: int
    start_time: float
    rotation: int
    video_stream: int
    video_codec: str
    time_base: Fraction
    has_audio: bool
    audio_stream: int | None = None
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["time_base"] = str(self.time_base)
        return d


def open_container(path: str | os.PathLike):
    """Open ``path`` with PyAV, turning every failure into an :class:`InputError` naming the file.

    Raises:
        InputError: missing file, a folder, an unreadable file, or data PyAV cannot parse.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(path, "file not found")
    if os.path.isdir(path):
        raise InputError(path, "is a folder, not a video file")
    if os.path.getsize(path) == 0:
        raise InputError(path, "file is empty (0 bytes)")
    try:
        return av.open(path, metadata_errors="ignore")
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except av.FFmpegError as e:
        raise InputError(
            path, f"not a readable video file ({e.strerror or type(e).__name__}); "
            "is it truncated or not a video at all?") from None


def _frame_rotation(frame) -> int:
    angle = getattr(frame, "rotation", 0) or 0
    return int(round(-float(angle) / 90.0)) % 4 * 90


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video's streams and metadata without decoding more than its first frame.

    Args:
        path: any file PyAV (FFmpeg) opens: mp4, webm, mkv, avi, mov, ...

    Returns:
        A :class:`VideoInfo`.

    Raises:
        InputError: the file is missing or unreadable, has no video stream (e.g. audio only), no
            decodable frame, or frames smaller than :data:`MIN_FRAME_SIDE` pixels.
    """
    path = os.fspath(path)
    with open_container(path) as container:
        vs = select_video_stream(container)
        if vs is None:
            kinds = sorted({s.type for s in container.streams})
            raise InputError(path, f"has no video stream (streams found: {', '.join(kinds) or 'none'}); "
                             "audio-only files cannot be used")
        rotation = None
        try:
            for frame in container.decode(vs):
                rotation = _frame_rotation(frame)
                w, h = frame.width, frame.height
                break
        except av.FFmpegError as e:
            raise InputError(path, f"the first video frame cannot be decoded ({e.strerror or e})") from None
        if rotation is None:
            raise InputError(path, "contains no decodable video frame (zero-frame file?)")
        if rotation in (90, 270):
            w, h = h, w
        if min(w, h) < MIN_FRAME_SIDE:
            raise InputError(path, f"frame size {w}x{h} is too small (each side must be >= {MIN_FRAME_SIDE} px)")
        tb = vs.time_base or Fraction(1, 90000)
        fps = float(vs.average_rate) if vs.average_rate else float(vs.guessed_rate or 0) or 25.0
        if vs.duration is not None:
            duration = float(vs.duration * tb)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = math.nan
        start = float(vs.start_time * tb) if vs.start_time is not None else 0.0
        aus = select_audio_stream(container)
        info = dict(
            path=path, width=w, height=h, fps=fps, duration=duration, n_frames=int(vs.frames or 0),
            start_time=start, rotation=rotation, video_stream=vs.index, video_codec=vs.codec_context.name,
            time_base=Fraction(tb), has_audio=aus is not None)
        if aus is not None:
            cc = aus.codec_context
            info.update(audio_stream=aus.index, audio_codec=cc.name, audio_rate=int(cc.sample_rate),
                        audio_channels=int(getattr(cc, "channels", 0) or len(cc.layout.channels)))
        return VideoInfo(**info)


# ----------------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sampling:
    """Which decoded frames to predict.

    Exactly one mode:

    * ``Sampling()``: every frame;
    * ``Sampling(every=N)``: decoded frames 0, N, 2N, ... (0-based decode index);
    * ``Sampling(fps=F)``: one frame per 1/F seconds, the frame nearest the **middle** of each interval
      ``[k/F, (k+1)/F)`` of the video timeline (F = 1 gives the middle frame of each second, as the
      upstream AVE preparation does);
    * ``Sampling(times=[t0, t1, ...])``: the frame nearest each timestamp (seconds from the video start).

    A frame is selected at most once even if several target times fall nearest to it.

    Raises:
        ValueError: more than one mode, N < 1, F <= 0 or not finite, or a negative or non-finite timestamp.
    """

    every: int | None = None
    fps: float | None = None
    times: tuple[float, ...] | None = None

    def __post_init__(self):
        given = [x is not None for x in (self.every, self.fps, self.times)]
        if sum(given) > 1:
            raise ValueError("Sampling: give at most one of every=, fps=, times=")
        if self.every is not None and int(self.every) < 1:
            raise ValueError(f"Sampling: every must be >= 1, got {self.every}")
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"Sampling: fps must be a finite number > 0, got {self.fps}")
        if self.times is not None:
            object.__setattr__(self, "times", tuple(sorted(float(t) for t in self.times)))
            if self.times and self.times[0] < 0:
                raise ValueError("Sampling: timestamps must be >= 0 s")
            if not all(math.isfinite(t) for t in self.times):
                raise ValueError("Sampling: timestamps must be finite")

    @property
    def mode(self) -> str:
        if self.every is not None:
            return "every"
        if self.fps is not None:
            return "fps"
        if self.times is not None:
            return "times"
        return "all"

    def to_dict(self) -> dict:
        return {"mode": self.mode, "every": self.every, "fps": self.fps,
                "times": list(self.times) if self.times is not None else None}


def _fps_owned(fps: float, lo: float, hi: float, closed: bool) -> range:
    """Indices k of the fps targets ``(k + 0.5) / fps`` in ``[lo, hi)`` (``[lo, hi]`` if ``closed``), in O(1).

    Arithmetic instead of a walk over the targets, so that sampling costs O(frames) for any rate (a walk
    costs O(targets): ``fps=1e9`` on a 3-s clip is 3·10⁹ steps, ``fps=inf`` never ends).
    """
    lo = max(lo, 0.0)  # targets are > 0

    def below_hi(k: int) -> bool:
        t = (k + 0.5) / fps
        return t <= hi if closed else t < hi

    # estimates, then corrected with the exact comparisons a walk over the targets would make
    first = max(0, math.ceil(lo * fps - 0.5))
    while first > 0 and (first - 0.5) / fps >= lo:
        first -= 1
    while (first + 0.5) / fps < lo:
        first += 1
    last = math.floor(hi * fps - 0.5)
    while below_hi(last + 1):
        last += 1
    while last >= first and not below_hi(last):
        last -= 1
    return range(first, max(first, last + 1))


def _times_owned(times: tuple[float, ...], lo: float, hi: float, closed: bool) -> range:
    """Indices of the sorted ``times`` in ``[lo, hi)`` (``[lo, hi]`` if ``closed``), by bisection."""
    import bisect

    first = bisect.bisect_left(times, lo)
    last = bisect.bisect_right(times, hi) if closed else bisect.bisect_left(times, hi)
    return range(first, max(first, last))


# ----------------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------------

class Frame:
    """One decoded video frame.

    Attributes:
        index: 0-based position in decode (presentation) order; ``maps/%06d.png`` uses ``index + 1``.
        time: presentation timestamp in seconds (on the container timeline; see ``VideoInfo.start_time``).
        rgb: ``uint8 [H, W, 3]``, display orientation. Converted from the decoder's picture on first
            access only, so frames that are never looked at cost no colour conversion.
        selected: whether the sampling chose this frame for prediction.
        pts: the raw pts in the video stream's time base (``None`` if the container has none).
        targets: for the ``fps``/``times`` samplings, the indices of the target times this frame is the
            nearest frame to, as a ``range`` (consecutive indices; empty for unselected frames and the
            other modes).
    """

    __slots__ = ("index", "time", "selected", "pts", "targets", "_rgb", "_picture", "_rotation")

    def __init__(self, index: int, time: float, rgb: np.ndarray | None = None, selected: bool = True,
                 pts: int | None = None, targets: "range | tuple[int, ...]" = (), picture=None, rotation: int = 0):
        self.index, self.time, self.selected, self.pts, self.targets = index, time, selected, pts, targets
        self._rgb, self._picture, self._rotation = rgb, picture, rotation

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = _rotate(self._picture.to_ndarray(format="rgb24"), self._rotation)
            self._picture = None
        return self._rgb

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, time={self.time:.3f}, selected={self.selected})"


def _rotate(rgb: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90)))  # clockwise


def _decode_raw(path: str, info: VideoInfo, threads: int = 0) -> Iterator[Frame]:
    """All frames of the chosen stream, in order, with timestamps; decode errors become InputError."""
    container = open_container(path)
    try:
        stream = container.streams[info.video_stream]
        if threads == 1:
            stream.codec_context.thread_count = 1
        else:
            stream.thread_type = "AUTO"
            if threads > 1:
                stream.codec_context.thread_count = threads
        tb = float(stream.time_base) if stream.time_base else None
        last_t = None
        index = 0
        step = 1.0 / info.fps if info.fps > 0 else 0.04
        it = container.decode(stream)
        while True:
            try:
                frame = next(it)
            except StopIteration:
                break
            except av.FFmpegError as e:
                raise InputError(path, f"decoding failed after {index} frames ({e.strerror or e}); "
                                 "the file is truncated or corrupt") from None
            if frame.pts is not None and tb is not None:
                t = frame.pts * tb
            else:
                t = (last_t + step) if last_t is not None else info.start_time
            yield Frame(index=index, time=float(t), pts=frame.pts, picture=frame, rotation=info.rotation)
            last_t = t
            index += 1
    finally:
        container.close()
    if index == 0:
        raise InputError(path, "contains no decodable video frame (zero-frame file?)")
    if info.n_frames and index < 0.9 * info.n_frames - 1:
        raise InputError(path, f"truncated: only {index} of the {info.n_frames} frames the container "
                         "declares could be decoded")


def iter_frames(path: str | os.PathLike, sampling: Sampling | None = None,
                info: VideoInfo | None = None, threads: int = 0) -> Iterator[Frame]:
    """Stream every decoded frame of a video, marking those the sampling selects.

    All frames are yielded (models that need temporal context, e.g. motion, use the unselected ones
    too); filter on ``frame.selected`` to get only the sampled frames. Memory is bounded: one frame of
    look-ahead is held to decide the nearest-frame sampling modes.

    Args:
        path: the video file.
        sampling: which frames are selected (default: every frame).
        info: a :func:`probe` result, to avoid probing twice.
        threads: decoder threads (0: FFmpeg chooses; 1: single-threaded, e.g. in worker processes).

    Yields:
        :class:`Frame` objects in presentation order, ``rgb`` as ``uint8 [H, W, 3]``.

    Raises:
        InputError: unreadable file, no video stream, decode error (truncated/corrupt file), no frames.
    """
    path = os.fspath(path)
    sampling = sampling or Sampling()
    info = info or probe(path)
    raw = _decode_raw(path, info, threads)
    if sampling.mode == "all":
        yield from raw
        return
    if sampling.mode == "every":
        for f in raw:
            f.selected = f.index % int(sampling.every) == 0
            yield f
        return

    # Nearest-frame selection for target times: frame i owns the times between the midpoints to its
    # neighbours, so a frame is chosen iff some target falls in its interval. Needs one frame look-ahead.
    # The owned targets of an interval are found arithmetically (fps) or by bisection (times), so the cost
    # is O(frames) whatever the rate.
    if sampling.mode == "fps":
        owned_in = lambda lo, hi, closed: _fps_owned(float(sampling.fps), lo, hi, closed)  # noqa: E731
    else:
        owned_in = lambda lo, hi, closed: _times_owned(sampling.times, lo, hi, closed)  # noqa: E731
    prev: Frame | None = None
    t0 = None
    prev_mid = -math.inf
    for cur in raw:
        if t0 is None:
            t0 = cur.time
        if prev is not None:
            mid = 0.5 * ((prev.time - t0) + (cur.time - t0))
            owned = owned_in(prev_mid, mid, False) if mid > prev_mid else range(0)
            prev.selected, prev.targets = bool(owned), owned
            prev_mid = max(prev_mid, mid)
            yield prev
        prev = cur
    if prev is not None:
        # The last frame owns [prev_mid, the end of its display interval (its time + one nominal step)].
        end = (prev.time - t0) + 1.0 / max(info.fps, 1e-6)
        owned = owned_in(prev_mid, end, True) if end >= prev_mid else range(0)
        prev.selected, prev.targets = bool(owned), owned
        yield prev


def read_frames(path: str | os.PathLike, sampling: Sampling | None = None) -> list[Frame]:
    """Decode the selected frames of a (short) video into a list. See :func:`iter_frames`."""
    return [f for f in iter_frames(path, sampling) if f.selected]
