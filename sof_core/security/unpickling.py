"""Reading what an isolated call sent back, without trusting the process that sent it.

An isolated skill or tool runs in a worker process (or a forked child) so that what it does
there (hang, crash, exhaust memory, reach the network it was denied) stays there. Its reply
is pickled, and ``pickle.loads`` runs whatever callable the bytes name: an object whose
``__reduce__`` returns ``(os.system, ("...",))``, written by the skill or forged by code
that took over the worker, would run in the host on unpickling and undo the isolation.

So the host reads replies with ``load_reply``, whose unpickler resolves only:

- plain data: the built-in containers, numbers, strings and bytes, and the standard
  library's value types (``datetime``, ``Decimal``, ``Fraction``, ``UUID``, paths, the
  ``collections`` containers), and the built-in exceptions;
- classes (never functions) defined in a trusted package: the skill's own top-level
  package, the UIF class's, ``sof_core.errors`` and ``sof_core.uif``, and any package the
  skill lists in ``isolation_reply_packages``; the host imported those packages itself to
  load the plugin, so a reply naming them runs no code the host had not already trusted;
- an exception class from a module the host has already imported (what a skill raised, a
  client library's error), without importing anything for it.

Anything else is refused before it is imported or called: ``RefusedGlobal`` names it (the
isolation pool reports it as ``SkillReplyRefusedError``). A package listed in
``isolation_reply_packages`` is trusted whole, functions included (``numpy`` arrays are
rebuilt by a function): list only packages the host imports anyway.
"""

from __future__ import annotations

import builtins
import io
import pickle
import sys
from collections.abc import Collection
from typing import Any

from sof_core._reply_trust import NEVER_TRUSTED

#: The path classes, under each module name their pickles may give.
_PATH_CLASSES = frozenset({"Path", "PosixPath", "PurePath", "PurePosixPath",
                           "PureWindowsPath", "WindowsPath"})

#: Standard-library globals that rebuild plain values and run nothing else.
SAFE_GLOBALS: dict[str, frozenset[str]] = {
    "builtins": frozenset({
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
        "object", "range", "set", "slice", "str", "tuple",
    }),
    # How pickle rebuilds an ordinary object: ``cls.__new__(cls, ...)``, the class being
    # resolved (and checked) separately.
    "copyreg": frozenset({"_reconstructor", "__newobj__", "__newobj_ex__"}),
    "collections": frozenset({"ChainMap", "Counter", "OrderedDict", "defaultdict", "deque"}),
    "datetime": frozenset({"date", "datetime", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
    "fractions": frozenset({"Fraction"}),
    "uuid": frozenset({"UUID", "SafeUUID"}),
    "pathlib": _PATH_CLASSES,
    # Python 3.13 defines them in pathlib._local, which is the module their pickles name.
    "pathlib._local": _PATH_CLASSES,
    # How a SOF error rebuilds (``SOFError.__reduce__``): its class, checked separately,
    # must be a SOF error; nothing else is called.
    "sof_core.errors": frozenset({"_restore_error"}),
}
#: SOF's own modules whose classes a reply may hold (errors, the UIF and its status).
SOF_MODULES = frozenset({"sof_core.errors", "sof_core.uif"})


class RefusedGlobal(pickle.UnpicklingError):
    """A reply named a global the host does not load from an isolated process.
    ``trustable``: whether listing its package in ``isolation_reply_packages`` would let
    it through (never for ``NEVER_TRUSTED`` ones)."""

    def __init__(self, name: str, trustable: bool | None = None) -> None:
        super().__init__(f"refused to load {name} from an isolated process's reply")
        self.name = name
        if trustable is None:
            trustable = name.partition(".")[0] not in NEVER_TRUSTED
        self.trustable = trustable


def trusted_packages(*sources: Any) -> frozenset[str]:
    """The top-level packages the classes or functions in ``sources`` were defined in, but
    ``sof_core`` (of which only ``SOF_MODULES`` are trusted)."""
    found = set()
    for source in sources:
        module = getattr(source, "__module__", None)
        if isinstance(module, str) and module:
            found.add(module.partition(".")[0])
    found.discard("sof_core")
    return frozenset(found)


def reply_sources(func: Any) -> tuple[Any, ...]:
    """``func`` and, for a bound method, its object's class: what decides the packages
    whose classes a sandboxed call's result may hold."""
    owner = getattr(func, "__self__", None)
    return (func,) if owner is None else (func, type(owner))


def load_reply(data: bytes | bytearray | memoryview, packages: Collection[str] = (),
               open_packages: Collection[str] = ()) -> Any:
    """Unpickle ``data`` from an isolated process, resolving only what is safe (above).

    ``packages``: top-level packages whose classes it may hold; ``open_packages``: packages
    trusted whole (``isolation_reply_packages``). Raises ``RefusedGlobal`` for anything
    else, ``pickle.UnpicklingError`` (or another exception) for broken data.
    """
    return _ReplyUnpickler(io.BytesIO(data), frozenset(packages),
                           frozenset(open_packages)).load()


class _ReplyUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, packages: frozenset[str],
                 open_packages: frozenset[str]) -> None:
        super().__init__(file)
        self._packages = packages
        self._open = open_packages

    def find_class(self, module: str, name: str) -> Any:
        # Decided from the names alone before anything is imported: importing a module can
        # run code (``antigravity`` opens a browser).
        if name in SAFE_GLOBALS.get(module, ()):
            return super().find_class(module, name)
        root = module.partition(".")[0]
        if root in self._open and root not in NEVER_TRUSTED:
            return super().find_class(module, name)
        if module == "builtins":
            found = getattr(builtins, name, None)
            if isinstance(found, type) and issubclass(found, BaseException):
                return found
        elif module in SOF_MODULES or root in self._packages:
            found = super().find_class(module, name)
            if isinstance(found, type) and found.__module__ == module:  # defined there
                return found
        elif module in sys.modules and "." not in name:
            found = getattr(sys.modules[module], name, None)
            if isinstance(found, type) and issubclass(found, BaseException):
                return found
        raise RefusedGlobal(f"{module}.{name}")


__all__ = ["NEVER_TRUSTED", "SAFE_GLOBALS", "SOF_MODULES", "RefusedGlobal", "load_reply",
           "reply_sources", "trusted_packages"]
