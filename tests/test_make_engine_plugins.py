"""``sof_core.testing.make_engine(plugins=...)``: a plugin given alone or as (name, plugin)."""

from __future__ import annotations

import types
from typing import Any

from sof_core import UIF, BaseSkillModule, hookimpl
from sof_core.testing import make_engine


class Echo(BaseSkillModule):
    skill_name = "Echo"
    skill_description = "Answers with the query."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = uif.input_query
        return uif


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def sof_after_skill(self, skill: Any, result: Any) -> None:
        self.seen.append(result.skill)


def _module_plugin() -> types.ModuleType:
    module = types.ModuleType("acme_module_plugin")

    class Greet(BaseSkillModule):
        skill_name = "Greet"
        skill_description = "Greets whoever asked."
        required_inputs = ["final_response"]
        output_keys = ["greeting"]

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["greeting"] = f"hello, {uif.final_response}"
            return uif

    @hookimpl
    def sof_register_skills() -> list[type[BaseSkillModule]]:
        return [Greet]

    module.sof_register_skills = sof_register_skills  # type: ignore[attr-defined]
    return module


def test_plugins_given_alone_are_named_after_their_module_or_class() -> None:
    # A module or an object passed without a name raised "cannot unpack non-iterable".
    first, second = Recorder(), Recorder()
    engine = make_engine([Echo], plugins=[_module_plugin(), first, second])

    report = engine.execute_plan(["Echo", "Greet"], UIF(input_query="hi"))

    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["greeting"] == "hello, hi"
    assert first.seen == second.seen == ["Echo", "Greet"]
    assert {"acme_module_plugin", "Recorder", "Recorder-2"} <= set(engine.plugins.records)


def test_a_name_and_plugin_pair_keeps_its_name() -> None:
    recorder = Recorder()
    engine = make_engine([Echo], plugins=[("observer", recorder)])

    engine.execute_plan(["Echo"], UIF(input_query="hi"))

    assert recorder.seen == ["Echo"]
    assert engine.plugins.records["observer"].status == "loaded"
