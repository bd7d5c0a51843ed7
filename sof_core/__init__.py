"""SOF, the SAM Orchestration Framework: skills as plugins, planned, validated, executed.

Everything listed in ``__all__`` is the public API; other modules may change. Heavy pieces
(networkx, the coordinator) are imported on first use, so ``import sof_core`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sof_core._version import API_VERSION, __version__
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
from sof_core.skill import BaseSkillModule, SkillSpec
from sof_core.uif import SAM_UIF, UIF, UIFStatus

if TYPE_CHECKING:
    from sof_core.config import SOFConfig
    from sof_core.coordinator import CoordinatorEngine
    from sof_core.plugins import PluginManager, PluginRecord
    from sof_core.report import ExecutionReport, SkillResult
    from sof_core.validation import ValidationProblem

_LAZY = {
    "CoordinatorEngine": "sof_core.coordinator",
    "ExecutionReport": "sof_core.report",
    "SkillResult": "sof_core.report",
    "PluginManager": "sof_core.plugins",
    "PluginRecord": "sof_core.plugins",
    "SOFConfig": "sof_core.config",
    "ValidationProblem": "sof_core.validation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sof_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "API_VERSION",
    "SAM_UIF",
    "UIF",
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
    "RunTimeoutError",
    "SOFConfig",
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
