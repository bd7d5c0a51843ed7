"""The ``conflict`` entry point of group ``sof.plugins``: contributes ConflictDetectorSkill."""

from __future__ import annotations

from typing import Any

from sof_conflict.skill import ConflictDetectorSkill
from sof_core import hookimpl


@hookimpl
def sof_register_skills() -> list[Any]:
    return [ConflictDetectorSkill]
