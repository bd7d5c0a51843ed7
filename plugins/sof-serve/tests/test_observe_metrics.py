"""Prometheus metrics from the `monitor` observer plugin, with no server: a real router and
engine loading the installed entry point, then the exposition parsed back."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from sof_core import SOFConfigManager

S = sys.modules["sof_serve_tests_observe_support"]  # loaded by conftest.py
fresh_singletons = S.fresh_singletons


def manager_at(tmp_path: Path, **changes: Any) -> SOFConfigManager:
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, **changes)
    return manager


def test_runs_by_path_fallbacks_skills_and_plans_add_up(tmp_path: Path) -> None:
    S.fresh_observers()
    manager = manager_at(tmp_path, sof_rollout_percentage=50)
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 5
    engine = S.engine_with_monitor(["FlakySkill"])
    router, legacy = S.make_router(manager, engine)
    results = [router.route(f"q{i}", user_id=f"user-{i}") for i in range(60)]
    assert all(r.ok for r in results)
    sof_runs = S.FlakySkill.calls
    assert 5 < sof_runs < 60  # both sides of the rollout and both outcomes happened
    parsed = S.samples()
    ok = S.value(parsed, "sof_queries_total", path="sof", status="ok")
    err = S.value(parsed, "sof_queries_total", path="sof", status="error")
    legacy_ok = S.value(parsed, "sof_queries_total", path="legacy", status="ok")
    assert (ok, err) == (5, sof_runs - 5)
    assert S.value(parsed, "sof_fallbacks_total", reason="failure") == err
    assert legacy_ok == legacy.calls == 60 - ok  # every query answered, counted once
    assert S.value(parsed, "sof_query_duration_seconds_count", path="sof") == sof_runs
    assert S.value(parsed, "sof_skill_runs_total", skill="FlakySkill", plugin="test-skills",
                   status="success") == 5
    assert S.value(parsed, "sof_skill_runs_total", skill="FlakySkill", plugin="test-skills",
                   status="failed") == err
    assert S.value(parsed, "sof_skill_duration_seconds_count", skill="FlakySkill") == sof_runs
    assert S.value(parsed, "sof_run_duration_seconds_count", plan="FlakySkill") == sof_runs
    assert S.value(parsed, "sof_query_plan_duration_seconds_count", plan="FlakySkill") == sof_runs
    assert S.value(parsed, "sof_runs_total", status="success") == 5
    assert S.total(parsed, "sof_run_errors_total") >= err
    assert S.value(parsed, "sof_planner_choices_total", planner="static") == sof_runs
    assert S.total(parsed, "sof_plan_cache_lookups_total") == sof_runs
    assert S.value(parsed, "sof_rollout_percentage") == 50
    assert S.value(parsed, "sof_enabled") == 1
    assert S.value(parsed, "process_resident_memory_bytes") > 0
    assert 0 < S.value(parsed, "sof_process_memory_percent") < 100


def test_rollout_gauge_follows_the_config_file(tmp_path: Path) -> None:
    S.fresh_observers()
    manager = manager_at(tmp_path, sof_rollout_percentage=10)
    router, _ = S.make_router(manager, S.engine_with_monitor(["AnswerSkill"]))
    router.route("hello", user_id="u")
    assert S.value(S.samples(), "sof_rollout_percentage") == 10
    manager.set_rollout_percentage(35)
    assert S.value(S.samples(), "sof_rollout_percentage") == 35


def test_a_scrape_before_any_query_reads_the_live_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh `sof serve` scraped by Prometheus before its first query (nobody opened the
    page either): the rollout, enabled and alert gauges come from the live config, not
    Prometheus's zeros and the built-in thresholds (issue 13)."""
    from sof_core.config import reset_sof_config_managers

    path = tmp_path / "host.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    reset_sof_config_managers()
    try:
        SOFConfigManager(path, environ={}).update_config(
            use_sof_framework=True, sof_rollout_percentage=100, auto_rollback=True,
            alert_error_rate=0.5, alert_memory_percent=0.0001)
        S.fresh_observers()
        parsed = S.samples()
        assert S.value(parsed, "sof_rollout_percentage") == 100
        assert S.value(parsed, "sof_enabled") == 1
        assert S.value(parsed, "sof_auto_rollback_enabled") == 1
        assert S.value(parsed, "sof_alert_threshold", alert="sof:error_rate") == 0.5
        assert S.value(parsed, "sof_alert_active", alert="process:memory_percent") == 1
    finally:
        reset_sof_config_managers()


def test_shadow_comparisons_are_counted(tmp_path: Path) -> None:
    from sof_core.routing.router import QueryRouter

    S.fresh_observers()
    manager = manager_at(tmp_path, sof_rollout_percentage=100)
    engine = S.engine_with_monitor(["AnswerSkill"])
    S.make_router(manager, engine)
    router = QueryRouter(engine, S.Legacy(), manager, shadow_sample_rate=1.0)
    for i in range(4):
        router.route(f"q{i}", user_id="u")
    router.flush_shadow(timeout=10)
    router.close()
    # sof answers "sof:q", legacy "legacy:q": every comparison differs
    assert S.value(S.samples(), "sof_shadow_runs_total", outcome="differs") == 4


def test_abandoned_and_quarantined_calls_are_counted(tmp_path: Path) -> None:
    S.fresh_observers()
    engine = S.make_engine(S.SKILLS, autoload=True, plugins_only=["monitor"],
                           total_timeout=None, max_hung_calls_per_skill=0)
    from sof_core import UIF

    report = engine.execute_plan(["HangingSkill"], UIF.for_query("slow"))
    assert report.status == "timeout"
    parsed = S.samples()
    assert S.value(parsed, "sof_skill_abandoned_total", skill="HangingSkill") == 1
    assert S.value(parsed, "sof_skill_quarantined_total", skill="HangingSkill") == 1
    assert S.value(parsed, "sof_alerts_raised_total", kind="skill_abandoned") == 1
    assert S.value(parsed, "sof_skill_runs_total", skill="HangingSkill", plugin="test-skills",
                   status="timeout") == 1
    engine.close()


def test_planner_fallbacks_and_cache_hits_from_the_report() -> None:
    """Planners are added concurrently: whatever ``report.planning`` holds is recorded and
    a report without it (an explicit plan) is tolerated."""
    from types import SimpleNamespace

    metrics, _ = S.fresh_observers()
    report = SimpleNamespace(status="success", errors=[], plan=["A"], duration=0.01,
                             planning={"planner": "rules", "cache_hit": True,
                                       "fallbacks": [{"planner": "llm", "to": "rules",
                                                      "reason": "timeout"}]})
    metrics.on_plan(report)
    metrics.on_plan(SimpleNamespace(status="success", errors=[], plan=["A"], duration=0.01))
    parsed = S.samples()
    assert S.value(parsed, "sof_planner_choices_total", planner="rules") == 1
    assert S.value(parsed, "sof_plan_cache_lookups_total", result="hit") == 1
    assert S.value(parsed, "sof_planner_fallbacks_total", planner="llm", to="rules") == 1
    assert S.value(parsed, "sof_runs_total", status="success") == 2


def test_a_router_on_an_engine_without_the_plugin_is_not_observed(tmp_path: Path) -> None:
    """Like any observer, the monitor sees only engines that loaded it."""
    from sof_core.routing.router import QueryRouter

    S.fresh_observers()
    manager = manager_at(tmp_path, sof_rollout_percentage=100)
    bare = S.make_engine(S.SKILLS, default_plan=["AnswerSkill"], total_timeout=None)
    S.make_router(manager, bare)
    assert QueryRouter(bare, S.Legacy(), manager).route("q", user_id="u").ok
    assert S.total(S.samples(), "sof_queries_total") == 0
    watched = S.engine_with_monitor(["AnswerSkill"])
    assert QueryRouter(watched, S.Legacy(), manager).route("q", user_id="u").ok
    assert S.value(S.samples(), "sof_queries_total", path="sof", status="ok") == 1


def _histogram(body: bytes, name: str, **labels: str) -> dict[tuple[str, str], float]:
    """The ``name`` histogram's samples for ``labels`` in an exposition, by (sample, le)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, s.labels.get("le", "")): s.value
            for f in text_string_to_metric_families(body.decode())
            for s in f.samples
            if s.name.startswith(name) and not s.name.endswith("_created")
            and all(s.labels.get(k) == v for k, v in labels.items())}


def test_skill_series_match_what_a_standard_histogram_would_expose() -> None:
    """The skills' series are tallied from the run's results; labels, buckets (a duration
    equal to a bound falls in that bound's bucket), counts and sums are Prometheus's."""
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    metrics, _ = S.fresh_observers()
    durations = [0.0005, 0.001, 0.02, 0.3, 7.0, 45.0]
    results = [SimpleNamespace(skill="A", plugin="p", status="success", duration=d)
               for d in durations]
    results.append(SimpleNamespace(skill="A", plugin="p", status="skipped", duration=0.0))
    results.append(SimpleNamespace(skill="B", plugin=None, status="failed", duration=0.002))
    metrics.on_plan(SimpleNamespace(status="partial", errors=["x"], plan=["A", "B"],
                                    duration=0.5, results=results))
    reference = CollectorRegistry()
    standard = Histogram("sof_skill_duration_seconds", "x", ["skill"],
                         buckets=metrics.skills._bounds, registry=reference)
    for d in durations:
        standard.labels("A").observe(d)

    assert (_histogram(metrics.render()[0], "sof_skill_duration_seconds", skill="A")
            == _histogram(generate_latest(reference), "sof_skill_duration_seconds", skill="A"))
    parsed = S.samples()
    assert S.value(parsed, "sof_skill_runs_total", skill="A", plugin="p", status="success") == 6
    assert S.value(parsed, "sof_skill_runs_total", skill="A", plugin="p", status="skipped") == 1
    assert S.value(parsed, "sof_skill_runs_total", skill="B", plugin="", status="failed") == 1
    assert S.value(parsed, "sof_skill_duration_seconds_count", skill="B") == 1


def test_results_are_tallied_without_a_scrape_so_memory_stays_bounded() -> None:
    from types import SimpleNamespace

    from sof_serve.observe import ledger
    from sof_serve.observe.metrics import TALLY_AT
    from sof_serve.observe.plugin import record_metrics

    S.fresh_observers()
    result = SimpleNamespace(skill="A", plugin="p", status="success", duration=0.01)
    for _ in range(TALLY_AT * 3):
        record_metrics(SimpleNamespace(status="success", errors=[], plan=["A"], duration=0.01,
                                       results=[result]))
        assert ledger.pending() <= TALLY_AT  # what the hooks keep until a scrape is bounded
    assert S.value(S.samples(), "sof_skill_runs_total", skill="A", plugin="p",
                   status="success") == TALLY_AT * 3


def test_runs_of_many_plans_are_tallied_within_bounds_without_a_scrape() -> None:
    """A client may send any plan: the runs waiting for a scrape are kept per (status, plan)
    and folded once more than ``TALLY_AT`` pairs wait, so nothing is lost and memory stays
    bounded; every run and every planner choice is counted."""
    from types import SimpleNamespace

    from sof_serve.observe import ledger
    from sof_serve.observe.metrics import MAX_PLAN_LABELS, OTHER_PLAN, TALLY_AT
    from sof_serve.observe.plugin import record_metrics

    S.fresh_observers()
    for i in range(TALLY_AT * 3):
        record_metrics(SimpleNamespace(status="success" if i % 3 else "partial",
                                       errors=[] if i % 3 else ["e1", "e2"], plan=[f"P{i}"],
                                       duration=0.01, planning={"planner": "rules"}))
        assert len(ledger.runs) <= TALLY_AT and ledger.pending() <= TALLY_AT
    parsed = S.samples()
    assert S.value(parsed, "sof_runs_total", status="success") == TALLY_AT * 2
    assert S.value(parsed, "sof_runs_total", status="partial") == TALLY_AT
    assert S.value(parsed, "sof_run_errors_total", status="partial") == TALLY_AT * 2
    assert S.value(parsed, "sof_planner_choices_total", planner="rules") == TALLY_AT * 3
    assert S.total(parsed, "sof_run_duration_seconds_count") == TALLY_AT * 3
    plans = {dict(labels)["plan"] for name, labels in parsed
             if name == "sof_run_duration_seconds_count"}
    assert len(plans) == MAX_PLAN_LABELS and OTHER_PLAN in plans


def test_run_latency_is_the_histogram_prometheus_client_would_give() -> None:
    """``sof_run_duration_seconds`` is tallied as runs end and exposed by a collector: its
    buckets, count and sum are what a prometheus-client ``Histogram`` observing the same
    runs exposes, whether the runs were folded together or told one by one."""
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry, Histogram, generate_latest
    from sof_serve.observe.plugin import record_metrics

    metrics, _ = S.fresh_observers()
    durations = [0.0005, 0.001, 0.0011, 0.02, 0.3, 4.0, 12.0, 31.0, 0.001]
    reference = CollectorRegistry()
    standard = Histogram("sof_run_duration_seconds", "x", ["plan"],
                         buckets=metrics.run_latency._bounds, registry=reference)
    for index, duration in enumerate(durations):
        report = SimpleNamespace(status="success", errors=[], plan=["A", "B"],
                                 duration=duration)
        if index % 2:
            metrics.on_plan(report)
        else:
            record_metrics(report)
        standard.labels("A,B").observe(duration)

    mine = _histogram(metrics.render()[0], "sof_run_duration_seconds", plan="A,B")
    assert mine == _histogram(generate_latest(reference), "sof_run_duration_seconds", plan="A,B")
    assert mine[("sof_run_duration_seconds_count", "")] == len(durations)


def test_the_monitor_observes_runs_not_each_skill() -> None:
    """Installing sof-serve must not add a hook call to every skill of every engine: the
    monitor reads the skills from the run's report (``sof_after_plan``)."""
    engine = S.engine_with_monitor(["AnswerSkill"])
    assert engine.plugins.observers("sof_after_skill") == []
    assert engine.plugins.observers("sof_after_plan")
    engine.close()


def test_runs_do_not_import_prometheus_or_opentelemetry_until_metrics_are_read() -> None:
    """A one-shot ``sof run`` loads the monitor too: it must not pay for prometheus-client
    (and the http.server it imports) or OpenTelemetry; what it saw is counted at the read."""
    import subprocess
    import textwrap

    code = textwrap.dedent("""
        import sys
        from sof_core import UIF, BaseSkillModule
        from sof_core.testing import make_engine

        class Hello(BaseSkillModule):
            skill_name = "Hello"
            skill_description = "Says hello."
            output_keys = ["final_response"]
            def execute(self, uif):
                uif.final_response = "hi"
                return uif

        engine = make_engine([Hello], autoload=True, plugins_only=["monitor"])
        for _ in range(3):
            assert engine.execute_plan(["Hello"], UIF(input_query="q")).status == "success"
        heavy = [m for m in ("prometheus_client", "opentelemetry", "http.server")
                 if m in sys.modules]
        assert not heavy, heavy
        from sof_serve.observe.metrics import render_latest
        body = render_latest()[0].decode()
        assert 'skill="Hello",status="success"} 3.0' in body, body
        assert 'sof_runs_total{status="success"} 3.0' in body, body
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_loading_the_monitor_leaves_the_router_for_the_first_router_and_still_sees_it() -> None:
    """Every ``sof`` command loads the monitor; most never route. Loading it imports neither
    the router (``sof_core.QueryRouter``, with the A/B metrics) nor the alert monitor; its
    route observer is registered all the same, so the very first query a router records
    reaches the monitor (here a legacy one, which runs no plan)."""
    import subprocess
    import textwrap

    code = textwrap.dedent("""
        import sys
        from sof_core import UIF, BaseSkillModule
        from sof_core.testing import make_engine

        class Answer(BaseSkillModule):
            skill_name = "Answer"
            skill_description = "Answers."
            required_inputs = ["input_query"]
            output_keys = ["final_response"]
            def execute(self, uif):
                uif.final_response = "sof:" + uif.input_query
                return uif

        engine = make_engine([Answer], autoload=True, plugins_only=["monitor"],
                             default_plan=["Answer"], planner="static")
        assert engine.plugins.records["monitor"].status == "loaded"
        assert engine.execute_plan(["Answer"], UIF(input_query="q")).status == "success"
        deferred = ["sof_core.routing.router", "sof_core.routing.metrics",
                    "sof_serve.observe.alerts"]
        loaded = [m for m in deferred if m in sys.modules]
        assert not loaded, loaded

        from sof_core import QueryRouter
        from sof_serve.observe import ledger, plugin
        from sof_core.routing import observers as module
        registered = [impl.function for impl in module._route_observers]
        assert registered == [plugin._on_route], registered
        ledger.clear()
        result = QueryRouter(engine, lambda query, **context: "legacy:" + query).route("hi")
        assert result.path == "legacy" and result.response == "legacy:hi", result
        assert [kind for kind, _ in ledger.drain()] == ["route"]
        plugin.install()  # idempotent, with the router imported
        registered = [impl.function for impl in module._route_observers]
        assert registered == [plugin._on_route], registered
        engine.close()
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_runs_results_are_tallied_as_it_ends_not_kept_until_a_scrape() -> None:
    """Keeping each run's result objects until a fold (up to 256 runs of them) made the
    garbage collector walk them again and again; their counts are taken at once."""
    import gc
    import weakref

    from sof_serve.observe import ledger
    from sof_serve.observe.plugin import record_metrics

    class Result:
        def __init__(self, skill: str, duration: float) -> None:
            self.skill, self.plugin, self.status, self.duration = skill, "p", "success", duration

    class Report:
        def __init__(self, results: list[Result]) -> None:
            self.status, self.errors, self.plan = "success", [], [r.skill for r in results]
            self.duration, self.results = 0.01, results

    S.fresh_observers()
    results = [Result("A", 0.002), Result("B", 0.3)]
    report = Report(results)
    alive = [weakref.ref(result) for result in results] + [weakref.ref(report)]
    record_metrics(report)
    del results, report
    gc.collect()
    assert not [ref for ref in alive if ref() is not None], "the ledger kept the run's results"
    assert ledger.pending() == 0  # the run itself is tallied too: no event waits for the fold
    parsed = S.samples()
    assert S.value(parsed, "sof_skill_runs_total", skill="B", plugin="p", status="success") == 1
    assert S.value(parsed, "sof_skill_duration_seconds_bucket", skill="B", le="0.25") == 0
    assert S.value(parsed, "sof_skill_duration_seconds_bucket", skill="B", le="0.5") == 1
    assert S.value(parsed, "sof_runs_total", status="success") == 1


def test_the_skill_tally_counts_every_result_whatever_its_path() -> None:
    """Successes from the plugin a skill's entry names take the short path; failures,
    skips and another plugin's results the long one; folds merge tallies. Whatever the
    mix, the counts are those of a plain tally of every result."""
    import random
    from bisect import bisect_left
    from types import SimpleNamespace

    from sof_serve.observe.ledger import BUCKETS, SkillTally

    rng = random.Random(5)
    statuses = ["success"] * 6 + ["failed", "skipped", "timeout"]
    expected_runs: dict[tuple[str, str, str], int] = {}
    expected_latency: dict[str, list[float]] = {}
    folded, pending = SkillTally(), SkillTally()
    for _ in range(300):
        run = []
        for _ in range(rng.randint(1, 6)):
            skill = rng.choice(["A", "B", "C"])
            plugin = rng.choice(["p", "p", "p", "q", None])
            status, duration = rng.choice(statuses), rng.choice([0.0004, 0.001, 0.3, 40.0])
            run.append(SimpleNamespace(skill=skill, plugin=plugin, status=status,
                                       duration=duration))
            key = (skill, plugin or "", status)
            expected_runs[key] = expected_runs.get(key, 0) + 1
            if status != "skipped":
                counts = expected_latency.setdefault(skill, [0.0] * (len(BUCKETS) + 2))
                counts[bisect_left(BUCKETS, duration)] += 1
                counts[-1] += duration
        pending.add(run)
        if rng.random() < 0.1:
            folded.merge(*pending.take())
    folded.merge(*pending.take())
    runs, latency = folded.snapshot()
    assert runs == expected_runs
    assert latency.keys() == expected_latency.keys()
    for skill, counts in latency.items():
        assert counts[:-1] == expected_latency[skill][:-1]
        assert counts[-1] == pytest.approx(expected_latency[skill][-1])
    assert pending.snapshot() == ({}, {})
