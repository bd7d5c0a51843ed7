"""Process isolation: running a skill in a worker process that is killed at its deadline.

A skill runs isolated when it sets ``isolation = "process"``, when its plugin sets
``SOF_ISOLATION = "process"`` (in the skill's module or its top-level package), or when
``SOFConfig.isolate_skills`` names it, its plugin or its distribution. The compiled ``Step``
then says ``isolation == "process"`` and ``run_step`` hands the call to ``run_isolated``.

The call crosses with the public remote-call API the Dask executor uses
(``sof_core.execution.remote``): only the skill and its declared inputs are sent, the worker
reports what the skill changed, and ``replay_changes`` applies it to the skill's guarded view,
so every check of a local run applies. Per call:

- The pool hands out an idle worker (``python -m sof_core.execution._worker``: started on
  first use with a clean environment, in a session of its own, then reused; at most
  ``isolation_workers`` of them). Workers are started with ``subprocess`` (fork + exec, like
  multiprocessing's "spawn"): never by forking this possibly threaded process, and without
  re-importing the host's ``__main__`` as "spawn" would.
- The worker sets the call's limits (CPU seconds, address space, open files) and runs it.
  A skill that crashes its process is a typed error naming the signal or exit code; the
  worker is replaced. So is a worker whose call hit its memory or open-files limit.
- At the deadline the host kills the worker's whole process group (SIGKILL) and starts a
  replacement: memory, descriptors and the stuck call are reclaimed at once.

Nothing here keeps the process from exiting: no thread waits on a worker; workers are killed
at exit, and exit by themselves when the host's end of their socket closes.
"""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import math
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from sof_core._timeouts import MAX_TIMEOUT
from sof_core.config.model import ISOLATION_IDLE_TIMEOUT_DEFAULT, ISOLATION_LIMIT_DEFAULTS
from sof_core.errors import (
    SkillCrashedError,
    SkillExecutionError,
    SkillNotPicklableError,
    SkillNotStartedError,
    SkillReplyRefusedError,
    SkillResourceLimitError,
    SkillTimeoutError,
    ToolPermissionError,
)
from sof_core.execution import _worker
from sof_core.execution._proctree import kill_tree, stat_fields
from sof_core.execution.deadlines import clock, current_deadline
from sof_core.execution.remote import call_payload, pack_call, replay_changes
from sof_core.execution.watchdog import Entry, watchdog
from sof_core.graph.compile import IsolationSettings
from sof_core.security.unpickling import RefusedGlobal, load_reply, trusted_packages
from sof_core.skills.spec import PERMISSIONS

if TYPE_CHECKING:
    from sof_core.graph.compile import Step
    from sof_core.security.policy import ToolLimits
    from sof_core.uif import UIF

#: What an isolated skill's environment always holds when the host has it: enough to find
#: programs, the user's directories and the locale, nothing that could be a secret.
MINIMAL_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
    "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR",
)
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_WORKER_MODULE = "sof_core.execution._worker"
#: The worker's "ready" message is a few dozen bytes.
_READY_LIMIT = 2**16
#: The call id a worker sends before each reply (16 hex digits).
_CALL_ID_LIMIT = 64


# --- one worker --------------------------------------------------------------------------------


class _Deadline(Exception):
    """The call (or the worker's start) was still going at the deadline."""


class _Gone(Exception):
    """The worker process is gone (its socket closed)."""


class _Stray(Exception):
    """The worker answered another call than the one sent (a process a skill left behind
    wrote to its socket)."""


def _socket_timeout(deadline: float) -> float | None:
    """A socket timeout that ends at ``deadline`` (``time.monotonic()``; inf: none)."""
    return None if deadline == math.inf else max(deadline - _now(), 1e-6)


#: Whether process states can be read in ``/proc`` (Linux; not macOS or Windows).
_PROC = os.path.exists("/proc/self/stat")


def _exiting(pid: int) -> bool:
    """Whether process ``pid`` has exited or is exiting (its state in ``/proc`` is zombie or
    dead); False where there is no ``/proc`` to ask."""
    if not _PROC:
        return False
    try:
        state = stat_fields(pid)[0]
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        return False
    return state in (b"Z", b"X")


class _Worker:
    """One worker process and the host's end of its socket."""

    def __init__(self, prefix: tuple[str, ...] = ()) -> None:
        self.ready = False  # its "ready" message has been read
        #: When it is retired if still idle (``time.monotonic()``; set when it goes idle).
        self.retire_at = math.inf
        # One start at a time: another's connection briefly on a descriptor 0-2 would
        # be taken for an open standard stream here and handed to this worker.
        with _start_lock:
            host, child = _connection()
            try:
                # prefix: a sandbox the worker starts in (``unshare --net``, for tools
                # without the "network" permission; see sof_core.security.sandbox)
                command = [*prefix, sys.executable, "-m", _WORKER_MODULE]
                try:
                    self.process = subprocess.Popen(
                        [*command, str(child.fileno())],
                        env=clean_environment(),
                        pass_fds=(child.fileno(),),
                        stdin=subprocess.DEVNULL,
                        # /dev/null for a stream the worker would not inherit: never a
                        # descriptor it opens later (a skill's print would write into it)
                        stdout=None if _inherited(1) else subprocess.DEVNULL,
                        stderr=None if _inherited(2) else subprocess.DEVNULL,
                        cwd=_worker_cwd(),
                        start_new_session=True,  # its own process group (killed whole)
                    )
                except OSError as exc:  # the sandbox program or the interpreter is missing
                    raise WorkerStartError(f"could not start an isolation worker "
                                           f"({' '.join(command)}): {exc}") from exc
            except BaseException:
                host.close()
                raise
            finally:
                child.close()
        self.sock = host

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        """Running and not on its way out. A worker killed from outside can stay unreapable
        for a moment (its main thread a zombie, its other threads still exiting, its memory
        being freed), when ``poll`` still says running and its socket still takes a call
        that it will never answer: the process state says so first (Linux)."""
        return self.process.poll() is None and not _exiting(self.process.pid)

    def call(self, header: bytes, payload: bytes, deadline: float,
             limit: int | None = None, packages: frozenset[str] = frozenset(),
             open_packages: frozenset[str] = frozenset(), call_id: str = "",
             ) -> tuple[Any, ...]:
        """Send one call and return the worker's reply (a tuple, see ``_worker``); a reply
        announced as longer than ``limit`` bytes raises ``FrameTooLarge`` unread. The reply
        is read with ``load_reply`` (``packages``, ``open_packages``: see there): one
        naming anything else raises ``RefusedGlobal``. The worker first names the call it
        answers; another than ``call_id`` (the header's ``call``) raises ``_Stray``."""
        sock = self.sock
        try:
            self.wait_ready(deadline)
            sock.settimeout(_socket_timeout(deadline))
            _worker.send_frame(sock, header)
            _worker.send_frame(sock, payload)
            answered = _worker.recv_frame(sock, deadline, _CALL_ID_LIMIT)
            if bytes(answered) != call_id.encode():
                raise _Stray
            reply = _worker.recv_frame(sock, deadline, limit)
            return _load_reply(reply, packages, open_packages)
        except TimeoutError:
            raise _Deadline from None
        except (EOFError, OSError) as exc:
            raise _Gone from exc

    def wait_ready(self, deadline: float) -> None:
        """Wait until the worker has started (its "ready" message, sent once), or raise
        ``_Deadline`` at ``deadline`` / ``_Gone`` if it died starting. A call's deadline and
        the time left it tells the skill are taken after this: the start is not the
        skill's time."""
        if self.ready:
            return
        try:
            self.sock.settimeout(_socket_timeout(deadline))
            load_reply(_worker.recv_frame(self.sock, deadline, _READY_LIMIT))
        except TimeoutError:
            raise _Deadline from None
        except (EOFError, OSError) as exc:
            raise _Gone from exc
        self.ready = True

    def kill(self) -> None:
        """SIGKILL the worker and its process group, with any process its skill started:
        also those that left the group (a daemon's ``setsid``), on Linux (``kill_tree``)."""
        kill_tree(self.process.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.process.kill()
        self.sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored
            self.process.wait(5.0)

    def exit_status(self) -> int | None:
        """The worker's own exit code (negative: the signal), waiting briefly for it."""
        try:
            return self.process.wait(1.0)
        except subprocess.TimeoutExpired:
            return None


class WorkerStartError(OSError):
    """A worker process could not be started; the message says what failed, and why."""


#: Held while a worker starts (``_Worker``).
_start_lock = threading.Lock()


def _connection() -> tuple[socket.socket, socket.socket]:
    """A socket pair, the host's end and the worker's, neither on descriptors 0-2: a host
    that closed its standard streams (a daemon, ``2>&-``) would otherwise find the
    connection there, and so would the worker, as its stdout or stderr."""
    try:
        host, child = socket.socketpair()
        try:
            host = _above_standard(host)
            child = _above_standard(child)
        except BaseException:
            host.close()
            child.close()
            raise
        return host, child
    except OSError as exc:  # out of descriptors, say
        raise WorkerStartError("could not start an isolation worker: its connection to "
                               f"the host could not be made: {exc}") from exc


def _above_standard(sock: socket.socket) -> socket.socket:
    """``sock``, moved to a descriptor above 2 if it is on one of 0-2 (closed there)."""
    if sock.fileno() > 2 or os.name != "posix":
        return sock
    import fcntl

    try:
        moved = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 3)
        return socket.socket(sock.family, sock.type, sock.proto, fileno=moved)
    finally:
        sock.close()


def _inherited(fd: int) -> bool:
    """Whether a process started now inherits this one's descriptor ``fd``: it is open and
    not close-on-exec (``os.dup`` of stdout, say, when stderr was closed)."""
    try:
        return os.get_inheritable(fd)
    except OSError:  # closed
        return False


def _host_cwd() -> str | None:
    """This process's working directory; None once it is gone (deleted, or unreachable)."""
    try:
        return os.getcwd()
    except OSError:
        return None


def _worker_cwd() -> str | None:
    """Where a worker starts: in the host's working directory (None) while it exists;
    else in "/", since an interpreter started in a deleted directory dies before it runs
    anything ("Fatal Python error: error evaluating path")."""
    return None if _host_cwd() is not None else "/"


def _import_path() -> list[str]:
    """This process's import path as a worker is given it: relative entries ('' is the
    working directory) made absolute, so they name the same folders in a worker started
    elsewhere; left out while the working directory is gone, as nothing imports from
    them then."""
    cwd = _host_cwd()
    path = []
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        if not os.path.isabs(entry):
            if cwd is None:
                continue
            entry = os.path.join(cwd, entry) if entry else cwd
        path.append(entry)
    return path


def clean_environment() -> dict[str, str]:
    """The environment a worker starts with: ``MINIMAL_ENV``, the locale (``LC_*``) and a
    ``PYTHONPATH`` holding this process's import path (``_import_path``), so the worker
    imports what the host imports. ``isolation_env`` adds variables per call
    (``passed_environment``)."""
    source = os.environ
    env = {name: source[name] for name in MINIMAL_ENV if name in source}
    env.update({name: value for name, value in source.items() if name.startswith("LC_")})
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(_import_path()))
    return env


def passed_environment(names: Iterable[str]) -> dict[str, str]:
    """The host's variables an isolated call is given (``isolation_env``)."""
    passed: dict[str, str] = {}
    for pattern in names:
        if pattern.endswith("*") or any(c in pattern for c in "?["):
            passed.update(
                {name: value for name, value in os.environ.items()
                 if fnmatch.fnmatchcase(name, pattern)}
            )
        elif pattern in os.environ:
            passed[pattern] = os.environ[pattern]
    return passed


def _now() -> float:
    return time.monotonic()


# --- the pool ----------------------------------------------------------------------------------


#: Worker processes of a pool made without a size (``SOFConfig.isolation_workers``' default).
_DEFAULT_WORKERS = 2


class IsolationPool:
    """Worker processes for isolated skills: started on first use, reused, replaced when
    killed; thread-safe. Isolated steps use the process's own (``isolation_pool()``).

    ``size`` is how many calls may run at once; it grows to the largest
    ``isolation_workers`` a step asks for. ``prefix`` starts each worker inside a sandbox
    (tools without the "network" permission get a pool of their own started so).
    ``idle_timeout``: seconds a worker started ahead (``start()``) or in place of a killed
    one may stay idle before it is retired; a worker a call released stays idle for that
    call's ``isolation_idle_timeout``. None keeps idle workers for good. Retiring needs no
    thread of its own: the process's watchdog wakes at the first worker due.
    """

    def __init__(self, size: int = _DEFAULT_WORKERS, prefix: tuple[str, ...] = (),
                 idle_timeout: float | None = ISOLATION_IDLE_TIMEOUT_DEFAULT) -> None:
        if size < 1:
            raise ValueError("an isolation pool needs at least one worker")
        if idle_timeout is not None and not 0 < idle_timeout <= MAX_TIMEOUT:
            raise ValueError("an isolation pool's idle_timeout must be a positive number "
                             "of seconds or None")
        self.size = size
        self.prefix = tuple(prefix)
        self.idle_timeout = idle_timeout
        self._followed = size  # the host configuration's size last taken (``follow``)
        #: When and under which variables the host configuration was last read for this
        #: pool (``_follow_host``).
        self._host_read: tuple[float, tuple[str | None, ...]] = (-math.inf, ())
        self._idle: list[_Worker] = []  # the most recently released last: taken first
        self._count = 0  # workers idle + busy
        self._cond = threading.Condition()
        self._stats = {"started": 0, "calls": 0, "killed": 0, "crashed": 0, "spent": 0,
                       "replaced": 0, "retired": 0}
        self._reap_at = math.inf  # when the watchdog next looks for idle workers to retire
        self._reap_entry: Entry | None = None

    # --- public ------------------------------------------------------------------------------

    def call(
        self,
        step: Step,
        uif: UIF,
        deadline: float = math.inf,
        guard: dict[str, Any] | None = None,
        start: StartClock | None = None,
    ) -> dict[str, Any]:
        """Run ``step``'s skill on its declared inputs from ``uif`` in a worker; return what
        it changed (``run_skill_call``'s report), or raise its typed error.

        ``deadline`` is ``time.monotonic()`` seconds: waiting for a free worker, starting
        one and the call itself all count; at the deadline the worker is killed. With
        ``start`` (a run's step), the wait for a free worker does not count: it lasts until
        ``start.wait_until`` at most (the run's total deadline), and the step's deadline is
        ``start()``, called once a worker took the call. ``guard``
        (tools: ``skill``, ``deny``, ``block_ip``) is what the worker's audit hook refuses
        during the call (``sof_core.security.guard.restrict``).
        """
        settings = step.isolation_settings or _DEFAULT_SETTINGS
        payload = _pack(step, uif)
        header: dict[str, Any] = {
            "path": _import_path(),
            "limits": (settings.cpu_seconds, settings.memory_mb, settings.open_files),
            "env": passed_environment(settings.env) if settings.env else {},
            "guard": guard,
            "output": _megabytes(settings.output_mb),
        }
        # What the host reads back at most: the output limit, else all the call's process
        # could hold. Never the length the worker's socket announces, which a skill can
        # forge (it runs in that process).
        limit = _megabytes(settings.output_mb if settings.output_mb is not None
                           else settings.memory_mb)
        if settings.workers > self.size:
            with self._cond:
                self.size = max(self.size, settings.workers)
                self._cond.notify_all()
        if start is None and _now() >= deadline:  # spent already (retries, say)
            raise SkillTimeoutError(f"did not finish within {step.timeout}s", step.name)
        packages = trusted_for(step, uif)
        reply = self._call_once(step, settings, header, payload, deadline, limit, packages,
                                start)
        if reply[0] == "unloadable":
            # This process found the skill's class importable, the worker could not load it
            # by name (an import hook only this process has, say): once more, by value. No
            # skill code ran: the worker failed while unpickling the call.
            try:
                again = _pack(step, uif, by_value=True)
            except SkillNotPicklableError:  # the worker's own answer says more
                again = payload
            if again != payload:
                reply = self._call_once(step, settings, header, again, deadline, limit,
                                        packages, start)
        return _reply(step, settings, reply, packages)

    def _call_once(self, step: Step, settings: IsolationSettings, header: dict[str, Any],
                   payload: bytes, deadline: float, limit: int | None,
                   packages: frozenset[str], start: StartClock | None = None,
                   ) -> tuple[Any, ...]:
        """One call on a free worker: its reply, or the typed error of its end."""
        if start is None:
            worker = self._acquire(step, deadline)
        else:  # the step's time starts once a worker takes it
            worker = self._acquire(step, start.wait_until, waiting_for_run=True)
        try:
            # A worker started for this call is waited for first: its start (a new
            # interpreter, ~0.3 s) is not the skill's time. A run's step starts its
            # deadline after it; any other call's deadline counted it already.
            worker.wait_ready(deadline if start is None else start.wait_until)
            if start is not None:
                deadline = start()
            # What the skill's ``current_deadline()`` says in the worker, as time left (the
            # worker's clock need not be this one's): taken once the worker is ready.
            left = deadline - _now()
            visible = current_deadline()
            if visible is not None:
                left = min(left, visible - clock())
            header["remaining"] = None if left == math.inf else left
            header["call"] = call_id = os.urandom(8).hex()
            reply: tuple[Any, ...] = worker.call(pickle.dumps(header, _PROTOCOL), payload,
                                                 deadline, limit, packages,
                                                 settings.reply_packages, call_id)
        except _worker.FrameTooLarge as too_large:  # the worker checks its own replies:
            self._replace(worker, "killed")  # this one was written past it, on purpose
            raise _too_large(step, settings, too_large.size) from None
        except RefusedGlobal as refused:  # written by the skill, or forged by whatever
            self._replace(worker, "killed")  # took over its process: not used again
            raise SkillReplyRefusedError(step.name, refused.name,
                                         refused.trustable) from None
        except _Deadline:
            self._replace(worker, "killed")
            raise _overran(step, worker.ready, start is None) from None
        except _Stray:  # not this call's answer: nothing it sent is applied
            self._replace(worker, "killed")
            raise SkillCrashedError(
                step.name, "its isolation worker answered another call (a process an "
                "earlier isolated skill left running wrote to the worker's connection); "
                "nothing it sent was applied, and the worker was replaced") from None
        except _Gone:
            started = worker.ready
            code = worker.exit_status()
            self._replace(worker, "crashed")
            raise _exit_error(step, settings, code, started) from None
        except BaseException:  # Ctrl-C while waiting, say: the worker's state is unknown
            self._replace(worker, "killed")
            raise
        if reply[0] == "retiring":  # a tool left threads running: the worker exits now
            self._replace(worker, "spent")
            try:
                reply = _retired_reply(reply, packages, settings.reply_packages)
            except RefusedGlobal as refused:
                raise SkillReplyRefusedError(step.name, refused.name,
                                             refused.trustable) from None
        elif reply[0] == "limit" and reply[1] != "output_mb":
            self._replace(worker, "spent")  # it exits after answering: start its successor
        else:
            self._release(worker, settings.idle_timeout)
        with self._cond:
            self._stats["calls"] += 1
        return reply

    def start(self, count: int | None = None) -> None:
        """Start workers now (up to ``count``, default the pool's size) so the first
        isolated calls do not pay for a worker's start within their deadline."""
        wanted = self.size if count is None else min(count, self.size)
        with self._cond:
            while self._count < wanted:
                self._idle.append(self._idle_worker(self._new_worker(), self.idle_timeout))
                self._count += 1
            self._cond.notify_all()

    def stats(self) -> dict[str, int]:
        """``workers`` alive now and the pool's ``size``; ``started`` (workers, ever);
        ``calls`` answered; ``killed`` at a deadline, for a reply longer than the host
        reads, or interrupted; ``crashed`` (the
        process died during a call); ``spent`` (retired after a call hit a memory or
        open-files limit); ``replaced`` (workers started in place of those); ``retired``
        (idle past their idle timeout: the pool shrinks back, and starts workers again on
        demand)."""
        with self._cond:
            return {"workers": self._count, "size": self.size, **self._stats}

    def close(self) -> None:
        """Kill every idle worker and forget the busy ones (their callers kill them)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            if self._reap_entry is not None:
                watchdog().cancel(self._reap_entry)
                self._reap_entry, self._reap_at = None, math.inf
        for worker in idle:
            worker.kill()
            _ALL.discard(worker)

    # --- workers -----------------------------------------------------------------------------

    def _new_worker(self) -> _Worker:
        worker = _Worker(self.prefix)
        self._stats["started"] += 1
        _ALL.add(worker)
        return worker

    def _acquire(self, step: Step, deadline: float, waiting_for_run: bool = False) -> _Worker:
        with self._cond:
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._count -= 1  # died while idle (killed from outside): drop it
                    _ALL.discard(worker)
                if self._count < self.size:
                    try:
                        worker = self._new_worker()
                    except OSError as exc:
                        raise SkillCrashedError(step.name, str(exc)) from exc
                    self._count += 1
                    return worker
                remaining = deadline - _now()
                if remaining <= 0:
                    if waiting_for_run:
                        # The same words as the run's own report of such a step, when
                        # its total_timeout is noticed first (``RunContext._no_worker``).
                        raise SkillNotStartedError(
                            f"never started: all {self.size} isolation worker processes "
                            "stayed busy until the run's total_timeout; its own timeout "
                            "starts when a worker takes it (raise isolation_workers or "
                            "shorten the calls)",
                            step.name,
                        )
                    raise SkillTimeoutError(
                        f"did not start within {step.timeout}s: all {self.size} isolation "
                        "workers were busy; raise isolation_workers or shorten the calls",
                        step.name,
                    )
                self._cond.wait(None if remaining == math.inf else remaining)

    def follow(self, size: int, idle_timeout: float | None) -> None:
        """Take the host configuration's ``isolation_workers`` and ``isolation_idle_timeout``
        as they are now (``isolation_pool()`` does, at each use): a changed size replaces
        whatever the pool had grown to, and idle workers beyond it are retired (busy ones
        when their call ends), so a host or a test that sets ``SOF_ISOLATION_WORKERS=1``
        after another value gets one worker process."""
        extra: list[_Worker] = []
        with self._cond:
            self.idle_timeout = idle_timeout
            if size == self._followed:
                return
            self._followed = self.size = size
            while self._count > self.size and self._idle:
                extra.append(self._idle.pop(0))  # the longest idle first
                self._count -= 1
                self._stats["retired"] += 1
            self._cond.notify_all()
        if extra:
            _retire_in_background(extra)

    def _release(self, worker: _Worker, idle_timeout: float | None) -> None:
        with self._cond:
            surplus = self._count > self.size  # the pool was made smaller (``follow``)
            if surplus:
                self._count -= 1
                self._stats["retired"] += 1
            else:
                self._idle.append(self._idle_worker(worker, idle_timeout))
            self._cond.notify()
        if surplus:
            _retire([worker])

    def _idle_worker(self, worker: _Worker, idle_timeout: float | None) -> _Worker:
        """``worker``, now idle: due for retirement ``idle_timeout`` from now (under the
        lock)."""
        if idle_timeout is None:
            worker.retire_at = math.inf
            return worker
        # the watchdog's clock: ``_reap`` compares with the time it is called at
        worker.retire_at = retire_at = clock() + idle_timeout
        if retire_at < self._reap_at:
            dog = watchdog()
            if self._reap_entry is not None:
                dog.cancel(self._reap_entry)
            self._reap_at = retire_at
            self._reap_entry = dog.arm(retire_at, self._reap)
        return worker

    def _reap(self, now: float) -> None:
        """The watchdog's callback: retire the workers idle past their time. It must not
        block: the lock is tried (else it looks again shortly) and the workers are killed
        in a thread of their own."""
        if not self._cond.acquire(blocking=False):
            self._reap_entry = watchdog().arm(now + 0.05, self._reap)
            return
        try:
            self._reap_entry, self._reap_at = None, math.inf
            due = [worker for worker in self._idle if worker.retire_at <= now]
            if due:
                self._idle = [worker for worker in self._idle if worker.retire_at > now]
                self._count -= len(due)
                self._stats["retired"] += len(due)
            following = min((worker.retire_at for worker in self._idle), default=math.inf)
            if following < math.inf:
                self._reap_at = following
                self._reap_entry = watchdog().arm(following, self._reap)
        finally:
            self._cond.release()
        if due:
            _retire_in_background(due)

    def _replace(self, worker: _Worker, why: str) -> None:
        """Kill ``worker`` and start another in its place (it gets ready meanwhile)."""
        worker.kill()
        _ALL.discard(worker)
        with self._cond:
            self._stats[why] += 1
            try:
                self._idle.append(self._idle_worker(self._new_worker(), self.idle_timeout))
                self._stats["replaced"] += 1
            except OSError:
                self._count -= 1  # the next call reports why a worker cannot start
            self._cond.notify()


def _retire_in_background(workers: list[_Worker]) -> None:
    """``_retire`` in a thread of its own: the callers hold locks or are the watchdog."""
    threading.Thread(target=_retire, args=(workers,), name="sof-isolation-retire",
                     daemon=True).start()


def _retire(workers: list[_Worker]) -> None:
    """Kill idle workers the pool let go (they hold no call: nothing is lost)."""
    for worker in workers:
        worker.kill()
        _ALL.discard(worker)


# --- one call's result -------------------------------------------------------------------------


def _pack(step: Step, uif: UIF, by_value: bool = False) -> bytes:
    """The skill, its declared inputs and the other UIF fields, pickled (or a typed error)."""
    return pack_call(step.name, call_payload(step, uif), by_value=by_value)


class RemoteTraceback(Exception):
    """The traceback of an exception raised in an isolated skill's process (its
    ``__cause__``), as text: frames do not cross processes. ``skill_trace``: the
    ``(traceback, location)`` its ``SkillResult`` reports, as the worker found them."""

    def __init__(self, text: str, skill_trace: tuple[str | None, str | None] = (None, None)
                 ) -> None:
        super().__init__(text)
        self.skill_trace = skill_trace

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def trusted_for(step: Step, uif: UIF) -> frozenset[str]:
    """The packages whose classes a reply for ``step`` may hold: the skill's, the UIF
    class's, and for ``run_sandboxed`` the function's (``_sof_reply_sources``). Those its
    settings trust whole are ``step.isolation_settings.reply_packages``."""
    instance = step.instance
    return trusted_packages(type(instance), type(uif),
                            *getattr(instance, "_sof_reply_sources", ()))


def _retired_reply(reply: tuple[Any, ...], packages: frozenset[str],
                   open_packages: frozenset[str]) -> tuple[Any, ...]:
    """The reply a retiring worker wrapped (``("retiring", pickled reply)``), read as any
    reply is."""
    inner = reply[1] if len(reply) == 2 else None
    if not isinstance(inner, bytes):
        raise RefusedGlobal("a retiring reply without its reply", trustable=False)
    loaded = _load_reply(inner, packages, open_packages)
    if loaded[0] == "retiring":
        raise RefusedGlobal("a retiring reply inside another", trustable=False)
    return loaded


def _load_reply(data: bytes | bytearray, packages: frozenset[str],
                open_packages: frozenset[str]) -> tuple[Any, ...]:
    """A worker's reply, loaded with ``load_reply``: a non-empty tuple, else refused."""
    loaded = load_reply(data, packages, open_packages)
    if not isinstance(loaded, tuple) or not loaded:
        raise RefusedGlobal(f"a {type(loaded).__name__} where a reply belongs", trustable=False)
    return loaded


def _reply(step: Step, settings: IsolationSettings, reply: tuple[Any, ...],
           packages: frozenset[str] = frozenset()) -> dict[str, Any]:
    kind = reply[0]
    if kind == "ok":
        changes = reply[1]
        if not isinstance(changes, dict):
            raise SkillReplyRefusedError(step.name, f"a {type(changes).__name__} of changes",
                                         trustable=False)
        return changes
    if kind == "raised":
        _, data, type_name, text, trace, *found = reply
        error: BaseException | None = None
        if data is not None:
            try:  # an exception it may not send back is told by name and text instead
                error = load_reply(data, packages, settings.reply_packages)
            except Exception:
                error = None
            if not isinstance(error, BaseException):
                error = None
        if error is None:
            error = SkillExecutionError(f"raised {type_name}: {text}", step.name)
        error.__cause__ = RemoteTraceback(
            trace, (found[0], found[1]) if len(found) == 2 else (None, None)
        )
        raise error
    if kind == "limit":
        _, limit, detail = reply
        raise _limit_error(step, settings, limit, detail)
    if kind == "unloadable":
        raise SkillNotPicklableError(
            step.name, "the skill or its inputs", f"loading them in the worker raised {reply[1]}"
        )
    if kind == "unpicklable":
        raise SkillNotPicklableError(step.name, "what it wrote", reply[1])
    raise SkillCrashedError(step.name, f"its isolation worker answered {kind!r}")


def _limit_error(
    step: Step, settings: IsolationSettings, limit: str, detail: str = ""
) -> SkillResourceLimitError:
    value = float(getattr(settings, limit) or 0)
    what = {
        "memory_mb": f"ran out of memory: its limit is {value:g} MB (memory_mb)",
        "cpu_seconds": f"used more than its {value:g} CPU seconds (cpu_seconds) and was killed",
        "open_files": f"opened more files than its limit of {value:g} (open_files)",
        "output_mb": f"sent back more than its limit of {value:g} MB (output_mb)",
    }[limit]
    return SkillResourceLimitError(
        step.name, limit, value,
        f"{what}{detail}; raise the skill's isolation_limits or the configured "
        "isolation_limits if it needs more",
    )


def _megabytes(limit: float | None) -> int | None:
    return None if limit is None else int(limit * 2**20)


def _too_large(step: Step, settings: IsolationSettings, size: int) -> SkillExecutionError:
    """A reply announced past what the host reads: not one the worker sent, since it
    checks its own, but bytes the skill wrote to the worker's socket itself."""
    announced = f"its process announced a reply of {size / 2**20:.1f} MB and was killed"
    if settings.output_mb is not None:
        return _limit_error(step, settings, "output_mb", f": {announced}")
    return SkillCrashedError(
        step.name, f"{announced}: more than its memory_mb limit of {settings.memory_mb:g} MB "
        "lets it hold, so not a reply its worker wrote (the skill wrote to the worker's "
        "socket)",
    )


def _overran(step: Step, ready: bool, own_deadline: bool) -> SkillExecutionError:
    """The error for a call given up on at its deadline (its worker is killed): during the
    call, or while its new worker was still starting (a run's step then never started:
    only the run's total_timeout bounds that wait)."""
    if ready:
        return SkillTimeoutError(
            f"did not finish within {step.timeout}s; its process was killed", step.name)
    if own_deadline:
        return SkillTimeoutError(
            f"did not finish within {step.timeout}s; its isolation worker process was "
            "still starting", step.name)
    return SkillNotStartedError(
        "never started: its isolation worker process was still starting at the run's "
        "total_timeout", step.name)


def _exit_error(
    step: Step, settings: IsolationSettings, code: int | None, started: bool
) -> SkillExecutionError:
    """The error for a call whose worker ended without answering (``code``: its exit code,
    negative for the signal that killed it)."""
    if not started:
        how = "ended" if code is None else f"exited with code {code}"
        return SkillCrashedError(
            step.name, f"its isolation worker {how} while starting (see the host's stderr "
            f"for why; {sys.executable} -m {_WORKER_MODULE} must be able to import sof_core)",
            exit_code=code,
        )
    if code is None:
        return SkillCrashedError(step.name, "its isolation worker closed its connection "
                                 "before it returned")
    if code < 0:
        number = -code
        if number == signal.SIGXCPU and settings.cpu_seconds:
            return _limit_error(step, settings, "cpu_seconds")
        return SkillCrashedError(
            step.name, f"its process was killed by signal {_signal_name(number)} ({number}) "
            "before it returned (a C extension crashing, or the operating system killing "
            "it); the host went on", signal=number,
        )
    return SkillCrashedError(
        step.name, f"its process exited with code {code} before it returned (os._exit(), or "
        "a C library ending the process)", exit_code=code,
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# --- the process-wide pool -----------------------------------------------------------------------

#: For a ``Step`` made by hand with ``isolation="process"`` and no settings.
_DEFAULT_SETTINGS = IsolationSettings(
    ISOLATION_LIMIT_DEFAULTS["cpu_seconds"],
    ISOLATION_LIMIT_DEFAULTS["memory_mb"],
    ISOLATION_LIMIT_DEFAULTS["open_files"],
)
_pool: IsolationPool | None = None
_pool_lock = threading.Lock()
#: Pools whose workers start in a sandbox, by its command prefix (tools without "network").
_sandboxed: dict[tuple[str, ...], IsolationPool] = {}
#: Every worker alive, killed at exit whichever pool started it.
_ALL: set[_Worker] = set()


def isolation_pool(prefix: tuple[str, ...] = ()) -> IsolationPool:
    """This process's pool of isolation workers (created on first use, no worker started);
    with ``prefix``, its pool of workers started in that sandbox."""
    global _pool
    if prefix:
        with _pool_lock:
            sandboxed = _sandboxed.get(prefix)
            if sandboxed is None:
                sandboxed = _sandboxed[prefix] = _for_host(prefix)
        _follow_host(sandboxed)
        return sandboxed
    pool = _pool
    if pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = _for_host(())
            pool = _pool
    _follow_host(pool)
    return pool


def _for_host(prefix: tuple[str, ...]) -> IsolationPool:
    """A process pool sized from the host configuration as it is now (that read recorded
    for ``_follow_host``)."""
    size, idle_timeout = _configured()
    pool = IsolationPool(size, prefix, idle_timeout)
    pool._host_read = (time.monotonic(), _host_variables())
    return pool


#: Seconds between two reads of the host configuration for the process's pools (a change
#: of a variable below is seen at once; one of the config file within this).
HOST_CONFIG_RECHECK = 1.0


def _host_variables() -> tuple[str | None, ...]:
    environ = os.environ
    return (environ.get("SOF_ISOLATION_WORKERS"), environ.get("SOF_ISOLATION_IDLE_TIMEOUT"),
            environ.get("SOF_CONFIG"))


def _follow_host(pool: IsolationPool) -> None:
    """``pool.follow`` the host configuration when it may have changed: a variable that
    sets it changed, or ``HOST_CONFIG_RECHECK`` passed since the last read. Reading it costs
    tens of microseconds (a stat, the environment): not on every isolated call."""
    read_at, seen = pool._host_read
    now = time.monotonic()
    variables = _host_variables()
    if variables == seen and now - read_at < HOST_CONFIG_RECHECK:
        return
    pool._host_read = (now, variables)
    pool.follow(*_configured())


def _configured() -> tuple[int, float | None]:
    """The host configuration's ``isolation_workers`` and ``isolation_idle_timeout`` (file,
    ``SOF_ISOLATION_WORKERS``, ``SOF_ISOLATION_IDLE_TIMEOUT``): the process pool's size
    until an engine's isolated step asks for more, so a host that sets 1 gets one worker
    process, and ``start()`` starts as many as configured; and how long the workers it
    starts ahead may stay idle."""
    from sof_core.config.manager import get_sof_config_manager

    config = get_sof_config_manager().state().config
    if config is None:
        return _DEFAULT_WORKERS, ISOLATION_IDLE_TIMEOUT_DEFAULT
    return config.isolation_workers, config.isolation_idle_timeout


class StartClock(Protocol):
    """When a run's isolated step may wait for a worker until, and its deadline once one
    took it (``step.isolated_call``)."""

    wait_until: float

    def __call__(self) -> float: ...


def run_isolated(step: Step, uif: UIF, view: UIF, deadline: float = math.inf,
                 start: StartClock | None = None) -> UIF:
    """Run ``step`` in a worker and replay what it changed into ``view`` (its guarded view
    of ``uif``), exactly as a local run would have changed it; ``view`` is returned.
    ``start``: see ``IsolationPool.call``."""
    settings = step.isolation_settings
    if settings is not None and settings.tool is not None:
        changes = _tool_call(step, uif, settings.tool, deadline, start)
    else:
        changes = isolation_pool().call(step, uif, deadline, start=start)
    replay_changes(step, view, changes)
    return view


def _tool_call(step: Step, uif: UIF, tool: ToolLimits, deadline: float,
               start: StartClock | None = None) -> dict[str, Any]:
    """A tool's call (docs/security.md): refused if the policy denies it or it is over its
    rate; in a no-network sandbox unless it has "network"; its worker's audit hook refusing
    what it has no permission for; its output cut to its byte cap."""
    from sof_core.security.output import cap_changes
    from sof_core.security.ratelimit import check_rate
    from sof_core.security.sandbox import SandboxUnavailableError, network_sandbox

    if tool.denied is not None:  # also when plan validation is switched off
        raise ToolPermissionError(step.name, "tool_policy", tool.denied)
    check_rate(step.name, tool.calls_per_minute)
    deny = PERMISSIONS - tool.permissions
    prefix: tuple[str, ...] = ()
    block_ip = False
    if "network" in deny:
        try:
            sandbox = network_sandbox(tool.network_isolation)
        except SandboxUnavailableError as exc:
            raise ToolPermissionError(step.name, "network", str(exc)) from None
        prefix, block_ip = sandbox.prefix, not sandbox.namespace
    guard = {"skill": step.name, "deny": sorted(deny), "block_ip": block_ip}
    changes = isolation_pool(prefix).call(step, uif, deadline, guard, start)
    return cap_changes(step.name, changes, tool.max_output_bytes)


def _kill_all() -> None:
    """At exit: no worker outlives the host (they would also exit on their socket's EOF)."""
    for worker in list(_ALL):
        worker.kill()
    _ALL.clear()


def _forget_after_fork() -> None:
    """A forked copy of the host must not share the parent's workers: start afresh."""
    global _pool
    _pool = None
    _sandboxed.clear()
    for worker in list(_ALL):
        worker.sock.close()
    _ALL.clear()


atexit.register(_kill_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
