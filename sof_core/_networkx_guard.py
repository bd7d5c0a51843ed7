"""Keep networkx's backend scan from stopping SOF's first compile; imported for that effect.

Importing networkx scans every installed distribution's entry points (groups
``networkx.backends`` and ``networkx.backend_info``). One malformed ``entry_points.txt`` in
any distribution (a group line without ``=``, binary content) makes that scan raise, and
with it the first plan a process compiles without the plan store: every ``sof run`` and
``execute_plan`` would fail with a ``TypeError`` from deep inside ``importlib.metadata``.

Importing this module imports networkx (``from sof_core._networkx_guard import networkx``
is how SOF's modules import it). Only if that fails on the entry points is networkx
imported again, its scan served by the reader SOF's own plugin discovery uses
(``sof_core.plugins.loader.read_entry_points``: each distribution read on its own, a broken
one skipped and named), with a warning naming the broken ones, as ``_pydantic_guard`` does
for pydantic's plugin scan. When the import works, nothing changes and nothing extra is paid.
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

log = logging.getLogger("sof")


def _readable_entry_points(**params: Any) -> importlib.metadata.EntryPoints:
    """``importlib.metadata.entry_points(group=...)`` over the distributions that parse."""
    from sof_core.plugins.loader import read_entry_points

    found, _ = read_entry_points(params.pop("group"))
    return importlib.metadata.EntryPoints(found).select(**params)


@contextmanager
def _tolerant_scan() -> Iterator[None]:
    original = importlib.metadata.entry_points
    importlib.metadata.entry_points = _readable_entry_points  # type: ignore[assignment]
    try:
        yield
    finally:
        importlib.metadata.entry_points = original


def _forget_networkx() -> None:
    """Drop what the failed import left in ``sys.modules``, so it runs again whole."""
    for name in [n for n in sys.modules if n == "networkx" or n.startswith("networkx.")]:
        del sys.modules[name]


def import_networkx() -> ModuleType:
    """Import networkx; if its entry-point scan fails, import it past the broken files."""
    # Import statements, not importlib.import_module: ``python -X importtime`` (what the
    # start-up benchmark and profiling read) sees only those.
    try:
        import networkx
    except Exception as exc:
        from sof_core.plugins.loader import read_entry_points

        _, problems = read_entry_points("networkx.backends")
        if not problems:  # not the scan: a real problem with networkx itself
            raise
        _forget_networkx()
        with _tolerant_scan():
            import networkx  # noqa: F401  (kept in sys.modules, returned below)
        log.warning(
            "networkx's entry-point scan failed (%s: %s); networkx was imported without the "
            "broken distributions: %s",
            type(exc).__name__,
            exc,
            "; ".join(problems),
        )
    return sys.modules["networkx"]


if TYPE_CHECKING:
    import networkx as networkx
else:
    networkx = import_networkx()
