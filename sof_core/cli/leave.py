"""Leaving the ``sof`` process once a command is done, whatever threads are still running.

The interpreter's normal exit joins every non-daemon thread first. SOF's own threads are
daemons, and so are the threads a skill starts from them (a thread inherits its creator's
flag), but a skill or plugin can still ask for a non-daemon one (``Thread(daemon=False)``),
and the interpreter joins the workers of every ``concurrent.futures.ThreadPoolExecutor``,
daemon or not. One such thread that never ends (a task hung in a skill's own executor, even
after SOF abandoned the skill at its timeout) would keep ``sof run`` from exiting after it
has printed its answer. So the console script ends through ``leave``: with no such thread
alive it exits as usual; otherwise it says which threads it does not wait for, runs the
exit handlers (``atexit``: isolation workers killed, logs flushed) and ends the process.

Only the console script and ``python -m sof_core.cli`` do this; ``main()`` called in-process
(by a host or a test) returns its exit code and leaves the process alone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

#: How long still-running threads get to finish by themselves before they are left.
GRACE = 0.2


def console() -> NoReturn:
    """The ``sof`` console script: ``main()``, then ``leave`` with its exit code."""
    from sof_core.cli.main import console_main

    leave(console_main())


def leave(code: int) -> NoReturn:
    """Exit with ``code`` without waiting for non-daemon threads still running."""
    lingering = _lingering(GRACE)
    if not lingering:
        sys.exit(code)
    names = ", ".join(sorted(thread.name for thread in lingering))
    count = len(lingering)
    print(f"sof: exiting without waiting for {count} thread{'s' if count != 1 else ''} "
          f"still running ({names}) that exit would wait for; {_who(lingering)}",
          file=sys.stderr)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's, 3.8 and later
    if run_exit_handlers is not None:
        with contextlib.suppress(BaseException):  # a failing handler must not keep us here
            run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a broken pipe
            stream.flush()
    os._exit(code)


#: Worker threads of the libraries ``sof serve`` answers requests on (AnyIO's
#: ``to_thread``): still running at exit only while a call they run has not returned.
_REQUEST_THREADS = ("AnyIO worker thread",)


def _who(lingering: list[threading.Thread]) -> str:
    """Who holds the threads: a request's work (``sof serve``), or a skill or plugin that
    started threads of its own."""
    held = [t for t in lingering if t.name.startswith(_REQUEST_THREADS)]
    own = len(lingering) - len(held)
    parts = []
    if held:
        parts.append(f"{len(held)} answering a request, held by a skill or legacy pipeline "
                     "call that has not returned")
    if own:
        parts.append(f"{own} started by a skill or plugin (Thread(daemon=False), or a "
                     "ThreadPoolExecutor of its own)")
    return "; ".join(parts)


def _lingering(grace: float) -> list[threading.Thread]:
    """The threads the interpreter's exit would wait for that are still running after
    ``grace`` seconds in all: non-daemon threads besides this one, and the workers of
    ``ThreadPoolExecutor``s (daemon or not, the interpreter joins them at exit)."""
    import time

    end = time.monotonic() + grace
    alive = _executor_workers(grace)
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is current or thread.daemon or thread in alive:
            continue
        thread.join(max(0.0, end - time.monotonic()))
        if thread.is_alive():
            alive.append(thread)
    return alive


def _executor_workers(grace: float) -> list[threading.Thread]:
    """``ThreadPoolExecutor`` workers still busy after ``grace`` seconds.

    At exit the interpreter calls ``concurrent.futures.thread._python_exit``, which tells
    every executor's workers to stop and joins them, so one task that never ends (a skill
    abandoned inside ``with ThreadPoolExecutor()``) holds the exit forever. It is called
    here first, in a daemon thread given ``grace``: idle workers stop, short tasks finish,
    and if it is still waiting the workers it waits for are returned. (Private to CPython,
    as the join itself is; looked up, and skipped where it is missing.)
    """
    module = sys.modules.get("concurrent.futures.thread")
    stop = getattr(module, "_python_exit", None)
    workers = getattr(module, "_threads_queues", None)
    if stop is None or not workers:
        return []
    helper = threading.Thread(target=stop, name="sof-executors-exit", daemon=True)
    helper.start()
    helper.join(grace)
    if not helper.is_alive():
        return []
    return [thread for thread in list(workers) if thread.is_alive()]
