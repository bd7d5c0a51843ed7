"""Plugins: hook specs, markers, the loader (``PluginManager``, ``PluginRecord``), the registry.

Only ``markers`` is imported eagerly, so a plugin module that imports ``hookimpl`` pays for
pluggy and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core._lazy import lazy_exports
from sof_core.plugins.markers import PROJECT_NAME, hookimpl, hookspec

if TYPE_CHECKING:
    from sof_core.plugins.loader import (
        ENTRY_POINT_GROUP,
        PluginManager,
        PluginRecord,
        get_plugin_manager,
        reset_plugin_manager,
    )
    from sof_core.plugins.registry import ComponentEntry, FailedPlugin, Registry, SkillEntry

_LAZY = {
    "ENTRY_POINT_GROUP": "sof_core.plugins.loader",
    "PluginManager": "sof_core.plugins.loader",
    "PluginRecord": "sof_core.plugins.loader",
    "get_plugin_manager": "sof_core.plugins.loader",
    "reset_plugin_manager": "sof_core.plugins.loader",
    "ComponentEntry": "sof_core.plugins.registry",
    "FailedPlugin": "sof_core.plugins.registry",
    "Registry": "sof_core.plugins.registry",
    "SkillEntry": "sof_core.plugins.registry",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "ComponentEntry",
    "FailedPlugin",
    "PluginManager",
    "PluginRecord",
    "Registry",
    "SkillEntry",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "reset_plugin_manager",
]
