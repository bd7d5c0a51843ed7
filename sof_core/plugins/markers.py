"""The pluggy markers of project ``sof``; plugins import ``hookimpl`` from ``sof_core``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import pluggy

_F = TypeVar("_F")

#: The attribute ``inline_observer`` sets on an observer hook's function.
INLINE_OBSERVER = "sof_inline_observer"

PROJECT_NAME = "sof"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@overload
def inline_observer(function: _F) -> _F: ...


@overload
def inline_observer(*, unless: Callable[[], bool]) -> Callable[[_F], _F]: ...


def inline_observer(
    function: _F | None = None, *, unless: Callable[[], bool] | None = None
) -> Any:
    """Mark an observer hook implementation as one that never blocks (it only records in
    memory): SOF then calls it directly in whatever thread notifies it, instead of in a
    thread of the engine's observer pool under ``observer_timeout`` (docs/hooks.md).

    ``@inline_observer``, with ``@hookimpl`` in either order. ``@inline_observer(unless=f)``:
    inline except while ``f()`` is true (an observer that blocks only in some setups: one
    that exports synchronously when a tracer is configured). An observer marked so that
    does block holds the caller of ``execute_plan`` as long as it blocks: mark only code
    that cannot.
    """

    def mark(target: _F) -> _F:
        if unless is None:
            setattr(target, INLINE_OBSERVER, True)
        else:
            setattr(target, INLINE_OBSERVER, lambda: not unless())
        return target

    return mark if function is None else mark(function)


def is_inline_observer(function: Any) -> bool:
    """Whether an observer implementation is to be called inline now (``inline_observer``)."""
    marked = getattr(function, INLINE_OBSERVER, False)
    if marked is True or marked is False:
        return marked
    try:
        return bool(marked())
    except Exception:  # a predicate that fails: the bounded call is the safe side
        return False
