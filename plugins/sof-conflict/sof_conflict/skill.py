"""``ConflictDetectorSkill``: flags contradictions between retrieved memories and tool results.

It sits between retrieval and response: it requires ``memory_results`` (written by
``MemoryRetrievalSkill``), optionally reads ``tool_results``, and writes ``conflicts``, which
the response skill optionally reads, so the graph orders it after memory and before response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from sof_conflict._version import __version__
from sof_core import UIF, BaseSkillModule, SkillExecutionError

#: What a question may ask to compare: sources and the figures they state.
_SOURCES = (
    r"(?:sources?|documents?|docs|notes?|reports?|accounts?|files|records?|pages|articles?|"
    r"papers|versions?|statements|memories|passages|references|entries|wiki|emails|"
    r"spreadsheets?|figures|numbers|dates|data)"
)
#: How far apart (characters, in one sentence) the words of a two-part trigger may be.
_NEAR = 200
#: Words that ask whether those agree; ambiguous alone, so they need ``_SOURCES`` nearby.
_COMPARING = (
    r"(?:consisten(?:t|cy|ce)\b|agree(?:s|d)?\b|differ(?:s|ed|ence|ences)?\b|"
    r"match(?:es|ed)?\b|mismatch\w*)"
)


class ConflictDetectorSkill(BaseSkillModule):
    """Writes ``conflicts``: one record per subject on which the passages disagree."""

    skill_name = "ConflictDetectorSkill"
    skill_version = __version__
    skill_description = (
        "Finds contradictions (dates, numbers, named values, negations) among retrieved "
        "memories and tool results"
    )
    skill_category = "analysis"
    required_inputs = [("memory_results", list)]
    optional_inputs = ["tool_results"]
    output_keys = {"conflicts": list}
    can_run_parallel = True
    estimated_execution_time = 0.005
    max_execution_time = 10.0
    #: For the rules planner (docs/planning.md): a query asking whether sources disagree.
    #: Words that only ever mean disagreement match alone; words with everyday senses
    #: ("consistent" code style, a "type mismatch", "does this regex match") match only in
    #: a sentence that also names what may disagree (sources, notes, figures, ...).
    triggers: ClassVar[tuple[str, ...]] = (
        r"\b(?:disagree\w*|conflict\w*|contradict\w*|inconsisten\w*|discrepanc\w*)",
        r"\bat odds\b",
        # "say different things", "give different numbers", "tell different stories"
        r"\b(?:say|says|said|saying|give|gives|gave|giving|tell|tells|told|report|reports|"
        r"reported|state|states|stated|show|shows|showed|list|lists|listed)"
        r"\s+(?:\w+\s+)?different\b",
        # "which is right", "which source is correct?", "which one is accurate, ..."
        r"\bwhich(?:\s+(?:\w|')+){0,3}?\s+(?:is|was|are|were)\s+(?:right|correct|"
        r"accurate|true|wrong)\b(?=\s*(?:[,;:?!.]|$|\b(?:about|on|in|according)\b))",
        # consistency / agreement / difference / match about named sources, either order,
        # within _NEAR characters of one sentence (a bounded gap keeps matching linear: an
        # open one rescanned the rest of the query from every candidate word, seconds on a
        # few thousand repeated words)
        rf"\b{_SOURCES}\b[^.?!]{{0,{_NEAR}}}\b{_COMPARING}",
        rf"\b{_COMPARING}[^.?!]{{0,{_NEAR}}}\b{_SOURCES}\b",
        # "is there a mismatch between ...", "do the wiki and the release notes match"
        r"\bmismatch\w*\s+(?:between|among|across|in)\b",
        rf"\b(?:do|does|did)\b(?=[^.?!]{{0,{_NEAR}}}\band\b)"
        rf"(?=[^.?!]{{0,{_NEAR}}}\b(?:match|agree|differ)\b)",
    )

    @staticmethod
    def planning_joins(data: Mapping[str, Any]) -> bool:
        """For the planner's adaptive choice (docs/planning.md): join a run whose retrieval
        returned passages from several sources, which may disagree."""
        memory = data.get("memory_results")
        if not isinstance(memory, list):
            return False
        sources = {str(item.get("source")) for item in memory
                   if isinstance(item, Mapping) and item.get("source")}
        return len(sources) > 1

    def execute(self, uif: UIF) -> UIF:
        # The detector (its patterns, word lists and claim types) loads with the first run
        # of the skill, not with the plugin: most processes never detect conflicts.
        from sof_conflict.detector import ConflictInputError, detect_conflicts

        data = uif.intermediate_data
        memory = data["memory_results"]
        tools = data.get("tool_results")
        try:
            conflicts = detect_conflicts(memory, tools)
        except ConflictInputError as error:
            raise SkillExecutionError(
                f"{error}; inputs must follow the documented shape "
                "(see docs/plugins/conflict.md)",
                self.skill_name,
            ) from error
        data["conflicts"] = conflicts
        checked = len(memory) + (len(tools) if isinstance(tools, list) else 0)
        uif.add_log_entry(
            f"{len(conflicts)} conflict(s) among {checked} passage(s)", self.skill_name
        )
        return uif
