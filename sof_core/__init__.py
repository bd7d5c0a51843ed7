"""SOF, the SAM Orchestration Framework: skills as plugins, planned, validated, executed.

Everything listed in ``__all__`` is the public API; other modules may change. Heavy pieces
(networkx, the coordinator) are imported on first use, so ``import sof_core`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core._lazy import lazy_exports
from sof_core._version import API_VERSION, __version__

# name -> module that defines it. Names resolve on first use, so `sof --help` and a plugin
# importing only `hookimpl` pay for neither pydantic nor networkx.
_LAZY: dict[str, str] = {
    # Imported above (this module uses it); listed for the API reference.
    "lazy_exports": "sof_core._lazy",
    # data
    "UIF": "sof_core.uif",
    "SAM_UIF": "sof_core.uif",
    "UIFStatus": "sof_core.uif",
    # skills
    "BaseSkillModule": "sof_core.skills.base",
    "BaseToolModule": "sof_core.skills.base",
    "PERMISSIONS": "sof_core.skills.spec",
    "SkillSpec": "sof_core.skills.spec",
    "ScopedData": "sof_core.skills.views",
    "skill_view": "sof_core.skills.views",
    # plugins
    "hookimpl": "sof_core.plugins.markers",
    "hookspec": "sof_core.plugins.markers",
    "inline_observer": "sof_core.plugins.markers",
    "PluginManager": "sof_core.plugins.loader",
    "PluginRecord": "sof_core.plugins.loader",
    "get_plugin_manager": "sof_core.plugins.loader",
    "Registry": "sof_core.plugins.registry",
    "SkillEntry": "sof_core.plugins.registry",
    # graph
    "ValidationProblem": "sof_core.graph.validate",
    "CompiledPlan": "sof_core.graph.compile",
    "Step": "sof_core.graph.compile",
    # planning
    "Planner": "sof_core.planning.planners",
    "PlanResult": "sof_core.planning.result",
    # execution
    "CoordinatorEngine": "sof_core.execution.coordinator",
    "ExecutionReport": "sof_core.execution.report",
    "SkillResult": "sof_core.execution.report",
    "Executor": "sof_core.execution.run",
    "RunContext": "sof_core.execution.run",
    "Outcome": "sof_core.execution.step",
    "check_returned": "sof_core.execution.step",
    "call_payload": "sof_core.execution.remote",
    "pack_call": "sof_core.execution.remote",
    "run_skill_call": "sof_core.execution.remote",
    "replay_changes": "sof_core.execution.remote",
    "isolation_pool": "sof_core.execution.isolation",
    "current_deadline": "sof_core.execution.deadlines",
    "IsolationPool": "sof_core.execution.isolation",
    "run_batch": "sof_core.execution.batch",
    "arun_batch": "sof_core.execution.batch",
    "BatchResult": "sof_core.execution.batch",
    "run_sandboxed": "sof_core.execution.sandboxed",
    # tool security
    "ToolPolicy": "sof_core.security.policy",
    "ToolLimits": "sof_core.security.policy",
    "RateLimiter": "sof_core.security.ratelimit",
    "network_sandbox": "sof_core.security.sandbox",
    # routing
    "QueryRouter": "sof_core.routing.router",
    "RouteResult": "sof_core.routing.router",
    "add_route_observer": "sof_core.routing.observers",
    "remove_route_observer": "sof_core.routing.observers",
    "ABMetrics": "sof_core.routing.metrics",
    # configuration
    "SOFConfig": "sof_core.config.model",
    "SOFConfigManager": "sof_core.config.manager",
}
_ERRORS = (
    "ConfigError DuplicateSkillError GoalResolutionError PlanError PlanValidationError "
    "PluginCompatibilityError PluginConflictError PluginError PluginHookError PluginLoadError "
    "RunTimeoutError "
    "SkillCrashedError SkillDefinitionError SkillDependencyError SkillExecutionError "
    "SkillNotPicklableError SkillNotRunError SkillNotStartedError SkillQuarantinedError "
    "SkillReplyRefusedError "
    "SkillResourceLimitError "
    "SkillTimeoutError SOFError "
    "ToolPermissionError ToolRateLimitError UIFError UndeclaredReadError UndeclaredWriteError"
).split()
_LAZY.update(dict.fromkeys(_ERRORS, "sof_core.errors"))

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from sof_core.config.manager import SOFConfigManager
    from sof_core.config.model import SOFConfig
    from sof_core.errors import (
        ConfigError,
        DuplicateSkillError,
        GoalResolutionError,
        PlanError,
        PlanValidationError,
        PluginCompatibilityError,
        PluginConflictError,
        PluginError,
        PluginHookError,
        PluginLoadError,
        RunTimeoutError,
        SkillCrashedError,
        SkillDefinitionError,
        SkillDependencyError,
        SkillExecutionError,
        SkillNotPicklableError,
        SkillNotRunError,
        SkillNotStartedError,
        SkillQuarantinedError,
        SkillReplyRefusedError,
        SkillResourceLimitError,
        SkillTimeoutError,
        SOFError,
        ToolPermissionError,
        ToolRateLimitError,
        UIFError,
        UndeclaredReadError,
        UndeclaredWriteError,
    )
    from sof_core.execution.batch import BatchResult, arun_batch, run_batch
    from sof_core.execution.coordinator import CoordinatorEngine
    from sof_core.execution.deadlines import current_deadline
    from sof_core.execution.isolation import IsolationPool, isolation_pool
    from sof_core.execution.remote import (
        call_payload,
        pack_call,
        replay_changes,
        run_skill_call,
    )
    from sof_core.execution.report import ExecutionReport, SkillResult
    from sof_core.execution.run import Executor, RunContext
    from sof_core.execution.sandboxed import run_sandboxed
    from sof_core.execution.step import Outcome, check_returned
    from sof_core.graph.compile import CompiledPlan, Step
    from sof_core.graph.validate import ValidationProblem
    from sof_core.planning.planners import Planner
    from sof_core.planning.result import PlanResult
    from sof_core.plugins.loader import PluginManager, PluginRecord, get_plugin_manager
    from sof_core.plugins.markers import hookimpl, hookspec, inline_observer
    from sof_core.plugins.registry import Registry, SkillEntry
    from sof_core.routing.metrics import ABMetrics
    from sof_core.routing.observers import add_route_observer, remove_route_observer
    from sof_core.routing.router import QueryRouter, RouteResult
    from sof_core.security.policy import ToolLimits, ToolPolicy
    from sof_core.security.ratelimit import RateLimiter
    from sof_core.security.sandbox import network_sandbox
    from sof_core.skills.base import BaseSkillModule, BaseToolModule
    from sof_core.skills.spec import PERMISSIONS, SkillSpec
    from sof_core.skills.views import ScopedData, skill_view
    from sof_core.uif import SAM_UIF, UIF, UIFStatus


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "API_VERSION",
    "PERMISSIONS",
    "SAM_UIF",
    "UIF",
    "ABMetrics",
    "BaseSkillModule",
    "BaseToolModule",
    "BatchResult",
    "CompiledPlan",
    "ConfigError",
    "CoordinatorEngine",
    "DuplicateSkillError",
    "ExecutionReport",
    "Executor",
    "GoalResolutionError",
    "IsolationPool",
    "Outcome",
    "PlanError",
    "PlanResult",
    "PlanValidationError",
    "Planner",
    "PluginCompatibilityError",
    "PluginConflictError",
    "PluginError",
    "PluginHookError",
    "PluginLoadError",
    "PluginManager",
    "PluginRecord",
    "QueryRouter",
    "RateLimiter",
    "Registry",
    "RouteResult",
    "RunContext",
    "RunTimeoutError",
    "SOFConfig",
    "SOFConfigManager",
    "SOFError",
    "ScopedData",
    "SkillCrashedError",
    "SkillDefinitionError",
    "SkillDependencyError",
    "SkillEntry",
    "SkillExecutionError",
    "SkillNotPicklableError",
    "SkillNotRunError",
    "SkillNotStartedError",
    "SkillQuarantinedError",
    "SkillReplyRefusedError",
    "SkillResourceLimitError",
    "SkillResult",
    "SkillSpec",
    "SkillTimeoutError",
    "Step",
    "ToolLimits",
    "ToolPermissionError",
    "ToolPolicy",
    "ToolRateLimitError",
    "UIFError",
    "UIFStatus",
    "UndeclaredReadError",
    "UndeclaredWriteError",
    "ValidationProblem",
    "__version__",
    "add_route_observer",
    "arun_batch",
    "call_payload",
    "check_returned",
    "current_deadline",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "inline_observer",
    "isolation_pool",
    "lazy_exports",
    "network_sandbox",
    "pack_call",
    "remove_route_observer",
    "replay_changes",
    "run_batch",
    "run_sandboxed",
    "run_skill_call",
    "skill_view",
]
