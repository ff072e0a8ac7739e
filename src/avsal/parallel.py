"""Parallel work in avsal: the process pool of ``--jobs`` (:func:`run_pool`, workers that use one thread each
on a small machine) and a reading-ahead thread for a stream such as decoded frames (:func:`prefetch`)."""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Environment variables that set the thread count of BLAS/OpenMP libraries in child processes.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_children():
    """Within the block, child processes start with one BLAS/OpenMP thread each (through the environment
    they inherit); variables the user set are left as they are, and everything is restored afterwards."""
    saved = {n: os.environ.get(n) for n in THREAD_ENV}
    for n in THREAD_ENV:
        if saved[n] is None:
            os.environ[n] = "1"
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)


def _init_worker(initializer: Callable[[], None] | None) -> None:
    """Pool worker start-up: Ctrl-C is the parent's (it stops the pool), then the caller's initializer."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer()


def run_pool(fn: Callable[[T], R], items: Sequence[T], n_jobs: int, on_result: Callable[[T, R], None],
             on_crash: Callable[[T, BaseException], None], initializer: Callable[[], None] | None = None) -> None:
    """The one process pool of avsal (``--jobs`` of ``prepare`` and ``evaluate``): ``fn(item)`` for every item.

    With ``n_jobs <= 1`` or a single item, the items run in this process, in order. Otherwise a pool of
    ``min(n_jobs, len(items))`` fresh interpreters (``spawn``: no state inherited by fork), each started
    with one BLAS/OpenMP thread (:func:`single_threaded_children`) and ``initializer``; results arrive in
    completion order. ``fn`` and the items must be picklable (module-level functions, dataclasses).

    Args:
        fn: the work of one item; it should catch the errors of a bad item and return them as its result.
        items: the work list.
        n_jobs: processes.
        on_result: called in this process with ``(item, fn(item))``.
        on_crash: called with ``(item, exception)`` when the worker running ``item`` died (out of memory,
            killed: ``BrokenProcessPool``) or ``fn`` raised; the other items go on.
        initializer: run once in each worker (e.g. ``cv2.setNumThreads(1)``).

    Ctrl-C (``KeyboardInterrupt``) in this process cancels the items not started and re-raises at once;
    workers ignore SIGINT, so they print no tracebacks.
    """
    if n_jobs <= 1 or len(items) <= 1:
        for it in items:
            on_result(it, fn(it))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with single_threaded_children():  # workers start (on submit) with these variables set
        ex = ProcessPoolExecutor(max_workers=min(n_jobs, len(items)), mp_context=ctx,
                                 initializer=_init_worker, initargs=(initializer,))
        try:
            futs = {ex.submit(fn, it): it for it in items}
            for f in as_completed(futs):
                try:
                    r = f.result()
                except Exception as e:  # the worker died (BrokenProcessPool, out of memory, ...)
                    on_crash(futs[f], e)
                else:
                    on_result(futs[f], r)
        except BaseException:  # Ctrl-C: drop the items not started yet instead of waiting for them
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown()


def prefetch(items: Iterable[T], depth: int = 8, prepare: Callable[[T], object] | None = None,
             name: str = "avsal-prefetch") -> Iterator[T]:
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead of the consumer.

    For a producer whose work releases the GIL (PyAV decodes and converts colours without it), this moves
    that work off the consumer's thread: ``avsal predict`` decodes and converts frames here while the model
    runs. ``prepare(item)`` runs in the background thread before the item is handed over (e.g. the colour
    conversion of a lazily converted frame).

    The items arrive in order and unchanged. An exception raised by ``items`` or ``prepare`` is raised in the
    consumer at the position where it happened. Closing the returned generator (or breaking out of a loop over
    it) stops the thread, closes ``items`` there (a generator's ``finally`` blocks run, e.g. a container is
    closed) and waits for it, so nothing reads on afterwards.

    Args:
        items: any iterable; it is consumed by the background thread only.
        depth: the queue bound (memory: ``depth`` items plus the one in preparation).
        prepare: optional per-item work done ahead.
        name: the thread's name.

    Yields:
        the items of ``items``.
    """
    import queue
    import threading

    q: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        it = iter(items)
        try:
            for x in it:
                if prepare is not None:
                    prepare(x)
                if not put((x, None)):
                    return
            put((end, None))
        except BaseException as e:  # handed to the consumer
            put((end, e))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            x, err = q.get()
            if x is end:
                if err is not None:
                    raise err
                return
            yield x
    finally:
        stop.set()
        thread.join()
