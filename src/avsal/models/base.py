"""The inference contract every video model follows, and the one driver that runs it.

A model tells :mod:`avsal.predict` what it consumes per output frame; ``predict`` (through
:func:`run_clips`) does the sampling, look-ahead, per-frame caching, edge handling and batching once for
every model. Two kinds of model exist (see ``docs/models.md``):

* **clip models** (``stanet-sta``, ``stavis-*``, ``vinet``, …) declare a :class:`ClipSpec` (``model.clip``)
  and an :class:`AudioSpec` (``model.audio``) and implement two methods:

  - ``encode(frames, audio) -> list``: per-frame work done **once** per decoded frame and cached while
    some clip still needs it (resize + normalise; STANet: the backbone features);
  - ``decode(clips, audio, frame_hw) -> float32 [N, h, w]``: ``N`` clips of :class:`ClipItem` (edge rule
    already applied, in temporal order) → saliency maps in [0, 1] at any size;

* **streaming models** (``classic-av``) keep state across frames (temporal smoothing, a synchrony window)
  and implement ``stream(frames, audio) -> Iterator[Prediction]``; ``model.clip`` is ``None``.

Both declare ``model.audio`` (an :class:`AudioSpec` or ``None``) so that ``predict`` decodes the
soundtrack once, at the rate and channel mix the model needs.
"""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from avsal.io.audio import AudioTrack
from avsal.io.video import Frame

__all__ = ["AudioSpec", "ClipItem", "ClipSpec", "EDGE_RULES", "Prediction", "SOURCES", "clip_positions",
           "model_stream", "run_clips", "upsample"]

#: How clip positions outside the video are filled (see :func:`clip_positions`).
EDGE_RULES = ("replicate", "shift", "flip")
#: Which frames a clip is made of.
SOURCES = ("decoded", "sampled")


@dataclass
class Prediction:
    """One predicted frame.

    Attributes:
        index: 0-based decoded frame index.
        time: seconds (presentation time).
        saliency: float32 ``[h, w]`` in [0, 1] at the model's working size; :func:`upsample` brings it to
            the frame size.
    """

    index: int
    time: float
    saliency: np.ndarray


def upsample(sal: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a map to ``[height, width]`` (bilinear; INTER_AREA when shrinking), clipped to [0, 1].

    Args:
        sal: float ``[h, w]``.
        height, width: target size in pixels.

    Returns:
        float32 ``[height, width]`` in [0, 1].
    """
    if sal.shape == (height, width):
        return sal.astype(np.float32, copy=False)
    interp = cv2.INTER_AREA if height < sal.shape[0] else cv2.INTER_LINEAR
    return np.clip(cv2.resize(sal, (width, height), interpolation=interp), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class ClipSpec:
    """What a clip model consumes per output frame.

    Attributes:
        length: ``T``, frames per clip (1 single frame, 3 STANet triplet, 16 STAViS, 32 ViNet).
        anchor: 0-based position in the clip of the frame the output map belongs to (``T − 1``: the clip
            ends at t; ``T // 2``: centred; 8: STAViS' 9th frame of 16).
        source: ``"decoded"``: consecutive decoded frames of the video, whatever ``--every``/``--fps``
            select; ``"sampled"``: consecutive selected frames (STANet's triplets of the sampled sequence).
        edge: how positions outside the video are filled (:func:`clip_positions`): ``"replicate"``,
            ``"shift"`` or ``"flip"``.

    Raises:
        ValueError: a length < 1, an anchor outside the clip, an unknown source or edge rule.
    """

    length: int
    anchor: int
    source: str = "decoded"
    edge: str = "replicate"

    def __post_init__(self):
        if self.length < 1 or not 0 <= self.anchor < self.length:
            raise ValueError(f"ClipSpec: need length >= 1 and 0 <= anchor < length, got {self.length}, {self.anchor}")
        if self.source not in SOURCES:
            raise ValueError(f"ClipSpec: source must be one of {SOURCES}, got {self.source!r}")
        if self.edge not in EDGE_RULES:
            raise ValueError(f"ClipSpec: edge must be one of {EDGE_RULES}, got {self.edge!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AudioSpec:
    """The soundtrack a model wants.

    Attributes:
        sample_rate: Hz; ``None`` = the stream's native rate.
        mix: ``"mean"`` (arithmetic mean of the channels, as upstream Python code) or ``"ffmpeg"``
            (libswresample's down-mix; see :func:`avsal.io.audio.load_audio`).
        resampler: ``"swr"`` (libswresample) or ``"resampy"`` (kaiser_best, as upstream code calling
            ``resampy.resample``).
    """

    sample_rate: int | None = 16000
    mix: str = "mean"
    resampler: str = "swr"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClipItem:
    """One position of a clip handed to ``decode``.

    Attributes:
        index: 0-based decoded frame index of the frame used at this position.
        time: its presentation time (s).
        data: what the model's ``encode`` returned for that frame.
        flipped: the clip was time-reversed by the ``"flip"`` edge rule (the model may flip its audio too).
    """

    index: int
    time: float
    data: Any
    flipped: bool = False


def map_frames(fn, frames: list, workers: int | None = None) -> list:
    """``[fn(f) for f in frames]``, in order, on up to ``workers`` threads.

    For the per-frame preprocessing of a clip model's ``encode`` (resizing with Pillow or OpenCV and numpy
    normalisation release the GIL): on a GPU the network waits for it, and one thread was the bottleneck.

    Args:
        fn: the per-frame work.
        frames: the items.
        workers: threads; default ``min(8, os.cpu_count())``. One thread, or a single item, runs inline.

    Returns:
        the results, in the order of ``frames``.
    """
    import os

    n = min(workers or min(8, os.cpu_count() or 1), len(frames))
    if n <= 1:
        return [fn(f) for f in frames]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="avsal-preprocess") as ex:
        return list(ex.map(fn, frames))


def clip_positions(p: int, spec: ClipSpec, n: int | None) -> list[int] | None:
    """Positions (in the frame sequence of ``spec.source``) of the clip for output position ``p``.

    Edge rules, with ``a = spec.anchor``, ``T = spec.length`` and ``N`` frames in the sequence:

    * ``replicate``: ``p − a + j`` clamped to ``[0, N − 1]``;
    * ``shift``: the window ``s … s + T − 1`` with ``s = clamp(p − a, 0, N − T)``, so every clip holds
      T distinct frames (the output frame then sits at another position than ``a``);
    * ``flip``: for ``p < a``, the forward window ``p … p + T − 1`` reversed in time, so that it ends at
      ``p`` (ViNet's rule for its first 31 frames); otherwise as ``replicate``.

    A sequence shorter than ``T`` falls back to ``replicate`` for ``shift`` and ``flip``.

    Args:
        p: output position (0-based).
        spec: the model's clip spec.
        n: number of frames in the sequence, or ``None`` while it is unknown (still decoding).

    Returns:
        ``T`` positions, or ``None`` when they cannot be known yet (``n`` unknown and the answer depends on it).
    """
    T, a = spec.length, spec.anchor
    raw = list(range(p - a, p - a + T))
    rule = spec.edge
    if n is not None and n < T:
        rule = "replicate"
    if rule == "shift":
        s = max(p - a, 0)
        if n is None:
            return list(range(s, s + T))  # the caller waits until s + T − 1 is decoded or the end is known
        s = min(s, n - T)
        return list(range(s, s + T))
    if rule == "flip" and p < a:
        raw = list(range(p + T - 1, p - 1, -1))
    if n is None:
        return [max(q, 0) for q in raw]
    return [min(max(q, 0), n - 1) for q in raw]


def _encode_missing(model, positions: list[int], frames: dict[int, Frame], cache: dict[int, Any],
                    audio: AudioTrack | None) -> None:
    todo = sorted(q for q in set(positions) if q not in cache)
    step = max(1, int(getattr(model, "batch_size", 8)))
    for i in range(0, len(todo), step):
        chunk = todo[i:i + step]
        for q, item in zip(chunk, model.encode([frames[q] for q in chunk], audio)):
            cache[q] = item


def run_clips(model, frames: Iterable[Frame], audio: AudioTrack | None = None,
              frame_hw: tuple[int, int] | None = None) -> Iterator[Prediction]:
    """Drive a clip model over a stream of decoded frames (the one implementation ``predict`` uses).

    Frames are consumed in order; an output is produced for every selected frame (``Frame.selected``) as
    soon as the frames of its clip have been decoded (or the end of the video is reached). Each frame is
    encoded at most once, only if some clip needs it, and dropped when no later clip can need it, so memory
    holds about ``T + batch_size`` frames. ``decode`` receives up to ``model.batch_size`` clips at a time.

    Args:
        model: a clip model (``clip``, ``audio``, ``batch_size``, ``encode``, ``decode``; module docstring).
        frames: :class:`avsal.io.video.Frame` objects in presentation order.
        audio: the soundtrack as ``model.audio`` asked for it, or ``None``.
        frame_hw: ``(H, W)`` of the video in pixels (default: from the first frame).

    Yields:
        :class:`Prediction` per selected frame, in order, with ``decode``'s map (float32 in [0, 1]).
    """
    spec: ClipSpec = model.clip
    bs = max(1, int(getattr(model, "batch_size", 8)))
    T, a = spec.length, spec.anchor
    buf: dict[int, Frame] = {}           # position -> frame, while some clip may need it
    cache: dict[int, Any] = {}           # position -> encode() output
    pending: collections.deque[int] = collections.deque()   # output positions not yet predicted
    ready: list[tuple[int, list[int]]] = []                 # (output position, clip positions)
    n = 0                                                   # frames seen so far in the sequence
    hw = frame_hw

    def emit(final: bool) -> Iterator[Prediction]:
        nonlocal hw
        while ready and (final or len(ready) >= bs):
            batch, ready[:] = ready[:bs], ready[bs:]
            need = [q for _, pos in batch for q in pos]
            _encode_missing(model, need, buf, cache, audio)
            if hw is None:
                hw = tuple(buf[batch[0][0]].rgb.shape[:2])
            clips = []
            for out, pos in batch:
                flipped = spec.edge == "flip" and len(pos) > 1 and pos[0] > pos[-1]
                clips.append([ClipItem(buf[q].index, buf[q].time, cache[q], flipped) for q in pos])
            maps = np.asarray(model.decode(clips, audio, hw), dtype=np.float32)
            if len(maps) != len(batch):
                raise RuntimeError(f"{type(model).__name__}.decode returned {len(maps)} maps for {len(batch)} clips")
            for (out, _), m in zip(batch, maps):
                yield Prediction(index=buf[out].index, time=buf[out].time, saliency=m)

    def collect(total: int | None) -> None:
        while pending:
            pos = clip_positions(pending[0], spec, total)
            if total is None and (pos is None or max(pos) >= n):
                return
            ready.append((pending.popleft(), pos))

    def evict() -> None:
        first = pending[0] if pending else (ready[0][0] if ready else n)
        if ready:
            first = min(first, min(min(pos) for _, pos in ready), ready[0][0])
        low = min(first - a, n - T, first)
        for q in [q for q in buf if q < low]:
            buf.pop(q)
            cache.pop(q, None)

    for f in frames:
        if spec.source == "sampled" and not f.selected:
            continue
        buf[n] = f
        if f.selected:
            pending.append(n)
        n += 1
        collect(None)
        yield from emit(final=False)
        evict()
    collect(n)
    yield from emit(final=True)


def model_stream(model, frames: Iterable[Frame], audio: AudioTrack | None = None,
                 frame_hw: tuple[int, int] | None = None) -> Iterator[Prediction]:
    """Predictions of any video model: :func:`run_clips` for clip models, ``model.stream`` for streaming ones."""
    if getattr(model, "clip", None) is not None:
        return run_clips(model, frames, audio, frame_hw)
    return model.stream(frames, audio)
