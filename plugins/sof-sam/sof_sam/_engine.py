"""What SAM's orchestration classes share: SAM's flags, and the sof_core engine they drive.

SAM's ``CoordinatorEngine``, ``PlanValidationEngine`` and ``DynamicPlanner`` each read SAM's
configuration (``sof_sam.config.get_sof_config()``) and, in ``sof_sam``, translate their calls
onto one ``sof_core.CoordinatorEngine``. This module holds that translation: which of SAM's
flags change which engine setting, so all three classes agree on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sof_core
from sof_core import UIF

log = logging.getLogger("sof_sam")

#: SAM's defaults for the flags SAM's orchestration code reads (SAM's ``SOFConfig``), used
#: when a config object lacks one (a bare ``sof_core.SOFConfig`` has only some of them).
SAM_DEFAULTS: Mapping[str, Any] = {
    "max_execution_time": 60.0,
    "skill_timeout": 30.0,
    "enable_parallel_execution": False,
    "enable_plan_validation": True,
    "max_plan_length": 10,
    "enable_fallback_plans": True,
    "max_retry_attempts": 2,
    "continue_on_skill_failure": False,
    "require_vetting_for_external": True,
    "enable_plan_caching": True,
    "plan_cache_ttl": 3600,
    "enable_execution_tracing": True,
    "enable_self_reflect": True,
    "self_reflect_confidence_threshold": 0.7,
    "self_reflect_profiles": ["researcher", "legal", "academic"],
    "self_reflect_query_keywords": [
        "what is", "who was", "when did", "define", "explain", "describe",
    ],
}

#: The number of skills above which SAM's validator warns is SAM's ``max_plan_length``; SOF's
#: own limit (an error) is set this high on SAM's engines, so only SAM's warning applies.
NO_PLAN_LIMIT = 1_000_000


def load_sam_config(config: Any = None) -> Any:
    """SAM's configuration: ``config`` if given, else ``sof_sam.config.get_sof_config()``."""
    if config is not None:
        return config
    from sof_sam.config import get_sof_config  # imported late: config imports the core's

    return get_sof_config()


def flag(config: Any, name: str) -> Any:
    """One of SAM's flags from ``config`` (SAM's default when the object lacks it)."""
    value = getattr(config, name, None)
    return SAM_DEFAULTS[name] if value is None and name in SAM_DEFAULTS else value


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def engine_settings(config: Any) -> dict[str, Any]:
    """The sof_core settings SAM's flags stand for (the mapping docs/configuration.md lists).

    ``max_plan_length`` is SAM's warning threshold, not a limit, so SOF's limit is lifted;
    SAM's validator (``sof_sam.validator``) reports the warning.
    """
    retries = flag(config, "max_retry_attempts")
    return {
        "total_timeout": _positive(flag(config, "max_execution_time")),
        "skill_timeout": _positive(flag(config, "skill_timeout")),
        "skill_retries": max(0, int(retries)) if isinstance(retries, (int, float)) else 0,
        "continue_on_skill_failure": bool(flag(config, "continue_on_skill_failure")),
        "enable_plan_cache": bool(flag(config, "enable_plan_caching")),
        "require_vetting": bool(flag(config, "require_vetting_for_external")),
        "enable_plan_validation": bool(flag(config, "enable_plan_validation")),
        "max_plan_length": NO_PLAN_LIMIT,
        # One skill at a time, as written: an optional input listed later is not waited for.
        "plan_order": "dependencies" if flag(config, "enable_parallel_execution") else "written",
    }


def sam_engine(config: Any, engine: sof_core.CoordinatorEngine | None = None
               ) -> sof_core.CoordinatorEngine:
    """A sof_core engine (its own registry over the installed plugins) set up for SAM's flags.

    Settings SAM has no flag for (executor, plugins, skill_providers, ...) stay as sof_core's
    configuration says. The engine's config is replaced before it compiles any plan, so no
    cached plan was compiled under other settings.
    """
    engine = engine if engine is not None else sof_core.CoordinatorEngine()
    engine.config = engine.config.model_copy(update=engine_settings(config))
    return engine


def executor_for(config: Any) -> str | None:
    """SAM runs a plan one skill at a time unless ``enable_parallel_execution``; then SOF's
    configured (concurrent) executor runs it."""
    return None if flag(config, "enable_parallel_execution") else "sequential"


def now_iso() -> str:
    return datetime.now().isoformat()


def as_sam_uif(uif: Any) -> Any:
    """``uif`` as a ``SAM_UIF`` (a plain ``sof_core.UIF`` is converted; a SAM_UIF is kept).

    Anything else raises ``sof_core.UIFError`` (a ``ValueError``) naming the argument and
    its type: a caller's mistake, not an outcome of the run.
    """
    from sof_sam.uif import SAM_UIF

    if isinstance(uif, SAM_UIF):
        return uif
    if isinstance(uif, UIF):
        return SAM_UIF.from_sof(uif)
    try:
        shown = repr(uif)
    except Exception:
        shown = "unprintable"
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise sof_core.UIFError(
        f"uif must be a SAM_UIF (or a sof_core.UIF), got {type(uif).__name__} ({shown}); "
        "build one with SAM_UIF(input_query=...)"
    )
