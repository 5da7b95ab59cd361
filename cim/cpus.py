"""How many CPUs this process may run on: the size of its CPU affinity set (``taskset``,
cgroup cpusets, ``docker --cpuset-cpus``), not the machine's count. Worker pools size themselves
with it, so a server pinned to two cores of a 64-core host starts two workers, not 64.
Standard library only."""
from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs the scheduler lets this process use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API (macOS, Windows)
        return os.cpu_count() or 1
