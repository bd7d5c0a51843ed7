"""Hook specifications: everything a plugin can contribute to SOF or observe in it.

Registration hooks return lists; SOF calls each implementation on its own so that one
plugin that raises never hides what the others return, and the error names the plugin.
Observer hooks (``sof_before_*``, ``sof_after_*``, ``sof_alert``) must not break a run: an
exception raised in one is logged and counted, never propagated. A hook nobody implements
costs nothing at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sof_core.plugins.markers import hookspec

if TYPE_CHECKING:
    import argparse

    from sof_core.config import SOFConfig
    from sof_core.execution.report import ExecutionReport, SkillResult
    from sof_core.plugins.registry import Registry
    from sof_core.skills.spec import SkillSpec
    from sof_core.uif import UIF

# --- registration ------------------------------------------------------------------------


@hookspec
def sof_register_skills() -> Sequence[Any]:
    """Return skill classes or instances (subclasses of ``BaseSkillModule``)."""


@hookspec
def sof_register_tools() -> Sequence[Any]:
    """Return tool skills: skills that reach outside SAM (web, calculator, shell).

    Tools always run in an isolation worker, with only the ``permissions`` they declare
    and their limits enforced (``sof_core.BaseToolModule``; docs/security.md).
    """


@hookspec
def sof_register_llm_backends() -> Sequence[Any]:
    """Return LLM backend objects; each has a ``name`` attribute."""


@hookspec
def sof_register_memory_backends() -> Sequence[Any]:
    """Return memory backend objects; each has a ``name`` attribute."""


@hookspec
def sof_register_planners() -> Sequence[Any]:
    """Return planners: objects with a ``name`` and ``plan(query, context)`` returning a list
    of skill names or a ``PlanResult``; the ``planner`` setting chooses one by name.

    ``context`` has ``config`` (this query's live configuration), ``registry``, ``profile``,
    ``resolve_goal(...)`` and ``validate_plan(plan)``. A planner that raises or returns an
    invalid plan falls back to the rules planner (recorded). See docs/planning.md.
    """


@hookspec
def sof_register_executors() -> Sequence[Any]:
    """Return executor classes or objects with a ``name``, chosen by ``SOFConfig.executor``."""


@hookspec
def sof_register_generation_controllers() -> Sequence[Any]:
    """Return generation controllers (SAM's TPV): objects with a ``name`` that see streamed
    tokens and may stop generation; a response skill picks one by name from config."""


@hookspec
def sof_register_vetting_detectors() -> Sequence[Any]:
    """Return content-vetting detectors: objects with a ``name`` and ``check(text)`` returning
    findings (the protocol is ``sof_vetting.Detector``); ContentVettingSkill runs them all."""


@hookspec
def sof_register_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``sof`` sub-commands; set ``func(args) -> int`` as the parser default."""


@hookspec
def sof_configure(config: SOFConfig, registry: Registry) -> None:
    """Called once every plugin is loaded, with the active config and the registry, so a
    plugin's skills can find backends other plugins registered; again when the host's
    settings change (``PluginManager.reconfigure``), so it must be idempotent."""


# --- lifecycle observers -----------------------------------------------------------------


@hookspec
def sof_before_plan(plan: list[str], uif: UIF) -> None:
    """A validated plan is about to run.

    Once per plan: a query ``run_query`` runs in segments (adaptive choice, re-planning)
    is one plan here, with the whole plan it starts with.
    """


@hookspec
def sof_before_skill(skill: SkillSpec, uif: UIF) -> None:
    """A skill is about to run (called from the thread that runs it)."""


@hookspec
def sof_after_skill(skill: SkillSpec, result: SkillResult) -> None:
    """A skill finished, failed or timed out; ``result`` says which and how long it took."""


@hookspec
def sof_after_plan(report: ExecutionReport) -> None:
    """A run ended; ``report`` is final.

    Once per plan: for a query ``run_query`` runs in segments, once with the merged report
    of all of them.
    """


@hookspec
def sof_alert(kind: str, message: str, details: dict[str, Any]) -> None:
    """Something an operator should know about (broken plugin, skill failure, timeout)."""


__all__ = [
    "sof_after_plan",
    "sof_after_skill",
    "sof_alert",
    "sof_before_plan",
    "sof_before_skill",
    "sof_configure",
    "sof_register_commands",
    "sof_register_executors",
    "sof_register_generation_controllers",
    "sof_register_llm_backends",
    "sof_register_memory_backends",
    "sof_register_planners",
    "sof_register_skills",
    "sof_register_tools",
    "sof_register_vetting_detectors",
]
