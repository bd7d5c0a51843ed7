"""sof-conflict: finds where retrieved memories and tool results contradict each other.

``detect_conflicts(memory_results, tool_results)`` is the pure function;
``ConflictDetectorSkill`` runs it inside a SOF plan and writes ``conflicts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sof_conflict._version import __version__
from sof_conflict.skill import ConflictDetectorSkill

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sof_conflict' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
