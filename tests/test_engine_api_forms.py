"""The forms a host naturally writes against the engine and the UIF, each taken or refused
with a typed error that says what to pass.

Before: ``resolve_goal("final_response")`` looked for producers of ``'f'``, ``'i'``, ...;
``execute_plan(plan, {"input_query": ...})`` died with ``AttributeError: 'dict' object has
no attribute '__dict__'``; ``CoordinatorEngine(skill_timeout=5)`` was a ``TypeError``;
``uif.mark_skill_complete("S")`` (SAM's signature) was a ``TypeError`` and a second call
listed the skill twice; ``set_skill_output("S", "text")`` raised a bare ``ValueError``; and
the DAG the coordinator builds had no public way out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import networkx as nx
import pytest

from sof_core import UIF, BaseSkillModule, CoordinatorEngine
from sof_core.errors import ConfigError, PlanValidationError, UIFError
from sof_core.testing import make_engine


class Fetch(BaseSkillModule):
    skill_name = "Fetch"
    skill_description = "fetches passages"
    required_inputs = ["input_query"]
    output_keys = ["passages"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["passages"] = [uif.input_query]
        return uif


class Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers from passages"
    required_inputs = ["passages"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "answer: " + uif.intermediate_data["passages"][0]
        return uif


def _engine(**settings: Any) -> CoordinatorEngine:
    return make_engine([Fetch, Answer], **settings)


def test_one_goal_key_may_be_a_plain_string() -> None:
    engine = _engine()
    assert engine.resolve_goal("final_response") == ["Fetch", "Answer"]
    assert engine.resolve_goal(["final_response"]) == ["Fetch", "Answer"]
    report = engine.run_query("what is SOF", goal="final_response")
    assert report.status == "success" and report.final_response == "answer: what is SOF"


@pytest.mark.parametrize("bad", [{"input_query": "q"}, None, "q", 42])
def test_execute_plan_refuses_what_is_not_a_uif_naming_the_argument(bad: Any) -> None:
    engine = _engine()
    with pytest.raises(UIFError, match=r"uif argument must be a sof_core\.UIF") as info:
        engine.execute_plan(["Fetch"], bad)
    assert type(bad).__name__ in str(info.value)
    with pytest.raises(UIFError, match=r"UIF\.for_query"):
        asyncio.run(engine.aexecute_plan(["Fetch"], bad))
    assert engine.execute_plan(["Fetch"], UIF(input_query="q")).status == "success"


def test_engine_settings_may_be_given_as_keywords() -> None:
    engine = CoordinatorEngine(continue_on_skill_failure=True, skill_timeout=5)
    assert engine.config.continue_on_skill_failure is True
    assert engine.config.skill_timeout == 5
    assert engine.follows_host_config is False  # its own settings
    over = CoordinatorEngine(config={"skill_timeout": 2, "skill_retries": 1}, skill_timeout=3)
    assert (over.config.skill_timeout, over.config.skill_retries) == (3, 1)  # keyword wins
    with pytest.raises(ConfigError, match="bogus_setting"):
        CoordinatorEngine(bogus_setting=1)
    with pytest.raises(ConfigError, match="skill_timeout"):
        CoordinatorEngine(skill_timeout="soon")
    engine.close()
    over.close()


def test_mark_skill_complete_takes_sams_signature_and_records_a_skill_once() -> None:
    uif = UIF(input_query="q")
    uif.mark_skill_complete("Fetch")
    uif.mark_skill_complete("Fetch", 0.25)
    assert uif.executed_skills == ["Fetch"]
    assert uif.skill_timings == {"Fetch": 0.25}


def test_set_skill_output_takes_any_value_mappings_merge() -> None:
    uif = UIF(input_query="q")
    uif.set_skill_output("Summarise", "a short summary")  # SAM's skills record text too
    assert uif.get_skill_output("Summarise") == "a short summary"
    assert uif.get_skill_output("Summarise", "key") is None
    uif.set_skill_output("Count", {"a": 1})
    uif.set_skill_output("Count", {"b": 2})
    assert uif.get_skill_output("Count") == {"a": 1, "b": 2}
    uif.set_skill_output("Count", [1, 2])  # not a mapping: replaces
    assert uif.get_skill_output("Count") == [1, 2]
    assert UIF.model_validate_json(uif.model_dump_json()) == uif  # still lossless


def test_a_skill_recording_text_output_in_a_run_reaches_the_report() -> None:
    class Notes(BaseSkillModule):
        skill_name = "Notes"
        skill_description = "records a note"
        required_inputs = ["input_query"]
        output_keys = ["noted"]

        def execute(self, uif: UIF) -> UIF:
            uif.set_skill_output(self.skill_name, "took a note")
            uif.intermediate_data["noted"] = True
            return uif

    report = make_engine([Notes]).execute_plan(["Notes"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.uif.get_skill_output("Notes") == "took a note"


def test_build_graph_gives_the_plans_dag_as_a_networkx_digraph() -> None:
    engine = _engine()
    graph = engine.build_graph(["Answer", "Fetch"])  # order is a hint: the edges decide
    assert isinstance(graph, nx.DiGraph)
    assert set(graph.nodes) == {"Fetch", "Answer"}
    assert list(graph.edges) == [("Fetch", "Answer")]
    assert graph.edges["Fetch", "Answer"]["keys"] == ["passages"]
    assert list(nx.topological_sort(graph)) == ["Fetch", "Answer"]
    graph.add_node("mine")  # a copy: the engine's cached plans are not touched
    assert "mine" not in engine.build_graph(["Fetch", "Answer"])
    with pytest.raises(PlanValidationError, match="unknown skill 'Nope'"):
        engine.build_graph(["Fetch", "Nope"])


@pytest.mark.parametrize("executor", ["sequential", "asyncio", "threads"])
def test_sync_execute_plan_called_from_async_code_with_timeouts_off(executor: str) -> None:
    # Before, with no timeouts (the run walked in the caller's thread), an async skill
    # failed: "Cannot run the event loop while another loop is running".
    class Waits(BaseSkillModule):
        skill_name = "Waits"
        skill_description = "awaits a moment"
        required_inputs = ["input_query"]
        output_keys = ["waited"]

        async def execute(self, uif: UIF) -> UIF:
            await asyncio.sleep(0.01)
            uif.intermediate_data["waited"] = True
            return uif

    engine = make_engine([Waits], executor=executor, skill_timeout=None, total_timeout=None)

    async def host() -> Any:
        return engine.execute_plan(["Waits"], UIF(input_query="q"))

    report = asyncio.run(host())
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["waited"] is True
    assert engine.execute_plan(["Waits"], UIF(input_query="q")).status == "success"
