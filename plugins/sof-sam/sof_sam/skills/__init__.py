"""SAM's ``sam.orchestration.skills``: the skill base class and its errors.

``MemoryRetrievalSkill``, ``ResponseGenerationSkill`` and ``ConflictDetectorSkill`` resolve
from SOF's plugins on first use, as from ``sof_sam`` itself.
"""

from __future__ import annotations

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


__all__ = ["BaseSkillModule", "SkillDependencyError", "SkillExecutionError", "SkillMetadata"]
