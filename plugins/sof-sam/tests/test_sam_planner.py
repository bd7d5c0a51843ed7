"""SAM's DynamicPlanner over SOF's goal and static planners, with SAM's plan cache."""

from __future__ import annotations

import time
from typing import Any

from sof_sam.config import SOFConfig
from sof_sam.planner import DynamicPlanner, PlanCacheEntry, PlanGenerationResult
from sof_sam.skills.base import BaseSkillModule
from sof_sam.uif import SAM_UIF
from sof_sam.validator import PlanValidationEngine

from sof_core.testing import make_engine


def skill(name: str, reads: list[str], writes: list[str], optional: tuple[str, ...] = ()
          ) -> BaseSkillModule:
    def execute(self: Any, uif: SAM_UIF) -> SAM_UIF:
        return uif

    cls = type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"{name}, a planning test skill",
        "required_inputs": reads, "optional_inputs": list(optional), "output_keys": writes,
        "execute": execute,
    })
    return cls()  # type: ignore[no-any-return]


MEMORY = skill("MemoryRetrievalSkill", ["input_query"], ["memory_results"])
CONFLICTS = skill("ConflictDetectorSkill", ["memory_results"], ["conflicts"])
RESPONSE = skill("ResponseGenerationSkill", ["input_query"], ["final_response"],
                 optional=("memory_results", "conflicts"))
UNRELATED = skill("WeatherSkill", ["input_query"], ["weather"])
SKILLS = [MEMORY, CONFLICTS, RESPONSE, UNRELATED]


def planner(*skills: BaseSkillModule, **flags: Any) -> DynamicPlanner:
    made = DynamicPlanner(engine=make_engine(default_plan=["MemoryRetrievalSkill",
                                                           "ResponseGenerationSkill"]),
                          config=SOFConfig(**flags))
    made.register_skills(list(skills))
    return made


def uif(query: str = "Tell me about Paris", **fields: Any) -> SAM_UIF:
    return SAM_UIF(input_query=query, **fields)


def test_the_plan_is_what_the_graph_needs_for_a_response() -> None:
    made = planner(*SKILLS)
    result = made.create_plan(uif())
    assert isinstance(result, PlanGenerationResult)
    assert result.plan == ["MemoryRetrievalSkill", "ConflictDetectorSkill",
                           "ResponseGenerationSkill"]
    assert result.confidence == 0.8 and result.cache_hit is False
    assert result.fallback_used is False and result.generation_time >= 0
    checker = PlanValidationEngine(engine=made._engine, config=SOFConfig())
    assert checker.validate_plan(result.plan, uif()).is_valid


def test_a_repeated_query_comes_from_the_cache() -> None:
    made = planner(*SKILLS)
    first = made.create_plan(uif())
    second = made.create_plan(uif())
    third = made.create_plan(uif())
    assert (second.cache_hit, third.cache_hit) == (True, True)
    assert second.plan == first.plan and third.reasoning == "Retrieved from cache (used 2 times)"
    assert made.get_cache_stats() == {"total_entries": 1, "total_usage": 2,
                                      "average_usage": 2.0, "cache_enabled": True}
    assert made.create_plan(uif("Another question")).cache_hit is False
    assert made.create_plan(uif(active_profile="legal")).cache_hit is False
    made.clear_cache()
    assert made.get_cache_stats()["total_entries"] == 0


def test_cached_plans_expire_after_sams_ttl() -> None:
    made = planner(*SKILLS, plan_cache_ttl=0.05)
    made.create_plan(uif())
    time.sleep(0.1)
    assert made.create_plan(uif()).cache_hit is False


def test_a_new_skill_invalidates_cached_plans() -> None:
    made = planner(*SKILLS)
    made.create_plan(uif())
    made.register_skill(skill("ResponseGenerationSkill", ["input_query"], ["final_response"]))
    result = made.create_plan(uif())
    assert result.cache_hit is False and result.plan == ["ResponseGenerationSkill"]


def test_no_caching_when_sam_turns_it_off() -> None:
    made = planner(*SKILLS, enable_plan_caching=False)
    made.create_plan(uif())
    assert made.create_plan(uif()).cache_hit is False
    assert made.get_cache_stats()["cache_enabled"] is False


def test_without_a_plan_from_the_graph_the_default_plan_is_used() -> None:
    rival = skill("OtherResponseSkill", ["input_query"], ["final_response"])
    made = planner(*SKILLS, rival)  # two producers of final_response: no single plan
    result = made.create_plan(uif())
    assert result.plan == ["MemoryRetrievalSkill", "ResponseGenerationSkill"]
    assert result.fallback_used is True and result.confidence == 0.6
    assert "final_response" in result.reasoning


def test_self_reflect_is_added_after_the_response_for_factual_questions() -> None:
    checker = skill("AutonomousFactualCorrectionSkill", ["input_query"], ["corrections"])
    made = planner(*SKILLS, checker)
    factual = made.create_plan(uif("What is the capital of France?"))
    assert factual.plan[-2:] == ["ResponseGenerationSkill", "AutonomousFactualCorrectionSkill"]
    assert "SELF-REFLECT" in factual.reasoning
    plain = made.create_plan(uif("Paris trip ideas"))
    assert "AutonomousFactualCorrectionSkill" not in plain.plan
    off = planner(*SKILLS, checker, enable_self_reflect=False)
    assert "AutonomousFactualCorrectionSkill" not in off.create_plan(
        uif("What is the capital of France?")).plan


def test_goal_modes_log_the_top_goal() -> None:
    class Goal:
        goal_id = "goal-7"
        description = "learn about rivers"

    class Stack:
        def get_top_priority_goals(self, limit: int, status: str) -> list[Goal]:
            return [Goal()]

    made = DynamicPlanner(enable_curriculum=False, goal_stack=Stack(), engine=make_engine(),
                          config=SOFConfig())
    made.register_skills(SKILLS)
    target = uif()
    made.create_plan(target, mode="goal_informed")
    assert any("Background goal: goal-7" in line for line in target.log_trace)
    assert made.get_curriculum_status() is None


def test_cache_entries_have_sams_fields() -> None:
    made = planner(*SKILLS)
    made.create_plan(uif())
    (entry,) = made._cache.values()
    assert isinstance(entry, PlanCacheEntry)
    assert entry.usage_count == 0 and entry.confidence == 0.8
    assert entry.plan == made.create_plan(uif()).plan


def test_registered_skills_include_the_installed_plugins_by_default() -> None:
    made = DynamicPlanner()
    made.register_skill(UNRELATED)
    assert "WeatherSkill" in made.get_registered_skills()


def test_a_registered_skill_wins_over_an_installed_plugins_producer_of_the_same_key() -> None:
    # Before: the installed response plugin also writes final_response, so the goal planner
    # gave up and the default plan ran the plugin's skills, not the one registered here.
    answer = skill("MyAnswer", ["input_query"], ["final_response"])
    made = DynamicPlanner()  # over the installed plugins, sof-response among them
    made.register_skill(answer)
    result = made.create_plan(uif("hi"))
    assert (result.plan, result.fallback_used) == (["MyAnswer"], False)
    # Two registered producers of one key are still ambiguous: the default plan, and why.
    made.register_skill(skill("OtherAnswer", ["input_query"], ["final_response"]))
    result = made.create_plan(uif("hello"))
    assert result.fallback_used is True
    assert "MyAnswer" in result.reasoning and "OtherAnswer" in result.reasoning


def test_sams_graph_status_says_no_graph_database() -> None:
    from sof_sam.planner import DynamicPlanner

    planner = DynamicPlanner()
    assert planner.is_graph_aware() is False
    assert planner.get_graph_status() == {
        "graph_available": False, "graph_aware_planning": True,
        "supported_modes": ["VECTOR"], "default_graph_depth": 2, "max_graph_depth": 4,
    }


# --- SAM's rule-based fallback plan (SAM's tests call it) ----------------------------------

IMPLICIT = skill("ImplicitKnowledgeSkill", ["input_query"], ["implicit_knowledge_summary"])
CALCULATOR = skill("CalculatorTool", ["input_query"], ["calculation_result"])


def test_generate_fallback_plan_picks_skills_by_sams_query_rules() -> None:
    made = planner(MEMORY, CONFLICTS, RESPONSE, IMPLICIT, CALCULATOR)
    question = uif("How does machine learning relate to quantum computing? Compare sources")
    result = made._generate_fallback_plan(question)
    assert isinstance(result, PlanGenerationResult)
    assert result.plan == ["MemoryRetrievalSkill", "ConflictDetectorSkill",
                           "ImplicitKnowledgeSkill", "ResponseGenerationSkill"]
    assert (result.confidence, result.cache_hit, result.fallback_used) == (0.6, False, True)
    assert result.generation_time == 0.0
    assert result.reasoning.startswith("Added vector memory retrieval for context; ")
    assert question.intermediate_data["search_context"] == {"retrieval_mode": "VECTOR"}
    assert made._generate_fallback_plan(uif("What is 2+2?")).plan == [
        "CalculatorTool", "MemoryRetrievalSkill", "ResponseGenerationSkill"]
    assert "ImplicitKnowledgeSkill" not in made._generate_fallback_plan(
        uif("What is the weather today?")).plan


def test_generate_fallback_plan_with_no_matching_skill_is_sams_default() -> None:
    result = planner(UNRELATED)._generate_fallback_plan(uif("What is 2+2?"))
    assert result.plan == ["ResponseGenerationSkill"]  # SAM's "at least one skill"
    assert result.reasoning == "Used default fallback plan"
