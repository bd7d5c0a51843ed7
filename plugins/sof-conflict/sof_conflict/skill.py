"""``ConflictDetectorSkill``: flags contradictions between retrieved memories and tool results.

It sits between retrieval and response: it requires ``memory_results`` (written by
``MemoryRetrievalSkill``), optionally reads ``tool_results``, and writes ``conflicts``, which
the response skill optionally reads, so the graph orders it after memory and before response.
"""

from __future__ import annotations

from sof_conflict._version import __version__
from sof_conflict.detector import ConflictInputError, detect_conflicts
from sof_core import UIF, BaseSkillModule, SkillExecutionError


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

    def execute(self, uif: UIF) -> UIF:
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
