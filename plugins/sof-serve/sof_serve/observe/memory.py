"""The process's resident memory as a percent of the machine's (for alerts and gauges)."""

from __future__ import annotations

import os


def process_memory_percent() -> float:
    """Resident memory of this process as a percent of the machine's (0 when unknown)."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
        with open("/proc/self/statm", encoding="ascii") as handle:
            resident = int(handle.read().split()[1]) * page
    except (OSError, ValueError, IndexError):
        return 0.0
    return 100.0 * resident / total if total else 0.0


__all__ = ["process_memory_percent"]
