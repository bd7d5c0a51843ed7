"""One call of plugin code, in a daemon thread of its own, waited for at most a limit.

For the rare calls a host makes into a plugin outside the engine's pools: constructing a
plugin's executor at its first use, asking a planner. A call that does not return in time
is left running (daemon: it never holds up the process's exit) and the caller goes on;
what it would have returned is dropped. Runs in a copy of the caller's ``contextvars``
context, so a request id or a tracing span reads the same there. Kept outside the layers
(planning and execution both use it).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

#: What ``call_bounded`` returns: ``(True, result)``, ``(False, exception)``, or None when
#: the call did not return within the limit.
Outcome = tuple[bool, Any] | None

#: What Python raises for main-thread-only work done in another thread.
_MAIN_THREAD_ONLY: tuple[tuple[type[BaseException], str], ...] = (
    (ValueError, "main thread"),  # signal.signal, signal.set_wakeup_fd
    (RuntimeError, "no current event loop in thread"),  # asyncio.get_event_loop()
)


def needs_main_thread(exc: BaseException) -> bool:
    """Whether ``exc`` (or the exception it was raised from) is Python refusing
    main-thread-only work in another thread."""
    return any(isinstance(error, kind) and text in str(error)
               for error in (exc, exc.__cause__) if error is not None
               for kind, text in _MAIN_THREAD_ONLY)


def call_bounded(fn: Callable[[], Any], limit: float | None, thread_name: str, *,
                 given_up: Callable[[], object] | None = None,
                 late: Callable[[], object] | None = None,
                 main_thread_retry: bool = False) -> Outcome:
    """``fn()`` in a daemon thread named ``thread_name``, waited for at most ``limit``
    seconds (None: until it returns). Any exception it raises, ``KeyboardInterrupt`` and
    ``SystemExit`` included, comes back as ``(False, exc)`` for the caller to judge.

    With ``main_thread_retry``, a call that fails only because it needs the main thread
    (``needs_main_thread``: it installs a signal handler, say) is made again in the calling
    thread when that is the main thread, without the bound, as it ran before it had one.

    When the wait ends first, ``given_up()`` is called, and ``late()`` once the call
    returns after all (in its thread, never before ``given_up``): a caller that skips a
    callee while a call to it is still hung marks and clears it there.
    """
    outcome: list[tuple[bool, Any]] = []
    caller = contextvars.copy_context()
    lock = threading.Lock()
    abandoned = [False]

    def work() -> None:
        try:
            result = (True, caller.run(fn))
        except BaseException as exc:  # handed to the caller
            result = (False, exc)
        with lock:
            outcome.append(result)
            if abandoned[0] and late is not None:
                late()

    thread = threading.Thread(target=work, name=thread_name, daemon=True)
    thread.start()
    thread.join(limit)
    with lock:
        if not outcome:
            abandoned[0] = True
            if given_up is not None:
                given_up()
            return None
    ok, value = outcome[0]
    if main_thread_retry and not ok and needs_main_thread(value) and (
            threading.current_thread() is threading.main_thread()):
        try:  # it only works here: made here, unbounded
            return True, fn()
        except BaseException as exc:
            return False, exc
    return outcome[0]


__all__ = ["Outcome", "call_bounded", "needs_main_thread"]
