"""Observer calls made from the host's thread, each given at most ``observer_timeout``.

Where a run's own threads notify observers (``sof_before_skill`` in the thread that runs the
skill, ``sof_after_skill`` in the runner's), the run's deadlines already cover them: a hung
observer there is given up on with the run. The calls SOF makes from the thread that called
``execute_plan`` (``sof_before_plan``, ``sof_after_plan``, the notes a run leaves for its
end, the router's ``sof_alert``) had no bound: one observer that never returned held
``execute_plan`` forever, which DESIGN.md rules out ("observers may never break a run").

Each such call now runs in a thread of the engine's observer pool, in a copy of the
caller's context (so ``contextvars`` such as a request id or a tracing span read the same),
and the caller waits for it at most ``observer_timeout``. One that does not return by then
is left running in its daemon thread (Python cannot stop a thread), logged, counted
(``PluginManager.observer_timeouts``) and reported as ``sof_alert`` kind ``observer_hung``;
until that call returns, the observer is skipped rather than waited for again. An observer
marked ``@inline_observer`` (it only records in memory) is called directly, as before:
the hand-off to a thread costs tens of microseconds, and the bundled ones are so marked.
``observer_timeout = None`` calls every observer directly.

On an event loop (``aexecute_plan``), ``anotify`` awaits each handed-off call instead of
blocking the loop on it; ``notify_one`` bounds one callable that is not a pluggy hook's
(the router's route observers) the same way.
"""

from __future__ import annotations

import _thread
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from sof_core.execution.loop_shutdown import used_on_loop
from sof_core.execution.threads import ABANDONED, DaemonPool
from sof_core.plugins.markers import is_inline_observer

if TYPE_CHECKING:
    from sof_core.plugins import PluginManager

log = logging.getLogger("sof.observers")


class HungObservers:
    """Observer implementations with a call still running after it was given up on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, tuple[Any, int]] = {}  # id(impl) -> (impl, calls still hung)

    def hung(self, impl: Any) -> bool:
        return id(impl) in self._calls

    def add(self, impl: Any) -> None:
        with self._lock:
            count = self._calls.get(id(impl), (impl, 0))[1]
            self._calls[id(impl)] = (impl, count + 1)

    def returned(self, impl: Any) -> None:
        with self._lock:
            count = self._calls.get(id(impl), (impl, 0))[1] - 1
            if count > 0:
                self._calls[id(impl)] = (impl, count)
            else:
                self._calls.pop(id(impl), None)

    def names(self) -> list[str]:
        """``plugin.hook`` of each observer with a call still hung."""
        with self._lock:
            return sorted(f"{impl.plugin_name}.{_name(impl.function)}"
                          for impl, _ in self._calls.values())


def _name(function: Any) -> str:
    """A function's name, or a callable object's class name."""
    name = getattr(function, "__name__", None)
    return name if isinstance(name, str) else type(function).__name__


class Threads(Protocol):
    """What this module needs of an engine's ``EngineThreads`` (which holds it)."""

    hung_observers: HungObservers

    def observers(self) -> DaemonPool: ...

    def release_idle(self, wait: float = 0.0) -> None: ...


def notify(plugins: PluginManager, threads: Threads, timeout: float | None,
           hook_name: str, **kwargs: Any) -> None:
    """Call observer hook ``hook_name`` from the host's thread (see the module docstring)."""
    for impl in _handed_off(plugins, timeout, hook_name, kwargs):
        assert timeout is not None  # (none is handed off without one)
        _bounded(plugins, threads, timeout, impl, hook_name, kwargs)


def notify_one(plugins: PluginManager, threads: Threads, timeout: float | None, impl: Any,
               hook_name: str, kwargs: dict[str, Any]) -> None:
    """``notify`` for one implementation that is not a pluggy hook's: anything with
    ``plugin_name``, ``function`` and ``argnames`` (the router's route observers)."""
    if timeout is None or is_inline_observer(impl.function):
        plugins.call_observer(impl, hook_name, kwargs)
    else:
        _bounded(plugins, threads, timeout, impl, hook_name, kwargs)


def _handed_off(plugins: PluginManager, timeout: float | None, hook_name: str,
                kwargs: dict[str, Any]) -> Iterator[Any]:
    """The hook's observers in order: inline ones (and all of them with no ``timeout``)
    are called here as they come; the others are yielded, for the caller to hand off."""
    impls = plugins.observers(hook_name)
    if not impls:
        return
    if timeout is None:
        plugins.notify(hook_name, **kwargs)
        return
    for impl in impls:
        if is_inline_observer(impl.function):
            plugins.call_observer(impl, hook_name, kwargs)
        else:
            yield impl


class _Call:
    """One observer call handed to a pool thread; ``lock`` orders its end and the give-up."""

    __slots__ = ("abandoned", "done", "finished", "lock")

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self.done = _thread.allocate_lock()
        self.done.acquire()
        self.finished = False
        self.abandoned = False


def _bounded(plugins: PluginManager, threads: Threads, timeout: float, impl: Any,
             hook_name: str, kwargs: dict[str, Any]) -> None:
    call = _Call()
    pool = _start(plugins, threads, impl, hook_name, kwargs, call, call.done.release)
    if pool is None:
        return
    try:
        if call.done.acquire(timeout=timeout):
            return
    except BaseException:  # Ctrl-C while waiting: the call goes on without us
        _give_up(call, pool, threads.hung_observers, impl)
        raise
    alert = _given_up(plugins, threads, timeout, impl, hook_name, call, pool)
    if alert is not None:
        notify(plugins, threads, timeout, "sof_alert", **alert)


async def anotify(plugins: PluginManager, threads: Threads, timeout: float | None,
                  hook_name: str, **kwargs: Any) -> None:
    """``notify`` for a caller on an event loop (``aexecute_plan``): a handed-off observer
    call is awaited, so the loop goes on serving the host's other tasks meanwhile, and a
    hung one holds this run alone, for at most ``timeout``. Called in order, as ``notify``."""
    for impl in _handed_off(plugins, timeout, hook_name, kwargs):
        assert timeout is not None  # (none is handed off without one)
        await _abounded(plugins, threads, timeout, impl, hook_name, kwargs)


async def _abounded(plugins: PluginManager, threads: Threads, timeout: float, impl: Any,
                    hook_name: str, kwargs: dict[str, Any]) -> None:
    import asyncio  # here: a host that never runs on a loop does not pay its import

    loop = asyncio.get_running_loop()
    returned: asyncio.Future[None] = loop.create_future()

    def settle() -> None:  # on the loop
        if not returned.done():
            returned.set_result(None)

    def wake() -> None:  # in the pool thread, once the call returned in time
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle)

    call = _Call()
    pool = _start(plugins, threads, impl, hook_name, kwargs, call, wake)
    if pool is None:
        return
    used_on_loop(loop, threads)  # its idle threads end when the loop shuts down
    try:
        await asyncio.wait_for(returned, timeout)
        return
    except asyncio.TimeoutError:
        pass
    except BaseException:  # the caller cancelled the run: the call goes on without us
        _give_up(call, pool, threads.hung_observers, impl)
        raise
    alert = _given_up(plugins, threads, timeout, impl, hook_name, call, pool)
    if alert is not None:
        await anotify(plugins, threads, timeout, "sof_alert", **alert)


def _start(plugins: PluginManager, threads: Threads, impl: Any, hook_name: str,
           kwargs: dict[str, Any], call: _Call, returned: Callable[[], object]
           ) -> DaemonPool | None:
    """Hand the call to a thread of the observer pool; None when there is nothing to wait
    for: the observer is skipped (a call to it is still hung), or the engine was closed
    and the call was made here."""
    hung = threads.hung_observers
    if _skipped(hung, impl, hook_name):
        return None
    job = _job(plugins, hung, impl, hook_name, kwargs, call, returned)
    try:
        pool = threads.observers()
        pool.submit(job)
    except RuntimeError:  # the engine was closed: no thread to hand it to
        plugins.call_observer(impl, hook_name, kwargs)
        return None
    return pool


def _given_up(plugins: PluginManager, threads: Threads, timeout: float, impl: Any,
              hook_name: str, call: _Call, pool: DaemonPool) -> dict[str, Any] | None:
    """The wait is over and the call has not returned: give up on it (count it, log it);
    the ``observer_hung`` alert to send, if any (None: it returned just now, or it was an
    alert observer itself)."""
    if not _give_up(call, pool, threads.hung_observers, impl):
        return None
    message = _hung(plugins, timeout, impl, hook_name)
    if hook_name == "sof_alert":
        return None
    return {"kind": "observer_hung", "message": message,
            "details": _details(impl, hook_name, timeout)}


def _skipped(hung: HungObservers, impl: Any, hook_name: str) -> bool:
    """True (and logged) when a call to ``impl`` is still hung: it is not called again."""
    if not hung.hung(impl):
        return False
    log.debug("observer %s.%s skipped: a call to it is still hung", impl.plugin_name,
              hook_name)
    return True


def _job(plugins: PluginManager, hung: HungObservers, impl: Any, hook_name: str,
         kwargs: dict[str, Any], call: _Call, returned: Callable[[], object]
         ) -> Callable[[], object]:
    """The pool thread's job: the call in a copy of the caller's context, then
    ``returned()`` if it was still waited for, else the hung call marked as over."""
    context = contextvars.copy_context()

    def job() -> object:
        try:
            context.run(plugins.call_observer, impl, hook_name, kwargs)
        except BaseException:  # SystemExit, KeyboardInterrupt: call_observer lets them by
            plugins.observer_errors += 1
            log.exception("observer %s.%s raised; ignored", impl.plugin_name, hook_name)
        with call.lock:
            if call.abandoned:
                hung.returned(impl)
                log.info("observer %s.%s returned after it was given up on",
                         impl.plugin_name, hook_name)
                return ABANDONED
            call.finished = True
        returned()
        return None

    return job


def _hung(plugins: PluginManager, timeout: float, impl: Any, hook_name: str) -> str:
    """Count and log a call given up on; the message its ``observer_hung`` alert carries."""
    plugins.observer_timeouts += 1
    message = (f"observer {impl.plugin_name}.{hook_name} did not return within "
               f"{timeout}s (observer_timeout); SOF stopped waiting for it, and skips it "
               "until that call returns")
    log.warning("%s", message)
    return message


def _details(impl: Any, hook_name: str, timeout: float) -> dict[str, Any]:
    return {"plugin": impl.plugin_name, "hook": hook_name, "timeout": timeout}


def _give_up(call: _Call, pool: DaemonPool, hung: HungObservers, impl: Any) -> bool:
    """Stop waiting for ``call``; False when it finished first after all."""
    with call.lock:
        if call.finished:
            return False
        call.abandoned = True
        hung.add(impl)
    pool.abandon()
    return True


__all__ = ["HungObservers", "anotify", "notify", "notify_one"]
