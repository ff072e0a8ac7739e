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


class UsageError(AvsalError, ValueError):
    """A bad option or setting given by the user (the command line's exit code 2).

    A ``ValueError`` too, so that code catching the bad-value errors of the Python API keeps working.
    """


class ConfigError(UsageError):
    """A configuration value that cannot be used, found when the configuration is loaded.

    Args:
        key: the dotted key path (``crop.empty_box``, ``--set w_sync``).
        problem: what is wrong, with the allowed values where there is a closed set.
        source: the file (or ``--set``) the value came from, if any.
    """

    def __init__(self, key: str, problem: str, source: str | None = None):
        self.key, self.problem, self.source = key, problem, source
        super().__init__(f"{source + ': ' if source else ''}{key}: {problem}")


#: Exit codes of every ``avsal`` command (``avsal.cli``): all done; some inputs failed (the others
#: finished); bad usage, bad configuration or an input/output that stops the whole command; Ctrl-C.
EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
