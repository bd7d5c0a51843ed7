"""Claims of docs/api.md, docs/errors.md and docs/concepts.md that no other test checked,
each checked here against the real engine with skills defined in this file.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import pydantic
import pytest

import sof_core
from sof_core import (
    PERMISSIONS,
    UIF,
    BaseSkillModule,
    BaseToolModule,
    CoordinatorEngine,
    ExecutionReport,
    SkillResult,
    ToolPolicy,
)
from sof_core import errors as E
from sof_core.config import ConfigValidationError, SOFConfig
from sof_core.testing import describe_failures, make_engine

# --- skills ---------------------------------------------------------------------------------


class Produce(BaseSkillModule):
    skill_name = "Produce"
    skill_description = "writes a"
    required_inputs = ["input_query"]
    output_keys = ["a"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["a"] = uif.input_query
        return uif


class Silent(BaseSkillModule):
    skill_name = "Silent"
    skill_description = "declares b but never writes it"
    required_inputs = ["input_query"]
    output_keys = ["b"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        return uif


class NeedsB(BaseSkillModule):
    skill_name = "NeedsB"
    skill_description = "reads b"
    required_inputs = ["b"]
    output_keys = ["c"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["c"] = uif.intermediate_data["b"]
        return uif


class Boom(BaseSkillModule):
    skill_name = "Boom"
    skill_description = "raises"
    required_inputs = ["input_query"]
    output_keys = ["d"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        raise ValueError("boom went the skill")


class Other(BaseSkillModule):
    skill_name = "Other"
    skill_description = "another skill"
    required_inputs = ["input_query"]
    output_keys = ["e"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["e"] = 1
        return uif


# --- errors.md: the hierarchy ---------------------------------------------------------------

HIERARCHY: list[tuple[str, str]] = [
    ("PluginError", "SOFError"),
    ("PluginLoadError", "PluginError"),
    ("PluginHookError", "PluginError"),
    ("PluginConflictError", "PluginError"),
    ("DuplicateSkillError", "PluginConflictError"),
    ("DuplicateSkillError", "SkillDefinitionError"),
    ("PluginCompatibilityError", "PluginError"),
    ("SkillDefinitionError", "SOFError"),
    ("UIFError", "SOFError"),
    ("PlanError", "SOFError"),
    ("PlanValidationError", "PlanError"),
    ("GoalResolutionError", "PlanError"),
    ("SkillExecutionError", "SOFError"),
    ("SkillTimeoutError", "SkillExecutionError"),
    ("SkillQuarantinedError", "SkillExecutionError"),
    ("SkillNotStartedError", "SkillExecutionError"),
    ("UndeclaredWriteError", "SkillExecutionError"),
    ("UndeclaredReadError", "SkillExecutionError"),
    ("SkillDependencyError", "SkillExecutionError"),
    ("SkillCrashedError", "SkillExecutionError"),
    ("SkillResourceLimitError", "SkillExecutionError"),
    ("SkillNotPicklableError", "SkillExecutionError"),
    ("SkillReplyRefusedError", "SkillExecutionError"),
    ("ToolRateLimitError", "SkillExecutionError"),
    ("ToolPermissionError", "SkillExecutionError"),
    ("RunTimeoutError", "SOFError"),
    ("ConfigError", "SOFError"),
]


@pytest.mark.parametrize(("child", "parent"), HIERARCHY)
def test_every_error_in_the_tree_derives_from_its_parent(child: str, parent: str) -> None:
    assert issubclass(getattr(E, child), getattr(E, parent))
    assert issubclass(getattr(E, child), sof_core.SOFError)


def test_config_validation_error_is_a_config_error_and_pydantics() -> None:
    # its home is sof_core.config (docs/configuration.md), not sof_core.errors
    assert issubclass(ConfigValidationError, E.ConfigError)
    assert issubclass(ConfigValidationError, pydantic.ValidationError)


def test_the_errors_are_importable_from_sof_core() -> None:
    for child, _parent in HIERARCHY:
        assert getattr(sof_core, child) is getattr(E, child)


def test_the_also_a_errors_are_also_the_builtin_they_name() -> None:
    assert issubclass(E.UndeclaredReadError, KeyError)
    assert issubclass(E.ToolPermissionError, PermissionError)


def test_the_errors_carry_the_attributes_the_tree_names() -> None:
    assert E.PluginLoadError("p", "m").plugin == "p"
    assert E.SkillDefinitionError("S", "m").skill == "S"
    dup = E.DuplicateSkillError("p", "S", "m")
    assert (dup.plugin, dup.skill) == ("p", "S")
    assert E.SkillExecutionError("m", skill="S").skill == "S"
    assert E.UndeclaredWriteError("S", "k").key == "k"
    read = E.UndeclaredReadError("S", "k")
    assert read.key == "k" and read.skill == "S"
    crashed = E.SkillCrashedError("S", "died", exit_code=3)
    assert crashed.exit_code == 3 and crashed.signal is None
    limit = E.SkillResourceLimitError("S", "memory_mb", 12.0, "over")
    assert (limit.limit, limit.value) == ("memory_mb", 12.0)
    pickle = E.SkillNotPicklableError("S", "input 'x'", "a lock")
    assert (pickle.what, pickle.reason) == ("input 'x'", "a lock")
    assert "S" in str(pickle) and "input 'x'" in str(pickle)
    assert E.SkillReplyRefusedError("S", "evil.Thing").name == "evil.Thing"
    rate = E.ToolRateLimitError("S", 5, 1.5)
    assert (rate.limit, rate.retry_after) == (5, 1.5)
    assert E.ToolPermissionError("S", "network", "no").permission == "network"
    assert E.ConfigError("bad", key="skill_timeout").key == "skill_timeout"
    problem = sof_core.ValidationProblem("unknown_skill", "no such skill", ("X",))
    assert E.PlanValidationError([problem]).problems == [problem]


def test_config_error_is_importable_from_sof_core_config_too() -> None:
    # "`sof_core.ConfigError`, also importable as `sof_core.config.ConfigError`"
    from sof_core.config import ConfigError, ConfigValidationError

    assert ConfigError is sof_core.ConfigError
    assert issubclass(ConfigValidationError, ConfigError)
    assert "ConfigError" in sof_core.config.__all__


def test_a_bad_engine_setting_is_a_config_validation_error_that_is_a_config_error() -> None:
    with pytest.raises(E.ConfigError) as info:
        CoordinatorEngine(skill_timeout="soon")
    assert isinstance(info.value, ConfigValidationError)
    assert "skill_timeout" in str(info.value)


def test_a_misspelt_engine_setting_says_did_you_mean_and_sam_names_work() -> None:
    # Before: pydantic's "Extra inputs are not permitted" alone, where load_config hinted.
    with pytest.raises(ConfigValidationError) as info:
        CoordinatorEngine(skil_timeout=1)
    assert info.value.key == "skil_timeout"
    assert "unknown config key 'skil_timeout'; did you mean 'skill_timeout'?" in str(info.value)
    with pytest.raises(ConfigValidationError, match="did you mean 'plugins_only'"):
        SOFConfig(plugins_onyl=["memory"])
    engine = CoordinatorEngine(max_retry_attempts=2, max_execution_time=9)  # SAM's names
    assert (engine.config.skill_retries, engine.config.total_timeout) == (2, 9)
    with pytest.raises(E.ConfigError, match="legacy_timeout is one of SAM's settings that SOF "
                                            "does not use"):
        CoordinatorEngine(legacy_timeout=3)


# --- errors.md: registering in code --------------------------------------------------------


def test_a_plugin_name_already_in_use_is_a_plugin_conflict_error_changing_nothing() -> None:
    engine = make_engine()
    engine.register_skills([Produce], plugin_name="mine")
    before = engine.registry.skill_names()
    with pytest.raises(E.PluginConflictError):
        engine.register_skills([Other], plugin_name="mine")
    assert engine.registry.skill_names() == before


def test_batches_registered_without_a_plugin_name_each_get_their_own() -> None:
    # "`register_skills` without a name: the plugin `code`, then `code-2`, `code-3`... for
    # later calls": a second unnamed batch raised "plugin 'code' is already registered".
    engine = make_engine()
    engine.register_skills([Produce])
    engine.register_skills([Other])
    assert {"Produce", "Other"} <= set(engine.registry.skill_names())
    assert engine.registry.skill("Produce").plugin == "code"
    assert engine.registry.skill("Other").plugin == "code-2"
    with pytest.raises(E.PluginConflictError, match="Produce"):  # a skill name still clashes
        engine.register_skills([Produce])
    assert "code-3" not in engine.plugins.records


def test_concurrent_unnamed_batches_never_share_a_plugin_name() -> None:
    from sof_test_support import errors_in_threads

    engine = make_engine()
    classes = [type(f"Batch{i}", (Produce,), {"skill_name": f"Batch{i}"}) for i in range(16)]
    assert errors_in_threads(lambda cls: engine.register_skills([cls]), classes) == []
    plugins = {engine.registry.skill(cls.skill_name).plugin for cls in classes}
    assert len(plugins) == 16


def test_a_skill_name_another_in_code_plugin_registered_is_a_conflict() -> None:
    engine = make_engine()
    engine.register_skills([Produce], plugin_name="first")
    with pytest.raises(E.PluginConflictError) as info:
        engine.register_skills([Other, Produce], plugin_name="second")
    assert "Produce" in str(info.value)
    assert "Other" not in engine.registry.skill_names()


def test_one_skill_name_twice_in_one_registration_is_a_duplicate_skill_error() -> None:
    engine = make_engine()
    with pytest.raises(E.DuplicateSkillError) as info:
        engine.register_skills([Produce, Produce], plugin_name="twice")
    assert info.value.skill == "Produce"
    assert "Produce" not in engine.registry.skill_names()


class WrongTyped(BaseSkillModule):
    skill_name = "WrongTyped"
    skill_description = "a wrongly typed declaration"
    required_inputs = ["input_query"]
    output_keys = ["x"]

    def execute(self, uif: UIF) -> UIF:
        return uif


# a class statement with it already raises; set after the class exists, registration checks
WrongTyped.estimated_execution_time = "fast"  # type: ignore[assignment]


class NeedsArgs(BaseSkillModule):
    skill_name = "NeedsArgs"
    skill_description = "cannot be built with no arguments"
    required_inputs = ["input_query"]
    output_keys = ["x"]

    def __init__(self, needed: int) -> None:
        super().__init__()
        self.needed = needed

    def execute(self, uif: UIF) -> UIF:
        return uif


@pytest.mark.parametrize("bad", [WrongTyped, NeedsArgs])
def test_a_skill_breaking_the_contract_is_a_skill_definition_error(bad: type) -> None:
    engine = make_engine()
    engine.register_skills([Produce], plugin_name="good")
    with pytest.raises(E.SkillDefinitionError):
        engine.register_skill(bad)
    assert engine.registry.skill_names() == ["Produce"]


def test_an_object_that_is_not_a_skill_is_a_plugin_hook_error() -> None:
    engine = make_engine()
    with pytest.raises(E.PluginHookError):
        engine.register_skill(object())
    with pytest.raises(E.PluginHookError):
        engine.register_skills([Produce, 42], plugin_name="mixed")
    assert "Produce" not in engine.registry.skill_names()


def test_plugins_register_returns_a_failed_record_or_raises_with_raise_errors() -> None:
    engine = make_engine()

    class NotAPlugin:
        @sof_core.hookimpl
        def sof_register_skills(self) -> list[Any]:
            return [Produce, Produce]

    record = engine.plugins.register(NotAPlugin(), name="dupes")
    assert record.status != "loaded" and record.error_type == "DuplicateSkillError"
    with pytest.raises(E.DuplicateSkillError):
        engine.plugins.register(NotAPlugin(), name="dupes2", raise_errors=True)


# --- errors.md: skill errors stay in the report --------------------------------------------


def test_a_skill_error_never_escapes_execute_plan() -> None:
    engine = make_engine([Boom])
    report = engine.execute_plan(["Boom"], UIF.for_query("q"))
    result = report.result("Boom")
    assert report.status == "failure"
    assert result.status == "failed" and result.error_type == "ValueError"
    assert "boom went the skill" in (result.error or "")
    assert "Boom" in report.failed_skills


def test_a_skipped_skill_counts_as_failed_with_the_reason() -> None:
    engine = make_engine([Silent, NeedsB], continue_on_skill_failure=False)
    report = engine.execute_plan(["Silent", "NeedsB"], UIF.for_query("q"))
    skipped = report.result("NeedsB")
    assert skipped.status == "skipped" and skipped.error_type == "SkillDependencyError"
    assert skipped.error == "required input 'b' is missing: its producer 'Silent' did not write it"
    assert report.failed_skills == ["NeedsB"]
    assert any("NeedsB" in str(error) for error in report.errors)
    assert "NeedsB" in str(report.uif.error_details)


def test_a_skip_keeps_the_first_failure_in_error_details() -> None:
    class FailsB(BaseSkillModule):
        skill_name = "FailsB"
        skill_description = "would write b, but fails"
        required_inputs = ["input_query"]
        output_keys = ["b"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            raise RuntimeError("first failure")

    engine = make_engine([FailsB, NeedsB], continue_on_skill_failure=True)
    report = engine.execute_plan(["FailsB", "NeedsB"], UIF.for_query("q"))
    assert report.result("NeedsB").status == "skipped"
    assert report.failed_skills == ["FailsB", "NeedsB"]
    assert "FailsB" in str(report.uif.error_details)
    assert "first failure" in str(report.uif.error_details)


class Relay(BaseSkillModule):
    skill_name = "Relay"
    skill_description = "a to a2"
    required_inputs = ["a"]
    output_keys = ["a2"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["a2"] = uif.intermediate_data["a"]
        return uif


class Late(BaseSkillModule):
    skill_name = "Late"
    skill_description = "runs in the third stage"
    required_inputs = ["a2"]
    output_keys = ["e"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["e"] = 1
        return uif


def test_a_skip_stops_the_run_unless_continue_on_skill_failure() -> None:
    skills = [Silent, NeedsB, Produce, Relay, Late]
    plan = ["Silent", "Produce", "NeedsB", "Relay", "Late"]
    stopped = make_engine(skills).execute_plan(plan, UIF.for_query("q"))
    assert stopped.result("NeedsB").status == "skipped"
    assert stopped.stages[-1] == ["Late"]
    assert "e" not in stopped.uif.intermediate_data
    assert stopped.status == "failure"
    going = make_engine(skills, continue_on_skill_failure=True)
    report = going.execute_plan(plan, UIF.for_query("q"))
    assert report.result("Late").status == "success"
    assert report.uif.intermediate_data["e"] == 1


def test_a_plan_that_is_a_string_is_a_plan_type_problem_everywhere() -> None:
    engine = make_engine([Produce])
    expected = (
        "plan is a str ('Produce'), not a list of skill names; pass a list such as ['Produce']"
    )
    calls = [
        lambda: engine.compile("Produce"),
        lambda: engine.execute_plan("Produce", UIF.for_query("q")),
        lambda: engine.run_query("q", plan="Produce"),
    ]
    for call in calls:
        with pytest.raises(E.PlanValidationError) as info:
            call()
        assert [p.code for p in info.value.problems] == ["plan_type"]
        assert info.value.problems[0].message == expected
        assert str(info.value) == f"plan is invalid (1 problem(s)):\n  - {expected}"
    with pytest.raises(E.PlanValidationError) as raised:
        engine.validate_plan("Produce")
    assert [p.code for p in raised.value.problems] == ["plan_type"]
    with pytest.raises(E.PlanValidationError) as item:  # a list with a non-string in it
        engine.execute_plan(["Produce", 3], UIF.for_query("q"))  # type: ignore[list-item]
    assert [p.code for p in item.value.problems] == ["plan_type"]


def test_keyboard_interrupt_leaves_execute_plan_with_a_note_after_the_report() -> None:
    class Interrupted(BaseSkillModule):
        skill_name = "Interrupted"
        skill_description = "Ctrl-C inside"
        required_inputs = ["input_query"]
        output_keys = ["z"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            raise KeyboardInterrupt

    seen: list[ExecutionReport] = []

    class Watcher:
        @sof_core.hookimpl
        def sof_after_plan(self, report: ExecutionReport) -> None:
            seen.append(report)

    engine = make_engine([Interrupted], plugins=[("watcher", Watcher())])
    with pytest.raises(KeyboardInterrupt) as info:
        engine.execute_plan(["Interrupted"], UIF.for_query("q"))
    assert any("Interrupted" in note for note in getattr(info.value, "__notes__", []))
    assert len(seen) == 1
    result = seen[0].result("Interrupted")
    assert result.status == "failed" and result.error_type == "KeyboardInterrupt"


# --- api.md: skills, tools, results ---------------------------------------------------------


def test_permissions_are_the_three_names() -> None:
    assert frozenset({"network", "filesystem", "subprocess"}) == PERMISSIONS
    assert isinstance(PERMISSIONS, frozenset)


def test_a_tool_module_is_a_process_isolated_tool() -> None:
    assert BaseToolModule.skill_category == "tool"
    assert BaseToolModule.isolation == "process"
    assert issubclass(BaseToolModule, BaseSkillModule)


def test_skill_result_fields_and_to_dict() -> None:
    engine = make_engine([Boom])
    result = engine.execute_plan(["Boom"], UIF.for_query("q")).result("Boom")
    assert isinstance(result, SkillResult)
    data = result.to_dict()
    for name in ("skill", "status", "attempts", "stage", "error", "error_type", "plugin",
                 "traceback", "location"):
        assert data[name] == getattr(result, name)
    assert "duration" not in data and data["duration_ms"] == pytest.approx(
        result.duration * 1000, abs=0.001
    )
    assert result.location is not None and result.location.startswith(__file__ + ":")
    assert result.traceback is not None and "in execute" in result.traceback


def test_validation_problem_fields_and_str() -> None:
    engine = make_engine([Produce])
    problems = engine.validate_plan(["Produce", "Missing"])
    problem = next(p for p in problems if "Missing" in p.skills)
    for name in ("code", "message", "skills", "key", "path"):
        assert hasattr(problem, name)
    assert str(problem) == problem.message


def test_close_waits_a_quarter_second_at_most_and_the_engine_stays_usable() -> None:
    from sof_core.execution import coordinator

    assert coordinator.CLOSE_WAIT == 0.25
    with make_engine([Produce]) as engine:
        engine.execute_plan(["Produce"], UIF.for_query("q"))
        engine.close()
        report = engine.execute_plan(["Produce"], UIF.for_query("again"))
        assert report.status == "success"


def test_describe_failures_names_each_failed_skill_and_where() -> None:
    engine = make_engine([Boom, Other], continue_on_skill_failure=True)
    report = engine.execute_plan(["Boom", "Other"], UIF.for_query("q"))
    text = describe_failures(report)
    result = report.result("Boom")
    assert "Boom" in text and "boom went the skill" in text
    assert result.location is not None and result.location in text
    assert "Other" not in text


def test_debug_logging_gets_one_record_per_failed_skill(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine([Boom])
    with caplog.at_level(logging.DEBUG, logger="sof.execution"):
        report = engine.execute_plan(["Boom"], UIF.for_query("q"))
    location = report.result("Boom").location
    records = [r for r in caplog.records if r.name == "sof.execution"
               and "skill Boom failed at" in r.getMessage()]
    assert len(records) == 1
    assert f"skill Boom failed at {location}: ValueError: boom went the skill" in (
        records[0].getMessage()
    )


# --- api.md: documented signatures ----------------------------------------------------------


def _keyword_only(function: Any) -> set[str]:
    return {name for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def test_tool_policy_denial_takes_tool_by_keyword() -> None:
    # "denial(name, permissions, *, tool) (tool=True for a tool, False for a skill)"
    assert "tool" in _keyword_only(ToolPolicy.denial)
    assert ToolPolicy().denial("X", [], tool=True) is None
    with pytest.raises(TypeError):
        ToolPolicy().denial("X", [])  # type: ignore[call-arg]


def test_rate_limiter_cooldown_is_keyword_only() -> None:
    # "RateLimiter(per_minute=None, per_hour=None, *, cooldown=0.0)"
    assert "cooldown" in _keyword_only(sof_core.RateLimiter)
    assert sof_core.RateLimiter(5, None, cooldown=0.0).acquire() == 0.0


def test_to_json_safe_takes_indent_by_keyword() -> None:
    # "uif.to_json_safe(*, indent=None)"
    assert "indent" in _keyword_only(UIF.to_json_safe)
    assert UIF.for_query("q").to_json_safe(indent=2).startswith("{\n  ")


def test_plugin_manager_register_takes_replace_and_raise_errors_by_keyword() -> None:
    # ".register(obj, name=None, *, replace=False, raise_errors=False)"
    assert {"replace", "raise_errors"} <= _keyword_only(sof_core.PluginManager.register)

    class Plugin:
        @sof_core.hookimpl
        def sof_register_skills(self) -> list[Any]:
            return [Produce]

    record = make_engine().plugins.register(Plugin(), "by-keyword", replace=False)
    assert record.status == "loaded"


# --- api.md: skills and specs ---------------------------------------------------------------


class Typed(BaseSkillModule):
    skill_name = "Typed"
    skill_description = "declares types"
    required_inputs = ["input_query"]
    optional_inputs = [("hint", str)]
    output_keys = [("words", list)]
    max_execution_time = 3.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["words"] = uif.input_query.split()
        return uif


def test_skill_spec_has_the_documented_fields_and_describes_itself_as_json() -> None:
    import json

    spec = sof_core.SkillSpec.from_skill_class(Typed)
    for name in ("name", "version", "required_inputs", "optional_inputs", "output_keys",
                 "key_types", "output_types", "is_async", "max_execution_time", "isolation",
                 "isolation_limits", "isolation_reply_packages", "permissions",
                 "max_output_bytes", "calls_per_minute"):
        assert hasattr(spec, name), name
    assert spec.name == "Typed" and spec.max_execution_time == 3.0
    assert list(spec.optional_inputs) == ["hint"] and not spec.is_async
    described = spec.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["name"] == "Typed" and described["output_keys"] == ["words"]
    assert spec.key_types == {"hint": str} and spec.output_types == {"words": list}
    assert described["types"] == {"hint": "str", "words": "list"}


def test_skill_helpers_exist_and_answer() -> None:
    skill = Typed()
    assert skill.get_metadata() == sof_core.SkillSpec.from_skill_class(Typed).describe()
    assert skill.get_dependency_info() == {
        "skill_name": "Typed", "required_inputs": ["input_query"],
        "optional_inputs": ["hint"], "output_keys": ["words"],
    }
    skill.validate_dependencies(UIF.for_query("a b"))
    needs_b = NeedsB()
    with pytest.raises(E.SkillDependencyError) as info:
        needs_b.validate_dependencies(UIF.for_query("q"))
    assert "'b'" in str(info.value) and info.value.skill == "NeedsB"


def test_an_in_place_change_of_an_undeclared_container_is_an_undeclared_write() -> None:
    class Docs(BaseSkillModule):
        skill_name = "Docs"
        skill_description = "writes docs"
        required_inputs = ["input_query"]
        output_keys = ["docs"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["docs"] = ["first"]
            return uif

    class Appends(BaseSkillModule):
        skill_name = "Appends"
        skill_description = "changes docs in place"
        required_inputs = ["docs"]
        output_keys = ["count"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["docs"].append("mine")
            uif.intermediate_data["count"] = 2
            return uif

    report = make_engine([Docs, Appends]).execute_plan(["Docs", "Appends"], UIF.for_query("q"))
    result = report.result("Appends")
    assert result.error_type == "UndeclaredWriteError"
    assert result.error == (
        "changed 'docs' in place, which is not in its output_keys; change a copy (list(...), "
        "dict(...), copy.deepcopy(...)) or add 'docs' to output_keys"
    )
    assert report.uif.intermediate_data["docs"] == ["first"]


# --- api.md: the engine ---------------------------------------------------------------------


class AltProduce(BaseSkillModule):
    skill_name = "AltProduce"
    skill_description = "also writes a"
    required_inputs = ["input_query"]
    output_keys = ["a"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["a"] = "alt"
        return uif


def test_several_producers_of_a_goal_raise_goal_resolution_naming_them() -> None:
    engine = make_engine([Produce, AltProduce, Relay])
    with pytest.raises(E.GoalResolutionError) as info:
        engine.resolve_goal("a2")
    assert "Produce" in str(info.value) and "AltProduce" in str(info.value)
    assert engine.resolve_goal("a2", prefer={"a": "AltProduce"}) == ["AltProduce", "Relay"]
    assert engine.resolve_goal("a2", available=["a"]) == ["Relay"]
    report = engine.run_query("q", goal=["a2"], prefer={"a": "AltProduce"})
    assert report.status == "success" and report.uif.intermediate_data["a2"] == "alt"


def test_resolve_goal_adds_producers_of_optional_inputs_only_when_asked() -> None:
    class Hint(BaseSkillModule):
        skill_name = "Hint"
        skill_description = "writes hint"
        required_inputs = ["input_query"]
        output_keys = ["hint"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["hint"] = "h"
            return uif

    engine = make_engine([Typed, Hint])
    assert engine.resolve_goal("words") == ["Typed"]
    assert engine.resolve_goal("words", include_optional=True) == ["Hint", "Typed"]


def test_engine_executor_gives_a_registered_executor() -> None:
    engine = make_engine()
    for name in ("sequential", "threads", "asyncio"):
        executor = engine.executor(name)
        assert executor.name == name and isinstance(executor.concurrent, bool)
        assert callable(executor.run_stage)


def test_report_fields_and_timings_by_phase() -> None:
    engine = make_engine([Produce])
    direct = engine.execute_plan(["Produce"], UIF.for_query("q"))
    assert {"compile", "run"} <= set(direct.timings) and "planning" not in direct.timings
    queried = engine.run_query("q", plan=["Produce"])
    assert {"compile", "run", "planning"} <= set(queried.timings)
    for name in ("uif", "status", "plan", "stages", "results", "errors", "duration",
                 "executor", "problems", "timings"):
        assert hasattr(queried, name), name
    assert queried.to_dict()["schema"] == "sof.run/1"


def test_register_skill_default_plugin_names() -> None:
    engine = make_engine()
    engine.register_skills([Produce])
    assert "code" in engine.plugins.records
    engine.register_skill(Other)
    assert engine.registry.skill("Other") is not None
    assert engine.registry.skill("Produce").plugin == "code"  # type: ignore[union-attr]


# --- api.md: plugins and registry -----------------------------------------------------------


def test_overlay_parent_is_the_manager_it_layers_over() -> None:
    engine = make_engine()
    overlay = engine.plugins.overlay()
    assert overlay.parent is engine.plugins


def test_registry_failures_lists_failed_plugins() -> None:
    class Failing:
        @sof_core.hookimpl
        def sof_register_skills(self) -> list[Any]:
            raise RuntimeError("cannot register")

    engine = make_engine()
    record = engine.plugins.register(Failing(), name="failing")
    assert record.error_type == "PluginHookError"
    failed = [f for f in engine.registry.failures() if f.plugin == "failing"]
    assert len(failed) == 1 and "cannot register" in failed[0].error
    assert hasattr(failed[0], "skills")


def test_a_system_exit_while_registering_is_a_recorded_plugin_hook_error() -> None:
    import sys

    class Exits:
        @sof_core.hookimpl
        def sof_register_skills(self) -> list[Any]:
            sys.exit(3)

    record = make_engine().plugins.register(Exits(), name="exits")
    assert record.error_type == "PluginHookError" and "exits" in (record.error or "")


# --- api.md: tool security ------------------------------------------------------------------


def test_tool_policy_denial_names_the_policy_entry() -> None:
    policy = ToolPolicy({"deny_tools": ["Fetch*"], "deny_permissions": ["subprocess"]})
    denied = policy.denial("FetchPage", [], tool=True)
    assert denied is not None and denied.skill == "FetchPage" and denied.permission is None
    assert "deny_tools entry 'Fetch*'" in denied.message
    by_permission = policy.denial("Shell", ["subprocess"], tool=False)
    assert by_permission is not None and by_permission.permission == "subprocess"
    assert "deny_permissions" in by_permission.message
    assert policy.denial("Calc", [], tool=True) is None


def test_tool_limits_come_from_the_tool_and_the_policy() -> None:
    class Lookup(BaseToolModule):
        skill_name = "Lookup"
        skill_description = "a tool"
        required_inputs = ["input_query"]
        output_keys = ["found"]
        max_execution_time = 4.0
        permissions = ["network"]

        def execute(self, uif: UIF) -> UIF:
            return uif

    class Tools:
        @sof_core.hookimpl
        def sof_register_tools(self) -> list[Any]:
            return [Lookup]

    engine = make_engine(plugins=[("tools", Tools())])
    entry = engine.registry.skill("Lookup")
    assert entry is not None
    limits = ToolPolicy({"limits": {"Lookup": {"calls_per_minute": 7}}}).tool_limits(entry)
    assert isinstance(limits, sof_core.ToolLimits)
    assert limits.permissions == frozenset({"network"}) and limits.timeout == 4.0
    assert limits.calls_per_minute == 7 and limits.denied is None
    assert ToolPolicy({"deny_tools": ["Lookup"]}).denials([entry])[0].skill == "Lookup"


def test_rate_limiter_records_or_says_how_long_to_wait() -> None:
    now = [100.0]
    limiter = sof_core.RateLimiter(per_minute=2, clock=lambda: now[0])
    assert limiter.acquire() == 0.0 and limiter.acquire() == 0.0
    wait = limiter.acquire()
    assert 0.0 < wait <= 60.0
    assert limiter.acquire() == wait  # the refused call recorded nothing
    now[0] += wait
    assert limiter.acquire() == 0.0
    assert isinstance(limiter.stats(), dict)
    limiter.reset()
    assert limiter.acquire() == 0.0 and limiter.acquire() == 0.0


# --- api.md: settings and deadlines ---------------------------------------------------------


def test_engine_settings_as_keywords_or_a_mapping_are_validated_naming_the_setting() -> None:
    engine = CoordinatorEngine(skill_timeout=5, continue_on_skill_failure=True)
    assert engine.config.skill_timeout == 5 and engine.config.continue_on_skill_failure
    assert not engine.follows_host_config
    mapped = CoordinatorEngine(config={"skill_timeout": 7})
    assert mapped.config.skill_timeout == 7
    with pytest.raises(ConfigValidationError) as unknown:
        CoordinatorEngine(no_such_setting=1)
    assert "no_such_setting" in str(unknown.value)
    with pytest.raises(ConfigValidationError) as bad_key:
        CoordinatorEngine(config={"no_such_key": 1})
    assert "no_such_key" in str(bad_key.value)
    with pytest.raises(E.ConfigError):
        CoordinatorEngine(config=42)  # type: ignore[arg-type]
    with pytest.raises(E.ConfigError):
        engine.config = 42  # type: ignore[assignment]


def test_current_deadline_inside_and_outside_a_skill() -> None:
    seen: dict[str, Any] = {}

    class Reads(BaseSkillModule):
        skill_name = "Reads"
        skill_description = "reads its deadline"
        required_inputs = ["input_query"]
        output_keys = ["seen"]
        max_execution_time = 30.0

        def execute(self, uif: UIF) -> UIF:
            seen["deadline"] = sof_core.current_deadline()
            seen["view"] = uif.current_deadline()
            seen["left"] = uif.remaining_time()
            uif.intermediate_data["seen"] = True
            return uif

    assert sof_core.current_deadline() is None
    assert UIF.for_query("q").remaining_time() is None
    report = make_engine([Reads]).execute_plan(["Reads"], UIF.for_query("q"))
    assert report.status == "success"
    assert isinstance(seen["deadline"], float) and seen["view"] == seen["deadline"]
    assert 0.0 <= seen["left"] <= 30.0


def test_every_error_in_the_tree_is_importable_where_errors_md_says() -> None:
    # "each is importable from sof_core and sof_core.errors, except ConfigValidationError:
    # from sof_core.config import ConfigValidationError"
    import re
    from pathlib import Path

    import sof_core.errors
    from sof_core.config import ConfigValidationError as FromConfig

    page = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text("utf-8")
    tree = page.split("```")[1]
    named = set(re.findall(r"\b([A-Z]\w+Error)\b", tree)) - {
        "KeyError", "PermissionError", "ValidationError", "ConfigValidationError"}
    assert len(named) > 20
    for name in sorted(named):
        assert getattr(sof_core, name) is getattr(sof_core.errors, name), name
        assert issubclass(getattr(sof_core, name), sof_core.SOFError), name
    assert issubclass(FromConfig, sof_core.ConfigError)


def test_run_sandboxed_names_its_call_by_default() -> None:
    # "run_sandboxed(func, args=(), kwargs=None, *, name="sandboxed call", ...)"
    parameter = inspect.signature(sof_core.run_sandboxed).parameters["name"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default == "sandboxed call"


# --- concepts.md: the UIF -------------------------------------------------------------------


@pytest.mark.parametrize("status", list(sof_core.UIFStatus))
def test_is_complete_is_true_for_the_five_end_statuses(status: sof_core.UIFStatus) -> None:
    # "is_complete() is true for success, partial, failure, timeout and cancelled"
    ends = {"success", "partial", "failure", "timeout", "cancelled"}
    assert UIF(input_query="q", status=status).is_complete() is (status.value in ends)


def test_the_coordinator_sets_running_when_a_run_starts_and_the_end_status_after() -> None:
    # "The coordinator sets running when a run starts and success, partial, failure or
    # timeout when it ends"
    seen: dict[str, Any] = {}

    class Watch(BaseSkillModule):
        skill_name = "Watch"
        skill_description = "records the status it runs under"
        required_inputs = ["input_query"]
        output_keys = ["w"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            seen["status"] = uif.status
            uif.intermediate_data["w"] = True
            return uif

    uif = UIF(input_query="q")
    assert uif.status is sof_core.UIFStatus.PENDING and uif.start_time is None
    report = make_engine([Watch]).execute_plan(["Watch"], uif)
    assert seen["status"] is sof_core.UIFStatus.RUNNING
    assert report.uif.status is sof_core.UIFStatus.SUCCESS
    assert report.uif.start_time is not None and report.uif.end_time is not None
    assert report.uif.end_time >= report.uif.start_time


@pytest.mark.parametrize("how", ["UIF(...)", "model_validate", "assignment"])
def test_a_non_string_key_of_a_free_form_field_is_a_uif_error(how: str) -> None:
    with pytest.raises(E.UIFError, match=r"use string keys"):
        if how == "UIF(...)":
            UIF(input_query="q", user_context={1: "a"})
        elif how == "model_validate":
            UIF.model_validate({"input_query": "q", "intermediate_data": {1: "a"}})
        else:
            UIF(input_query="q").user_context = {1: "a"}


# --- concepts.md: skills --------------------------------------------------------------------


def test_host_fields_are_always_available_as_inputs() -> None:
    # "Host fields (input_query, user_context, active_profile, session_id, user_id,
    # security_context, source_documents, ...) are always available as inputs."
    class ReadsHost(BaseSkillModule):
        skill_name = "ReadsHost"
        skill_description = "reads the host's fields"
        required_inputs = ["input_query", "user_context", "active_profile", "session_id",
                           "user_id", "security_context", "source_documents"]
        output_keys = ["who"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["who"] = [uif.user_id, uif.session_id, uif.active_profile]
            return uif

    engine = make_engine([ReadsHost])
    assert engine.validate_plan(["ReadsHost"]) == []
    report = engine.run_query("q", ["ReadsHost"], user_id="u1", session_id="s1")
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["who"] == ["u1", "s1", "general"]


@pytest.mark.parametrize(("attrs", "message"), [
    ({"skill_description": ""}, "skill_description"),
    ({"required_inputs": ["a"], "optional_inputs": ["a"]}, "both required and optional"),
    ({"required_inputs": "input_query"}, "must be a list of key names"),
    ({"output_keys": 5}, "output_keys must be a list or mapping"),
    ({"estimated_execution_time": "fast"}, "estimated_execution_time must be a number of "
                                           "seconds"),
])
def test_a_definition_error_names_the_skill(attrs: dict[str, Any], message: str) -> None:
    # "Declarations are checked when the class is created ... Errors are
    # SkillDefinitionError naming the skill."
    namespace = {"skill_name": "Broken", "skill_description": "x",
                 "required_inputs": ["input_query"], "output_keys": ["o"],
                 "execute": lambda self, uif: uif, **attrs}
    with pytest.raises(E.SkillDefinitionError, match=message) as info:
        type("Broken", (BaseSkillModule,), namespace)
    assert info.value.skill == "Broken" and "'Broken'" in str(info.value)


def test_a_class_made_broken_after_creation_is_refused_when_registered() -> None:
    # "Declarations are checked when the class is created (a named skill) or registered"
    class Later(BaseSkillModule):
        required_inputs = ["input_query"]
        output_keys = ["o"]

        def execute(self, uif: UIF) -> UIF:
            return uif

    Later.skill_name = "Later"
    Later.skill_description = "named after its class was made"
    Later.estimated_execution_time = "fast"  # type: ignore[assignment]
    engine = make_engine()
    with pytest.raises(E.SkillDefinitionError, match="estimated_execution_time") as info:
        engine.register_skill(Later)
    assert info.value.skill == "Later"
    assert engine.registry.skill("Later") is None


def test_a_tool_declares_no_permissions_by_default() -> None:
    # "It declares permissions (any of "network", "filesystem", "subprocess"; none by
    # default)"
    class Lookup(BaseToolModule):
        skill_name = "Lookup"
        skill_description = "looks a word up"
        required_inputs = ["input_query"]
        output_keys = ["found"]

        def execute(self, uif: UIF) -> UIF:
            return uif

    assert not BaseToolModule.permissions
    assert sof_core.SkillSpec.from_skill_class(Lookup).permissions == frozenset()


# --- concepts.md: isolation -----------------------------------------------------------------


class MakeTags(BaseSkillModule):
    skill_name = "MakeTags"
    skill_description = "writes a set at run time"
    required_inputs = ["input_query"]
    output_keys = ["tags"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["tags"] = {"b", "a"}
        return uif


def test_a_set_read_from_intermediate_data_is_a_read_only_set() -> None:
    # "Read-only containers read like plain ones (isinstance(x, list) holds; their types are
    # ReadOnlyList, ReadOnlyDict and ReadOnlySet), and list(x), dict(x), x.copy(), sorted(x)
    # and copy.deepcopy(x) give plain copies"; changing one in place "raises
    # UndeclaredWriteError naming the key ... before anything changed"
    import copy

    seen: dict[str, Any] = {}

    class UseTags(BaseSkillModule):
        skill_name = "UseTags"
        skill_description = "reads the set"
        required_inputs = ["tags"]
        output_keys = ["count"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            tags = uif.intermediate_data["tags"]
            seen["type"] = type(tags).__name__
            seen["is_set"] = isinstance(tags, set)
            seen["copies"] = [type(c) for c in (tags.copy(), copy.deepcopy(tags), set(tags))]
            seen["sorted"] = sorted(tags)
            mine = tags.copy()
            mine.add("mine")
            try:
                tags.add("c")
            except E.UndeclaredWriteError as exc:
                seen["refused"] = exc.key
            uif.intermediate_data["count"] = len(tags)
            return uif

    report = make_engine([MakeTags, UseTags]).run_query("q", ["MakeTags", "UseTags"])
    assert seen["type"] == "ReadOnlySet" and seen["is_set"] is True
    assert seen["copies"] == [set, set, set] and seen["sorted"] == ["a", "b"]
    assert seen["refused"] == "tags"
    assert report.result("UseTags").status == "success", report.errors
    assert report.uif.intermediate_data["tags"] == {"a", "b"}  # before anything changed
    assert report.uif.intermediate_data["count"] == 2


# --- concepts.md: plugins and registries ----------------------------------------------------


def test_the_hooks_concepts_lists_are_the_hookspecs() -> None:
    # "Hooks (all in sof_core/hookspecs.py): sof_register_skills, ... and the observers
    # sof_before_plan, sof_before_skill, sof_after_skill, sof_after_plan, sof_alert."
    import sof_core.hookspecs

    listed = {
        "sof_register_skills", "sof_register_tools", "sof_register_llm_backends",
        "sof_register_memory_backends", "sof_register_planners", "sof_register_executors",
        "sof_register_generation_controllers", "sof_register_vetting_detectors",
        "sof_register_commands", "sof_configure", "sof_before_plan", "sof_before_skill",
        "sof_after_skill", "sof_after_plan", "sof_alert",
    }
    specs = {name for name, value in vars(sof_core.hookspecs).items()
             if name.startswith("sof_") and callable(value)}
    assert specs == listed


def test_an_engine_made_with_a_manager_uses_it_as_is_shared() -> None:
    # "one built with CoordinatorEngine(manager) uses that manager as is, shared with
    # whoever else holds it (that is what sof_core.testing.make_engine does)"
    manager = make_engine().plugins
    first, second = CoordinatorEngine(manager), CoordinatorEngine(manager)
    assert first.plugins is manager and second.plugins is manager
    first.register_skill(Produce)
    assert second.registry.skill("Produce") is not None
    assert second.run_query("q", ["Produce"]).status == "success"


# --- api.md: run_planned ---------------------------------------------------------------------


class Passages(BaseSkillModule):
    skill_name = "Passages"
    skill_description = "finds passages"
    required_inputs = ["input_query"]
    output_keys = ["passages"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["passages"] = [uif.input_query]
        return uif


class Reply(BaseSkillModule):
    skill_name = "Reply"
    skill_description = "answers from the passages"
    required_inputs = ["passages"]
    output_keys = ["final_response"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "answer: " + uif.intermediate_data["passages"][0]
        return uif


def test_run_planned_runs_a_planners_plan_as_run_query_does() -> None:
    # "run_planned(planned, uif, *, config=None, executor=None) -> ExecutionReport — run a
    # PlanResult from planning.plan(...) as run_query runs its planner's: the UIF's trace
    # says how the plan was made ... and the report's planning says how it was chosen";
    # "arun_planned(...) on an event loop"; "planning.plan(...) -> PlanResult ... without
    # running it; stats()["planning"] counts plans"
    import asyncio

    engine = make_engine([Passages, Reply], default_plan=["Passages", "Reply"])
    planned = engine.planning.plan("what is SOF")
    assert isinstance(planned, sof_core.PlanResult) and planned.plan == ["Passages", "Reply"]
    assert engine.stats()["planning"]["plans"] == {"rules": 1}

    report = engine.run_planned(planned, UIF.for_query("what is SOF"))
    assert report.status == "success" and report.final_response == "answer: what is SOF"
    assert report.planning == planned.to_dict()
    assert any("planner rules" in line for line in report.uif.log_trace)

    queried = engine.run_query("what is SOF")
    assert queried.planning is not None and queried.planning["plan"] == planned.plan
    assert queried.planning["planner"] == report.planning["planner"]

    async def on_a_loop() -> ExecutionReport:
        return await engine.arun_planned(planned, UIF.for_query("what is SOF"),
                                         executor="sequential")

    awaited = asyncio.run(on_a_loop())
    assert awaited.status == "success" and awaited.planning == planned.to_dict()
    assert awaited.executor == "sequential"

