"""The isolation worker: a process that runs isolated skill calls, one at a time.

Started by ``sof_core.execution.isolation`` as ``python -m sof_core.execution._worker FD``
with a clean environment; ``FD`` is its end of a socket pair to the host. It imports the
remote-call code once and says it is ready; then per call it reads a header (plain data:
the import path, limits, extra environment) and the pickled call, sets the call's resource
limits, runs it through ``run_skill_call`` and sends back what the skill changed, or what
went wrong. A skill that ends the process (a segfault, ``os._exit``, SIGXCPU at its CPU
limit) ends the worker: the host sees the socket close, reads the exit status and starts
another. After a call that hit its memory or open-files limit the worker exits by itself
once it has answered, since the skill may have left it short of either. A reply longer than
the call's ``output_mb`` is replaced by a "limit" reply saying so (the host would refuse to
read it); the worker goes on.

The limits are soft limits set around each call and lifted after it (the worker is reused,
and a hard limit can never be raised again): they stop runaway skills, not a skill that
lifts them on purpose. The host's deadline is the hard stop: it kills the worker.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import pickle
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

_LENGTH = struct.Struct("!Q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL


# --- framing, shared with the host ---------------------------------------------------------


def send_frame(sock: socket.socket, data: bytes) -> None:
    """One length-prefixed message (the caller sets the socket's timeout)."""
    sock.sendall(_LENGTH.pack(len(data)))
    sock.sendall(data)


class FrameTooLarge(Exception):
    """A message announced as longer than the reader accepts; ``size`` is its length."""

    def __init__(self, size: int) -> None:
        super().__init__(f"a message of {size} bytes")
        self.size = size


def recv_frame(sock: socket.socket, deadline: float = math.inf,
               limit: int | None = None) -> bytearray:
    """One message; ``TimeoutError`` past ``deadline`` (monotonic), ``EOFError`` when the
    other side closed (or died) before sending it all, ``FrameTooLarge`` when its length is
    over ``limit`` bytes: checked before anything is allocated, since the length comes from
    the other process (an isolated skill can write to its worker's socket)."""
    (length,) = _LENGTH.unpack(_recv_exact(sock, _LENGTH.size, deadline))
    if limit is not None and length > limit:
        raise FrameTooLarge(length)
    return _recv_exact(sock, length, deadline)


def _recv_exact(sock: socket.socket, size: int, deadline: float) -> bytearray:
    """``size`` bytes, in the buffer they were read into (no copy: a reply can be large)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        if deadline != math.inf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
        count = sock.recv_into(view[got:])
        if count == 0:
            raise EOFError
        got += count
    view.release()
    return buffer


# --- the worker ------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    import faulthandler
    import resource

    _open_missing_streams()
    faulthandler.enable()  # a segfaulting C extension leaves its Python stack on stderr
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # and no core file behind
    _become_subreaper()
    from sof_core.security.guard import protect_host

    protect_host()  # no skill here may signal the host (or anything it did not start)
    sock = socket.socket(fileno=int(argv[1]))
    sock.setblocking(True)
    # Before "ready": calls find them imported, also under an open-files limit that leaves
    # no descriptor to read a module with.
    import sof_core.execution.deadlines
    import sof_core.execution.failures
    import sof_core.execution.remote
    import sof_core.security.replies  # noqa: F401

    worker = os.getpid()
    _watch_host(sock)

    try:
        send_frame(sock, pickle.dumps(("ready", os.getpid()), _PROTOCOL))
    except OSError:  # the host exited (or let this worker go) while it started: no traceback
        os._exit(0)
    while True:
        try:
            header = pickle.loads(recv_frame(sock))  # plain data written by the host
            payload = recv_frame(sock)
        except (EOFError, OSError):
            os._exit(0)  # the host exited or let this worker go
        reply, spent = _serve(header, payload)
        if os.getpid() != worker:
            # A process the skill forked returned from the skill too: only the worker
            # answers (two answering on one socket would hand a later call this reply).
            os._exit(0)
        try:
            send_frame(sock, str(header.get("call", "")).encode())  # which call it answers
            send_frame(sock, reply)
        except OSError:  # the host is gone, or killed the call: nobody waits for the reply
            os._exit(0)
        if spent:
            os._exit(0)  # a limit hit, or a tool's threads left running: the host starts another
        _reap()


def _open_missing_streams() -> None:
    """/dev/null on a standard descriptor this worker was started without (the host gives
    it all three; a sandbox program in between may not): ``faulthandler`` needs a stderr,
    and a file the skill opens must not become the stdout its prints go to."""
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: ``fd``
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(sys, name, open(fd, "r" if fd == 0 else "w", encoding="utf-8",  # noqa: SIM115
                                errors="backslashreplace"))


def _watch_host(sock: socket.socket) -> None:
    """End this worker, and every process its skill started, as soon as the host is gone,
    also in the middle of a call that never returns (nothing would read the socket again
    until it did). Linux: a thread waits for the host's end of the socket to close
    (``POLLRDHUP``: no CPU while it waits); elsewhere it checks the parent every second."""
    import select
    import threading

    host = os.getppid()
    rdhup = getattr(select, "POLLRDHUP", 0)
    poller = select.poll() if rdhup and hasattr(select, "poll") else None
    if poller is not None:
        poller.register(sock.fileno(), rdhup)

    def watch() -> None:
        while True:
            if poller is not None:
                gone = bool(poller.poll(1000))
            else:
                time.sleep(1.0)
                gone = False
            if gone or os.getppid() != host:
                _end_tree()

    threading.Thread(target=watch, name="sof-worker-host-watch", daemon=True).start()


def _end_tree() -> None:
    """Kill every process the skill started, then this one (the host is gone)."""
    import resource
    import signal

    from sof_core.execution._proctree import kill_tree

    with contextlib.suppress(ValueError, OSError):  # /proc must be readable to find them
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(Exception):
        kill_tree(os.getpid(), spare_root=True)
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(0)


def _become_subreaper() -> None:
    """Linux: processes a skill starts stay this worker's descendants even when their parent
    exits (they are re-parented here, not to init), so the host finds and kills them with the
    worker (``_proctree.kill_tree``), daemons that left the process group included."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_child_subreaper = 36
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def _reap() -> None:
    """Collect the exit status of every child that has ended (a subreaper adopts the
    skill's orphans): they would stay zombies for as long as this worker lives."""
    with contextlib.suppress(ChildProcessError, OSError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _serve(header: dict[str, Any], payload: bytes | bytearray) -> tuple[bytes, bool]:
    """Run one call with its limits and environment: the pickled reply, and whether the
    call hit a limit (this worker then exits)."""
    if header["path"] != sys.path:
        sys.path[:] = header["path"]
    restore_env = _environment(header["env"])
    # A tool's guard before anything of the call is loaded: unpickling a function sent by
    # value can run code (a value whose reduce is os.mkdir), and that code is the tool's.
    unguard = _guard(header.get("guard"))
    threads = _threads() if unguard is not _nothing else None
    # The limits after: loading may import the skill's module, which needs descriptors an
    # open-files limit meant for the skill's own work would deny.
    call = _load(payload)
    lift = _limit(header["limits"])
    leaked = False
    forget_deadline = _deadline(header.get("remaining"))
    try:
        try:
            reply = _run(call, header.get("guard"))
        except MemoryError:
            reply = ("limit", "memory_mb", "")
        # A thread a restricted tool started and left running would go on past the call,
        # unrestricted once the guard is lifted: the guard stays, the worker answers and
        # exits ("retiring": the host starts another), and the thread ends with it.
        leaked = threads is not None and bool(_threads() - threads)
        try:
            data = pickle.dumps(reply, _PROTOCOL)
        except MemoryError:
            reply = ("limit", "memory_mb", " while sending back what it wrote")
            data = pickle.dumps(reply, _PROTOCOL)
        except BaseException as exc:
            data = pickle.dumps(("unpicklable", f"{type(exc).__name__}: {exc}"), _PROTOCOL)
        output = header.get("output")
        if output is not None and len(data) > output:  # the host would refuse to read it
            reply = ("limit", "output_mb", f": it sent back {len(data) / 2**20:.1f} MB")
            data = pickle.dumps(reply, _PROTOCOL)
        if leaked:  # the reply as it is, and word that this worker exits after it
            data = pickle.dumps(("retiring", bytes(data)), _PROTOCOL)
    finally:
        forget_deadline()
        if not leaked:
            unguard()
        lift()
        restore_env()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # closed or broken: nothing to flush
            stream.flush()
    # Too much output leaves the worker as it was; the other limits may not have.
    return data, leaked or (reply[0] == "limit" and reply[1] != "output_mb")


def _threads() -> set[int]:
    """This process's threads, by native id: every one on Linux (``/proc/self/task``,
    threads started with ``_thread`` directly included), else those ``threading`` knows."""
    try:
        return {int(name) for name in os.listdir("/proc/self/task")}
    except OSError:
        import threading

        return {t.native_id for t in threading.enumerate() if t.native_id is not None}


def _load(payload: bytes | bytearray) -> tuple[Any, ...]:
    """``("call", skill, inputs, fields)``, or the ``unloadable`` reply saying why not."""
    try:
        skill, inputs, fields = pickle.loads(payload)
    except BaseException as exc:
        return ("unloadable", f"{type(exc).__name__}: {exc}")
    return ("call", skill, inputs, fields)


def _run(call: tuple[Any, ...], guard: dict[str, Any] | None = None) -> tuple[Any, ...]:
    from sof_core.execution.remote import run_skill_call

    if call[0] != "call":
        return call
    _, skill, inputs, fields = call
    try:
        return ("ok", run_skill_call(skill, inputs, fields))
    except MemoryError:
        raise
    except OSError as exc:
        if exc.errno == errno.EMFILE:
            return ("limit", "open_files", f" ({exc})")
        from sof_core.security.replies import network_refused, raised

        return raised(network_refused(guard["skill"], exc, guard["deny"]) if guard else exc)
    except BaseException as exc:
        from sof_core.execution.failures import skill_trace
        from sof_core.security.replies import raised

        # With where it failed in the skill's own code, found here where the frames are.
        return (*raised(exc), *skill_trace(skill, exc))


def _deadline(remaining: float | None) -> Callable[[], None]:
    """The skill's ``sof_core.current_deadline()`` for this call, from the time it had left
    when the host sent it; the undo."""
    if remaining is None:
        return _nothing
    from sof_core.execution.deadlines import _task_deadline, clock

    token = _task_deadline.set(clock() + remaining)
    return lambda: _task_deadline.reset(token)


def _environment(env: dict[str, str]) -> Callable[[], None]:
    """Give the call the variables the host passes it; take them back afterwards."""
    if not env:
        return _nothing
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)

    def restore() -> None:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore


def _limit(limits: tuple[float | None, float | None, float | None]) -> Callable[[], None]:
    """Set this call's soft limits; the returned function lifts them again."""
    import resource

    from sof_core.security.rlimits import limit_targets

    cpu, memory_mb, open_files = limits
    previous: list[tuple[int, tuple[int, int]]] = []

    def soft(which: int, value: int) -> None:
        current = resource.getrlimit(which)
        hard = current[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard))
        previous.append((which, current))

    for which, value in limit_targets(cpu, memory_mb):
        soft(which, value)
    if open_files:
        soft(resource.RLIMIT_NOFILE, int(open_files))

    def lift() -> None:
        for which, limit in reversed(previous):
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(which, limit)

    return lift


def _guard(guard: dict[str, Any] | None) -> Callable[[], None]:
    """For a tool: refuse what it has no permission for until the returned function is
    called (``sof_core.security.guard``; None for other skills: nothing to refuse)."""
    if not guard or not guard["deny"]:
        return _nothing
    from sof_core.security.guard import restrict

    return restrict(guard["skill"], frozenset(guard["deny"]), guard["block_ip"])


def _nothing() -> None:
    return None


if __name__ == "__main__":
    main(sys.argv)
