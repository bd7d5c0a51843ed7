"""Every callable of SAM's orchestration API (../shared/SAM_API.md, SAM at commit 02c913ee)
exists in ``sof_sam`` with SAM's parameters, in SAM's order, with SAM's defaults.

The table below is written from SAM's surface, one row per public class, method and
function of SAM's ``uif``, ``skills.base``, ``coordinator``, ``validator``, ``planner``,
``config``, ``security`` and ``sof_integration`` modules (SAM's two pydantic validators
``SAM_UIF.set_updated_at``/``validate_confidence`` are internals, not API). ``None`` means a
class; a string is SAM's parameter list without ``self``. ``sof_sam`` may add parameters after
SAM's only when they have defaults, so every call SAM's code makes still binds the same way.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from typing import Any

import pytest

SAM_SIGNATURES: dict[str, str | None] = {
    "uif:UIFStatus": None,
    "uif:SAM_UIF": None,
    "uif:SAM_UIF.add_log_entry": "message, skill_name=None",
    "uif:SAM_UIF.add_warning": "warning",
    "uif:SAM_UIF.set_error": "error_message, skill_name=None",
    "uif:SAM_UIF.mark_skill_complete": "skill_name, execution_time=None",
    "uif:SAM_UIF.get_skill_output": "skill_name",
    "uif:SAM_UIF.set_skill_output": "skill_name, output",
    "uif:SAM_UIF.is_complete": "",
    "uif:SAM_UIF.get_execution_summary": "",
    "skills.base:SkillExecutionError": None,
    "skills.base:SkillDependencyError": None,
    "skills.base:SkillMetadata": None,
    "skills.base:BaseSkillModule": None,
    "skills.base:BaseSkillModule.__init__": "",
    "skills.base:BaseSkillModule.execute": "uif",
    "skills.base:BaseSkillModule.validate_dependencies": "uif",
    "skills.base:BaseSkillModule.get_available_inputs": "uif",
    "skills.base:BaseSkillModule.execute_with_monitoring": "uif",
    "skills.base:BaseSkillModule.get_metadata": "",
    "skills.base:BaseSkillModule.can_execute": "uif",
    "skills.base:BaseSkillModule.get_dependency_info": "",
    "skills.base:BaseSkillModule.__str__": "",
    "coordinator:ExecutionResult": None,
    "coordinator:ExecutionReport": None,
    "coordinator:CoordinatorEngine": None,
    "coordinator:CoordinatorEngine.__init__": (
        "fallback_generator=None, enable_dynamic_planning=True, enable_loss_balancing=True, "
        "enable_domain_constraints=True, constraints_config_path=None, motivation_engine=None"
    ),
    "coordinator:CoordinatorEngine.register_skill": "skill",
    "coordinator:CoordinatorEngine.register_skills": "skills",
    "coordinator:CoordinatorEngine.execute_plan": "plan, uif, use_dynamic_planning=False",
    "coordinator:CoordinatorEngine.get_execution_history": "",
    "coordinator:CoordinatorEngine.get_registered_skills": "",
    "coordinator:CoordinatorEngine.clear_execution_history": "",
    "coordinator:CoordinatorEngine.get_execution_stats": "",
    "coordinator:CoordinatorEngine.execute_with_dynamic_planning": "uif",
    "coordinator:CoordinatorEngine.get_loss_balancer_stats": "",
    "coordinator:CoordinatorEngine.get_curriculum_status": "",
    "coordinator:CoordinatorEngine.get_constraint_statistics": "",
    "validator:ValidationResult": None,
    "validator:ValidationIssue": None,
    "validator:PlanValidationReport": None,
    "validator:PlanValidationEngine": None,
    "validator:PlanValidationEngine.__init__": "",
    "validator:PlanValidationEngine.register_skill": "skill",
    "validator:PlanValidationEngine.register_skills": "skills",
    "validator:PlanValidationEngine.validate_plan": "plan, uif",
    "validator:PlanValidationEngine.clear_cache": "",
    "validator:PlanValidationEngine.get_registered_skills": "",
    "validator:PlanValidationEngine.get_skill_info": "skill_name",
    "planner:PlanCacheEntry": None,
    "planner:PlanGenerationResult": None,
    "planner:DynamicPlanner": None,
    "planner:DynamicPlanner.__init__": "enable_curriculum=True, goal_stack=None",
    "planner:DynamicPlanner.register_skill": "skill",
    "planner:DynamicPlanner.register_skills": "skills",
    "planner:DynamicPlanner.create_plan": "uif, mode='user_focused'",
    "planner:DynamicPlanner.get_cache_stats": "",
    "planner:DynamicPlanner.clear_cache": "",
    "planner:DynamicPlanner.record_curriculum_performance": (
        "plan, success, confidence, execution_time"
    ),
    "planner:DynamicPlanner.get_curriculum_status": "",
    "planner:DynamicPlanner.get_registered_skills": "",
    "planner:DynamicPlanner.is_graph_aware": "",
    "planner:DynamicPlanner.get_graph_status": "",
    "config:SOFConfig": None,
    "config:SOFConfigManager": None,
    "config:SOFConfigManager.__init__": "config_path=None",
    "config:SOFConfigManager.load_config": "",
    "config:SOFConfigManager.save_config": "config=None",
    "config:SOFConfigManager.update_config": "**kwargs",
    "config:SOFConfigManager.is_sof_enabled": "",
    "config:SOFConfigManager.enable_sof": "",
    "config:SOFConfigManager.disable_sof": "",
    "config:SOFConfigManager.get_skill_config": "skill_name",
    "config:SOFConfigManager.validate_config": "config=None",
    "config:SOFConfigManager.reset_to_defaults": "",
    "config:SOFConfigManager.get_migration_config": "",
    "config:get_sof_config_manager": "config_path=None",
    "config:get_sof_config": "",
    "config:is_sof_enabled": "",
    "config:enable_sof_framework": "",
    "config:disable_sof_framework": "",
    "security:SecurityPolicy": None,
    "security:RateLimitConfig": None,
    "security:ExecutionResult": None,
    "security:RateLimiter": None,
    "security:RateLimiter.__init__": "config",
    "security:RateLimiter.is_allowed": "tool_name",
    "security:RateLimiter.get_stats": "",
    "security:SecureSandbox": None,
    "security:SecureSandbox.__init__": "policy",
    "security:SecureSandbox.execute_python_code": "code, globals_dict=None",
    "security:SecureSandbox.execute_command": "command, input_data=None",
    "security:SecureSandbox.cleanup_all": "",
    "security:ToolSecurityManager": None,
    "security:ToolSecurityManager.__init__": "",
    "security:ToolSecurityManager.execute_tool_safely": (
        "tool_name, execution_func, *args, **kwargs"
    ),
    "security:ToolSecurityManager.register_tool_policy": "tool_name, policy",
    "security:ToolSecurityManager.get_security_stats": "",
    "security:ToolSecurityManager.cleanup": "",
    "security:get_security_manager": "",
    "sof_integration:SOFIntegration": None,
    "sof_integration:SOFIntegration.__init__": "fallback_generator=None",
    "sof_integration:SOFIntegration.initialize": "",
    "sof_integration:SOFIntegration.process_query": (
        "query, user_id=None, session_id=None, user_context=None, custom_plan=None, "
        "use_dynamic_planning=True"
    ),
    "sof_integration:SOFIntegration.register_custom_skill": "skill",
    "sof_integration:SOFIntegration.get_available_skills": "",
    "sof_integration:SOFIntegration.get_execution_stats": "",
    "sof_integration:SOFIntegration.is_initialized": "",
    "sof_integration:SOFIntegration.shutdown": "",
    "sof_integration:get_sof_integration": "fallback_generator=None",
    "sof_integration:process_query_with_sof": (
        "query, user_id=None, session_id=None, user_context=None, custom_plan=None, "
        "fallback_generator=None"
    ),
    "sof_integration:is_sof_available": "",
}

_NO_DEFAULT = object()


def sam_parameters(spec: str) -> list[tuple[str, Any]]:
    """SAM's parameter list as (name, default) pairs; ``*name``/``**name`` for varargs."""
    args = ast.parse(f"def f({spec}): pass").body[0].args  # type: ignore[attr-defined]
    plain = [a.arg for a in args.args]
    defaults = [_NO_DEFAULT] * (len(plain) - len(args.defaults)) + [
        ast.literal_eval(d) for d in args.defaults
    ]
    found: list[tuple[str, Any]] = list(zip(plain, defaults, strict=True))
    if args.vararg is not None:
        found.append((f"*{args.vararg.arg}", _NO_DEFAULT))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        found.append((arg.arg, _NO_DEFAULT if default is None else ast.literal_eval(default)))
    if args.kwarg is not None:
        found.append((f"**{args.kwarg.arg}", _NO_DEFAULT))
    return found


def resolve(key: str) -> Any:
    module, qualified = key.split(":")
    found: Any = importlib.import_module(f"sof_sam.{module}")
    for part in qualified.split("."):
        found = getattr(found, part)
    return found


def our_parameters(obj: Any) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(obj).parameters.values()
            if p.name not in ("self", "cls")]


def as_pair(parameter: inspect.Parameter) -> tuple[str, Any]:
    prefix = {inspect.Parameter.VAR_POSITIONAL: "*",
              inspect.Parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
    default = _NO_DEFAULT if parameter.default is inspect.Parameter.empty else parameter.default
    return f"{prefix}{parameter.name}", default


def test_the_table_covers_every_module_sam_api_lists() -> None:
    modules = {key.split(":")[0] for key in SAM_SIGNATURES}
    assert modules == {"uif", "skills.base", "coordinator", "validator", "planner", "config",
                       "security", "sof_integration"}
    assert len(SAM_SIGNATURES) == 112


@pytest.mark.parametrize("key", sorted(SAM_SIGNATURES))
def test_sams_name_exists_with_sams_signature(key: str) -> None:
    obj = resolve(key)
    spec = SAM_SIGNATURES[key]
    if spec is None:
        assert inspect.isclass(obj), f"{key} is a class in SAM"
        return
    expected = sam_parameters(spec)
    ours = our_parameters(obj)
    got = [as_pair(p) for p in ours[: len(expected)]]
    assert got == expected, f"{key}: SAM has ({spec})"
    for extra in ours[len(expected):]:
        assert extra.default is not inspect.Parameter.empty or extra.kind in (
            inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD
        ), f"{key}: added parameter {extra.name!r} needs a default so SAM's calls still bind"
