"""SOF, the SAM Orchestration Framework: skills as plugins, planned, validated, executed.

Everything listed in ``__all__`` is the public API; other modules may change. Heavy pieces
(networkx, the coordinator) are imported on first use, so ``import sof_core`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sof_core._version import API_VERSION, __version__

if TYPE_CHECKING:
    from sof_core.config import SOFConfig
    from sof_core.config_manager import SOFConfigManager
    from sof_core.coordinator import CoordinatorEngine
    from sof_core.errors import (
        ConfigError,
        GoalResolutionError,
        PlanError,
        PlanValidationError,
        PluginCompatibilityError,
        PluginConflictError,
        PluginError,
        PluginHookError,
        PluginLoadError,
        RunTimeoutError,
        SkillDefinitionError,
        SkillDependencyError,
        SkillExecutionError,
        SkillTimeoutError,
        SOFError,
        UIFError,
        UndeclaredReadError,
        UndeclaredWriteError,
    )
    from sof_core.markers import hookimpl, hookspec
    from sof_core.metrics import ABMetrics
    from sof_core.plugins import PluginManager, PluginRecord
    from sof_core.report import ExecutionReport, SkillResult
    from sof_core.router import QueryRouter, RouteResult
    from sof_core.skill import BaseSkillModule, SkillSpec
    from sof_core.uif import SAM_UIF, UIF, UIFStatus
    from sof_core.validation import ValidationProblem

# Names resolve on first use, so `sof --help` and a plugin importing only `hookimpl` do not pay
# for pydantic or networkx.
_LAZY = {
    "CoordinatorEngine": "sof_core.coordinator",
    "ExecutionReport": "sof_core.report",
    "SkillResult": "sof_core.report",
    "PluginManager": "sof_core.plugins",
    "PluginRecord": "sof_core.plugins",
    "SOFConfig": "sof_core.config",
    "ValidationProblem": "sof_core.validation",
    "hookimpl": "sof_core.markers",
    "hookspec": "sof_core.markers",
    "BaseSkillModule": "sof_core.skill",
    "SkillSpec": "sof_core.skill",
    "UIF": "sof_core.uif",
    "SAM_UIF": "sof_core.uif",
    "UIFStatus": "sof_core.uif",
    "QueryRouter": "sof_core.router",
    "RouteResult": "sof_core.router",
    "ABMetrics": "sof_core.metrics",
    "SOFConfigManager": "sof_core.config_manager",
}
_ERRORS = (
    "ConfigError GoalResolutionError PlanError PlanValidationError PluginCompatibilityError "
    "PluginConflictError PluginError PluginHookError PluginLoadError RunTimeoutError "
    "SkillDefinitionError SkillDependencyError SkillExecutionError SkillTimeoutError SOFError "
    "UIFError UndeclaredReadError UndeclaredWriteError"
).split()
_LAZY.update(dict.fromkeys(_ERRORS, "sof_core.errors"))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sof_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "API_VERSION",
    "SAM_UIF",
    "UIF",
    "ABMetrics",
    "BaseSkillModule",
    "ConfigError",
    "CoordinatorEngine",
    "ExecutionReport",
    "GoalResolutionError",
    "PlanError",
    "PlanValidationError",
    "PluginCompatibilityError",
    "PluginConflictError",
    "PluginError",
    "PluginHookError",
    "PluginLoadError",
    "PluginManager",
    "PluginRecord",
    "QueryRouter",
    "RouteResult",
    "RunTimeoutError",
    "SOFConfig",
    "SOFConfigManager",
    "SOFError",
    "SkillDefinitionError",
    "SkillDependencyError",
    "SkillExecutionError",
    "SkillResult",
    "SkillSpec",
    "SkillTimeoutError",
    "UIFError",
    "UIFStatus",
    "UndeclaredReadError",
    "UndeclaredWriteError",
    "ValidationProblem",
    "__version__",
    "hookimpl",
    "hookspec",
]
