"""Finding and killing every process an isolated skill started (Linux ``/proc``).

Used by the host to kill a worker at a deadline (``isolation``) and by a worker whose host
has gone (``_worker``): both must reach daemons that left the worker's process group. No
import beyond the standard library's ``os``/``signal``/``sys``: a worker loads it at start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def kill_tree(root: int, *, spare_root: bool = False) -> None:
    """SIGKILL ``root`` and every process descended from it (Linux; elsewhere a no-op);
    with ``spare_root``, only its descendants (a worker ending its own tree).

    A skill can leave its worker's process group (``setsid()``, as daemons do), so killing
    the group misses it. The worker is a child subreaper (``_worker``): a descendant whose
    parent exits is re-parented to the worker, not to init, so every process the skill
    started is found by following parent ids in ``/proc``. They are stopped first (SIGSTOP:
    a stopped process cannot fork), until no new one appears, then killed together.
    """
    if not sys.platform.startswith("linux"):
        return
    stopped: set[int] = set()
    found = _descendants({root}) if spare_root else {root}
    for _ in range(16):  # each round stops what the last one found: it cannot fork again
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= found
        found = _descendants(stopped | {root}) - stopped - {root}
        if not found:
            break
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def stat_fields(pid: int) -> list[bytes]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first, then the
    parent id, ...); ``OSError`` when the process is gone or there is no ``/proc``."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[1].split()


def _descendants(roots: set[int]) -> set[int]:
    """The processes whose parent chain reaches one of ``roots`` (read from ``/proc``)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for name in entries:
        if not name.isdigit():
            continue
        try:
            fields = stat_fields(int(name))
        except (OSError, IndexError):
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(name))
    result: set[int] = set()
    pending = list(roots)
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in result:
                result.add(child)
                pending.append(child)
    return result


__all__ = ["kill_tree"]
