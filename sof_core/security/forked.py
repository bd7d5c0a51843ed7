"""``run_forked``: a tool's guarantees for a call that cannot be pickled (a closure, a lambda,
a bound method of an object holding a lock, a function defined in ``__main__``).

``run_sandboxed`` sends the function to an isolation worker, which needs it pickled. SAM's
tools hand ``ToolSecurityManager.execute_tool_safely`` exactly such closures
(``def calculation_func(): return self._evaluate(...)``), so here the host forks instead:
the child process inherits the function as it is in memory, then, before calling it,

- without "network": enters a network namespace of its own (the ``unshare`` system call,
  with a user namespace when not root; its loopback is down, so every IP connection fails
  in the kernel), or, where the kernel refuses, turns on the audit hook's socket blocking
  (``network_isolation = "audit"``, or "auto" on such a host: the same documented fallback
  as for workers; "unshare" and "bwrap" both mean "a namespace" here, and are an error
  where none can be made);
- refuses what else it lacks through the audit hook (``guard``): writing files, starting
  programs, Unix sockets;
- sets hard limits on its memory and CPU time.

The host waits for the pickled result until the deadline and then kills the child. What
it raised comes back as the exception; a child that dies is a ``SkillCrashedError``, one
that hits a limit a ``SkillResourceLimitError``. The output is cut to ``max_output_bytes``.

Forking a host that runs other threads copies only the calling thread: a lock another
thread held stays held in the child. Python re-initialises its own (imports, logging); a
call that blocks on someone else's is killed at its deadline like any hung call. POSIX only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import pickle
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sof_core.errors import (
    SkillCrashedError,
    SkillExecutionError,
    SkillNotPicklableError,
    SkillReplyRefusedError,
    SkillResourceLimitError,
    SkillTimeoutError,
    ToolPermissionError,
)
from sof_core.security.guard import restrict
from sof_core.security.output import cut_to, output_size
from sof_core.security.policy import ToolLimits
from sof_core.security.ratelimit import check_rate
from sof_core.security.replies import network_refused, raised
from sof_core.security.rlimits import limit_targets
from sof_core.security.unpickling import (
    RefusedGlobal,
    load_reply,
    reply_sources,
    trusted_packages,
)

logger = logging.getLogger(__name__)

PERMISSION_NAMES = frozenset({"network", "filesystem", "subprocess"})
_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_PROTOCOL = pickle.HIGHEST_PROTOCOL
#: Exit status of a child that could not set itself up (it says why on stderr).
_SETUP_FAILED = 70
_fork_lock = threading.Lock()


def can_fork() -> bool:
    """Whether this platform can run forked calls (POSIX)."""
    return hasattr(os, "fork") and sys.platform != "win32"


def run_forked(
    func: Callable[..., Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    name: str,
    tool: ToolLimits,
    memory_mb: float | None = None,
    cpu_seconds: float | None = None,
    count_rate: bool = True,
    deadline: float | None = None,
) -> Any:
    """``func(*args, **kwargs)`` in a forked child under ``tool``'s permissions and limits.

    Raises what the call raised (a refused action is a ``ToolPermissionError``), or
    ``SkillTimeoutError`` (killed at ``tool.timeout``), ``ToolRateLimitError`` (when
    ``count_rate``), ``SkillResourceLimitError``, ``SkillCrashedError``, each naming
    ``name``; ``SkillNotPicklableError`` when the result cannot be pickled back.
    ``deadline`` (monotonic) overrides ``tool.timeout`` counted from now.
    """
    if not can_fork():
        raise SkillNotPicklableError(name, "the call", "this platform cannot fork")
    if tool.denied is not None:
        raise ToolPermissionError(name, "tool_policy", tool.denied)
    if count_rate:
        check_rate(name, tool.calls_per_minute)
    deny = PERMISSION_NAMES - tool.permissions
    timeout = tool.timeout
    if deadline is None:
        deadline = math.inf if timeout is None else time.monotonic() + timeout
    # One fork at a time: a child forked while another call's pipe is open in the host
    # would hold that pipe's write end, and its host would wait for this child's exit.
    with _fork_lock:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            with contextlib.suppress(OSError):
                os.setpgid(0, 0)  # a group of its own: killing it kills what it started
            _child(write_end, func, tuple(args), dict(kwargs or {}), name, deny,
                   tool.network_isolation, memory_mb, cpu_seconds)
        os.close(write_end)
        with contextlib.suppress(OSError):  # also here: no race with an early kill
            os.setpgid(pid, pid)
    try:
        data, timed_out = _collect(read_end, deadline)
    finally:
        os.close(read_end)
    if timed_out:
        _kill(pid)
        raise SkillTimeoutError(
            f"did not finish within {timeout}s (max_execution_time); its process was killed",
            name,
        )
    status = _reap(pid, deadline)
    packages = trusted_packages(*reply_sources(func))
    try:
        reply = _load(data, packages)
    except RefusedGlobal as refused:
        raise SkillReplyRefusedError(name, refused.name, refused.trustable) from None
    if reply is None:
        raise _death(name, status, memory_mb, cpu_seconds)
    return _result(name, reply, memory_mb, tool.max_output_bytes, packages)


# --- the host side -----------------------------------------------------------------------------


def _collect(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything the child writes until it closes the pipe; (data, timed out)."""
    chunks: list[bytes] = []
    while True:
        wait = None if deadline == math.inf else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def _kill(pid: int) -> None:
    """Kill the child and every process in its group (what it started), then reap it."""
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _reap(pid: int, deadline: float) -> int:
    """The child's wait status (it closed its end: it is exiting; killed if it lingers)."""
    give_up = min(deadline, time.monotonic() + 5.0)
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return status
        if time.monotonic() >= give_up:
            _kill(pid)
            return -1
        time.sleep(0.005)


def _load(data: bytes, packages: frozenset[str]) -> tuple[Any, ...] | None:
    """The child's reply, read without trusting it (``load_reply``); None if it sent none
    or broken data (it died writing). A reply naming a global it may not send raises
    ``RefusedGlobal``."""
    if not data:
        return None
    try:
        reply = load_reply(data, packages)
    except RefusedGlobal:
        raise
    except Exception:
        return None
    return reply if isinstance(reply, tuple) and reply else None


def _death(
    name: str, status: int, memory_mb: float | None, cpu_seconds: float | None
) -> SkillExecutionError:
    """The error for a child that ended without answering."""
    if status > 0 and os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number == signal.SIGXCPU and cpu_seconds:
            return SkillResourceLimitError(
                name, "cpu_seconds", cpu_seconds,
                f"used more than its {cpu_seconds:g} CPU seconds (cpu_seconds) and was killed",
            )
        try:
            label = signal.Signals(number).name
        except ValueError:
            label = "?"
        return SkillCrashedError(
            name, f"its process was killed by signal {label} ({number}) before it returned",
            signal=number,
        )
    if status > 0 and os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return SkillCrashedError(name, f"its process exited with code {code} before it "
                                 "returned", exit_code=code)
    return SkillCrashedError(name, "its process ended before it returned")


def _result(
    name: str, reply: tuple[Any, ...], memory_mb: float | None, limit: int | None,
    packages: frozenset[str] = frozenset(),
) -> Any:
    kind = reply[0]
    if kind == "ok":
        value = reply[1]
        if limit is not None and output_size(value) > limit:
            size = output_size(value)
            value, _ = cut_to(value, limit)
            logger.warning("output of tool %r cut to %d bytes (max_output_bytes): it returned "
                           "%d bytes", name, limit, size)
        return value
    if kind == "memory":
        value = float(memory_mb or 0)
        raise SkillResourceLimitError(
            name, "memory_mb", value,
            f"ran out of memory: its limit is {value:g} MB (memory_mb)",
        )
    if kind == "setup":  # the sandbox or limits it must run with cannot be set here
        if reply[1] == "network":
            raise ToolPermissionError(name, "network", reply[2])
        raise SkillCrashedError(name, f"its resource limits could not be set: {reply[2]}")
    if kind == "unpicklable":
        raise SkillNotPicklableError(name, "what it returned", reply[1])
    _, data, type_name, text, trace = reply
    error: BaseException | None = None
    if data is not None:
        with contextlib.suppress(Exception):  # refused: told by name and text instead
            error = load_reply(data, packages)
    if not isinstance(error, Exception):  # SystemExit and the like must not end the host
        error = SkillExecutionError(f"raised {type_name}: {text}", name)
    error.__cause__ = _Traceback(trace)
    raise error


class _Traceback(Exception):
    """The traceback of what the forked call raised, as text."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- the child side ----------------------------------------------------------------------------


def _child(
    fd: int,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    deny: frozenset[str],
    mode: str,
    memory_mb: float | None,
    cpu_seconds: float | None,
) -> None:
    """Set the sandbox up, run the call, write the pickled reply to ``fd`` and exit."""
    code = 0
    try:
        reply: tuple[Any, ...]
        step = "network"
        try:
            block_ip = _isolate_network(mode) if "network" in deny else False
            step = "limits"
            _hard_limits(memory_mb, cpu_seconds)
        except Exception as exc:
            _send(fd, pickle.dumps(("setup", step, str(exc)), _PROTOCOL))
            os._exit(_SETUP_FAILED)
        restrict(name, deny, block_ip)
        try:
            reply = ("ok", func(*args, **kwargs))
        except MemoryError:
            reply = ("memory",)
        except OSError as exc:
            reply = raised(network_refused(name, exc, deny))
        except BaseException as exc:
            reply = raised(exc)
        try:
            data = pickle.dumps(reply, _PROTOCOL)
        except MemoryError:
            data = pickle.dumps(("memory",), _PROTOCOL)
        except BaseException as exc:
            data = pickle.dumps(("unpicklable", f"{type(exc).__name__}: {exc}"), _PROTOCOL)
        _send(fd, data)
    except BaseException:
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def _send(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _isolate_network(mode: str) -> bool:
    """Take this (single-threaded, forked) process off the network; True when only the
    audit hook can (the caller then blocks IP sockets in it)."""
    if mode == "audit":
        return True
    if _unshare_network():
        return False
    if mode == "auto":
        return True
    raise OSError(
        f"tool_policy.network_isolation is {mode!r}, but this process may not create a "
        "network namespace here; set it to \"auto\" or \"audit\" for the in-process fallback"
    )


def _unshare_network() -> bool:
    """Enter a new network namespace (as root, else inside a new user namespace)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        unshare = libc.unshare
    except (OSError, AttributeError):
        return False
    if unshare(_CLONE_NEWNET) == 0:
        return True
    return bool(unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0)


def _hard_limits(memory_mb: float | None, cpu_seconds: float | None) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for which, value in limit_targets(cpu_seconds, memory_mb):
        _lower(which, value)


def _lower(which: int, value: int) -> None:
    import resource

    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, hard if hard != resource.RLIM_INFINITY else value + 1))
