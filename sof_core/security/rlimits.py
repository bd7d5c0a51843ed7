"""What an isolated call's CPU and memory limits come to in this process: shared by the
isolation worker (``sof_core.execution._worker``, soft limits lifted after each call) and
the forked child (``sof_core.security.forked``, limits lowered for good), so both count a
limit the same way.

Standard library only: the worker imports it for every call.
"""

from __future__ import annotations

import math
import os


def limit_targets(cpu_seconds: float | None, memory_mb: float | None) -> list[tuple[int, int]]:
    """``(resource, value)`` to set for a call given ``cpu_seconds`` and ``memory_mb``.

    CPU time is counted for the whole process, so the limit is what it used so far plus the
    call's seconds; memory comes on top of the address space the process has now (only on
    Linux, where ``/proc`` tells it; elsewhere ``RLIMIT_AS`` is not enforced anyway).
    """
    import resource

    targets: list[tuple[int, int]] = []
    if cpu_seconds:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        targets.append((resource.RLIMIT_CPU,
                        math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)))
    if memory_mb:
        base = address_space()
        if base is not None:
            targets.append((resource.RLIMIT_AS, base + int(memory_mb * 2**20)))
    return targets


def address_space() -> int | None:
    """This process's address space now (Linux), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


__all__ = ["address_space", "limit_targets"]
