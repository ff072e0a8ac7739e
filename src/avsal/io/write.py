"""Writing outputs: atomic output folders, saliency PNGs, the HDF5 map file, and the overlay video.

Nothing here leaves a half-written result that looks complete: a video's outputs are written into a
hidden temporary folder next to the final one and renamed into place only when every file is done.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from fractions import Fraction
from typing import Any, Iterator

import av
import cv2
import h5py
import numpy as np

from avsal.errors import OutputError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def ensure_writable_dir(path: str | os.PathLike) -> str:
    """Create ``path`` if needed and check that files can be created in it.

    Raises:
        OutputError: it exists and is not a folder, it cannot be created, or it is not writable.
    """
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(path, "output path is not a folder (a file is in the way)") from None
    except OSError as e:
        raise OutputError(path, f"output folder cannot be created ({e.strerror})") from None
    if not os.path.isdir(path):
        raise OutputError(path, "output path is not a folder")
    try:
        fd, probe_path = tempfile.mkstemp(prefix=".avsal-write-test-", dir=path)
        os.close(fd)
        os.remove(probe_path)
    except OSError as e:
        raise OutputError(path, f"output folder is not writable ({e.strerror})") from None
    return path


def _lock_dir(path: str) -> int | None:
    """An exclusive ``flock`` on the folder ``path`` (kept while the returned fd is open), or ``None``
    when another live process holds it. The lock dies with its process, whatever killed it."""
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def clean_stale(parent: str | os.PathLike, name: str | None = None) -> list[str]:
    """Remove the hidden ``.NAME.partial-*`` / ``.NAME.old-*`` folders that a killed run left in ``parent``.

    A folder is stale when no live process holds its lock (see :func:`atomic_dir`); folders of a run in
    progress (another ``--shard`` writing to the same output) are left alone. A run killed between its two
    renames leaves the previous result in ``.NAME.old-*/NAME`` and no ``NAME``: that result is put back.

    Args:
        parent: the folder holding the outputs.
        name: only the leftovers of this output (default: all).

    Returns:
        The folders removed or restored.
    """
    import re

    parent = os.fspath(parent)
    pat = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-[A-Za-z0-9_]+$")
    done = []
    try:
        entries = sorted(os.listdir(parent))
    except OSError:
        return done
    for entry in entries:
        m = pat.match(entry)
        path = os.path.join(parent, entry)
        if m is None or (name is not None and m["name"] != name) or not os.path.isdir(path):
            continue
        fd = _lock_dir(path)
        if fd is None:
            continue  # a live run owns it
        try:
            kept = os.path.join(path, m["name"])
            final = os.path.join(parent, m["name"])
            if m["kind"] == "old" and os.path.isdir(kept) and not os.path.exists(final):
                os.rename(kept, final)
            shutil.rmtree(path, ignore_errors=True)
            done.append(path)
        finally:
            os.close(fd)
    return done


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, overwrite: bool = False) -> Iterator[str]:
    """Context manager giving a temporary folder that becomes ``final`` only on success.

    The temporary folder is ``<parent>/.<name>.partial-XXXX``, locked (``flock``) while this process works
    in it; on an exception (Ctrl-C included) it is deleted and ``final`` is untouched. With ``overwrite``,
    an existing ``final`` is replaced at the very end (through a locked ``.<name>.old-XXXX``). Leftovers of
    a killed run (unlocked) are removed first (:func:`clean_stale`).

    Raises:
        FileExistsError: ``final`` exists and ``overwrite`` is false.
    """
    final = os.fspath(final)
    parent, name = os.path.split(os.path.abspath(final))
    clean_stale(parent, name)
    if os.path.exists(final) and not overwrite:
        raise FileExistsError(final)
    tmp = tempfile.mkdtemp(prefix=f".{name}.partial-", dir=parent)
    lock = _lock_dir(tmp)
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the user's usual mode
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if os.path.exists(final):
            trash = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            trash_lock = _lock_dir(trash)
            try:
                os.rename(final, os.path.join(trash, name))
                os.rename(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            finally:
                if trash_lock is not None:
                    os.close(trash_lock)
        else:
            os.rename(tmp, final)
    finally:
        if lock is not None:
            os.close(lock)


def _umask() -> int:
    """The process umask, read without changing it (``/proc/self/status``; threads may be creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: the classic read-by-setting (not thread-safe, only as a fallback)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[str]:
    """The one temp-and-rename writer of avsal's files: yields a temporary path that becomes ``path`` only
    when the block succeeds.

    The temporary file is ``<folder>/.<name>.partial-XXXX<ext>`` (same folder, so the rename is atomic;
    same extension, so writers that choose the format by it, such as ``cv2.imwrite``, still work). It
    exists (empty) when the block starts; writers may replace it. On any exception it is removed and
    ``path`` is untouched; the new file gets the mode a plain ``open`` would give (``0o666 & ~umask``).
    The folder is created if needed.

    Raises:
        OutputError: the folder or the file cannot be written (an ``OSError`` in the block, disk full, …).
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.partial-", suffix=os.path.splitext(name)[1], dir=folder)
        os.close(fd)
    except OSError as e:
        raise OutputError(path, f"cannot be written in its folder ({e.strerror or e})") from None
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, OutputError):
            raise OutputError(path, f"cannot be written ({e.strerror or e})") from None
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` through :func:`atomic_file`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any, **kwargs) -> None:
    """Write ``obj`` as JSON (``indent=2`` unless given, newline-terminated) through :func:`atomic_file`;
    ``kwargs`` go to :func:`json.dumps`."""
    kwargs.setdefault("indent", 2)
    write_text_atomic(path, json.dumps(obj, **kwargs) + "\n")


def to_uint8(sal: np.ndarray) -> np.ndarray:
    """float ``[H, W]`` in [0, 1] → uint8 ``round(255 · s)`` (values outside are clipped)."""
    return np.clip(np.rint(sal * 255.0), 0, 255).astype(np.uint8)


def write_png(path: str | os.PathLike, sal: np.ndarray) -> None:
    """Write a saliency map float ``[H, W]`` in [0, 1] as an 8-bit grayscale PNG."""
    if not cv2.imwrite(os.fspath(path), to_uint8(sal), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OutputError(path, "PNG could not be written (is the disk full?)")


class _GuardedFile:
    """A binary file for h5py's file-object driver that never reports a failed write to HDF5.

    HDF5 does not survive a failed write (disk full, ``ulimit -f``): its caches are left inconsistent and
    closing or freeing any of its objects afterwards crashes the process (a segfault, not an exception).
    So the first ``OSError`` of a write is recorded in :attr:`error` and every later write is discarded
    (reads of what was never written return zeros) while HDF5 runs to the end normally; the owner checks
    :attr:`error` and raises :class:`~avsal.errors.OutputError`. The file is garbage then, and is deleted
    with the temporary output folder.
    """

    def __init__(self, path: str):
        self.path = path
        self.raw = open(path, "w+b", buffering=0)  # unbuffered: only write() ever writes
        self.error: OSError | None = None
        self.pos = 0  # position once writing has failed

    def _fail(self, e: OSError, pos: int) -> None:
        self.error, self.pos = e, pos

    def write(self, data) -> int:
        mv = memoryview(data).cast("B")
        n = len(mv)
        if self.error is None:
            start = self.raw.tell()
            done = 0
            try:
                while done < n:
                    k = self.raw.write(mv[done:])
                    if not k:
                        raise OSError(errno.ENOSPC, "short write")
                    done += k
                return n
            except OSError as e:
                self._fail(e, start + n)
                return n
        self.pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        if self.error is None:
            try:
                return self.raw.read(size)
            except OSError as e:
                self._fail(e, self.raw.tell())
        return bytes(max(size, 0))

    def readinto(self, buf) -> int:
        mv = memoryview(buf).cast("B")
        if self.error is None:
            try:
                return self.raw.readinto(mv)
            except OSError as e:
                self._fail(e, self.raw.tell())
        mv[:] = bytes(len(mv))
        return len(mv)

    def seek(self, offset: int, whence: int = 0) -> int:
        if self.error is None:
            try:
                return self.raw.seek(offset, whence)
            except OSError as e:
                self._fail(e, self.pos)
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.pos
        return self.pos

    def tell(self) -> int:
        return self.raw.tell() if self.error is None else self.pos

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self.raw.truncate(size)
            except OSError as e:
                self._fail(e, self.raw.tell())
        return self.pos if size is None else size

    def flush(self) -> None:
        pass  # unbuffered

    def close(self) -> None:
        try:
            self.raw.close()
        except OSError as e:
            self.error = self.error or e


class H5MapWriter:
    """Append saliency maps to ``saliency.h5``.

    Datasets: ``saliency`` float16 ``[T, H', W']`` (values in [0, 1]), ``frame_indices`` int64 ``[T]``
    (0-based decoded frame index), ``times`` float64 ``[T]`` (seconds). Attributes: ``frame_size``
    ``(H, W)`` of the video, plus any given in ``attrs``.

    Raises:
        OutputError: from :meth:`append` or :meth:`close` when the file cannot be written (disk full, file
            size limit); the process never crashes (see :class:`_GuardedFile`).
    """

    def __init__(self, path: str | os.PathLike, map_size: tuple[int, int], attrs: dict | None = None):
        self.path = os.fspath(path)
        try:
            self._raw = _GuardedFile(self.path)
        except OSError as e:
            raise OutputError(self.path, f"cannot be created ({e.strerror or e})") from None
        self.file = h5py.File(self._raw, "w")
        h, w = map_size
        self.sal = self.file.create_dataset("saliency", shape=(0, h, w), maxshape=(None, h, w),
                                            dtype="float16", chunks=(1, h, w), compression="gzip",
                                            compression_opts=1, shuffle=True)
        self.idx = self.file.create_dataset("frame_indices", shape=(0,), maxshape=(None,), dtype="int64",
                                            chunks=(1024,))
        self.times = self.file.create_dataset("times", shape=(0,), maxshape=(None,), dtype="float64",
                                              chunks=(1024,))
        for k, v in (attrs or {}).items():
            self.file.attrs[k] = v
        self.n = 0
        self._check()

    def _check(self) -> None:
        e = self._raw.error
        if e is not None:
            raise OutputError(self.path, f"{e.strerror or e}; is the disk full?")

    def append(self, sal: np.ndarray, index: int, time: float) -> None:
        n = self.n
        self.sal.resize(n + 1, axis=0)
        self.idx.resize(n + 1, axis=0)
        self.times.resize(n + 1, axis=0)
        self.sal[n] = sal.astype(np.float16)
        self.idx[n] = index
        self.times[n] = time
        self.n += 1
        self._check()

    def close(self) -> None:
        if self.file is None:
            return
        try:
            self.file.close()
        finally:
            self.file = self.sal = self.idx = self.times = None
            self._raw.close()
        self._check()


def jet_overlay(rgb: np.ndarray, sal: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend a JET heat map of ``sal`` into a frame, weighted by saliency.

    ``out = rgb · (1 − α·s) + jet(s) · α·s`` per pixel, so non-salient regions stay as they were.

    Args:
        rgb: uint8 ``[H, W, 3]``.
        sal: float ``[H, W]`` in [0, 1].
        alpha: maximum opacity of the heat map.

    Returns:
        uint8 ``[H, W, 3]``.
    """
    heat = cv2.cvtColor(cv2.applyColorMap(to_uint8(sal), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    a = (alpha * np.clip(sal, 0, 1))[..., None].astype(np.float32)
    # the same float32 operations in the same order as rgb·(1 − a) + heat·a + 0.5, in place; no clip needed:
    # a convex combination of values in [0, 255] plus 0.5 lies in [0.5, 255.5], and uint8 truncates
    out = rgb.astype(np.float32)
    out *= 1 - a
    h = heat.astype(np.float32)
    h *= a
    out += h
    out += 0.5
    if not 0 <= alpha <= 1:
        np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _even(x: int) -> int:
    return x + (x % 2)


class OverlayWriter:
    """Encode the overlay video (H.264 in MP4) with the source's audio re-encoded to AAC and interleaved.

    Frame timing is kept: each written frame carries its source pts in the source time base, so
    variable frame rates survive. Odd frame sizes are padded by one edge row/column (H.264 4:2:0 needs
    even sizes). Audio is decoded from ``audio_source`` in step with the video so that the file is
    properly interleaved without buffering the whole soundtrack.

    Args:
        path: output ``.mp4``.
        width, height: frame size.
        fps: nominal rate (for the encoder's rate control).
        time_base: the source video stream's time base.
        audio_source: media file whose audio to mux in, or ``None``.
        audio_stream: its audio stream index.
        crf, preset: libx264 quality/speed.
        threads: libx264 threads; 0 lets x264 choose (frame threads, about 1.5 per core). ``None`` (default):
            1 on machines with at most 4 cores, where the decoder, the model and the map writers use the
            other cores and x264's frame threads only add overhead (640x360, veryfast: 4.4 ms of CPU per
            frame with 1 thread, 6.0 ms with x264's choice), else 0. The thread count changes the bitstream
            (not its quality), so overlays made on different machines may differ in their bytes.
    """

    def __init__(self, path, width: int, height: int, fps: float, time_base: Fraction,
                 audio_source: str | None = None, audio_stream: int | None = None,
                 crf: int = 23, preset: str = "veryfast", threads: int | None = None):
        if threads is None:
            threads = 1 if (os.cpu_count() or 1) <= 4 else 0
        self.out = av.open(os.fspath(path), "w", format="mp4")
        self.width, self.height = width, height
        self.vs = self.out.add_stream("libx264", rate=Fraction(fps).limit_denominator(100000) if fps > 0 else 25)
        self.vs.width, self.vs.height = _even(width), _even(height)
        self.vs.pix_fmt = "yuv420p"
        self.vs.time_base = time_base
        self.vs.codec_context.time_base = time_base
        self.vs.options = {"crf": str(crf), "preset": preset, "threads": str(threads)}
        self.time_base = time_base
        self.last_pts = None
        self._audio = None
        if audio_source is not None and audio_stream is not None:
            self._setup_audio(audio_source, audio_stream)

    def _setup_audio(self, src: str, index: int) -> None:
        self.ain = av.open(src)
        ast = self.ain.streams[index]
        rate = int(ast.codec_context.sample_rate)
        channels = int(getattr(ast.codec_context, "channels", 0) or len(ast.codec_context.layout.channels))
        layout = "mono" if channels == 1 else "stereo"
        self.as_ = self.out.add_stream("aac", rate=rate, layout=layout)
        self.as_.codec_context.bit_rate = 128000 if channels > 1 else 64000
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self.arate = rate
        self.asamples = None  # pts counter in 1/rate units
        self._audio = self._audio_frames(ast)
        self._next_audio = next(self._audio, None)

    def _audio_frames(self, ast):
        try:
            for frame in self.ain.decode(ast):
                if self.asamples is None:
                    t0 = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
                    self.asamples = int(round(t0 * self.arate))
                for out in self.resampler.resample(frame):
                    yield out
            for out in self.resampler.resample(None):
                yield out
        except av.FFmpegError:
            return  # a damaged audio tail ends the soundtrack; the video is still written

    def _mux_audio_until(self, t: float | None) -> None:
        while self._audio is not None and self._next_audio is not None:
            frame = self._next_audio
            start = (self.asamples or 0) / self.arate
            if t is not None and start > t:
                break
            frame.pts = self.asamples or 0
            frame.time_base = Fraction(1, self.arate)
            self.asamples = (self.asamples or 0) + frame.samples
            for pkt in self.as_.encode(frame):
                self.out.mux(pkt)
            self._next_audio = next(self._audio, None)

    def write(self, rgb: np.ndarray, pts: int | None) -> None:
        """Encode one frame (uint8 ``[H, W, 3]``) at source ``pts`` (``None``: previous + 1 tick)."""
        if rgb.shape[0] != self.vs.height or rgb.shape[1] != self.vs.width:
            rgb = np.pad(rgb, ((0, self.vs.height - rgb.shape[0]), (0, self.vs.width - rgb.shape[1]), (0, 0)),
                         mode="edge")
        if pts is None or (self.last_pts is not None and pts <= self.last_pts):
            pts = 0 if self.last_pts is None else self.last_pts + 1
        self.last_pts = pts
        self._mux_audio_until(float(pts * self.time_base))
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        vf.pts = pts
        vf.time_base = self.time_base
        for pkt in self.vs.encode(vf):
            self.out.mux(pkt)

    def close(self) -> None:
        for pkt in self.vs.encode(None):
            self.out.mux(pkt)
        if self._audio is not None:
            self._mux_audio_until(None)
            for pkt in self.as_.encode(None):
                self.out.mux(pkt)
            self.ain.close()
        self.out.close()
