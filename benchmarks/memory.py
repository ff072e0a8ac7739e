"""Peak resident memory of this process, for the benchmarks that run each case in a fresh subprocess.

``getrusage(RUSAGE_SELF).ru_maxrss`` is not that on Linux: a process started by ``fork`` + ``exec`` inherits the
parent's high-water mark (the parent that wrote a 16-minute test clip reported its own 600 MB for every child).
``VmHWM`` of ``/proc/self/status`` belongs to this process's address space alone; ``ru_maxrss`` is the fallback
where there is no ``/proc``.
"""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """Peak resident set size of this process since its ``exec``, in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, kB elsewhere
