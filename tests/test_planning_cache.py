"""The planners' plan cache: keyed by query, profile and installed skills; TTL, size,
counters, thread safety, and a SQLite store shared by processes."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from sof_core import UIF, BaseSkillModule, CoordinatorEngine, SOFConfig
from sof_core.planning.cache import PlanCache, PlanStore, query_signature
from sof_core.planning.result import PlanResult
from sof_core.testing import make_engine

from .conftest import DistFactory, run_sof

TIDES = """
    from sof_core import BaseSkillModule, hookimpl

    class TideTool(BaseSkillModule):
        skill_name = "TideTool"
        skill_version = "{version}"
        skill_description = "high and low tide times"
        required_inputs = ["input_query"]
        output_keys = [("tool_results", list)]
        triggers = (r"\\btides?\\b",)

        def execute(self, uif):
            uif.intermediate_data["tool_results"] = [{{"tool": "TideTool", "content": "06:12"}}]
            return uif

    @hookimpl
    def sof_register_skills():
        return [TideTool]
"""
QUERY = "When is high tide in Porto?"


class Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "ok"
        return uif


def test_the_query_signature_ignores_case_spacing_and_end_punctuation() -> None:
    assert query_signature("  What is  2+2? ") == query_signature("what is 2+2")
    assert query_signature("what is 2+2") != query_signature("what is 2+3")


def test_a_factorial_bang_is_part_of_the_signature() -> None:
    """Before: "what is 5!" and "what is 5" shared a plan (the "!" was dropped as end
    punctuation), so the second query reused a calculation plan it has no arithmetic for."""
    assert query_signature("what is 5!") == "what is 5!"
    assert query_signature("What is (2+3)!! ") == "what is (2+3)!!"
    assert query_signature("what is 5!?") == "what is 5!"
    assert query_signature("Hello there!") == query_signature("hello there")
    assert query_signature("what is 5 !") == query_signature("what is 5")


class Factorial(BaseSkillModule):
    skill_name = "Factorial"
    skill_description = "n! of the n in the query"
    required_inputs = ["input_query"]
    output_keys = ["factorial"]
    triggers = (r"\d!",)

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["factorial"] = 120
        return uif


class AnswerFactorial(Answer):
    skill_name = "AnswerFactorial"
    optional_inputs = ["factorial"]


def test_a_query_with_a_factorial_and_one_without_get_their_own_plans() -> None:
    engine = make_engine([Factorial, AnswerFactorial], default_plan=["AnswerFactorial"])
    assert "Factorial" in engine.planning.plan("what is 5!").plan
    assert "Factorial" not in engine.planning.plan("what is 5").plan


def test_a_repeated_query_is_a_hit_and_the_profile_is_part_of_the_key() -> None:
    engine = make_engine([Answer], default_plan=["Answer"])
    first = engine.planning.plan("Hello there")
    again = engine.planning.plan("hello   THERE!")
    other = engine.planning.plan("hello there", profile="legal")
    assert (first.cache_hit, again.cache_hit, other.cache_hit) == (False, True, False)
    assert again.plan == first.plan
    stats = engine.stats()["planning"]["cache"]
    assert (stats["hits"], stats["misses"]) == (1, 2)


def test_the_ttl_and_the_size_come_from_config_and_evictions_are_counted() -> None:
    engine = make_engine([Answer], default_plan=["Answer"], plan_cache_ttl=0.2,
                         plan_cache_size=2)
    for query in ("one", "two", "three"):
        engine.planning.plan(query)
    assert engine.stats()["planning"]["cache"]["evictions"] == 1
    assert engine.planning.plan("three").cache_hit
    time.sleep(0.3)
    assert not engine.planning.plan("three").cache_hit


def test_a_cached_result_cannot_be_changed_through_a_hit() -> None:
    engine = make_engine([Answer], default_plan=["Answer"])
    engine.planning.plan("q")
    hit = engine.planning.plan("q")
    hit.plan.append("Mutated")
    assert engine.planning.plan("q").plan == ["Answer"]


def test_the_cache_is_safe_under_concurrent_planning() -> None:
    engine = make_engine([Answer], default_plan=["Answer"])
    results: list[PlanResult] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(50):
            result = engine.planning.plan(f"query {i % 5}")
            with lock:
                results.append(result)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache = engine.stats()["planning"]["cache"]
    assert cache["hits"] + cache["misses"] == 400
    assert cache["misses"] >= 5 and cache["size"] == 5
    assert all(r.plan == ["Answer"] for r in results)


def test_switching_the_cache_off_plans_every_time() -> None:
    engine = make_engine([Answer], default_plan=["Answer"], enable_plan_cache=False)
    engine.planning.plan("q")
    assert not engine.planning.plan("q").cache_hit


def _persisting(path: Path) -> dict[str, Any]:
    return {"plan_cache_persist": True, "plan_cache_path": str(path)}


def test_installing_removing_and_upgrading_a_plugin_invalidates_its_plans(
    dists: DistFactory, tmp_path: Path
) -> None:
    store = tmp_path / "plans.sqlite"
    dists.add("sof-tides", TIDES.format(version="1.0"), module="sof_tides_v1")
    with_tides = CoordinatorEngine(config=SOFConfig(**_persisting(store)))
    first = with_tides.planning.plan(QUERY)
    assert "TideTool" in first.plan and not first.cache_hit
    assert with_tides.planning.plan(QUERY).cache_hit

    # removed: the installed skills differ, so the stored plan is not served
    shutil.rmtree(next(dists.root.glob("sof_tides-*.dist-info")))
    (dists.root / "sof_tides_v1.py").unlink()
    without = CoordinatorEngine(config=SOFConfig(**_persisting(store)))
    plain = without.planning.plan(QUERY)
    assert not plain.cache_hit and "TideTool" not in plain.plan

    # installed again: the same skills, so another engine gets the stored plan
    dists.add("sof-tides", TIDES.format(version="1.0"), module="sof_tides_v1b")
    again = CoordinatorEngine(config=SOFConfig(**_persisting(store)))
    hit = again.planning.plan(QUERY)
    assert hit.cache_hit and hit.plan == first.plan

    # upgraded: a new skill version is a new fingerprint
    shutil.rmtree(next(dists.root.glob("sof_tides-*.dist-info")))
    dists.add("sof-tides", TIDES.format(version="2.0"), module="sof_tides_v2", version="2.0")
    upgraded = CoordinatorEngine(config=SOFConfig(**_persisting(store)))
    assert not upgraded.planning.plan(QUERY).cache_hit


def test_a_plan_sof_plan_stored_serves_sof_run_of_the_same_query(
    dists: DistFactory, tmp_path: Path
) -> None:
    # `sof plan` planned for no profile and `sof run` for the UIF's ('general'): the cache
    # keys differed, so the plan shown was stored for a run that never came (and a planner
    # reading context.profile could show another plan than the one run).
    env = dists.env()
    env.update({"SOF_PLAN_CACHE_PERSIST": "1",
                "SOF_PLAN_CACHE_PATH": str(tmp_path / "shared.sqlite")})
    planned = run_sof("plan", QUERY, "--json", env=env)
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["cache_hit"] is False
    ran = run_sof("run", QUERY, "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    run_planning = json.loads(ran.stdout)["planning"]
    assert run_planning["cache_hit"] is True
    assert run_planning["plan"] == json.loads(planned.stdout)["plan"]


def test_the_sqlite_store_is_shared_by_processes_and_survives_restarts(
    dists: DistFactory, tmp_path: Path
) -> None:
    env = dists.env()
    env.update({"SOF_PLAN_CACHE_PERSIST": "1",
                "SOF_PLAN_CACHE_PATH": str(tmp_path / "shared.sqlite")})

    def plan() -> dict[str, Any]:
        done = run_sof("plan", QUERY, "--json", env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    assert plan()["cache_hit"] is False
    assert plan()["cache_hit"] is True  # another process, after the first one ended
    dists.add("sof-tides", TIDES.format(version="1.0"))
    fresh = plan()
    assert fresh["cache_hit"] is False and "TideTool" in fresh["plan"]


def test_a_broken_store_file_leaves_the_memory_cache_working(tmp_path: Path) -> None:
    path = tmp_path / "store"
    path.mkdir()  # a directory where the SQLite file should be
    cache = PlanCache(8, 60, PlanStore(path))
    result = PlanResult(plan=["A"], planner="rules")
    cache.put("k", result)
    hit = cache.get("k")
    assert hit is not None and hit.plan == ["A"] and hit.cache_hit


def test_sams_plan_cache_ttl_key_sets_the_planner_cache_ttl(tmp_path: Path) -> None:
    from sof_core.config import load_config

    sam_file = tmp_path / "sof_config.json"
    sam_file.write_text(json.dumps({"plan_cache_ttl": 7, "enable_plan_caching": True}))
    config = load_config(file_path=sam_file, environ={})
    engine = make_engine([Answer], default_plan=["Answer"],
                         plan_cache_ttl=config.plan_cache_ttl)
    engine.planning.plan("q", config=config.model_copy(update={"default_plan": ["Answer"]}))
    assert engine.stats()["planning"]["cache"]["ttl"] == 7


def test_a_cached_plan_copy_keeps_every_field_and_shares_no_container() -> None:
    """Every cache hit hands out a copy: equal in every field (a field added later must be
    copied too), with its own lists and dicts, so a caller changing its plan never changes
    the cached one."""
    import dataclasses

    from sof_core.planning.result import Change, Fallback, PlanResult

    original = PlanResult(
        plan=["A", "B"], planner="rules", reasons={"A": "asked"}, reasoning="why",
        stages=[["A"], ["B"]], cache_hit=True,
        fallbacks=[Fallback("llm", "rules", "timeout")],
        changes=[Change("pruned", "C", "unused")], scores={"A": 0.123456789},
        skipped={"D": "denied"}, duration=0.5, cacheable=False,
    )
    for f in dataclasses.fields(PlanResult):  # the sample sets every field off its default
        default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else f.default)
        assert getattr(original, f.name) != default, f.name
    assert original.copy() == original
    copy = original.copy(cache_hit=False)
    assert copy.cache_hit is False
    assert dataclasses.replace(copy, cache_hit=True) == original
    copy.plan.append("X")
    copy.stages[0].append("X")
    copy.reasons["X"] = "x"
    copy.fallbacks[0].reason = "changed"
    copy.changes[0].why = "changed"
    copy.scores["X"] = 1.0
    copy.skipped["X"] = "x"
    assert original.plan == ["A", "B"] and original.stages == [["A"], ["B"]]
    assert original.reasons == {"A": "asked"} and "X" not in original.scores
    assert original.fallbacks[0].reason == "timeout" and original.changes[0].why == "unused"
    assert original.skipped == {"D": "denied"}
