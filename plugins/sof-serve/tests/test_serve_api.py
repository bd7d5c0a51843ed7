"""The HTTP API against a real uvicorn server on 127.0.0.1: query, plan, validate, runs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sof_core import UIF, BaseSkillModule, CoordinatorEngine, SOFConfigManager

Served = Callable[..., Any]


def client(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def test_query_answers_through_the_router_with_the_run_schema(
        served: Served, manager: SOFConfigManager) -> None:
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    server = served()
    with client(server) as http:
        answer = http.post("/v1/query", json={"query": "hello", "plan": ["AnswerSkill"],
                                              "user_id": "u1", "session_id": "s1"})
    assert answer.status_code == 200
    run = answer.json()
    assert run["schema"] == "sof.run/1" and run["schema_version"] == 1
    assert run["final_response"] == "sof:hello"
    assert run["route"]["path"] == "sof" and run["route"]["ok"] is True
    assert run["uif"]["user_id"] == "u1" and run["uif"]["session_id"] == "s1"
    assert [s["skill"] for s in run["skills"]] == ["AnswerSkill"]
    assert run["run_id"] == run["task_id"]


def test_rollout_zero_answers_from_legacy(served: Served) -> None:
    server = served()  # default config: SOF off
    with client(server) as http:
        run = http.post("/v1/query", json={"query": "hello"}).json()
    assert run["route"]["path"] == "legacy"
    assert run["final_response"] == "legacy:hello"
    assert run["schema"] == "sof.run/1"


def test_failing_sof_run_falls_back_to_legacy_and_records_why(
        served: Served, manager: SOFConfigManager) -> None:
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    server = served()
    with client(server) as http:
        run = http.post("/v1/query", json={"query": "q", "plan": ["BrokenSkill"]}).json()
        stats = http.get("/v1/stats").json()
    assert run["final_response"] == "legacy:q"
    assert run["route"]["fallback"] is True
    assert run["route"]["fallback_reason"] == "failure"
    assert run["route"]["sof_run"]["failed_skills"] == ["BrokenSkill"]
    assert stats["comparison"]["paths"]["sof"]["fallbacks"] == 1
    broken = [s for s in stats["skills"] if s["skill"] == "BrokenSkill"]
    assert broken and broken[0]["errors"] == 1


def test_default_legacy_is_the_fixed_default_plan(
        served: Served, manager: SOFConfigManager) -> None:
    manager.update_config(default_plan=["AnswerSkill"])
    server = served(legacy=None)
    with client(server) as http:
        run = http.post("/v1/query", json={"query": "plain"}).json()
    assert run["route"]["path"] == "legacy"
    assert run["final_response"] == "sof:plain"
    assert run["plan"] == ["AnswerSkill"]  # the legacy answer still comes as a whole run


def test_planner_choice_and_unknown_planner(served: Served, manager: SOFConfigManager) -> None:
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          default_plan=["AnswerSkill"])
    server = served()
    with client(server) as http:
        run = http.post("/v1/query", json={"query": "q", "planner": "static"}).json()
        bad = http.post("/v1/query", json={"query": "q", "planner": "nope"})
        both = http.post("/v1/query", json={"query": "q", "planner": "static",
                                            "plan": ["AnswerSkill"]})
    assert run["planning"]["planner"] == "static" and run["final_response"] == "sof:q"
    assert bad.status_code == 422 and "'nope' is not installed" in bad.json()["error"]["message"]
    assert both.status_code == 422


class FindNothing(BaseSkillModule):
    skill_name = "FindNothing"
    skill_description = "finds no passages"
    required_inputs = ["input_query"]
    output_keys = ["found"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["found"] = []
        return uif


class Summarise(BaseSkillModule):
    skill_name = "Summarise"
    skill_description = "summarises the passages found"
    required_inputs = ["found"]
    output_keys = ["summary"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["summary"] = f"{len(uif.intermediate_data['found'])} passages"
        return uif


def test_a_request_naming_its_planner_gets_the_plan_adjusted_as_a_routed_query(
        served: Served, engine: CoordinatorEngine, manager: SOFConfigManager) -> None:
    """Before: a request naming its planner ran that planner's plan as it came (Summarise
    ran on nothing), while the same plan routed without one skipped it."""
    engine.register_skills([FindNothing, Summarise], "serve-adjusted")
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          planner="static",
                          default_plan=["FindNothing", "Summarise", "AnswerSkill"])
    server = served()
    with client(server) as http:
        chosen = http.post("/v1/query", json={"query": "q", "planner": "static"}).json()
        routed = http.post("/v1/query", json={"query": "q"}).json()
    for run in (chosen, routed):
        assert run["route"]["path"] == "sof", run
        assert [s["skill"] for s in run["skills"]] == ["FindNothing", "AnswerSkill"]
        (change,) = run["planning"]["changes"]
        assert change["action"] == "skipped" and change["skill"] == "Summarise"
        assert run["final_response"] == "sof:q"


def test_bad_bodies_get_clear_4xx(served: Served) -> None:
    server = served()
    with client(server) as http:
        not_json = http.post("/v1/query", content=b"{nope", headers={
            "content-type": "application/json"})
        not_object = http.post("/v1/query", json=[1])
        missing = http.post("/v1/query", json={})
        blank = http.post("/v1/query", json={"query": "   "})
        unknown = http.post("/v1/query", json={"query": "q", "qurey": 1})
    assert not_json.status_code == 400
    assert not_object.status_code == 422
    assert missing.status_code == 422 and "'query' is required" in missing.text
    assert blank.status_code == 422
    assert unknown.status_code == 422 and "'qurey'" in unknown.json()["error"]["message"]


def test_plan_and_validate(served: Served) -> None:
    server = served()
    with client(server) as http:
        planned = http.post("/v1/plan", json={"query": "hi", "planner": "static"}).json()
        good = http.post("/v1/validate", json={"plan": ["AnswerSkill"]}).json()
        bad = http.post("/v1/validate", json={"plan": ["NoSuchSkill"]}).json()
    assert planned["planner"] == "static" and planned["plan"]
    assert planned["valid"] is True and planned["problems"] == []
    assert planned["query"] == "hi" and set(planned["reasons"]) == set(planned["plan"])
    assert planned["graph"]["nodes"]
    assert good["valid"] is True and good["stages"] == [["AnswerSkill"]]
    assert bad["valid"] is False and "NoSuchSkill" in json.dumps(bad["problems"])


def test_skills_and_plugins(served: Served) -> None:
    server = served()
    with client(server) as http:
        skills = http.get("/v1/skills").json()["skills"]
        plugins = http.get("/v1/plugins").json()["plugins"]
    assert {"AnswerSkill", "MemoryRetrievalSkill"} <= {s["name"] for s in skills}
    names = {p["name"] for p in plugins}
    assert {"serve-tests", "serve"} <= names
    assert not any(n.startswith("sof-serve-timeline") for n in names)


def test_runs_are_listed_newest_first_bounded_and_whole_by_id(served: Served) -> None:
    server = served(recent_runs=3)
    with client(server) as http:
        ids = [http.post("/v1/query", json={"query": f"q{i}"}).json()["run_id"]
               for i in range(5)]
        listed = http.get("/v1/runs").json()
        one = http.get(f"/v1/runs/{ids[-1]}").json()
        gone = http.get(f"/v1/runs/{ids[0]}")
        too_many = http.get("/v1/runs", params={"limit": 4})
    assert [r["run_id"] for r in listed["runs"]] == ids[:1:-1]
    assert listed["total"] == 5
    assert one["query"] == "q4" and one["uif"]["input_query"] == "q4"
    assert gone.status_code == 404
    assert too_many.status_code == 422


def test_run_has_plan_graph_and_a_measured_timeline(
        served: Served, manager: SOFConfigManager) -> None:
    manager.update_config(default_plan=["MemoryRetrievalSkill", "ResponseGenerationSkill"])
    server = served(legacy=None)
    with client(server) as http:
        run = http.post("/v1/query", json={"query": "what is sqlite"}).json()
    graph = run["graph"]
    assert {"from": "MemoryRetrievalSkill", "to": "ResponseGenerationSkill",
            "key": "memory_results"} in graph["edges"]
    line = run["timeline"]
    assert line["measured"] is True
    first, second = line["skills"]
    assert first["skill"] == "MemoryRetrievalSkill"
    assert 0 <= first["start_ms"] <= first["end_ms"] <= second["start_ms"] <= second["end_ms"]
    assert second["end_ms"] <= run["duration_ms"]


def test_a_measured_bar_ends_before_the_next_stage_starts_and_within_the_run() -> None:
    """A skill's duration starts before SOF builds its view and its start is noted after:
    a thread preempted in between (a loaded machine) must not draw it over the next stage."""
    from sof_serve.trace import timeline

    report = {"duration_ms": 30.0, "stages": [["A"], ["B"]], "skills": [
        {"skill": "A", "stage": 0, "status": "success", "duration_ms": 14.0},
        {"skill": "B", "stage": 1, "status": "success", "duration_ms": 19.0},
    ]}
    line = timeline(report, 100.0, {"A": 100.001, "B": 100.012})  # A: 1 ms in, B: 12 ms in
    first, second = line["skills"]
    assert (first["start_ms"], first["end_ms"]) == (1.0, 12.0)  # not 15: B started at 12
    assert (second["start_ms"], second["end_ms"]) == (12.0, 30.0)  # not 31: the run's end
    assert [(s["start_ms"], s["end_ms"]) for s in line["stages"]] == [(1.0, 12.0), (12.0, 30.0)]


def test_a_query_planned_in_segments_has_one_timeline_from_its_first_skill(
    segmented_skills: list[type[Any]],
) -> None:
    """``run_query`` runs a planned query as two engine runs when a skill requires what an
    earlier one produces (producers first, to decide what to skip): both are one timeline,
    from the first run's start (the second used to restart it, drawing the first skill
    before zero)."""
    from sof_serve.trace import TimelineObserver, timeline

    from sof_core.testing import make_engine

    engine = make_engine(segmented_skills, default_plan=["Find", "Answer"], planner="static")
    observer = TimelineObserver()
    engine.plugins.register(observer, "timeline-test", raise_errors=True)
    report = engine.run_query("anything")
    assert report.status == "success" and report.planning is not None
    line = timeline(report.to_dict(), *observer.pop(report.uif.task_id))
    first, second = line["skills"]
    assert first["skill"] == "Find" and second["skill"] == "Answer"
    assert 0 <= first["start_ms"] <= first["end_ms"] <= second["start_ms"] <= second["end_ms"]


def test_health_and_readiness(served: Served) -> None:
    server = served()
    with client(server) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_readyz_says_not_ready_when_config_is_broken_without_fallback(
        served: Served, manager: SOFConfigManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOF_FALLBACK_TO_LEGACY", "false")  # the broken file cannot say it
    manager.path.write_text('{"max_workers": -3}')
    server = served()
    with client(server) as http:
        ready = http.get("/readyz")
    assert ready.status_code == 503 and "max_workers" in ready.json()["reason"]



def test_a_host_mounts_the_same_routes_under_a_prefix(
        engine: Any, manager: SOFConfigManager) -> None:
    from sof_serve import create_app
    from sof_serve.server import BackgroundServer
    from sof_serve.settings import ServeSettings
    from starlette.applications import Starlette
    from starlette.routing import Mount

    sof = create_app(legacy=lambda query, **context: f"host:{query}", engine=engine,
                     manager=manager, settings=ServeSettings())
    host = Starlette(routes=[Mount("/sof", app=sof)])
    with BackgroundServer(host) as server, httpx.Client(base_url=server.url) as http:
        page = http.get("/sof/")
        script = http.get("/sof/static/monitor.js")
        run = http.post("/sof/v1/query", json={"query": "mounted"}).json()
        listed = http.get("/sof/v1/runs").json()["runs"]
    sof.state.sof.close()
    assert page.status_code == 200 and "SOF monitor" in page.text
    assert script.status_code == 200
    assert run["final_response"] == "host:mounted"
    assert [r["run_id"] for r in listed] == [run["run_id"]]


def _broken_legacy(query: str, **context: Any) -> str:
    raise ConnectionError("legacy backend unreachable")


def test_no_answer_from_either_path_is_still_a_run_that_says_why(
        served: Served, manager: SOFConfigManager) -> None:
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    server = served(legacy=_broken_legacy)
    with client(server) as http:
        answer = http.post("/v1/query", json={"query": "q", "plan": ["BrokenSkill"]})
    run = answer.json()
    assert answer.status_code == 200
    assert run["route"]["ok"] is False and run["final_response"] is None
    assert "legacy backend unreachable" in run["route"]["error"]
    assert "database is down" in run["route"]["error"]
    assert run["schema"] == "sof.run/1"


def test_shadow_disagreements_are_counted(served: Served, manager: SOFConfigManager) -> None:
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    server = served(shadow_sample_rate=1.0)
    with client(server) as http:
        for i in range(3):
            http.post("/v1/query", json={"query": f"q{i}", "plan": ["AnswerSkill"]})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # shadow runs finish in the background
            shadow = http.get("/v1/stats").json()["comparison"]["shadow"]
            if shadow["runs"] == 3:
                break
            time.sleep(0.05)
    assert shadow["runs"] == 3 and shadow["differences"] == 3  # "sof:q" vs "legacy:q"
