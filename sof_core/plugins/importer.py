"""Importing plugin modules with a deadline, so one whose import hangs cannot hold the host.

A plugin is imported in a daemon thread while the loading thread waits at most
``plugin_import_timeout`` seconds. A plugin whose import is still running then is given up
on: its record says where the import stands (file and line), loading goes on with the
next one, and the thread, a daemon, never holds the process's exit. Python cannot stop an
import midway, so that thread runs on; the module stays half-imported and a later attempt
to load it fails at once instead of waiting behind it again. So does a plugin that waits
for a module the given-up import holds (a library both import that hangs while it loads):
Python's import lock would hold it there too, so it is skipped when that is seen (the wait
looks every tenth of a second while an import is hung), not at a deadline of its own.

The installed plugins' start-up hooks (registration hooks, ``sof_configure``) run in the
same thread with the same deadline (``call``): a hook that hangs is given up on like an
import.

One thread serves every import of a ``load()`` call, so the cost is one thread start and a
hand-off per plugin. A plugin whose import needs the main thread (``signal.signal`` at
import, or ``asyncio.get_event_loop()`` without a loop) fails there with Python's own
error; it is imported again on the calling thread, as before, without the deadline. Plugins
loaded while a module is being imported (a host module that makes its engine at import) are
imported on the calling thread without the deadline: a plugin that imports that module
would otherwise wait, in the other thread, for the import that waits for it.
"""

from __future__ import annotations

import _thread
import importlib
import linecache
import sys
import threading
import time
from collections.abc import Callable, Iterator
from queue import SimpleQueue
from types import FrameType
from typing import Any

from sof_core._bounded import needs_main_thread

#: The modules whose import was given up on, by name: (thread, when it started). That is the
#: plugin's module and every module the thread was running the code of then (their import
#: locks are the thread's until it ends).
_hung: dict[str, tuple[threading.Thread, float]] = {}
#: How often a wait for an import looks whether it is stuck behind one of those (only while
#: there is one).
_LOOK_EVERY = 0.1
_hung_lock = threading.Lock()
#: The thread serving each importer, to let a plugin that loads plugins at import (it calls
#: ``get_plugin_manager()``) through the loading manager's lock, as the same thread would be.
_serving = threading.local()


class ImportHung(Exception):
    """A plugin module's import did not finish within its deadline (or an earlier one)."""


def importing_for() -> object | None:
    """The manager whose plugins this thread is importing, if it is an import thread."""
    owner: object | None = getattr(_serving, "owner", None)
    return owner


class DeadlineImporter:
    """Imports entry points one at a time in a thread of its own, each within ``timeout``.

    ``timeout=None`` imports on the calling thread, as SOF did before it had a deadline: the
    way back for a plugin that makes thread-bound objects at import. ``close()`` ends the
    thread once it is idle.
    """

    def __init__(self, timeout: float | None, owner: object) -> None:
        self.timeout = timeout
        self.owner = owner
        self._jobs: SimpleQueue[_Job | None] | None = None
        self._thread: threading.Thread | None = None
        #: No job of ours is running (false while one is, or after the wait for one was
        #: interrupted): only then does ``close`` wait for the thread to end.
        self._idle = True
        #: The loading thread is itself in the middle of an import (a host module that
        #: loads plugins at import): a plugin importing that module from another thread
        #: would wait for the import that waits for it, so imports run here, unbounded.
        self.inline = timeout is None or _importing_now()

    def import_entry_point(self, value: str) -> Any:
        """The object an entry point's ``module:attr`` value names, imported within the
        deadline; ``ImportHung`` when it is not, or when that module's import hung before."""
        module_name = _module_of(value)
        _refuse_if_hung(module_name)
        timeout = self.timeout
        if self.inline or timeout is None:
            return _import_here(module_name, value)
        ok, result = self._run(
            lambda: _import_here(module_name, value), module_name, timeout,
            f"importing {module_name!r} did not finish",
            "the plugin is skipped and its import left running in a daemon thread")
        if ok:
            return result
        if needs_main_thread(result) and threading.current_thread() is threading.main_thread():
            return _import_here(module_name, value)
        raise result

    def call(self, fn: Callable[[], Any], module_name: str, what: str,
             retry_here: Callable[[], Any] | None = None) -> Any:
        """``fn()`` (a plugin's hook, from the module it was imported from) in the import
        thread, within the same deadline as an import: ``ImportHung`` when it does not
        return by then (``what`` says what did not), its own exception when it raises.
        One that fails because it needs the main thread is done again on the calling
        thread, when that is the main thread: by ``retry_here()`` if given (a call that
        must start afresh), else by ``fn()``."""
        timeout = self.timeout
        if self.inline or timeout is None:
            return fn()
        ok, result = self._run(fn, module_name, timeout, f"{what} did not return",
                               "the plugin is skipped and the call left running in a daemon "
                               "thread")
        if ok:
            return result
        if needs_main_thread(result.__cause__ or result) and (
                threading.current_thread() is threading.main_thread()):
            return (retry_here or fn)()  # as for an import that needs the main thread
        raise result

    def _run(self, fn: Callable[[], Any], module_name: str, timeout: float, late_what: str,
             left: str) -> tuple[bool, Any]:
        """``(True, fn())`` or ``(False, its exception)``, run in the import thread; raises
        ``ImportHung`` when it has not ended within ``timeout``."""
        job = _Job(fn)
        jobs, thread = self._worker()
        self._idle = False
        jobs.put(job)
        behind = _wait(job, thread, timeout)
        self._idle = True
        if job.outcome is None:
            with job.lock:
                late = job.outcome is None
                if late:
                    job.abandoned = True
            if late:
                self._jobs = self._thread = None  # the next job gets a new thread
                _give_up(thread, module_name, job.started)
                if behind is not None:
                    raise ImportHung(_waits_for(module_name, behind))
                raise ImportHung(
                    f"{late_what} within {timeout:g} s (plugin_import_timeout, "
                    f"SOF_PLUGIN_IMPORT_TIMEOUT){_where(thread, module_name)}; {left}"
                )
        return job.outcome  # type: ignore[return-value]

    def close(self) -> None:
        """End the thread once its job is done, and wait for it when it is idle, so no
        thread of a load outlives it (a Ctrl-C during an import does not wait for it)."""
        if self._jobs is not None and self._thread is not None:
            self._jobs.put(None)
            if self._idle:
                self._thread.join(1.0)
        self._jobs = self._thread = None

    def __enter__(self) -> DeadlineImporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _worker(self) -> tuple[SimpleQueue[_Job | None], threading.Thread]:
        if self._jobs is None or self._thread is None:
            jobs: SimpleQueue[_Job | None] = SimpleQueue()
            thread = threading.Thread(target=_serve, args=(jobs, self.owner),
                                      name="sof-plugin-import", daemon=True)
            thread.start()
            self._jobs, self._thread = jobs, thread
        return self._jobs, self._thread


class _Job:
    __slots__ = ("abandoned", "done", "fn", "lock", "outcome", "started")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = _thread.allocate_lock()
        self.done.acquire()
        self.lock = _thread.allocate_lock()
        self.outcome: tuple[bool, Any] | None = None
        self.abandoned = False
        self.started = time.monotonic()


def _serve(jobs: SimpleQueue[_Job | None], owner: object) -> None:
    """The import thread: one job at a time until closed, or until a job outlived its
    deadline (then no one waits on this queue any more)."""
    _serving.owner = owner
    while True:
        job = jobs.get()
        if job is None:
            return
        job.started = time.monotonic()
        outcome: tuple[bool, Any]
        try:
            outcome = (True, job.fn())
        except BaseException as exc:  # handed to the loading thread, which decides
            outcome = (False, exc)
        with job.lock:
            job.outcome = outcome
            abandoned = job.abandoned
        job.done.release()
        if abandoned:
            this = threading.current_thread()
            with _hung_lock:  # it ended: a later load imports these afresh
                for name in [name for name, (thread, _) in _hung.items() if thread is this]:
                    del _hung[name]
            return


def _wait(job: _Job, thread: threading.Thread, timeout: float) -> str | None:
    """Wait for ``job`` until ``timeout``; while an earlier import is hung, look every
    ``_LOOK_EVERY`` s whether ``thread`` waits for a module that import holds, and return
    that module's name as soon as it does (``None`` otherwise)."""
    if not _hung:
        job.done.acquire(timeout=timeout)
        return None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if job.done.acquire(timeout=max(0.0, min(left, _LOOK_EVERY))):
            return None
        if left <= _LOOK_EVERY:
            return None
        behind = _waiting_for(thread)
        if behind is not None:
            return behind


def _waiting_for(thread: threading.Thread) -> str | None:
    """The module a given-up import holds that ``thread`` is waiting for, if it is: its
    innermost frame is a module lock's ``acquire`` in importlib, for that module."""
    frame = _frame_of(thread)
    if frame is None or frame.f_code.co_name != "acquire" or (
            "importlib" not in frame.f_code.co_filename):
        return None
    try:
        name = getattr(frame.f_locals.get("self"), "name", None)
    except Exception:  # another Python's importlib: no way to tell, so wait as usual
        return None
    if not isinstance(name, str):
        return None
    hung = _still_hung(name)
    return name if hung is not None and hung[0] is not thread else None


def _give_up(thread: threading.Thread, module_name: str, started: float) -> None:
    """Remember ``module_name`` and every module ``thread`` runs the code of as hung."""
    names = {module_name}
    for frame in _module_frames(_frame_of(thread)):
        name = frame.f_globals.get("__name__")
        if isinstance(name, str):
            names.add(name)
    with _hung_lock:
        for name in names:
            _hung.setdefault(name, (thread, started))


def _waits_for(module_name: str, behind: str) -> str:
    hung = _still_hung(behind)
    if hung is None:  # its import ended in the meantime
        return f"importing {module_name!r} waited for {behind!r}, whose import hung"
    thread, started = hung
    return (
        f"importing {module_name!r} waits for {behind!r}, whose import hung in an earlier "
        f"plugin's load and is still running ({time.monotonic() - started:.0f} s so far)"
        f"{_where(thread)}; the plugin is skipped and its import left waiting in a daemon "
        "thread"
    )


def _importing_now() -> bool:
    """Whether a module import is in progress: Python marks a module's spec
    ``_initializing`` while its code runs (any thread's; the check errs on the safe side)."""
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        if spec is not None and getattr(spec, "_initializing", False) is True:
            return True
    return False


def _module_of(value: str) -> str:
    """The module an entry point's ``module:attr`` value names."""
    return value.partition(":")[0].strip()


def _import_here(module_name: str, value: str) -> Any:
    """Import ``module_name`` (``value``'s module) and follow ``value``'s attribute path."""
    target: Any = importlib.import_module(module_name)
    for part in filter(None, value.partition(":")[2].strip().split(".")):
        target = getattr(target, part)
    return target


def _still_hung(module_name: str) -> tuple[threading.Thread, float] | None:
    """The thread holding ``module_name``'s given-up import, and when it started, while that
    thread runs (an entry whose thread ended is dropped)."""
    with _hung_lock:
        hung = _hung.get(module_name)
        if hung is not None and not hung[0].is_alive():
            del _hung[module_name]
            return None
    return hung


def _refuse_if_hung(module_name: str) -> None:
    """Importing a module whose import hung would wait behind it (Python's import lock)."""
    hung = _still_hung(module_name)
    if hung is None:
        return
    thread, started = hung
    raise ImportHung(
        f"importing {module_name!r} hung in an earlier load and is still running "
        f"({time.monotonic() - started:.0f} s so far){_where(thread)}; restart the process "
        "once the plugin is fixed"
    )


def _frame_of(thread: threading.Thread) -> FrameType | None:
    """The innermost frame ``thread`` is running now (``None`` once it ended)."""
    return sys._current_frames().get(thread.ident or -1)


def _module_frames(frame: FrameType | None) -> Iterator[FrameType]:
    """The module-level frames from ``frame`` outwards: the modules whose code that thread
    is running, innermost first (it holds their import locks)."""
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            yield frame
        frame = frame.f_back


def _where(thread: threading.Thread, module_name: str | None = None) -> str:
    """Where a hung import stands: the module-level line running (the plugin's, or that of
    a module it imports), and the innermost frame when that is deeper. For a hung call (a
    hook, a skill's constructor) no module-level line runs: the innermost line of the
    plugin's own package (``module_name``'s) stands in for it."""
    innermost = _frame_of(thread)
    anchor = next(_module_frames(innermost), None)
    if anchor is None and module_name:
        anchor = _package_frame(innermost, module_name.split(".")[0])
    places = [f for f in (anchor, innermost) if f is not None]
    if not places:
        return ""
    shown = [_place(places[0])]
    if len(places) == 2 and places[1] is not places[0]:
        shown.append(f"in {_place(places[1])}")
    return "; it is at " + ", ".join(shown)


def _package_frame(frame: FrameType | None, package: str) -> FrameType | None:
    """The innermost frame from ``frame`` outwards running code of ``package``."""
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if isinstance(name, str) and (name == package or name.startswith(package + ".")):
            return frame
        frame = frame.f_back
    return None


def _place(frame: FrameType) -> str:
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" + (f" ({line})" if line else "")


def hung_imports() -> dict[str, float]:
    """The module imports given up on that are still running, with seconds so far."""
    now = time.monotonic()
    with _hung_lock:
        return {name: now - started for name, (thread, started) in _hung.items()
                if thread.is_alive()}


__all__: list[str] = ["DeadlineImporter", "ImportHung", "hung_imports", "importing_for"]
