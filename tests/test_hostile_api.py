"""Bad arguments to the Python API get SOF's typed errors naming what is wrong (found by
throwing hostile input at every entry point): never a bare TypeError/AttributeError, and
never a SystemExit that ends the host."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sof_core import (
    UIF,
    BaseSkillModule,
    ConfigError,
    CoordinatorEngine,
    GoalResolutionError,
    PluginHookError,
    SkillDefinitionError,
    UIFError,
)
from sof_core.testing import make_engine


def _skill(name: str, **extra: Any) -> type[BaseSkillModule]:
    def execute(self: Any, uif: UIF) -> UIF:
        uif.final_response = "ok"
        return uif

    body = {"skill_name": name, "skill_description": "answers", "output_keys": ["final_response"],
            "execute": execute, **extra}
    return type(name if name.isidentifier() else "Hostile", (BaseSkillModule,), body)


def test_a_constructor_calling_sys_exit_is_a_skill_definition_error() -> None:
    def init(self: Any) -> None:
        raise SystemExit(3)

    engine = make_engine([])
    with pytest.raises(SkillDefinitionError, match=r"'CtorExit'.*SystemExit\(3\)"):
        engine.register_skill(_skill("CtorExit", __init__=init))
    assert "CtorExit" not in engine.registry


@pytest.mark.parametrize("name", ["a\x00b", "two\nlines", "\ud800", "tab\there"])
def test_a_skill_name_that_cannot_be_printed_on_one_line_is_refused(name: str) -> None:
    with pytest.raises(SkillDefinitionError, match="skill_name holds"):
        _skill(name)


@pytest.mark.parametrize("name", ["Lead,Comma", " Leading", "Trailing "])
def test_a_skill_name_no_command_line_plan_can_name_is_refused(name: str) -> None:
    # it registered and showed in `sof skills`, but `--plan` splits at commas and strips
    with pytest.raises(SkillDefinitionError, match=r"cannot name it"):
        _skill(name)


def test_max_execution_time_none_is_said_to_mean_the_skill_timeout_setting() -> None:
    # the error said "or None (no limit)"; None means "use skill_timeout"
    with pytest.raises(SkillDefinitionError,
                       match=r"or None \(the skill_timeout setting\), got -1"):
        _skill("BadTimeout", max_execution_time=-1)


def test_a_name_with_spaces_and_letters_of_any_script_is_fine() -> None:
    assert _skill("Résumé 名前").skill_name == "Résumé 名前"


def test_plugin_name_must_be_a_string() -> None:
    engine = make_engine([])
    with pytest.raises(PluginHookError, match="plugin_name must be a non-empty string, got 5"):
        engine.register_skill(_skill("IntPlugin"), plugin_name=5)  # type: ignore[arg-type]
    with pytest.raises(PluginHookError, match="plugin_name must be a non-empty string"):
        engine.register_skills([_skill("EmptyPlugin")], plugin_name="")


def test_register_skills_wants_a_list_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine([])
    with pytest.raises(PluginHookError, match="takes a list of skill classes"):
        engine.register_skills(_skill("NotAList"))  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING)
    with pytest.raises(PluginHookError, match="register_skill got None, which is not a skill"):
        engine.register_skill(None)
    # Raised to the code that registered it: not also logged as a skipped plugin.
    assert not [r for r in caplog.records if "skipped" in r.getMessage()]


@pytest.mark.parametrize("bad", [object(), [1], 3.5, "Name"])
def test_a_non_skill_given_in_code_is_named_by_the_call_it_was_given_to(bad: Any) -> None:
    """In-code registration errors name the call the caller made, not a plugin hook, and
    the plugin at fault is the one the caller named (or ``code``), not a made-up one."""
    engine = make_engine([])
    before = list(engine.registry.skill_names())
    with pytest.raises(PluginHookError) as one:
        engine.register_skill(bad)
    assert one.value.plugin == "code"
    assert "register_skill got" in str(one.value) and "sof_register_skills" not in str(one.value)
    with pytest.raises(PluginHookError) as many:
        engine.register_skills([bad], plugin_name="mine")
    assert many.value.plugin == "mine"
    assert "register_skills got" in str(many.value)
    assert "sof_register_skills" not in str(many.value)
    assert list(engine.registry.skill_names()) == before


@pytest.mark.parametrize(("call", "message"), [
    (lambda e: e.resolve_goal(None), "goal must be an output key or a list of them"),
    (lambda e: e.resolve_goal(["final_response", 3]), "got \\['final_response', 3\\]"),
    (lambda e: e.run_query("q", goal=5), "got 5"),
    (lambda e: e.resolve_goal("final_response", prefer="x"), "prefer must map output keys"),
])
def test_bad_goals_and_preferences_are_goal_resolution_errors(call: Any, message: str) -> None:
    engine = make_engine([_skill("Answerer")])
    with pytest.raises(GoalResolutionError, match=message):
        call(engine)


@pytest.mark.parametrize("plugins", [5, "memory", ["memory"]])
def test_plugins_must_be_a_plugin_manager(plugins: Any) -> None:
    with pytest.raises(ConfigError, match=r"takes a sof_core\.PluginManager.*plugins_only"):
        CoordinatorEngine(plugins=plugins)


def test_an_empty_executor_name_is_unknown_not_the_default() -> None:
    engine = make_engine([_skill("Answerer")])
    with pytest.raises(ConfigError, match="unknown executor ''"):
        engine.execute_plan(["Answerer"], UIF(input_query="q"), executor="")


@pytest.mark.parametrize("depth", [150, 300, 5000])
def test_json_nested_past_the_limit_is_a_uif_error_however_deep(depth: int) -> None:
    text = ('{"input_query": "q", "user_context": {"a": ' + "[" * depth + "]" * depth + "}}")
    with pytest.raises(UIFError, match="nested more than 100 levels deep"):
        UIF.model_validate_json(text)
