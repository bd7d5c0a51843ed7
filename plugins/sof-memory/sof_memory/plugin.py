"""The ``memory`` plugin: its skill, its embedded backend, its commands, its configuration.

Entry point: ``[project.entry-points."sof.plugins"] memory = "sof_memory.plugin"``. Importing
this module is cheap: nothing touches the disk until a search or a command runs.
"""

from __future__ import annotations

import logging
from typing import Any

from sof_core import hookimpl
from sof_memory.selection import KIND, backend_name
from sof_memory.skill import MemoryRetrievalSkill
from sof_memory.sqlite_backend import SQLiteMemoryBackend

#: ``plugin_settings`` key this plugin reads (``config.settings_for("memory")``).
SETTINGS_KEY = "memory"
log = logging.getLogger("sof.memory")


@hookimpl
def sof_register_skills() -> list[Any]:
    return [MemoryRetrievalSkill]


@hookimpl
def sof_register_memory_backends() -> list[Any]:
    # A fresh instance per plugin manager, so separate hosts never share connections.
    return [SQLiteMemoryBackend()]


@hookimpl
def sof_configure(config: Any, registry: Any) -> None:
    """Point the embedded store at its path and bind the skill to the registry's backends.

    Never raises for a bad backend name: the skill reports it when it runs, so a typo in
    the memory settings cannot unload the whole plugin.
    """
    settings = config.settings_for(SETTINGS_KEY)
    entry = registry.component(KIND, "sqlite")
    if entry is not None and isinstance(entry.obj, SQLiteMemoryBackend):
        entry.obj.configure(settings)
    skill = registry.skill(MemoryRetrievalSkill.skill_name)
    if skill is not None and isinstance(skill.instance, MemoryRetrievalSkill):
        skill.instance.configure(settings, registry)
    try:
        name = backend_name(settings)
    except Exception as exc:
        log.warning("%s", exc)
        return
    if name != "sqlite" and registry.component(KIND, name) is None:
        log.warning(
            "memory backend %r is not registered (yet); installed: %s",
            name, sorted(registry.components(KIND)),
        )


@hookimpl
def sof_register_commands(subparsers: Any) -> None:
    from sof_memory.cli import register

    register(subparsers)
