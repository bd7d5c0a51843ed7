"""The hook specifications, at the import path DESIGN.md promises (``sof_core.hookspecs``).

They live in ``sof_core.plugins.hookspecs``; this module re-exports every ``sof_*`` spec so
``pluggy.PluginManager.add_hookspecs(sof_core.hookspecs)`` and ``help()`` work here too.
"""

from __future__ import annotations

from sof_core.plugins.hookspecs import *  # noqa: F403
from sof_core.plugins.hookspecs import __all__ as __all__
