"""Names a package exports from modules it imports on first use (PEP 562).

Every ``sof`` process imports ``sof_core`` and every installed plugin's package, and most
of them use little of what those export; a package that imported all its modules up front
would make each of those processes pay for all of them. ``lazy_exports`` gives a package the
module-level ``__getattr__`` and ``__dir__`` that import a name's module when the name is
first read, and keep the value (later reads are plain attribute lookups).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for module ``package``: ``exports`` maps each name to the
    module that defines it. Any other name that is a submodule of ``package`` is imported
    when first read, as ``import package.name`` would.

    Use it at the end of the package's ``__init__.py``::

        __getattr__, __dir__ = lazy_exports(__name__, {"Vetter": "my_plugin.vetting"})

    ``dir(package)`` lists its ``__all__`` when it has one, else its globals and ``exports``.
    Type checkers do not see through it: import the names under ``typing.TYPE_CHECKING`` as
    well, as the bundled plugins do.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        where = table.get(name)
        if where is None:
            # A submodule nobody imported yet (``package.backend``): imported now, as it was
            # when packages imported all their modules up front, so code that reached a
            # submodule through its package keeps working.
            if not name.startswith("__"):
                try:
                    return importlib.import_module(f"{package}.{name}")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{package}.{name}":
                        raise  # the submodule exists; something it imports does not
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where), name)
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        namespace = vars(sys.modules[package])
        listed = namespace.get("__all__")
        if listed is not None:
            return sorted(listed)
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__


__all__ = ["lazy_exports"]
