"""Skills: ``BaseSkillModule``, ``SkillSpec`` and the scoped views a running skill gets."""

from __future__ import annotations

from sof_core.skills.base import BaseSkillModule
from sof_core.skills.spec import KeyDeclaration, SkillSpec, type_name

__all__ = ["BaseSkillModule", "KeyDeclaration", "SkillSpec", "type_name"]
