"""The audit hook an isolation worker sets around a tool call (PEP 578).

``restrict(skill, deny, block_ip)`` makes the process refuse, until the returned function
is called, what ``deny`` names:

- "network": connecting, binding or sending on Unix sockets; with ``block_ip`` (the
  ``audit`` sandbox, where no network namespace does it) also creating IP sockets, any
  socket operation on them and name lookups;
- "filesystem": opening files for writing, creating, removing, renaming or changing files
  and directories, and opening SQLite databases (reading files stays allowed: imports
  need it). ``os.mkfifo`` and ``os.mknod`` raise no audit event of their own, so the
  first restricted call replaces them (in ``os`` and ``posix``) by versions that raise
  one before creating anything;
- "subprocess": starting programs (``subprocess``, ``os.system``, ``os.exec*``,
  ``os.posix_spawn``, ``os.spawn*``) and forking.

The refusal is a ``ToolPermissionError`` (a ``PermissionError``) naming the tool, the
permission and what it tried. Audit hooks see what Python code does; a C extension making
system calls itself is not seen, which is why network isolation prefers a namespace.

A hook cannot be removed once added: it is added at the first restricted call and does
nothing while no call is restricted (one comparison per audited event).
"""

from __future__ import annotations

import functools
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from sof_core.errors import ToolPermissionError

_NETWORK_EVENTS = frozenset({
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
})
_LOOKUP_EVENTS = frozenset({
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.getnameinfo",
})
_SUBPROCESS_EVENTS = frozenset({
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "pty.spawn", "os.startfile",
})
_FILE_EVENTS = frozenset({
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link",
    "os.truncate", "os.chmod", "os.chown", "os.utime", "os.mkfifo", "os.mknod",
    "shutil.rmtree", "shutil.move", "os.removexattr", "os.setxattr", "os.chflags",
    "os.lchflags",
})
#: Functions that create files but raise no audit event in CPython (3.10 to 3.13): wrapped
#: so that they raise the event named here, which ``_FILE_EVENTS`` refuses.
_UNAUDITED = {"mkfifo": "os.mkfifo", "mknod": "os.mknod"}
#: sqlite3 opens (and creates) the file it is given; any connection, ":memory:" too, can
#: create and write files with ATTACH or VACUUM INTO, which raise no audit event.
_SQLITE_EVENT = "sqlite3.connect"
_WRITE_FLAGS = (
    os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    | getattr(os, "O_TMPFILE", 0)
)
_UNIX = getattr(socket, "AF_UNIX", None)


class _State:
    skill: str | None = None
    deny: frozenset[str] = frozenset()
    block_ip: bool = False


_state = _State()
_installed = False


def restrict(skill: str | None, deny: frozenset[str], block_ip: bool = False) -> Callable[[], None]:
    """Refuse what ``deny`` names until the returned function is called."""
    global _installed
    if not deny:
        return _nothing
    if not _installed:
        _audit_unaudited()
        sys.addaudithook(_hook)
        _installed = True
    _state.skill, _state.deny, _state.block_ip = skill, deny, block_ip and "network" in deny

    def lift() -> None:
        _state.skill, _state.deny, _state.block_ip = None, frozenset(), False

    return lift


def _nothing() -> None:
    return None


def _audit_unaudited() -> None:
    """Replace the file-creating functions that raise no audit event (``_UNAUDITED``), in
    ``os`` and in ``posix`` where a tool could reach the original, by versions that raise
    the event first. Code that took the original before the first restricted call (a
    module that did ``from os import mkfifo``) keeps it: in an isolation worker that is
    SOF's own code, which does not."""
    modules: list[Any] = [os]
    if "posix" in sys.builtin_module_names:
        import posix
        modules.append(posix)
    for name, event in _UNAUDITED.items():
        original = getattr(os, name, None)
        if original is None or getattr(original, "__sof_audited__", False):
            continue
        wrapper = _audited(event, original)
        for module in modules:
            if getattr(module, name, None) is original:
                setattr(module, name, wrapper)


def _audited(event: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def audited(*args: Any, **kwargs: Any) -> Any:
        sys.audit(event, *args, *kwargs.values())
        return function(*args, **kwargs)

    audited.__sof_audited__ = True  # type: ignore[attr-defined]
    return audited


def _hook(event: str, args: tuple[Any, ...]) -> None:
    deny = _state.deny
    if not deny:
        return
    if "network" in deny and event.startswith("socket."):
        _network(event, args)
    elif "subprocess" in deny and event in _SUBPROCESS_EVENTS:
        _refuse("subprocess", f"{event}{_args(args)}", "start programs")
    elif "filesystem" in deny:
        if event == "open":
            path, mode, flags = (*args, None, None, None)[:3]
            if _writes(mode, flags):
                _refuse("filesystem", f"open({path!r}, {mode or flags!r})", "write files")
        elif event in _FILE_EVENTS:
            _refuse("filesystem", f"{event}{_args(args)}", "change files")
        elif event == _SQLITE_EVENT:
            _refuse("filesystem", f"sqlite3.connect{_args(args)}",
                    "open databases (a SQLite connection creates and writes files, "
                    "':memory:' ones too through ATTACH)")


def _network(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.__new__":
        family = args[1] if len(args) > 1 else None
        if _state.block_ip and family != _UNIX:
            _refuse("network", f"socket(family={family!r})", "open network sockets")
        return
    if event in _LOOKUP_EVENTS:
        if _state.block_ip:
            _refuse("network", f"{event}{_args(args)}", "look up host names")
        return
    if event in _NETWORK_EVENTS:
        family = getattr(args[0], "family", None) if args else None
        if family == _UNIX or _state.block_ip:
            _refuse("network", f"{event}({args[1] if len(args) > 1 else ''!r})",
                    "use sockets")


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _args(args: tuple[Any, ...]) -> str:
    try:
        text = repr(args[0]) if args else ""
    except Exception:
        text = "..."
    return f"({text[:80]})"


def _refuse(permission: str, what: str, verb: str) -> None:
    skill = _state.skill
    raise ToolPermissionError(
        skill, permission,
        f"{what} refused: the tool has no {permission!r} permission, so it may not {verb}; "
        f"declare permissions = {{{permission!r}}} on it if it must (the tool policy may "
        "still deny it)",
    )


# --- signals: no isolated skill reaches the host ----------------------------------------------


def protect_host() -> None:
    """Refuse, for good in this process (an isolation worker), sending a signal to any
    process but this one and those it started: ``os.kill(os.getppid(), SIGKILL)`` from a
    skill, or ``os.kill(-1, ...)``, would end the host (or every process of its user).

    An audit hook, as the tool guard: a program the skill runs (``kill``) or a C call is
    not seen; a tool without the "subprocess" permission cannot start one."""
    sys.addaudithook(_signal_hook)


def _signal_hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "os.kill":
        target, signal_number = args[0], args[1]
        if not _may_signal(target):
            _refuse_signal(f"os.kill({target!r}, {signal_number!r})")
    elif event == "os.killpg":
        group, signal_number = args[0], args[1]
        if not isinstance(group, int) or group <= 0 or group != os.getpgid(0):
            _refuse_signal(f"os.killpg({group!r}, {signal_number!r})")


def _may_signal(pid: Any) -> bool:
    """This process, its own process group (it was started in a session of its own), or
    a process it started (its descendants: it is their subreaper on Linux)."""
    if not isinstance(pid, int) or pid == -1:
        return False
    me = os.getpid()
    if pid in (0, me):
        return True
    if pid < -1:
        return -pid == os.getpgid(0)
    return _descends_from(pid, me)


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is a descendant of ``ancestor`` (its parents, read from ``/proc``;
    without ``/proc``, whether it is in this process's group). A process that is gone is
    let through: the signal then fails by itself."""
    if not os.path.isdir("/proc/self"):
        try:
            return os.getpgid(pid) == os.getpgid(0)
        except OSError:
            return True
    if not os.path.exists(f"/proc/{pid}"):
        return True
    try:
        for _ in range(64):
            with open(f"/proc/{pid}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
            if parent == ancestor:
                return True
            if parent <= 1:
                return False
            pid = parent
    except (OSError, ValueError, IndexError):  # a parent went meanwhile: refused
        pass
    return False


def _refuse_signal(what: str) -> None:
    raise PermissionError(
        f"{what} refused: an isolated skill may signal only its own process and the "
        "processes it started, never the host or other processes"
    )
