"""SAM's ``sam.orchestration.skills``: the skill base class and its errors.

``MemoryRetrievalSkill``, ``ResponseGenerationSkill`` and ``ConflictDetectorSkill`` resolve
from SOF's plugins on first use, as from ``sof_sam`` itself.

SAM's skill modules use relative imports (``from ..uif import SAM_UIF``, ``from .base import
BaseSkillModule``, ``from ..security import ...``). So that they keep working once a SAM
distribution ships them, an installed distribution may graft a package of skill modules onto
this one: an entry point in the group ``sof_sam.skills`` naming a package (a directory with an
``__init__.py``). Its modules then import as ``sof_sam.skills.<module>``, where those relative
imports resolve to ``sof_sam``'s modules, and SAM's callers' imports of
``sam.orchestration.skills.<module>`` work after the one rewrite. ``sof_sam``'s own modules
come first: a grafted ``base.py`` (SAM's old base class) is never used.
"""

from __future__ import annotations

import importlib.util
import logging
from importlib.metadata import entry_points
from typing import Any

from sof_sam.skills.base import (
    BaseSkillModule,
    SkillDependencyError,
    SkillExecutionError,
    SkillMetadata,
)


def __getattr__(name: str) -> Any:
    from sof_sam import PLUGIN_SKILLS, plugin_skill

    if name in PLUGIN_SKILLS:
        value = plugin_skill(name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sof_sam.skills' has no attribute {name!r}")


#: The entry-point group whose packages are grafted onto ``sof_sam.skills``.
SKILL_PACKAGES_GROUP = "sof_sam.skills"

_log = logging.getLogger(__name__)


def graft_skill_packages() -> list[str]:
    """Add every installed ``sof_sam.skills`` entry point's package directory to this
    package's search path (once each); returns the directories added.

    Runs when ``sof_sam.skills`` is first imported; call it again after installing a
    distribution in a running process. A bad entry point is logged and skipped, never fatal.
    """
    added: list[str] = []
    for entry in entry_points(group=SKILL_PACKAGES_GROUP):
        try:
            spec = importlib.util.find_spec(entry.value)
        except (ImportError, ValueError) as exc:
            _log.warning("sof_sam.skills entry point %r: cannot find %r (%s); skipped",
                         entry.name, entry.value, exc)
            continue
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations:
            _log.warning(
                "sof_sam.skills entry point %r names %r, which is not a package; name a "
                "directory with an __init__.py holding SAM's skill modules", entry.name,
                entry.value,
            )
            continue
        for location in locations:
            if location not in __path__:
                __path__.append(location)
                added.append(location)
    return added


graft_skill_packages()

__all__ = [
    "SKILL_PACKAGES_GROUP", "BaseSkillModule", "SkillDependencyError", "SkillExecutionError",
    "SkillMetadata", "graft_skill_packages",
]
