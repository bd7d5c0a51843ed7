"""A plugin executor that breaks ``run_stage``'s contract (one ``Outcome`` per step of the
stage) fails the run at once, naming the executor; one that lacks ``concurrent`` or
``run_stage`` is refused naming its plugin; an ``async def`` hook is refused at
registration. Before: a ``run_stage`` that forgot its ``return`` held the run until
``total_timeout`` (blaming a skill that had finished), too few outcomes blamed a later
skill, a missing ``concurrent`` was an ``AttributeError`` out of ``run_query``, and an
``async def`` observer was silently never run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, PluginHookError, hookimpl
from sof_core.testing import make_engine

DEFAULTS = {"total_timeout": 20.0}  # a hang is a failure well before this


def _skill(name: str, requires: list[str], output: str) -> type[BaseSkillModule]:
    def execute(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data[output] = name
        return uif

    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"writes {output}",
        "required_inputs": requires, "output_keys": [output], "execute": execute})


SKILLS = [_skill("First", ["input_query"], "first"), _skill("Second", ["first"], "second")]


def _with_executor(stage: Callable[[Any, Any], Any], **attrs: Any) -> Any:
    executor = type("Broken", (), {"name": "broken", "concurrent": False,
                                   "run_stage": lambda self, run, steps: stage(run, steps),
                                   **attrs})()

    class Plugin:
        @hookimpl
        def sof_register_executors(self) -> list[Any]:
            return [executor]

    return make_engine(SKILLS, plugins=[("broken-executor", Plugin())], executor="broken",
                       **DEFAULTS)


@pytest.mark.parametrize("wrong", ["no return", "none", "one twice"])
def test_an_executor_breaking_run_stage_fails_the_run_naming_itself(wrong: str) -> None:
    def run_stage(run: Any, steps: Any) -> Any:
        outcomes = [run.execute(step) for step in steps]
        if wrong == "no return":
            return None
        if wrong == "none":
            return []
        return outcomes * 2

    report = _with_executor(run_stage).execute_plan(["First", "Second"], UIF(input_query="q"))
    assert report.status == "failure"
    assert report.duration < 10  # not held until total_timeout
    (error,) = [e for e in report.errors if "executor" in e]
    assert error.startswith("executor 'broken' crashed: TypeError: run_stage returned ")
    assert "one Outcome per step" in error
    assert not any("SkillDependencyError" in e for e in report.errors)  # no later skill blamed


@pytest.mark.parametrize("attrs, missing", [
    ({"concurrent": None}, "'concurrent' (True or False)"),
    ({"run_stage": None}, "'run_stage(run, steps)'"),
])
def test_an_executor_missing_what_a_run_uses_is_refused_naming_its_plugin(
    attrs: dict[str, Any], missing: str
) -> None:
    engine = _with_executor(lambda run, steps: None, **attrs)
    with pytest.raises(PluginHookError) as caught:
        engine.execute_plan(["First"], UIF(input_query="q"))
    message = str(caught.value)
    assert "broken-executor" in message and f"executor 'broken' lacks {missing}" in message


def test_an_async_hook_is_refused_at_registration_naming_it() -> None:
    class AsyncObserver:
        @hookimpl
        async def sof_after_plan(self, report: Any) -> None:
            pass

    record = make_engine(SKILLS).plugins.register(AsyncObserver(), name="async-observer")
    assert (record.status, record.error_type) == ("failed", "PluginHookError")
    assert "'sof_after_plan' is defined with 'async def'" in (record.error or "")


def test_a_skill_without_a_description_is_refused_when_defined() -> None:
    # docs/authoring.md: "a skill without a description is a SkillDefinitionError"
    from sof_core import SkillDefinitionError

    with pytest.raises(SkillDefinitionError, match="skill_description must say in one line"):
        type("Nameless", (BaseSkillModule,), {"skill_name": "Nameless",
                                              "output_keys": ["x"],
                                              "execute": lambda self, uif: uif})
