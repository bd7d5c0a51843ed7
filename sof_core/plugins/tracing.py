"""Plugin tracing (``SOF_TRACE_PLUGINS=1``): every hook call, which plugin answered, how long
it took and what it returned or raised.

SOF calls hook implementations one at a time (so one plugin's failure never hides another's
result), and pluggy's own call monitoring sees only calls made through ``hook.NAME(...)``.
So tracing wraps each implementation's function when its plugin is registered: every call
is traced, whoever makes it. With tracing off nothing is wrapped, and hook calls cost what
they cost without this module.

Lines go to the logger ``sof.plugins.trace`` at INFO (its level is set so that the
``SOF_LOG_LEVEL`` of the ``sof`` command does not hide them); when nothing in the process
handles logging, they are written to stderr.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

ENV_VAR = "SOF_TRACE_PLUGINS"
log = logging.getLogger("sof.plugins.trace")
#: How much of a returned value or an error message a trace line shows.
MAX_REPR = 200


def enabled() -> bool:
    """Read on each registration, so a host may turn tracing on before loading plugins."""
    return os.environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def trace_hooks(hook_manager: Any, plugin: object, plugin_name: str) -> None:
    """Wrap the implementations ``plugin`` just registered (call only when ``enabled()``)."""
    _prepare_logger()
    for caller in hook_manager.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin or impl.hookwrapper or impl.wrapper:
                continue  # wrappers are generators: SOF never calls them directly
            if getattr(impl.function, "_sof_traced", False):
                continue
            impl.function = _traced(impl.function, caller.name, plugin_name)


def _traced(function: Callable[..., Any], hook: str, plugin: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:
            took = (time.perf_counter() - started) * 1000
            log.info("%s: plugin %r raised %s: %s (%.3f ms)", hook, plugin,
                     type(exc).__name__, _short(str(exc)), took)
            raise
        took = (time.perf_counter() - started) * 1000
        log.info("%s: plugin %r returned %s (%.3f ms)", hook, plugin, _describe(result), took)
        return result

    call._sof_traced = True  # type: ignore[attr-defined]
    return call


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        return f"{len(value)} item(s) {_short(_labels(value))}"
    return _short(_safe_repr(value))


def _labels(items: Any) -> str:
    """Skills and components by the names SOF knows them by, anything else by repr."""
    names = []
    for item in items:
        label = None
        for attribute in ("skill_name", "name"):
            try:
                value = getattr(item, attribute, None)
            except Exception:
                value = None
            if isinstance(value, str) and value:
                label = value
                break
        names.append(label or _safe_repr(item))
    return "[" + ", ".join(names) + "]"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__name__}: repr raised {type(exc).__name__}>"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


class _StderrWhenUnhandled(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes trace lines to stderr only while the root logger has no handler of its own,
    so a host (or the ``sof`` command) that configures logging gets them once, its way."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            self.stream = sys.stderr
            super().emit(record)


def _prepare_logger() -> None:
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    if not any(isinstance(h, _StderrWhenUnhandled) for h in log.handlers):
        handler = _StderrWhenUnhandled()
        handler.setFormatter(logging.Formatter("sof: trace: %(message)s"))
        log.addHandler(handler)
