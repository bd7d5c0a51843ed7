"""SAM's ``sam.orchestration`` API on SOF: rewrite the import prefix ``sam.orchestration`` to
``sof_sam`` and SAM code runs on ``sof_core`` (one engine, one graph, one executor).

Every name ``from sam.orchestration import ...`` gives is here, resolved on first use, so
``import sof_sam`` stays cheap and a module that is not installed only fails the names that
need it. ``MemoryRetrievalSkill``, ``ResponseGenerationSkill`` and ``ConflictDetectorSkill``
come from SOF's plugins (``sof-memory``, ``sof-response``, ``sof-conflict``) when installed.
SAM's other skills (``CalculatorTool``, ...) are SAM's own code: importing one from here
raises an ``ImportError`` that says how to bring it along.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
#: The version of SAM's orchestration API this package mirrors (SAM's ``__version__``).
SAM_API_VERSION = "2.0.0"

# name -> module of this package that defines it
_LAZY: dict[str, str] = {
    "SAM_UIF": "uif",
    "UIFStatus": "uif",
    "BaseSkillModule": "skills.base",
    "SkillExecutionError": "skills.base",
    "SkillDependencyError": "skills.base",
    "SkillMetadata": "skills.base",
    "PlanValidationEngine": "validator",
    "PlanValidationReport": "validator",
    "ValidationResult": "validator",
    "CoordinatorEngine": "coordinator",
    "ExecutionReport": "coordinator",
    "ExecutionResult": "coordinator",
    "DynamicPlanner": "planner",
    "PlanGenerationResult": "planner",
    "PlanCacheEntry": "planner",
    "ToolSecurityManager": "security",
    "SecurityPolicy": "security",
    "RateLimitConfig": "security",
    "get_security_manager": "security",
    "SOFIntegration": "sof_integration",
    "get_sof_integration": "sof_integration",
    "process_query_with_sof": "sof_integration",
    "is_sof_available": "sof_integration",
    "SOFConfig": "config",
    "SOFConfigManager": "config",
    "get_sof_config": "config",
    "is_sof_enabled": "config",
    "enable_sof_framework": "config",
    "disable_sof_framework": "config",
}

#: SAM's core skills that SOF ships as plugins: name -> (module, distribution to install).
PLUGIN_SKILLS: dict[str, tuple[str, str]] = {
    "MemoryRetrievalSkill": ("sof_memory", "sof-memory"),
    "ResponseGenerationSkill": ("sof_response", "sof-response"),
    "ConflictDetectorSkill": ("sof_conflict", "sof-conflict"),
}

#: Names ``sam.orchestration`` exports that are SAM's own code, with no SOF counterpart.
SAM_ONLY: frozenset[str] = frozenset({
    "CalculatorTool",
    "AgentZeroWebBrowserTool",
    "ContentVettingSkill",
    "ImplicitKnowledgeSkill",
    "FinancialDataTool",
    "NewsApiTool",
    "TableToCodeExpert",
    "MemoryTool",
    "MasterVerifierSkill",
    "AutonomousFactualCorrectionSkill",
    "DiscoveryCycleOrchestrator",
    "DiscoveryStage",
    "DiscoveryProgress",
    "DiscoveryResult",
    "get_discovery_orchestrator",
})

#: Names ``sam.orchestration`` exports from its modules that are not skills and not part of
#: the API ``sof_sam`` mirrors, by SAM's module. No graft provides them here: SAM's callers
#: keep importing them from SAM's own package, beside ``sof_sam``.
SAM_OTHER_MODULES: dict[str, str] = {
    "DiscoveryCycleOrchestrator": "discovery_cycle",
    "DiscoveryStage": "discovery_cycle",
    "DiscoveryProgress": "discovery_cycle",
    "DiscoveryResult": "discovery_cycle",
    "get_discovery_orchestrator": "discovery_cycle",
}

#: SAM's own skills, by the module of ``sam.orchestration.skills`` SAM defines them in: they
#: resolve from a SAM distribution's package grafted onto ``sof_sam.skills`` (see
#: ``sof_sam.skills``), as ``sam.orchestration`` imported them from ``.skills``.
SAM_SKILL_MODULES: dict[str, str] = {
    "CalculatorTool": "calculator_tool",
    "AgentZeroWebBrowserTool": "web_browser_tool",
    "ContentVettingSkill": "content_vetting",
    "ImplicitKnowledgeSkill": "reasoning.implicit_knowledge",
    "FinancialDataTool": "financial_data_tool",
    "NewsApiTool": "news_api_tool",
    "TableToCodeExpert": "table_to_code_expert",
    "MemoryTool": "memory_tool",
    "MasterVerifierSkill": "master_verifier_skill",
    "AutonomousFactualCorrectionSkill": "autonomous.factual_correction",
}

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from sof_sam.skills.base import BaseSkillModule as BaseSkillModule
    from sof_sam.skills.base import SkillDependencyError as SkillDependencyError
    from sof_sam.skills.base import SkillExecutionError as SkillExecutionError
    from sof_sam.skills.base import SkillMetadata as SkillMetadata
    from sof_sam.uif import SAM_UIF as SAM_UIF
    from sof_sam.uif import UIFStatus as UIFStatus


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(_import_own(module, name), name)
    elif name in PLUGIN_SKILLS:
        value = plugin_skill(name)
    elif name in SAM_SKILL_MODULES and (grafted := _grafted_skill(name)) is not None:
        value = grafted
    elif name in SAM_OTHER_MODULES:
        raise ImportError(_not_mirrored(name, SAM_OTHER_MODULES[name]), name=__name__)
    elif name in SAM_ONLY:
        raise ImportError(
            f"{name} is one of SAM's own modules, not part of sof_sam: keep SAM's code for it "
            "and import it from there, or move it into a SOF plugin distribution that grafts "
            "its skills onto sof_sam.skills (see docs/migration-from-sam.md)",
            name=__name__,
        )
    else:
        raise AttributeError(f"module 'sof_sam' has no attribute {name!r}")
    globals()[name] = value
    return value


def _not_mirrored(name: str, module: str) -> str:
    """What to do about a name from one of SAM's modules that ``sof_sam`` does not mirror."""
    sam_module = f"sam.orchestration.{module}"
    return (
        f"{name} is defined in SAM's {sam_module}, which is not part of sof_sam (sof_sam "
        "mirrors only SAM's uif, skills, coordinator, validator, planner, config, security "
        "and sof_integration modules). Keep importing it from SAM's own package, beside "
        f"sof_sam: `from {sam_module} import {name}` (leave that line out of the prefix "
        f"rewrite; SAM's sam/orchestration package must stay importable). See "
        "docs/migration-from-sam.md"
    )


def _grafted_skill(name: str) -> Any:
    """SAM's skill ``name`` from a grafted SAM package, or None when none provides its module
    (an error inside the module itself propagates)."""
    full = f"{__name__}.skills.{SAM_SKILL_MODULES[name]}"
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name is not None and full.startswith(exc.name):
            return None  # that module (or its subpackage) is not there
        raise
    return getattr(module, name)


def _import_own(module: str, name: str) -> Any:
    full = f"{__name__}.{module}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name != full:
            raise  # the module is there; something it imports is not
        raise ImportError(
            f"sof_sam.{name} needs the module {full}, which is not installed; reinstall "
            "sof-sam (pip install -e plugins/sof-sam)",
            name=__name__,
        ) from exc


_plugin_classes: dict[str, type[Any]] = {}


def plugin_skill(name: str) -> type[Any]:
    """SAM's ``name`` skill as SOF's plugin provides it, with SAM's helpers added
    (``can_execute``, ``get_metadata()`` returning ``SkillMetadata``, ...): a subclass of the
    plugin's class, made once. ``ImportError`` names the plugin distribution to install when
    it is missing."""
    made = _plugin_classes.get(name)
    if made is not None:
        return made
    module, distribution = PLUGIN_SKILLS[name]
    try:
        native = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ImportError(
            f"{name} comes from SOF's {distribution} plugin, which is not installed; "
            f"install it (pip install {distribution}) or register your own {name}",
            name=__name__,
        ) from exc
    from sof_sam.skills.base import BaseSkillModule, NamesOnInstances, SAMSkillAPI

    # Named as an attribute of this package, so instances pickle by reference. On an
    # instance, the declarations read as SAM's lists of key names; on the class, as the
    # plugin declares them (SOF reads their types there).
    made = type(name, (SAMSkillAPI, native), {
        "__module__": __name__, "__qualname__": name, "__doc__": native.__doc__,
        **{attr: NamesOnInstances(getattr(native, attr))
           for attr in ("required_inputs", "optional_inputs", "output_keys")},
    })
    # SAM's core skills were its BaseSkillModule's subclasses: isinstance checks written
    # against sof_sam.BaseSkillModule hold for these too (a virtual subclass: nothing of
    # SAM's base class is inherited beyond SAMSkillAPI).
    BaseSkillModule.register(made)
    return _plugin_classes.setdefault(name, made)


def __dir__() -> list[str]:
    return sorted(__all__)


def _installed(name: str) -> bool:
    """Whether the name's module is there (``__all__`` lists only what ``import *`` finds)."""
    if name in PLUGIN_SKILLS:
        return importlib.util.find_spec(PLUGIN_SKILLS[name][0]) is not None
    module = _LAZY.get(name)
    if module is None:
        return True
    *parents, last = module.split(".")  # looked up on disk: importing it would not be cheap
    return importlib.machinery.PathFinder.find_spec(
        last, [os.path.join(__path__[0], *parents)]
    ) is not None


__all__ = [
    name
    for name in sorted([
        "PLUGIN_SKILLS", "SAM_API_VERSION", "SAM_ONLY", "SAM_OTHER_MODULES",
        "SAM_SKILL_MODULES", "__version__",
        "plugin_skill",
        *_LAZY, *PLUGIN_SKILLS,
    ])
    if _installed(name)
]
