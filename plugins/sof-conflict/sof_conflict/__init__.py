"""sof-conflict: finds where retrieved memories and tool results contradict each other.

``detect_conflicts(memory_results, tool_results)`` is the pure function;
``ConflictDetectorSkill`` runs it inside a SOF plan and writes ``conflicts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_conflict._version import __version__
from sof_conflict.skill import ConflictDetectorSkill
from sof_core import lazy_exports

if TYPE_CHECKING:
    from sof_conflict._claims import Claim, extract_claims, values_compatible
    from sof_conflict.detector import (
        ConflictInputError,
        Passage,
        detect_conflicts,
        find_conflicts,
        passages_from,
    )

#: Names imported on first use, from the module that defines them: the detector and its
#: claim extraction (regular expressions, word lists, dataclasses) are needed to detect, not
#: to load the plugin, which every ``sof`` process does.
_LAZY = {
    "Claim": "sof_conflict._claims",
    "extract_claims": "sof_conflict._claims",
    "values_compatible": "sof_conflict._claims",
    "ConflictInputError": "sof_conflict.detector",
    "Passage": "sof_conflict.detector",
    "detect_conflicts": "sof_conflict.detector",
    "find_conflicts": "sof_conflict.detector",
    "passages_from": "sof_conflict.detector",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
