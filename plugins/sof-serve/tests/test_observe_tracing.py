"""OpenTelemetry spans per run and per skill, caught with the SDK's in-memory exporter."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sof_serve.observe import tracing

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

S = sys.modules["sof_serve_tests_observe_support"]  # loaded by conftest.py
fresh_singletons = S.fresh_singletons


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.set_tracer_provider(provider)
    yield memory
    tracing.set_tracer_provider(None)
    provider.shutdown()


def test_a_run_and_each_skill_get_spans_with_their_attributes(
        exporter: InMemorySpanExporter) -> None:
    S.fresh_observers()
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, None
    engine = S.engine_with_monitor(["FlakySkill"])
    report = engine.execute_plan(["FlakySkill"], UIF.for_query("hello"))
    assert report.status == "success"
    spans = exporter.get_finished_spans()
    runs = [s for s in spans if s.name == "sof.run"]
    skills = [s for s in spans if s.name == "sof.skill"]
    assert len(runs) == 1 and len(skills) == 1
    run, skill = runs[0], skills[0]
    assert skill.parent is not None and skill.parent.span_id == run.context.span_id
    assert skill.context.trace_id == run.context.trace_id
    assert dict(skill.attributes or {}) == {"skill": "FlakySkill", "plugin": "test-skills",
                                            "stage": 0, "status": "success", "attempts": 1}
    assert (run.attributes or {})["status"] == "success"
    assert run.start_time is not None and skill.start_time is not None
    assert run.start_time <= skill.start_time <= (skill.end_time or 0) <= (run.end_time or 0)
    engine.close()


def test_a_failed_skill_marks_its_span_and_the_run_as_errors(
        exporter: InMemorySpanExporter) -> None:
    S.fresh_observers()
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 0
    engine = S.engine_with_monitor(["FlakySkill"])
    report = engine.execute_plan(["FlakySkill"], UIF.for_query("hello"))
    assert report.status == "failure"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["sof.skill"].status.status_code is StatusCode.ERROR
    assert "backend is down" in (spans["sof.skill"].status.description or "")
    assert (spans["sof.skill"].attributes or {})["status"] == "failed"
    assert spans["sof.run"].status.status_code is StatusCode.ERROR
    engine.close()



def test_a_query_run_in_segments_is_one_run_in_metrics_and_traces(
        exporter: InMemorySpanExporter, segmented_skills: list[type[BaseSkillModule]]) -> None:
    """``run_query`` runs Find first (Answer requires its output), then Answer: two engine
    runs, one query: one ``sof.run`` span holding both skills, ``sof_runs_total`` + 1."""
    S.fresh_observers()
    engine = make_engine(segmented_skills, autoload=True, plugins_only=["monitor"],
                         default_plan=["Find", "Answer"], planner="static", total_timeout=None)
    report = engine.run_query("anything")
    assert report.status == "success" and [r.skill for r in report.results] == ["Find", "Answer"]
    spans = exporter.get_finished_spans()
    runs = [s for s in spans if s.name == "sof.run"]
    assert len(runs) == 1
    assert (runs[0].attributes or {})["sof.plan"] == "Find,Answer"
    skills = [s for s in spans if s.name == "sof.skill"]
    assert sorted((s.attributes or {})["skill"] for s in skills) == ["Answer", "Find"]
    assert all(s.parent is not None and s.parent.span_id == runs[0].context.span_id
               for s in skills)
    parsed = S.samples()
    assert S.value(parsed, "sof_runs_total", status="success") == 1
    assert S.value(parsed, "sof_run_duration_seconds_count", plan="Find,Answer") == 1
    engine.close()
