"""Where a skill failed: the traceback from its ``execute`` and the line in its own code.

Its own module, apart from ``step``: an isolation worker finds these for the exception its
skill raised (``skill_trace``), and importing the step module there would close an import
cycle through the isolation pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sof_core.errors import SOFError

if TYPE_CHECKING:
    from sof_core.graph.compile import Step

log = logging.getLogger("sof.execution")
_not_own: tuple[str, ...] | None = None

#: What a ``SkillResult`` says of a failure: (message, error type, traceback, location).
Failure = tuple[str, str, "str | None", "str | None"]


def describe_failure(step: Step, error: BaseException) -> Failure:
    """Everything a report says of a skill's exception, worked out at once.

    Called in the thread that ran the skill, while its step is still under its deadline and
    before the run's lock is taken: the message and traceback come from the skill's own
    exception (its ``__str__``), which may raise, or hang. One that hangs is given up on at
    the step's deadline like the skill itself, instead of holding the run's lock (and with
    it the run's total timeout) forever.
    """
    try:
        trace, location = failure_trace(step, error)
    except Exception:  # an exception whose traceback cannot be formatted: none reported
        trace, location = None, None
    text = error_text(error)
    if log.isEnabledFor(logging.DEBUG):  # a host debugging from its own logs sees where
        log.debug("skill %s failed at %s: %s: %s\n%s", step.name, location or "?",
                  type(error).__name__, text, trace or "(no traceback in the skill's code)")
    return text, type(error).__name__, trace, location


def error_text(error: BaseException) -> str:
    """``str(error)`` without the ``skill '...': `` prefix SOF errors carry; an exception
    whose ``__str__`` raises is described by its type instead."""
    try:
        text = str(error)
    except Exception as exc:
        return f"{type(error).__name__} (its message could not be read: str() raised " \
               f"{type(exc).__name__})"
    skill = getattr(error, "skill", None) if isinstance(error, SOFError) else None
    if skill:
        prefix = f"skill {skill!r}: "
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text or type(error).__name__


def failure_trace(step: Step, error: BaseException) -> tuple[str | None, str | None]:
    """``(traceback, location)`` of a skill's exception, for its ``SkillResult``.

    The traceback starts at the skill's ``execute`` (SOF's and the executor's frames above
    it are dropped), so the skill's own code comes first; ``location`` is ``"file:line"`` of
    the innermost frame in the skill's own code, where a library call or a guarded write
    failed. An exception an isolated skill raised in its worker process carries both, as
    the worker found them (its ``__cause__``: frames do not cross processes). Both are
    ``None`` when the skill's ``execute`` is not in the traceback (a timeout, ``set_error``,
    a write refused after it returned or replayed from another process). Only called for
    failures: formatting reads source files.
    """
    found = skill_trace(step.instance, error)
    if found[1] is None:
        remote = getattr(error.__cause__, "skill_trace", None)  # isolation.RemoteTraceback
        if isinstance(remote, tuple) and remote[1] is not None:
            return remote
    return found


def skill_trace(instance: Any, error: BaseException) -> tuple[str | None, str | None]:
    """``failure_trace`` for the skill object ``instance`` (what an isolation worker has)."""
    from sof_core._tracebacks import traceback_text

    nodes = []
    node = error.__traceback__
    while node is not None:
        nodes.append(node)
        node = node.tb_next
    if not nodes:
        return None, None
    own = _own_code(instance)
    code = getattr(getattr(type(instance), "execute", None), "__code__", None)
    start = None
    if code is not None:
        for index, node in enumerate(nodes):
            frame_code = node.tb_frame.f_code
            # by name too: frames rebuilt from another process (Dask) are not the same objects
            if frame_code is code or (frame_code.co_filename == code.co_filename
                                      and frame_code.co_name == code.co_name):
                start = index
                break
    if start is None:  # raised outside the skill's code (SOF's checks, the executor's)
        return None, None
    innermost = nodes[start]
    for node in nodes[start:]:
        if own(node.tb_frame.f_code.co_filename):
            innermost = node
    location = f"{innermost.tb_frame.f_code.co_filename}:{innermost.tb_lineno}"
    text = traceback_text(error, nodes[start])
    return text, location


def _own_code(instance: Any) -> Callable[[str], bool]:
    """Whether a file is the skill's own code: its package (or module file), or any file
    outside the standard library, the installed packages and SOF itself."""
    import os
    import sys

    global _not_own
    if _not_own is None:
        import sysconfig

        paths = sysconfig.get_paths()
        roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
        roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # sof_core
        _not_own = tuple(os.path.join(root, "") for root in roots)
    not_own = _not_own
    home: str | None = None
    module = sys.modules.get(type(instance).__module__)
    top = getattr(module, "__package__", None)
    top_module = sys.modules.get(top.partition(".")[0]) if top else None
    if top_module is not None and getattr(top_module, "__path__", None):
        home = os.path.join(next(iter(top_module.__path__)), "")
    elif getattr(module, "__file__", None):
        home = module.__file__  # type: ignore[union-attr]

    def own(filename: str) -> bool:
        if home is not None and filename.startswith(home):
            return True
        return not filename.startswith("<") and not filename.startswith(not_own)

    return own
