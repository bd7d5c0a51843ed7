"""Skills: ``BaseSkillModule``, ``SkillSpec`` and the scoped views a running skill gets.

Its names are imported on first use (``sof_core._lazy``): importing the package imports
none of its modules, nor pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core._lazy import lazy_exports

if TYPE_CHECKING:
    from sof_core.skills.base import BaseSkillModule
    from sof_core.skills.spec import KeyDeclaration, SkillSpec, type_name

_LAZY = {
    "BaseSkillModule": "sof_core.skills.base",
    "KeyDeclaration": "sof_core.skills.spec",
    "SkillSpec": "sof_core.skills.spec",
    "type_name": "sof_core.skills.spec",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["BaseSkillModule", "KeyDeclaration", "SkillSpec", "type_name"]
