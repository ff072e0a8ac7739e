"""Exceptions raised by avsal for bad input.

Every error about a file names that file, so a batch run can report it and go on.
"""

from __future__ import annotations

import os


class AvsalError(Exception):
    """Base class of avsal's own errors."""


class InputError(AvsalError):
    """An input file that avsal cannot use (missing, not a video, truncated, ...).

    Args:
        path: the offending file.
        problem: one sentence saying what is wrong with it.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OutputError(AvsalError):
    """An output location that cannot be written (not a folder, no permission, disk full, ...)."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
