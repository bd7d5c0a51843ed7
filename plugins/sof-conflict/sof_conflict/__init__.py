"""sof-conflict: finds where retrieved memories and tool results contradict each other.

``detect_conflicts(memory_results, tool_results)`` is the pure function;
``ConflictDetectorSkill`` runs it inside a SOF plan and writes ``conflicts``.
"""

from __future__ import annotations

from sof_conflict._claims import Claim, extract_claims, values_compatible
from sof_conflict._version import __version__
from sof_conflict.detector import (
    ConflictInputError,
    Passage,
    detect_conflicts,
    find_conflicts,
    passages_from,
)
from sof_conflict.skill import ConflictDetectorSkill

__all__ = [
    "Claim",
    "ConflictDetectorSkill",
    "ConflictInputError",
    "Passage",
    "__version__",
    "detect_conflicts",
    "extract_claims",
    "find_conflicts",
    "passages_from",
    "values_compatible",
]
