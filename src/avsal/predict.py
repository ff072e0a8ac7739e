"""The main job: saliency maps (and an overlay video) for video files.

Per video, ``avsal predict`` writes into ``OUT/<video stem>/``:

* ``maps/000001.png`` …: 8-bit grayscale saliency maps at the original frame size, named by the
  1-based decoded frame index, one per predicted frame;
* ``saliency.h5``: ``saliency`` float16 ``[T, H', W']`` (longer side ≤ ``h5_max_side``),
  ``frame_indices`` (0-based) and ``times`` (s);
* ``overlay.mp4``: the video with a JET heat map blended in, same frame timing, original audio (AAC);
* ``meta.json``: provenance (avsal version, model and its full config, weights SHA-256, input SHA-256,
  streams, counts, fps, duration, has_audio, warnings, wall time).

The folder appears only when all of it is complete (see :func:`avsal.io.write.atomic_dir`), so a run
over a folder of videos can be interrupted and restarted: a finished video is skipped when its
``meta.json`` records the same input SHA-256, weights SHA-256 and output options (:data:`RESULT_OPTIONS`),
and redone (saying why) otherwise; the hidden leftovers of a killed run are removed.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

import avsal
from avsal.errors import InputError, OutputError, UsageError
from avsal.io.audio import load_audio
from avsal.io.video import VIDEO_EXTENSIONS, Sampling, VideoInfo, iter_frames, probe
from avsal.io.write import (H5MapWriter, OverlayWriter, atomic_dir, clean_stale, ensure_writable_dir,
                            jet_overlay, sha256_file, write_json_atomic, write_png)
from avsal.models import create_video_model
from avsal.models.base import model_stream, upsample
from avsal.parallel import prefetch

#: Largest ``--fps`` accepted: more maps per second than any video has frames is a mistake (to predict
#: every frame, give no ``--fps``).
MAX_SAMPLING_FPS = 1000.0

#: Most bytes of decoded frames held for the one-pass overlay (frames wait for the model's look-ahead);
#: beyond it (e.g. STANet's triplets of ``--every 100`` frames) the overlay is made by a second decode.
MAX_PENDING_BYTES = 256 << 20

#: RMS amplitude below which a soundtrack is reported as near-silent (−60 dBFS).
NEAR_SILENT_RMS = 1e-3


@dataclass
class PredictOptions:
    """Options of a prediction run (written into every ``meta.json``).

    Attributes:
        model: registry name (see ``avsal models``).
        weights: weights file for models that need one.
        every: predict every N-th decoded frame.
        fps: predict F frames per second (nearest frame to the middle of each 1/F interval).
        device: ``"cpu"`` or ``"cuda"`` (training-free models run on the CPU regardless).
        batch_size: frames per forward pass for network models.
        overlay: write ``overlay.mp4``.
        overwrite: redo videos whose outputs already exist.
        h5_max_side: longer side of the maps stored in ``saliency.h5``.
        overlay_alpha: maximum heat-map opacity in the overlay.
        model_config: overrides of the model's configuration fields.
        shard: ``(k, n)``: this run predicts only the inputs ``k, k + n, k + 2n, …`` of the sorted input list
            (``--shard K/N`` for job arrays); under ``torchrun`` the inputs are further split across the ranks.
    """

    model: str = "classic-av"
    weights: str | None = None
    every: int | None = None
    fps: float | None = None
    device: str = "cpu"
    batch_size: int = 8
    overlay: bool = True
    overwrite: bool = False
    h5_max_side: int = 320
    overlay_alpha: float = 0.6
    model_config: dict = field(default_factory=dict)
    shard: tuple[int, int] | None = None

    def sampling(self) -> Sampling:
        return Sampling(every=self.every, fps=self.fps)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class VideoPrediction:
    """Result of :func:`predict_video`.

    Attributes:
        maps: float32 ``[T, H, W]`` in [0, 1] at the frame size (``None`` if not kept).
        frame_indices: int64 ``[T]``, 0-based decoded frame index of each map.
        times: float64 ``[T]``, presentation time in seconds.
        meta: the provenance dictionary (as in ``meta.json``).
        out_dir: the output folder, if outputs were written.
    """

    maps: np.ndarray | None
    frame_indices: np.ndarray
    times: np.ndarray
    meta: dict
    out_dir: str | None = None


def resolve_device(device: str) -> str:
    """Check a device string; ``"cuda"`` needs a CUDA build of torch and a GPU.

    Raises:
        ValueError: unknown device, or CUDA requested but unavailable.
    """
    if device == "cpu":
        return device
    if device.startswith("cuda"):
        import torch  # imported only when a GPU is asked for

        if not torch.cuda.is_available():
            raise ValueError("--device cuda was requested but torch reports no usable CUDA GPU")
        return device
    raise ValueError(f"unknown device {device!r} (use cpu or cuda)")


def informative(sal: np.ndarray) -> bool:
    """Whether a saliency map float ``[h, w]`` says anything: finite everywhere and not constant.

    A constant map (all zeros from a constant-colour video, for instance) ranks no pixel above another;
    :func:`predict_video` writes the centre prior instead, with a warning in ``meta.json``.
    """
    if sal.size == 0 or not np.all(np.isfinite(sal)):
        return False
    return float(sal.max()) - float(sal.min()) > 1e-6


def _centre_prior(h: int, w: int) -> np.ndarray:
    from avsal.models.classic import centre_prior  # exp(-r²/2) with sigma = 0.25 of each side, max 1

    return centre_prior(h, w)


def _h5_size(h: int, w: int, max_side: int) -> tuple[int, int]:
    s = min(1.0, max_side / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def check_sampling_fps(fps: float) -> float:
    """``fps`` if it is a usable sampling rate (finite, ``0 < fps <= MAX_SAMPLING_FPS``).

    Raises:
        UsageError: otherwise (``inf``, ``nan``, ``1e9``, ``0``, negative).
    """
    fps = float(fps)
    if not (math.isfinite(fps) and 0 < fps <= MAX_SAMPLING_FPS):
        raise UsageError(f"--fps must be a number in (0, {MAX_SAMPLING_FPS:g}] frames per second, got {fps:g} "
                         "(give no --fps to predict every frame)")
    return fps


def _check_options(opts: PredictOptions) -> None:
    """Check the options once, before any video (bad values are usage errors, not per-video failures).

    Raises:
        UsageError: the message names the option.
    """
    if opts.every is not None and opts.fps is not None:
        raise UsageError("give at most one of --every and --fps")
    if opts.every is not None and (isinstance(opts.every, bool) or not isinstance(opts.every, int)
                                   or opts.every < 1):
        raise UsageError(f"--every must be a whole number >= 1, got {opts.every!r}")
    if opts.fps is not None:
        check_sampling_fps(opts.fps)
    if isinstance(opts.batch_size, bool) or not isinstance(opts.batch_size, int) or opts.batch_size < 1:
        raise UsageError(f"--batch-size must be a whole number >= 1, got {opts.batch_size!r}")
    if not (isinstance(opts.h5_max_side, int) and opts.h5_max_side >= 1):
        raise UsageError(f"h5_max_side must be a whole number >= 1, got {opts.h5_max_side!r}")
    if not (isinstance(opts.overlay_alpha, (int, float)) and 0 <= opts.overlay_alpha <= 1):
        raise UsageError(f"overlay_alpha must be a number in [0, 1], got {opts.overlay_alpha!r}")
    if opts.shard is not None:
        k, n = opts.shard
        if not (isinstance(k, int) and isinstance(n, int) and n >= 1 and 0 <= k < n):
            raise UsageError(f"--shard K/N needs integers 0 <= K < N, got {k}/{n}")


def _set_rules(cls, values: dict) -> None:
    """Bounds of ``--set`` values beyond their types (the model families declare types, not ranges):
    cue weights (fields named ``w_*``) are >= 0, and a whole-number setting whose default is >= 1 (a size,
    a grid, a count) stays >= 1."""
    import dataclasses

    from avsal.errors import ConfigError

    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for k, v in values.items():
        nums = v if isinstance(v, tuple) else (v,)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in nums):
            continue
        if k.startswith("w_") and any(x < 0 for x in nums):
            raise ConfigError(k, f"a cue weight must be >= 0, got {v!r}", "--set")
        d = defaults.get(k)
        dn = d if isinstance(d, tuple) else (d,)
        if all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in dn) \
                and any(x < 1 for x in nums):
            raise ConfigError(k, f"must be >= 1 (a size or a count), got {v!r}", "--set")


def _trial(model) -> None:
    """Run ``model`` on 12 synthetic frames (48×64, a 440 Hz tone); raise if it fails or gives maps that are
    not finite or outside [0, 1]."""
    from avsal.io.audio import AudioTrack
    from avsal.io.video import Frame

    rng = np.random.default_rng(0)
    frames = (Frame(index=i, time=i / 25, rgb=rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for i in range(12))
    spec = getattr(model, "audio", None)
    rate = int(getattr(spec, "sample_rate", None) or 16000)
    t = np.arange(int(0.5 * rate)) / rate
    audio = AudioTrack(samples=(0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sample_rate=rate)
    for pred in model_stream(model, frames, audio, (48, 64)):
        sal = np.asarray(pred.saliency)
        if not np.all(np.isfinite(sal)) or sal.min() < -1e-6 or sal.max() > 1 + 1e-6:
            raise ValueError("the maps are not finite numbers in [0, 1]")


def build_model(opts: PredictOptions, device: str):
    """The video model of ``opts``, with its ``--set`` overrides checked once, before any video.

    Overrides are checked against the model's configuration dataclass (:func:`avsal.config.validate_fields`:
    known keys, types, finite numbers), then :func:`_set_rules`, then a training-free model runs on a tiny
    synthetic clip, so that a setting it cannot work with (a zero size, a weight that overflows) stops here
    (network models, whose trial would cost minutes on a CPU, get the typed checks only).

    Raises:
        ConfigError / UsageError: naming the ``--set`` key.
        KeyError, ValueError: unknown model, missing weights.
    """
    import dataclasses

    from avsal.config import validate_fields

    overrides = dict(opts.model_config)

    def create(cfg):
        try:
            return create_video_model(opts.model, weights=opts.weights, device=device, batch_size=opts.batch_size,
                                      **cfg)
        except TypeError as e:
            if cfg:  # name the key and the allowed ones, from the model's default configuration
                plain = getattr(create({}), "config", None)
                if plain is not None and dataclasses.is_dataclass(plain):
                    validate_fields(type(plain), cfg, source="--set")
            raise UsageError(f"--set: {e}") from None

    net = create(overrides)
    if not overrides:
        return net
    cfg = getattr(net, "config", None)
    if cfg is not None and dataclasses.is_dataclass(cfg):
        checked = validate_fields(type(cfg), overrides, source="--set")
        _set_rules(type(cfg), checked)
        if checked != overrides:
            net = create(checked)
    if getattr(net, "net", None) is not None:
        return net  # a network: its settings are typed and range-checked above; a trial run would cost minutes
    try:
        _trial(net)
    except Exception as e:
        given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        raise UsageError(f"--set {given}: the model cannot work with these settings "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return net


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)`` with ``0 <= K < N``.

    Raises:
        ValueError: not of that form.
    """
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects K/N (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= k < n):
        raise ValueError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def distributed_rank() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the environment ``torchrun`` sets (``(0, 1, 0)`` otherwise)."""
    env = os.environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return 0, 1, 0
    if world < 1 or not 0 <= rank < world:
        return 0, 1, 0
    return rank, world, local


def select_shard(paths: list[str], shard: tuple[int, int] | None, rank: int = 0, world: int = 1) -> list[str]:
    """The inputs this process predicts: every ``N·W``-th of ``paths`` from ``K·W + rank``.

    ``--shard K/N`` (job arrays) and the ``torchrun`` ranks compose: shard K of N is split again over
    ``world`` ranks, so N jobs × W ranks cover every input exactly once. The order of ``paths`` is the
    order given (folders expanded sorted), identical in every process.

    Args:
        paths: every input, in the same order in every process.
        shard: ``(K, N)`` from ``--shard K/N``, or ``None`` (one job).
        rank, world: this process's rank and the number of processes (``torchrun``'s ``RANK``/``WORLD_SIZE``).

    Returns:
        The inputs this process predicts, in their original order.
    """
    k, n = shard or (0, 1)
    return paths[k * world + rank::n * world]


def _convert(frame) -> None:
    frame.rgb  # noqa: B018 (the colour conversion, done ahead in the decoding thread)


def _convert_selected(frame) -> None:
    if frame.selected:
        frame.rgb  # noqa: B018


def _run(path: str, model, opts: PredictOptions, out_dir: str | None, keep_maps: bool,
         progress: bool, sampling: Sampling | None = None) -> VideoPrediction:
    """Predict one video; write outputs into ``out_dir`` (an existing, empty folder) if given."""
    t_start = time.perf_counter()
    sampling = sampling or opts.sampling()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = probe(path)
        audio = None
        spec = getattr(model, "audio", None)
        if spec is None:
            pass
        elif info.has_audio:
            try:
                audio = load_audio(path, sample_rate=spec.sample_rate, stream_index=info.audio_stream, mix=spec.mix,
                                   resampler=spec.resampler)
            except InputError as e:
                warnings.warn(f"{path}: {e.problem}; the audio cues are disabled")
        else:
            warnings.warn(f"{path}: no audio stream; the audio cues are disabled (silent audio)")
        if audio is not None and audio.samples.size:
            rms = audio.rms()
            if rms < NEAR_SILENT_RMS:
                warnings.warn(f"{path}: the soundtrack is near-silent ({20 * math.log10(max(rms, 1e-12)):.1f} "
                              "dBFS); audio cues carry little information")
        H, W = info.height, info.width
        hs = _h5_size(H, W, opts.h5_max_side)
        maps, indices, times = [], [], []
        n_decoded = n_flat = 0
        bar = tqdm(total=info.n_frames or None, desc=os.path.basename(path), unit="frame",
                   disable=not progress, leave=False)
        outputs = _Outputs(out_dir, path, info, hs, model.name, opts, audio is not None) if out_dir else None

        def counted(frames):
            nonlocal n_decoded
            for f in frames:
                n_decoded += 1
                bar.update(1)
                if outputs is not None:
                    outputs.frame(f)
                yield f

        try:
            # decoding and colour conversion run one thread ahead (PyAV releases the GIL); a frame is
            # converted there when the overlay shows it or the model is given it, else on first use
            frames = counted(prefetch(iter_frames(path, sampling, info=info), depth=8,
                                      prepare=_convert if outputs is not None and opts.overlay else _convert_selected,
                                      name="avsal-decode"))
            for pred in model_stream(model, frames, audio, (H, W)):
                sal = pred.saliency
                if not informative(sal):
                    sal = _centre_prior(*sal.shape)
                    n_flat += 1
                if keep_maps:
                    maps.append(upsample(sal, H, W))
                indices.append(pred.index)
                times.append(pred.time)
                if outputs is not None:
                    outputs.map(pred.index, pred.time, sal)
            if outputs is not None:
                for _ in frames:  # the frames after the last clip a model needed: the overlay shows them too
                    pass
            if not indices:
                raise InputError(path, "the sampling selected no frame (is --fps/--every larger than the video?)")
            if outputs is not None:
                outputs.close()
        except BaseException:
            if outputs is not None:
                outputs.abort()
            raise
        finally:
            bar.close()
        if n_flat:
            warnings.warn(f"{path}: {n_flat} of {len(indices)} maps carried no information (constant or "
                          "non-finite; a constant-colour picture?): the centre prior was written instead")
    warn_msgs = list(dict.fromkeys(str(w.message) for w in caught))
    meta = {
        "avsal_version": avsal.__version__,
        "model": model.name,
        "model_config": _model_config(model),
        "weights": opts.weights and os.path.basename(opts.weights),
        "weights_sha256": sha256_file(opts.weights) if opts.weights else None,
        "input": os.path.basename(path),
        "input_sha256": sha256_file(path),
        "streams": {"video": info.video_stream, "video_codec": info.video_codec,
                    "audio": info.audio_stream if audio is not None else None,
                    "audio_codec": info.audio_codec if audio is not None else None,
                    "audio_rate": info.audio_rate, "audio_channels": info.audio_channels},
        "frame_size": [H, W],
        "rotation_applied": info.rotation,
        "frames_decoded": n_decoded,
        "frames_predicted": len(indices),
        "fps": info.fps,
        "duration": info.duration if not math.isnan(info.duration) else None,
        "has_audio": audio is not None,
        "sampling": sampling.to_dict(),
        "options": opts.to_dict(),
        "h5_map_size": list(hs),
        "warnings": warn_msgs,
        "wall_time_s": round(time.perf_counter() - t_start, 3),
    }
    if out_dir:
        write_json_atomic(os.path.join(out_dir, "meta.json"), meta, default=str)
    return VideoPrediction(maps=np.stack(maps) if keep_maps else None,
                           frame_indices=np.asarray(indices, np.int64), times=np.asarray(times, np.float64),
                           meta=meta, out_dir=out_dir)


def _model_config(model) -> dict:
    cfg = model.config.to_dict() if hasattr(model.config, "to_dict") else {}
    net = getattr(model, "net", None)
    if net is not None and hasattr(net, "config"):
        cfg["network"] = net.config.to_dict()
    return cfg


class _Worker:
    """One background thread running ``fn(item)`` over a bounded queue, in order.

    The queue bound (``depth`` items) keeps memory flat: the decoder/model thread waits when a writer is
    behind. An exception in ``fn`` is kept and raised by the next :meth:`put` or by :meth:`close`.
    """

    def __init__(self, fn: Callable, name: str, depth: int = 16):
        import queue
        import threading

        self.fn, self.error = fn, None
        self.q: "queue.Queue" = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is None:
                try:
                    self.fn(item)
                except BaseException as e:  # kept for the owner's thread
                    self.error = e

    def put(self, item) -> None:
        if self.error is not None:
            raise self.error
        self.q.put(item)

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self.error = self.error or RuntimeError("aborted")
        self.q.put(None)
        self.thread.join()


class _Outputs:
    """The outputs of one video, written while the model runs (one decode for maps and overlay).

    * ``maps/*.png`` and ``saliency.h5``: one writer thread, in prediction order;
    * ``overlay.mp4``: another thread blends each decoded frame with the latest map at or before it (the
      float16 map of ``saliency.h5``, upsampled, as a reader of the file would) and encodes it with the
      audio. A frame waits in :attr:`pending` until the map of its latest selected frame has come out of
      the model (models look ahead), so memory stays at the model's look-ahead plus the queues.

    PyAV, OpenCV and HDF5 compression release the GIL, so the writing overlaps the decoding and the model.
    """

    def __init__(self, out_dir: str, path: str, info: VideoInfo, hs: tuple[int, int], model_name: str,
                 opts: PredictOptions, with_audio: bool):
        from collections import deque

        self.out_dir, self.info, self.hs, self.alpha = out_dir, info, hs, opts.overlay_alpha
        self.h5 = H5MapWriter(os.path.join(out_dir, "saliency.h5"), hs,
                              attrs={"frame_size": (info.height, info.width), "model": model_name})
        os.makedirs(os.path.join(out_dir, "maps"))
        self.maps = _Worker(self._write_map, "avsal-maps")
        self.overlay = None
        if opts.overlay:
            self.writer = OverlayWriter(os.path.join(out_dir, "overlay.mp4"), info.width, info.height, info.fps,
                                        info.time_base, audio_source=path if with_audio else None,
                                        audio_stream=info.audio_stream if with_audio else None)
            self.overlay = _Worker(self._write_overlay_frame, "avsal-overlay")
        self.path, self.with_audio, self.second_pass = path, with_audio, False
        self.frame_bytes = info.height * info.width * 3
        self.pending: deque = deque()  # (frame, index of its latest selected frame or -1)
        self.ready: deque = deque()  # (prediction index, the model's map) not yet superseded
        self.last_selected = -1
        self.last_pred = -1
        self._overlay_src = self._overlay_map = None  # the overlay thread's last map, as given and upsampled

    # -- producer side (the decoder/model thread) ------------------------------------------------------
    def frame(self, f) -> None:
        if f.selected:
            self.last_selected = f.index
        if self.overlay is not None:
            self.pending.append((f, self.last_selected))
            self._flush(final=False)
            if len(self.pending) * self.frame_bytes > MAX_PENDING_BYTES:
                self._second_pass_instead()

    def _second_pass_instead(self) -> None:
        """The model looks too far ahead to hold the frames: drop the one-pass overlay, decode again at the end."""
        self.overlay.abort()
        self.overlay = None
        self.pending.clear()
        self.ready.clear()
        try:
            self.writer.close()
        except Exception:
            pass
        os.remove(os.path.join(self.out_dir, "overlay.mp4"))
        self.second_pass = True

    def map(self, index: int, time: float, sal: np.ndarray) -> None:
        # the resizing happens in the writer threads, off the decoder/model thread
        self.maps.put((index, time, sal))
        if self.overlay is not None:
            self.ready.append((index, sal))
            self.last_pred = index
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        """Send the pending frames whose map is known (all of them at the end)."""
        while self.pending and self.ready:
            f, sel = self.pending[0]
            if not final and sel > self.last_pred:
                break  # its map has not come out of the model yet
            while len(self.ready) > 1 and self.ready[1][0] <= f.index:
                self.ready.popleft()
            self.pending.popleft()
            self.overlay.put((f.rgb, self.ready[0][1], f.pts))

    def close(self) -> None:
        try:
            if self.overlay is not None:
                self._flush(final=True)
                self.overlay.close()
            self.maps.close()
        finally:
            self._finish()
        if self.second_pass:
            _write_overlay(self.path, self.info, os.path.join(self.out_dir, "saliency.h5"),
                           os.path.join(self.out_dir, "overlay.mp4"), self.with_audio, self.alpha)

    def abort(self) -> None:
        for w in (self.maps, self.overlay):
            if w is not None:
                w.abort()
        self._finish(quiet=True)

    def _finish(self, quiet: bool = False) -> None:
        """Close the files once (the overlay encoder, then saliency.h5); the first error is raised."""
        closers, self._closers = getattr(self, "_closers", None), []
        if closers is None:
            closers = ([self.writer.close] if self.overlay is not None else []) + [self.h5.close]
        errors = []
        for close in closers:
            try:
                close()
            except Exception as e:
                errors.append(e)
        if errors and not quiet:
            raise errors[0]

    # -- writer threads ----------------------------------------------------------------------------------
    def _write_map(self, item) -> None:
        index, time, sal = item
        write_png(os.path.join(self.out_dir, "maps", f"{index + 1:06d}.png"),
                  upsample(sal, self.info.height, self.info.width))
        self.h5.append(upsample(sal, *self.hs), index, time)

    def _write_overlay_frame(self, item) -> None:
        rgb, sal, pts = item
        if sal is not self._overlay_src:  # frames between two selected ones reuse their map
            # the float16 map of saliency.h5, upsampled, as a reader of the file sees it
            small16 = upsample(sal, *self.hs).astype(np.float16)
            self._overlay_src, self._overlay_map = sal, upsample(small16.astype(np.float32), self.info.height,
                                                                  self.info.width)
        self.writer.write(jet_overlay(rgb, self._overlay_map, self.alpha), pts)


def _write_overlay(path: str, info: VideoInfo, h5_path: str, out_path: str, with_audio: bool,
                   alpha: float) -> None:
    """The overlay by a second decode, from ``saliency.h5``: each frame blended with the latest map at or
    before it (used when the model looks too far ahead for :class:`_Outputs` to hold the frames)."""
    import h5py

    with h5py.File(h5_path, "r") as h5:
        idx = h5["frame_indices"][:]
        sal = h5["saliency"]
        writer = OverlayWriter(out_path, info.width, info.height, info.fps, info.time_base,
                               audio_source=path if with_audio else None,
                               audio_stream=info.audio_stream if with_audio else None)
        try:
            k, cur, cur_k = 0, None, -1
            for f in iter_frames(path, info=info):
                while k + 1 < len(idx) and idx[k + 1] <= f.index:
                    k += 1
                if k != cur_k:
                    cur = upsample(sal[k].astype(np.float32), info.height, info.width)
                    cur_k = k
                writer.write(jet_overlay(f.rgb, cur, alpha), f.pts)
        finally:
            writer.close()


def predict_video(path: str | os.PathLike, model: str = "classic-av", *, out_dir: str | None = None,
                  every: int | None = None, fps: float | None = None, times=None,
                  weights: str | None = None, device: str = "cpu", batch_size: int = 8,
                  overlay: bool = True, overwrite: bool = False, keep_maps: bool = True,
                  progress: bool = False, **model_config) -> VideoPrediction:
    """Predict saliency maps for one video (Python API of ``avsal predict``).

    Args:
        path: video file (anything PyAV decodes).
        model: registry name (default ``"classic-av"``, training-free).
        out_dir: if given, write the outputs (PNGs, ``saliency.h5``, ``overlay.mp4``, ``meta.json``)
            into ``out_dir/<video stem>/`` as ``avsal predict`` does.
        every, fps, times: sampling (at most one): every N-th frame, F per second, or the frames nearest
            the given timestamps (s). Default: every frame.
        weights: weights file for models that need one.
        device, batch_size: for network models.
        overlay: write the overlay video (only with ``out_dir``).
        overwrite: replace existing outputs in ``out_dir``.
        keep_maps: return the full-resolution maps (``False`` saves memory on long videos).
        progress: show a progress bar.
        **model_config: model configuration overrides, e.g. ``w_sync=0.3``.

    Returns:
        :class:`VideoPrediction` with ``maps`` float32 ``[T, H, W]`` in [0, 1], ``frame_indices``,
        ``times`` (s) and ``meta``.

    Raises:
        InputError: the video cannot be used (message names the file and the problem).
        OutputError: ``out_dir`` cannot be written.
        FileExistsError: outputs exist and ``overwrite`` is false.
        KeyError, ValueError: unknown model or bad options.
    """
    path = os.fspath(path)
    opts = PredictOptions(model=model, weights=weights, every=every, fps=fps, device=device,
                          batch_size=batch_size, overlay=overlay, overwrite=overwrite,
                          model_config=model_config)
    _check_options(opts)
    sampling = Sampling(every=every, fps=fps, times=times)
    resolve_device(device)
    net = build_model(opts, device)
    if out_dir is None:
        return _run(path, net, opts, None, keep_maps, progress, sampling)
    root = ensure_writable_dir(out_dir)
    final = os.path.join(root, os.path.splitext(os.path.basename(path))[0])
    with atomic_dir(final, overwrite=overwrite) as tmp:
        res = _run(path, net, opts, tmp, keep_maps, progress, sampling)
    res.out_dir = final
    return res


def collect_inputs(inputs: list[str]) -> list[str]:
    """Expand folders into the video files they contain (sorted, non-recursive); keep files as given."""
    out: list[str] = []
    for p in inputs:
        if os.path.isdir(p):
            found = sorted(os.path.join(p, n) for n in os.listdir(p)
                           if n.lower().endswith(VIDEO_EXTENSIONS) and not n.startswith("."))
            out.extend(found)
        else:
            out.append(p)
    return out


def output_names(paths: list[str]) -> dict[str, str]:
    """Output folder name per input, unique and stable.

    The file stem; where stems clash, the file name with ``.`` → ``_``; where even file names clash
    (``d1/clip.mp4``, ``d2/clip.mp4``), that name plus the first 8 hex digits of the SHA-256 of the
    input's absolute path.
    """
    import hashlib

    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    bases = [os.path.basename(p) for p in paths]
    names = {}
    for p, s, b in zip(paths, stems, bases):
        if stems.count(s) == 1:
            names[p] = s
        elif bases.count(b) == 1:
            names[p] = b.replace(".", "_")
        else:
            tag = hashlib.sha256(os.path.abspath(p).encode()).hexdigest()[:8]
            names[p] = f"{b.replace('.', '_')}-{tag}"
    return names


#: The options that change a video's outputs: a finished video is redone when one of them differs.
RESULT_OPTIONS = ("model", "every", "fps", "overlay", "h5_max_side", "overlay_alpha", "model_config")


def _result_options(opts: PredictOptions) -> dict:
    d = opts.to_dict()
    return json.loads(json.dumps({k: d[k] for k in RESULT_OPTIONS}, default=str))


def _redo_reason(final: str, path: str, opts: PredictOptions) -> str | None:
    """``None`` when ``final`` holds this input's outputs made with these options, else why not.

    Finished means ``meta.json`` records the same input SHA-256, the same weights SHA-256 and the same
    :data:`RESULT_OPTIONS` (device, batch size, sharding and progress do not change the outputs).
    """
    try:
        with open(os.path.join(final, "meta.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return f"{final} holds no readable meta.json (an unfinished or foreign folder)"
    if meta.get("input_sha256") != sha256_file(path):
        return "the input file changed since its outputs were made (SHA-256 differs)"
    weights = sha256_file(opts.weights) if opts.weights else None
    if meta.get("weights_sha256") != weights:
        return "the weights changed (SHA-256 differs)"
    before = meta.get("options") or {}
    now = _result_options(opts)
    changed = [f"{k}: {before.get(k)!r} -> {now[k]!r}" for k in RESULT_OPTIONS if before.get(k) != now[k]]
    if changed:
        return "the options changed (" + "; ".join(changed) + ")"
    return None


def _write_failure(path: str, final: str, e: OSError | OutputError) -> str:
    """One line for a video whose outputs could not be written (nothing of it is left in ``final``)."""
    where = os.path.basename(getattr(e, "path", None) or getattr(e, "filename", None) or "") or "outputs"
    why = e.problem if isinstance(e, OutputError) else f"{e.strerror or e}; is the disk full?"
    return f"{path}: could not write {where} in {final}: {why}; nothing was kept"


@dataclass
class BatchResult:
    """Outcome of :func:`predict_many`: per input, ``"done"``, ``"skipped"`` or the error message."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def predict_many(inputs: list[str], out: str, opts: PredictOptions, progress: bool = True,
                 log: Callable[[str], None] = print) -> BatchResult:
    """Run the prediction over files and folders; one bad video is reported and the rest still run.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) each process predicts its share of the inputs
    (:func:`select_shard`) on its own device (``cuda:LOCAL_RANK`` with ``--device cuda``); no process group
    is needed, and each video's outputs are identical to a single-process run.

    Raises:
        OutputError: ``out`` cannot be written (nothing can be done then).
        KeyError, ValueError: unknown model or bad options.
    """
    _check_options(opts)
    rank, world, local_rank = distributed_rank()
    device = opts.device
    if world > 1 and device == "cuda":
        device = f"cuda:{local_rank}"  # one GPU per torchrun process
    resolve_device(device)
    root = ensure_writable_dir(out)
    net = build_model(opts, device)
    all_paths = collect_inputs(inputs)
    names = output_names(all_paths)  # over every input, so names do not depend on the split
    paths = select_shard(all_paths, opts.shard, rank, world)
    result = BatchResult()
    for path in tqdm(paths, desc="videos", unit="video", disable=not progress or len(paths) < 2):
        final = os.path.join(root, names[path])
        clean_stale(root, names[path])  # leftovers of a killed run
        if os.path.exists(final) and not opts.overwrite:
            why = _redo_reason(final, path, opts)
            if why is None:
                result.skipped.append(path)
                log(f"skip  {path}: finished with the same input and options in {final} (--overwrite redoes it)")
                continue
            log(f"redo  {path}: {why}")
        try:
            with atomic_dir(final, overwrite=True) as tmp:
                res = _run(path, net, opts, tmp, keep_maps=False, progress=progress)
        except InputError as e:
            result.failed[path] = str(e)
            log(f"FAIL  {e}")
            continue
        except (OutputError, OSError) as e:  # disk full, file size limit, …: this video fails, the next runs
            result.failed[path] = _write_failure(path, final, e)
            log(f"FAIL  {result.failed[path]}")
            continue
        except Exception as e:  # one video's unexpected failure must not stop the batch
            result.failed[path] = f"{path}: {type(e).__name__}: {e}"
            log(f"FAIL  {result.failed[path]}")
            continue
        result.done.append(path)
        for w in res.meta["warnings"]:
            log(f"warn  {w}")
        log(f"done  {path}: {res.meta['frames_predicted']} maps in {res.meta['wall_time_s']:.1f} s -> {final}")
    return result
