"""No garbage collection while the ``sof`` command starts up.

Start-up (importing pydantic, SOF and the installed plugins, building the config, loading
the plugins) allocates a few hundred thousand objects that all live until the process ends.
The cyclic collector cannot free any of them, yet it walks them again and again as they
pile up: about a hundred young and ten middle collections and a full one, ~40 ms of a
``sof run`` of the README's demo query, for nothing.

So ``main()`` pauses the collector (``pause``) and the command ends the pause as soon as the
plugins are loaded (``done``, called by ``cli.common.manager``), before any skill or plugin
command runs: what start-up made is frozen (``gc.freeze``: never scanned again, as it is
all alive) and collection goes on as usual for everything the command does next. When
``main()`` returns, ``restore`` gives the process back its collector as it found it (frozen
objects unfrozen), so a host or test calling ``main()`` in-process sees no difference.
Nothing is paused when the collector was off already or the caller froze objects itself.
"""

from __future__ import annotations

import gc

_state = {"paused": False, "frozen": False}
# Python 3.12 starts with objects in the permanent generation already (the immortal __bases__
# and __mro__ tuples of the static built-in types, ~375): only a count above that is a freeze.
_BASELINE = gc.get_freeze_count()


def pause() -> bool:
    """Stop collecting for start-up; True when this call paused it (then ``restore`` it)."""
    if (_state["paused"] or _state["frozen"] or not gc.isenabled()
            or gc.get_freeze_count() > _BASELINE):
        return False
    gc.disable()
    _state["paused"] = True
    return True


def done() -> None:
    """Start-up is over: freeze what it made and collect again (a no-op unless paused)."""
    if not _state["paused"]:
        return
    _state["paused"] = False
    gc.freeze()
    _state["frozen"] = True
    gc.enable()


def restore(paused: bool) -> None:
    """Give the process its collector back as ``pause`` found it (``paused``: its result)."""
    if not paused:
        return
    if _state["paused"]:
        _state["paused"] = False
        gc.enable()
    if _state["frozen"]:
        _state["frozen"] = False
        gc.unfreeze()
