"""The rules planner (the default): installed skills' declarations decide the plan.

Run against the bundled and tool plugins as installed (real entry points), plus skills and
plugin distributions made here. Every plan is explained, skill by skill.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sof_core import UIF, BaseSkillModule, CoordinatorEngine, SOFConfig
from sof_core.testing import make_engine

from .conftest import DistFactory, run_sof

WEB = "AgentZeroWebBrowserTool"
VET = "ContentVettingSkill"
CALC = "CalculatorTool"
MEMORY = "MemoryRetrievalSkill"
CONFLICT = "ConflictDetectorSkill"
RESPONSE = "ResponseGenerationSkill"
TOOLS = {WEB, VET, CALC, MEMORY, CONFLICT}


@pytest.fixture(scope="module")
def engine() -> CoordinatorEngine:
    """The installed plugins, with default settings (the rules planner)."""
    engine = CoordinatorEngine(config=SOFConfig())
    assert engine.config.planner == "rules"
    return engine


def plan_of(engine: CoordinatorEngine, query: str, **config: Any) -> Any:
    live = SOFConfig(**config) if config else None
    return engine.planning.plan(query, config=live, use_cache=False)


@pytest.mark.parametrize("query", [
    "What is 15% of 240?",
    "what's 3 plus 5",
    "calculate 17 divided by 4",
    "How much is 12 * 7?",
    "2^10 = ?",
    "What is the square root of 144?",
    "compute (3 + 4) * 5",
    "What is 7 times 6?",
])
def test_arithmetic_phrased_many_ways_gets_the_calculator_and_nothing_else(
    engine: CoordinatorEngine, query: str
) -> None:
    result = plan_of(engine, query)
    assert result.plan == [CALC, RESPONSE], result.reasons
    assert "trigger" in result.reasons[CALC]


@pytest.mark.parametrize("query", [
    "Summarise https://example.org/news",
    "what does http://127.0.0.1:8080/page say?",
])
def test_a_url_gets_the_web_tool_vetting_by_the_taint_rule_then_the_response(
    engine: CoordinatorEngine, query: str
) -> None:
    result = plan_of(engine, query)
    assert result.plan == [WEB, VET, RESPONSE]
    assert result.stages == [[WEB], [VET], [RESPONSE]]
    assert result.reasons[VET].startswith("taint rule")
    assert engine.validate_plan(result.plan) == []


def test_a_question_about_stored_knowledge_gets_memory(engine: CoordinatorEngine) -> None:
    result = plan_of(engine, "What do my notes say about the Paris office?")
    assert result.plan == [MEMORY, RESPONSE]
    assert "my notes" in result.reasons[MEMORY]


def test_a_question_about_disagreement_gets_conflict_detection_and_what_it_needs(
    engine: CoordinatorEngine,
) -> None:
    result = plan_of(engine, "Do the reports contradict each other on the launch date?")
    assert result.plan == [MEMORY, CONFLICT, RESPONSE]
    assert "contradict" in result.reasons[CONFLICT]
    assert result.reasons[MEMORY] == f"produces memory_results, required by {CONFLICT}"


def test_a_query_needing_several_tools_gets_all_of_them_in_parallel(
    engine: CoordinatorEngine,
) -> None:
    result = plan_of(engine, "Fetch https://example.org/prices and compute 2+3*4")
    assert set(result.plan) == {WEB, CALC, VET, RESPONSE}
    assert result.stages[0] == [WEB, CALC]
    assert result.stages[-1] == [RESPONSE]


def test_every_planned_skill_is_explained(engine: CoordinatorEngine) -> None:
    for query in ("What is 2+2?", "hello", "see https://example.org", "did I save the memo?"):
        result = plan_of(engine, query)
        assert set(result.reasons) == set(result.plan)
        assert all(result.reasons.values())


def test_a_query_no_trigger_matches_starts_from_default_plan(engine: CoordinatorEngine) -> None:
    result = plan_of(engine, "Tell me about the weather in Lisbon")
    assert result.plan == [MEMORY, RESPONSE]
    assert "default_plan" in result.reasons[MEMORY]
    assert "no registered skill's trigger matched" in result.reasoning


def test_a_tool_the_policy_denies_is_never_planned(engine: CoordinatorEngine) -> None:
    result = plan_of(engine, "What is 15% of 240?", tool_policy={"deny_tools": [CALC]})
    assert CALC not in result.plan
    assert "deny_tools" in result.skipped[CALC]


def test_sof_run_without_plan_answers_arithmetic_with_the_calculator(tmp_path: Path) -> None:
    env = {"SOF_CONFIG": str(tmp_path / "none.json"), "PATH": "/usr/bin:/bin"}
    done = run_sof("run", "What is 15% of 240?", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["plan"] == [CALC, RESPONSE]
    assert data["uif"]["intermediate_data"]["calculation_result"] == 36
    assert "36" in data["final_response"]
    assert data["planning"]["planner"] == "rules"
    assert data["planning"]["cache_hit"] is False


def test_sof_run_with_the_static_planner_runs_default_plan(tmp_path: Path) -> None:
    env = {"SOF_CONFIG": str(tmp_path / "none.json"), "SOF_PLANNER": "static",
           "PATH": "/usr/bin:/bin"}
    done = run_sof("run", "What is 15% of 240?", "--json", env=env)
    assert json.loads(done.stdout)["plan"] == [MEMORY, RESPONSE], done.stderr


# --- skills that declare triggers, made here --------------------------------------------------


def _answer(uif: UIF) -> UIF:
    uif.final_response = str(uif.intermediate_data.get("tool_results"))
    return uif


class Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers"
    required_inputs = ["input_query"]
    optional_inputs = ["tool_results", "weather"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        return _answer(uif)


class Weather(BaseSkillModule):
    skill_name = "Weather"
    skill_description = "weather by scoring"
    required_inputs = ["input_query"]
    output_keys = ["weather"]

    def planning_score(self, query: str) -> float:
        return 0.9 if "forecast" in query.lower() else 0.1

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["weather"] = "sunny"
        return uif


class Fussy(BaseSkillModule):
    skill_name = "Fussy"
    skill_description = "a predicate that raises"
    required_inputs = ["input_query"]
    output_keys = ["tool_results"]
    triggers: ClassVar[tuple[str, ...]] = ("forecast",)

    def can_handle_query(self, query: str) -> bool:
        if "exit" in query:  # sys.exit() in a predicate: skipped too, never the host's end
            raise SystemExit(2)
        if "odd" in query:  # any BaseException but Ctrl-C: the predicate's fault
            raise GeneratorExit("odd")
        raise ValueError("boom")

    def execute(self, uif: UIF) -> UIF:
        return uif


class Orphan(BaseSkillModule):
    skill_name = "Orphan"
    skill_description = "its output feeds nothing"
    required_inputs = ["input_query"]
    output_keys = ["orphan_key"]
    triggers: ClassVar[tuple[str, ...]] = ("forecast",)

    def execute(self, uif: UIF) -> UIF:
        return uif


def test_a_scoring_method_chooses_and_a_raising_predicate_is_skipped_with_its_reason() -> None:
    engine = make_engine([Answer, Weather, Fussy, Orphan], default_plan=["Answer"])
    result = engine.planning.plan("the forecast for Lisbon", use_cache=False)
    assert result.plan == ["Weather", "Answer"]
    assert result.reasons["Weather"] == "planning_score(query) = 0.90"
    assert "ValueError: boom" in result.skipped["Fussy"]
    exiting = engine.planning.plan("the forecast, then exit", use_cache=False)
    assert exiting.plan == ["Weather", "Answer"]
    assert "can_handle_query raised SystemExit: 2" in exiting.skipped["Fussy"]
    odd = engine.planning.plan("the forecast, odd", use_cache=False)
    assert odd.plan == ["Weather", "Answer"]
    assert "can_handle_query raised GeneratorExit: odd" in odd.skipped["Fussy"]
    pruned = [c for c in result.changes if c.action == "pruned"]
    assert [c.skill for c in pruned] == ["Orphan"]
    assert "feed nothing on the way to final_response" in pruned[0].why


def test_a_trigger_match_the_skill_declined_is_not_called_no_match() -> None:
    """When a trigger matched but the skill's own check said no, the plan's reasoning must
    not say that no trigger matched: the reader would look for a missing trigger."""
    engine = make_engine([Answer, Fussy], default_plan=["Answer"])
    declined = engine.planning.plan("the forecast", use_cache=False)
    assert declined.plan == ["Answer"]
    assert declined.reasoning.startswith(
        "no skill was chosen: Fussy matched a trigger but declined (see not chosen)")
    assert "Fussy" in declined.skipped
    plain = engine.planning.plan("hello there", use_cache=False)
    assert plain.reasoning.startswith("no registered skill's trigger matched the query")


def test_a_newly_installed_plugin_with_a_trigger_is_chosen_without_planner_changes(
    dists: DistFactory,
) -> None:
    dists.add("sof-tides", """
        from sof_core import BaseSkillModule, hookimpl

        class TideTool(BaseSkillModule):
            skill_name = "TideTool"
            skill_description = "high and low tide times"
            required_inputs = ["input_query"]
            output_keys = [("tool_results", list)]
            triggers = (r"\\btides?\\b",)

            def execute(self, uif):
                uif.intermediate_data["tool_results"] = [{"tool": "TideTool", "content": "High tide is at 06:12."}]
                return uif

        @hookimpl
        def sof_register_skills():
            return [TideTool]
    """)
    engine = CoordinatorEngine(config=SOFConfig())
    result = engine.planning.plan("When is high tide in Porto?", use_cache=False)
    assert result.plan == ["TideTool", RESPONSE]
    assert result.reasons["TideTool"] == "its trigger matched 'tide'"
    report = engine.run_query("When is high tide in Porto?")
    assert report.status == "success" and "06:12" in (report.final_response or "")
    assert report.planning is not None and report.planning["planner"] == "rules"


class TideTimes(BaseSkillModule):
    skill_name = "TideTimes"
    skill_description = "tide times for a port"
    required_inputs = ["input_query"]
    output_keys = ["tide_times"]
    triggers: ClassVar[tuple[str, ...]] = (r"\btides?\b",)

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["tide_times"] = ["06:12", "18:31"]
        return uif


class TideAnswer(BaseSkillModule):
    skill_name = "TideAnswer"
    skill_description = "answers from the tide times"
    required_inputs = ["tide_times"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "high tide at " + uif.intermediate_data["tide_times"][0]
        return uif


def test_a_triggered_skill_brings_the_answer_skill_that_reads_it_over_default_plan() -> None:
    # default_plan's Answer won the final_response tie, and the triggered TideTimes then fed
    # nothing and was pruned: the plugin's trigger matched and changed nothing.
    engine = make_engine([Answer, TideTimes, TideAnswer], default_plan=["Answer"])
    result = engine.planning.plan("When are the tides in Porto?", use_cache=False)
    assert result.plan == ["TideTimes", "TideAnswer"]
    assert result.reasons["TideAnswer"] == (
        "produces final_response, the goal (also produced by Answer; chosen as it reads "
        "tide_times, which TideTimes writes)")
    assert engine.run_query("When are the tides in Porto?").final_response == "high tide at 06:12"
    # With no trigger matched, default_plan still decides.
    assert engine.planning.plan("hello", use_cache=False).plan == ["Answer"]
