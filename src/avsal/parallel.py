"""Helpers for process pools (``--jobs``): workers that use one thread each on a small machine."""

from __future__ import annotations

import contextlib
import os

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
