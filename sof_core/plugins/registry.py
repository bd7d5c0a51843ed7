"""What the loaded plugins contributed: skills, tools, backends, planners and executors.

The registry is the coordinator's only view of plugins. Its ``version`` changes whenever
anything is added or removed, which is what compiled-plan caches key on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sof_core.errors import PluginConflictError, PluginHookError, SkillDefinitionError
from sof_core.skills.spec import SkillSpec

#: Registration hooks whose items are named components, by registry kind.
COMPONENT_HOOKS: dict[str, str] = {
    "skills": "sof_register_skills",
    "tools": "sof_register_tools",
    "llm_backends": "sof_register_llm_backends",
    "memory_backends": "sof_register_memory_backends",
    "planners": "sof_register_planners",
    "executors": "sof_register_executors",
    "generation_controllers": "sof_register_generation_controllers",
}


@dataclass(frozen=True)
class SkillEntry:
    """A registered skill: its checked declarations, the instance that runs, and its origin."""

    spec: SkillSpec
    instance: Any
    plugin: str
    kind: str  # "skills" or "tools"


@dataclass(frozen=True)
class ComponentEntry:
    """A registered backend, planner or executor."""

    name: str
    obj: Any
    plugin: str


class Registry:
    """Skills and components by name, plus a version that moves on every change."""

    def __init__(self) -> None:
        self._skills: dict[str, SkillEntry] = {}
        self._components: dict[str, dict[str, ComponentEntry]] = {
            kind: {} for kind in COMPONENT_HOOKS if kind not in ("skills", "tools")
        }
        self._lock = threading.RLock()
        self.version = 0

    # --- reading -------------------------------------------------------------------------

    def skill(self, name: str) -> SkillEntry | None:
        return self._skills.get(name)

    def skills(self) -> Iterator[SkillEntry]:
        """Every registered skill, sorted by name so listings are stable."""
        for name in sorted(self._skills):
            yield self._skills[name]

    def skill_names(self) -> list[str]:
        return sorted(self._skills)

    def components(self, kind: str) -> dict[str, ComponentEntry]:
        return dict(self._components[kind])

    def component(self, kind: str, name: str) -> ComponentEntry | None:
        return self._components[kind].get(name)

    def __contains__(self, skill_name: object) -> bool:
        return skill_name in self._skills

    def __len__(self) -> int:
        return len(self._skills)

    # --- writing -------------------------------------------------------------------------

    def add_contributions(self, plugin: str, contributions: dict[str, list[Any]]) -> list[str]:
        """Check and add everything one plugin contributed, all or nothing.

        Returns the names added. Raises ``PluginConflictError`` or ``SkillDefinitionError``
        without changing the registry when any item is unusable, so a plugin is never half in.
        """
        with self._lock:
            new_skills: dict[str, SkillEntry] = {}
            new_components: dict[str, dict[str, ComponentEntry]] = {}
            for kind, items in contributions.items():
                for item in items:
                    if kind in ("skills", "tools"):
                        entry = _skill_entry(plugin, kind, item)
                        name = entry.spec.name
                        owner = self._skills.get(name) or new_skills.get(name)
                        if owner is not None:
                            raise PluginConflictError(
                                plugin,
                                f"skill {name!r} is already registered by plugin "
                                f"{owner.plugin!r}; rename one of them or disable a plugin",
                            )
                        new_skills[name] = entry
                    else:
                        name = _component_name(plugin, kind, item)
                        existing = self._components[kind].get(name) or new_components.get(
                            kind, {}
                        ).get(name)
                        if existing is not None:
                            raise PluginConflictError(
                                plugin,
                                f"{kind[:-1].replace('_', ' ')} {name!r} is already registered "
                                f"by plugin {existing.plugin!r}",
                            )
                        new_components.setdefault(kind, {})[name] = ComponentEntry(
                            name, item, plugin
                        )
            self._skills.update(new_skills)
            for kind, entries in new_components.items():
                self._components[kind].update(entries)
            self.version += 1
            added = list(new_skills)
            for entries in new_components.values():
                added.extend(entries)
            return added

    def remove_plugin(self, plugin: str) -> None:
        """Drop everything a plugin contributed (used when it is unregistered)."""
        with self._lock:
            self._skills = {n: e for n, e in self._skills.items() if e.plugin != plugin}
            for kind, entries in self._components.items():
                self._components[kind] = {n: e for n, e in entries.items() if e.plugin != plugin}
            self.version += 1


def _skill_entry(plugin: str, kind: str, item: Any) -> SkillEntry:
    skill_class = item if isinstance(item, type) else type(item)
    if not callable(getattr(skill_class, "execute", None)):
        raise SkillDefinitionError(
            getattr(item, "skill_name", None) or repr(item),
            f"plugin {plugin!r} returned {item!r} from {COMPONENT_HOOKS[kind]}, which is not "
            "a skill; return BaseSkillModule subclasses or instances",
        )
    spec = SkillSpec.from_skill_class(skill_class)
    if isinstance(item, type):
        try:
            instance = item()
        except Exception as exc:
            raise SkillDefinitionError(
                spec.name, f"could not be instantiated with no arguments: {exc!r}"
            ) from exc
    else:
        instance = item
    return SkillEntry(spec=spec, instance=instance, plugin=plugin, kind=kind)


def _component_name(plugin: str, kind: str, item: Any) -> str:
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginHookError(
            plugin, f"{COMPONENT_HOOKS[kind]} returned {item!r}, which has no string 'name'"
        )
    return name
