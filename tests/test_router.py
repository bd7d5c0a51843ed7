"""QueryRouter: SOF or legacy per the live config, fallback, rollback, shadow mode, alerts."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, hookimpl
from sof_core.config.manager import SOFConfigManager, reset_sof_config_managers
from sof_core.errors import ConfigError
from sof_core.execution.coordinator import CoordinatorEngine
from sof_core.routing.metrics import ABMetrics, AlertThresholds
from sof_core.routing.router import QueryRouter, RouteResult, legacy_response
from sof_core.testing import make_engine

# --- skills and a legacy pipeline -------------------------------------------------------------


class AnswerSkill(BaseSkillModule):
    skill_name = "AnswerSkill"
    skill_description = "Answers by echoing the query."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"sof:{uif.input_query}"
        return uif


class ContextSkill(BaseSkillModule):
    skill_name = "ContextSkill"
    skill_description = "Answers with who asked, to show the context reaches the UIF."
    required_inputs = ["input_query", "user_id", "user_context"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"{uif.user_id}:{uif.user_context.get('locale')}"
        return uif


class BrokenSkill(BaseSkillModule):
    skill_name = "BrokenSkill"
    skill_description = "Always raises."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        raise RuntimeError("database is down")


class SilentSkill(BaseSkillModule):
    skill_name = "SilentSkill"
    skill_description = "Succeeds without answering."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        return uif


class HangingSkill(BaseSkillModule):
    skill_name = "HangingSkill"
    skill_description = "Hangs far past its timeout."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    max_execution_time = 0.05

    def execute(self, uif: UIF) -> UIF:
        time.sleep(2)
        return uif


SKILLS = [AnswerSkill, ContextSkill, BrokenSkill, SilentSkill, HangingSkill]


class Legacy:
    """The host's old pipeline: answers and remembers what it was called with."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, query: str, **context: Any) -> str:
        with self.lock:
            self.calls.append((query, context))
        if self.fail:
            raise ConnectionError("legacy backend unreachable")
        return f"legacy:{query}"


class AlertSink:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, str, dict[str, Any]]] = []

    @hookimpl
    def sof_alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        self.alerts.append((kind, message, details))


def engine_for(plan: list[str], **config: Any) -> CoordinatorEngine:
    return make_engine(SKILLS, default_plan=plan, total_timeout=None, **config)


@pytest.fixture
def manager(tmp_path: Path) -> SOFConfigManager:
    """A manager on a private file, deaf to the outer environment, with SOF fully on."""
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    return manager


def make_router(
    manager: SOFConfigManager, plan: list[str] | None = None, **options: Any
) -> tuple[QueryRouter, Legacy]:
    legacy = options.pop("legacy", None) or Legacy()
    engine = options.pop("engine", None) or engine_for(plan or ["AnswerSkill"])
    # The router plans with the live config (issue 12): these tests run the engine's plan
    # (the static planner), unless a test chose another planner.
    live = manager.state().config
    if live is not None:
        planner = "static" if live.planner == "rules" else live.planner
        manager.update_config(planner=planner, default_plan=list(engine.config.default_plan))
    return QueryRouter(engine, legacy, manager, **options), legacy


# --- choosing a path --------------------------------------------------------------------------


def test_disabled_framework_answers_through_legacy(manager: SOFConfigManager) -> None:
    manager.disable_sof_framework()
    router, legacy = make_router(manager)
    result = router.route("hello", user_id="u1")
    assert (result.path, result.response, result.error) == ("legacy", "legacy:hello", None)
    assert legacy.calls == [("hello", {"user_id": "u1"})]


def test_enabled_framework_at_100_percent_answers_through_sof(manager: SOFConfigManager) -> None:
    router, legacy = make_router(manager)
    result = router.route("hello", session_id="s1")
    assert result.ok
    assert (result.path, result.response, result.fallback) == ("sof", "sof:hello", False)
    assert result.report is not None and result.report.status == "success"
    assert legacy.calls == []


def test_one_user_always_lands_on_the_same_side(manager: SOFConfigManager) -> None:
    manager.update_config(sof_rollout_percentage=50)
    router, _ = make_router(manager)
    for user in ("ann", "bob", "cy", "dee", "eve", "fay"):
        paths = {router.route(f"question {n}", user_id=user).path for n in range(5)}
        assert len(paths) == 1


def test_context_reaches_legacy_verbatim_and_sof_through_the_uif(
    manager: SOFConfigManager,
) -> None:
    router, legacy = make_router(manager, ["ContextSkill"])
    assert router.route("hi", user_id="u7", locale="de").response == "u7:de"
    manager.disable_sof_framework()
    router.route("hi", user_id="u7", locale="de")
    assert legacy.calls == [("hi", {"locale": "de", "user_id": "u7"})]


def test_numeric_user_and_session_ids_are_routed_and_reach_the_uif_as_text(
    manager: SOFConfigManager,
) -> None:
    # Before: the bucket used the number, then the UIF refused it ("user_id: Input should be
    # a valid string"), so every such query fell back to legacy, at 100 % too.
    router, legacy = make_router(manager, ["ContextSkill"])
    result = router.route("hi", user_id=5, locale="de")
    assert (result.path, result.response, result.fallback) == ("sof", "5:de", False)
    assert router.route("hi", session_id=7).path == "sof"
    assert router.route("hi", user_id=0, locale="x").response == "0:x"  # 0 is an id
    manager.update_config(sof_rollout_percentage=30)
    paths = [router.route("q", user_id=i).path for i in range(2000)]
    assert 25 <= 100 * paths.count("sof") / len(paths) <= 35
    assert all(r.fallback is False for r in (router.route("q", user_id=i) for i in range(50)))
    assert {router.route("q", user_id=i).path == "sof" for i in (3, "3")} in ({True}, {False})
    manager.disable_sof_framework()
    router.route("hi", user_id=5)
    assert legacy.calls[-1] == ("hi", {"user_id": 5})  # legacy gets the id as given


def test_a_legacy_pipeline_gets_only_the_keywords_it_takes(manager: SOFConfigManager) -> None:
    manager.disable_sof_framework()
    calls: list[tuple[Any, ...]] = []

    def query_only(query: str) -> str:
        calls.append((query,))
        return f"L:{query}"

    def with_user(question: str, user_id: str | None = None) -> str:
        calls.append((question, user_id))
        return f"U:{user_id}"

    only = QueryRouter(make_engine([AnswerSkill]), query_only, manager)
    result = only.route("q", user_id="u1", session_id="s1", locale="de")
    assert (result.path, result.response, result.error) == ("legacy", "L:q", None)
    named = QueryRouter(make_engine([AnswerSkill]), with_user, manager)
    assert named.route("q", user_id="u1", locale="de").response == "U:u1"
    assert calls == [("q",), ("q", "u1")]
    # a lambda taking the query only, as a host might write it
    assert QueryRouter(make_engine([AnswerSkill]), lambda q: "L:" + q,
                       manager).route("q", user_id="u").response == "L:q"


def test_the_legacy_pipeline_may_be_named_and_the_engine_left_to_the_router(
    manager: SOFConfigManager,
) -> None:
    manager.disable_sof_framework()
    legacy = Legacy()
    for router in (QueryRouter(legacy_pipeline=legacy, manager=manager),
                   QueryRouter(legacy, manager=manager)):
        assert isinstance(router.engine, CoordinatorEngine)  # the installed plugins
        assert router.route("q", user_id="u").response == "legacy:q"
        router.engine.close()
    engine = make_engine([AnswerSkill])
    assert QueryRouter(engine, legacy_pipeline=legacy, manager=manager).engine is engine
    with pytest.raises(TypeError, match="legacy pipeline"):
        QueryRouter(engine)
    with pytest.raises(TypeError, match="not both"):
        QueryRouter(engine, legacy, legacy_pipeline=legacy)


def test_config_changes_apply_on_the_next_query_without_a_restart(
    manager: SOFConfigManager, tmp_path: Path
) -> None:
    manager.update_config(sof_rollout_percentage=0)
    router, _ = make_router(manager)
    assert router.route("q", user_id="u").path == "legacy"
    # another manager (as another process would) raises the rollout on the same file
    SOFConfigManager(tmp_path / "config.json", environ={}).update_config(
        sof_rollout_percentage=100
    )
    assert router.route("q", user_id="u").path == "sof"


def test_the_planner_is_chosen_by_config(manager: SOFConfigManager) -> None:
    manager.update_config(planner="goal")
    engine = make_engine([AnswerSkill], total_timeout=None, default_plan=["Nothing"])
    router, _ = make_router(manager, engine=engine)
    result = router.route("q")
    assert (result.path, result.response) == ("sof", "sof:q")
    assert result.report is not None and result.report.plan == ["AnswerSkill"]


@pytest.mark.parametrize(
    ("answer", "text"),
    [("plain", "plain"), ({"response": "from dict"}, "from dict"),
     (type("Obj", (), {"response": "from attr"})(), "from attr"), (42, "42")],
)
def test_legacy_answers_may_be_strings_or_objects_with_a_response(answer: Any, text: str) -> None:
    assert legacy_response(answer) == text


# --- SOF failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "reason"),
    [(["BrokenSkill"], "failure"), (["SilentSkill"], "no_response"),
     (["HangingSkill"], "timeout"), (["NoSuchSkill"], "invalid_plan")],
)
def test_failed_sof_run_falls_back_to_legacy_with_the_reason(
    manager: SOFConfigManager, plan: list[str], reason: str
) -> None:
    router, legacy = make_router(manager, plan)
    result = router.route("q", user_id="u")
    assert (result.path, result.response, result.error) == ("legacy", "legacy:q", None)
    assert result.fallback and result.fallback_reason == reason
    assert result.sof_error
    assert len(legacy.calls) == 1
    sof = router.metrics.snapshot()["paths"]["sof"]
    assert sof["fallbacks"] == 1 and sof["fallback_reasons"] == {reason: 1}


def test_unknown_planner_falls_back_naming_the_planner(manager: SOFConfigManager) -> None:
    manager.update_config(planner="oracle")
    router, _ = make_router(manager)
    result = router.route("q")
    assert result.path == "legacy" and result.fallback_reason == "planner"
    assert "oracle" in (result.sof_error or "")


def test_engine_exception_falls_back(manager: SOFConfigManager) -> None:
    router, _ = make_router(manager)
    router.route("warm up")

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("out of memory")

    router.engine.execute_plan = explode  # type: ignore[method-assign]
    result = router.route("q")
    assert (result.path, result.fallback_reason) == ("legacy", "exception")
    assert "MemoryError" in (result.sof_error or "")


def test_without_fallback_the_sof_error_is_returned_not_raised(manager: SOFConfigManager) -> None:
    manager.update_config(fallback_to_legacy=False)
    router, legacy = make_router(manager, ["BrokenSkill"])
    result = router.route("q")
    assert isinstance(result, RouteResult)
    assert (result.path, result.response, result.fallback) == ("sof", None, False)
    assert result.error is not None and "database is down" in result.error
    assert result.report is not None and result.report.status == "failure"
    assert legacy.calls == []


def test_failing_legacy_after_a_fallback_reports_both_errors(manager: SOFConfigManager) -> None:
    router, _ = make_router(manager, ["BrokenSkill"], legacy=Legacy(fail=True))
    result = router.route("q")
    assert result.path == "legacy" and result.response is None and result.fallback
    assert "database is down" in (result.error or "")
    assert "legacy backend unreachable" in (result.error or "")


def test_a_legacy_pipeline_returning_nothing_is_an_error_saying_so(
    manager: SOFConfigManager,
) -> None:
    # it gave ok False with error None: nothing said why, and metrics counted no error
    manager.update_config(use_sof_framework=False)
    router = QueryRouter(make_router(manager)[0].engine, lambda query: None, manager)
    result = router.route("q")
    assert (result.path, result.response, result.ok) == ("legacy", None, False)
    assert result.error == "legacy pipeline returned no answer (None)"
    assert router.metrics.snapshot()["paths"]["legacy"]["errors"] == 1


# --- a broken config file ---------------------------------------------------------------------


def test_corrupt_config_file_is_survived_on_the_legacy_path(
    manager: SOFConfigManager, caplog: pytest.LogCaptureFixture
) -> None:
    router, _legacy = make_router(manager)
    manager.path.write_text('{"use_sof_framework": ')
    with caplog.at_level(logging.WARNING):
        result = router.route("q")
    assert (result.path, result.response, result.fallback_reason) == ("legacy", "legacy:q", "config")
    assert "corrupt" in (result.sof_error or "")
    assert "unusable" in caplog.text and str(manager.path) in caplog.text


def test_queries_answered_while_the_config_is_broken_are_counted(
    manager: SOFConfigManager,
) -> None:
    """Issue 4's A/B metrics count every query: one answered by legacy because the config
    could not be read is a legacy query and a fallback for "config" (not a SOF error)."""
    router, _legacy = make_router(manager)
    manager.path.write_text("not json")
    for _ in range(3):
        router.route("q")
    paths = router.metrics.snapshot()["paths"]
    assert paths["legacy"]["count"] == 3 and paths["legacy"]["fallbacks"] == 3
    assert paths["legacy"]["fallback_reasons"] == {"config": 3}
    assert paths["sof"]["count"] == 0 and paths["sof"]["errors"] == 0


def test_corrupt_config_without_fallback_is_an_error_result(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("not json")
    manager = SOFConfigManager(path, environ={"SOF_FALLBACK_TO_LEGACY": "false"})
    router, legacy = make_router(manager)
    result = router.route("q")
    assert (result.path, result.response) == ("none", None)
    assert "corrupt" in (result.error or "")
    assert legacy.calls == []


# --- rollback under load ----------------------------------------------------------------------


def test_rollback_applies_to_every_query_that_starts_after_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    reset_sof_config_managers()
    # the router has its own manager; the rollback goes through the process-wide one
    router_manager = SOFConfigManager(path)
    router_manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    router, _ = make_router(router_manager)
    rolled_back = threading.Event()
    stop = threading.Event()
    seen: list[tuple[bool, str]] = []
    lock = threading.Lock()
    sof_answers = threading.Semaphore(0)

    def hammer(worker: int) -> None:
        n = 0
        while not stop.is_set():
            after = rolled_back.is_set()
            result = router.route(f"q{n}", session_id=f"{worker}-{n}")
            with lock:
                seen.append((after, result.path))
            if result.path == "sof":
                sof_answers.release()
            n += 1

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(30):  # SOF is really serving before the rollback
            assert sof_answers.acquire(timeout=30)
        from sof_core.config import disable_sof_framework

        disable_sof_framework()
        rolled_back.set()
        deadline = time.monotonic() + 30
        while sum(after for after, _ in list(seen)) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        reset_sof_config_managers()
    after_paths = [path for after, path in seen if after]
    assert len(after_paths) >= 200
    assert set(after_paths) == {"legacy"}
    assert any(path == "sof" for after, path in seen if not after)


# --- metrics, shadow mode, alerts -------------------------------------------------------------


def test_metrics_count_each_path(manager: SOFConfigManager) -> None:
    manager.update_config(sof_rollout_percentage=50)
    router, _ = make_router(manager)
    results = [router.route("q", user_id=f"user-{n}") for n in range(200)]
    snap = router.metrics.snapshot()["paths"]
    assert snap["sof"]["count"] == sum(r.path == "sof" for r in results)
    assert snap["legacy"]["count"] == sum(r.path == "legacy" for r in results)
    assert snap["sof"]["count"] + snap["legacy"]["count"] == 200
    assert snap["sof"]["errors"] == 0
    assert snap["sof"]["latency_ms"]["samples"] == snap["sof"]["count"]
    assert snap["sof"]["skill_runs"] == snap["sof"]["count"]


def test_metrics_are_not_collected_when_disabled_in_config(manager: SOFConfigManager) -> None:
    manager.update_config(enable_execution_metrics=False)
    router, _ = make_router(manager)
    router.route("q")
    assert router.metrics.snapshot()["paths"]["sof"]["count"] == 0


def test_shadow_mode_compares_both_paths_and_the_user_sees_the_primary(
    manager: SOFConfigManager,
) -> None:
    manager.update_config(sof_rollout_percentage=50)
    metrics = ABMetrics(max_examples=3)
    router, legacy = make_router(manager, metrics=metrics, shadow_sample_rate=1.0,
                                 max_shadow_in_flight=20)
    results = [router.route(f"q{n}", user_id=f"user-{n}") for n in range(20)]
    router.flush_shadow(timeout=30)
    router.close()
    for n, result in enumerate(results):
        assert result.response == f"{result.path}:q{n}"  # the primary's own answer
    shadow = metrics.snapshot()["shadow"]
    assert shadow["runs"] == 20 and shadow["differences"] == 20
    assert len(shadow["examples"]) == 3  # bounded
    for example in shadow["examples"]:
        query = example["query"]
        assert {example["primary_response"], example["shadow_response"]} == {
            f"sof:{query}", f"legacy:{query}"
        }
    assert len(legacy.calls) == 20  # each query ran legacy once: as primary or as shadow


def test_shadow_mode_counts_no_difference_when_answers_agree(manager: SOFConfigManager) -> None:
    agreeing = lambda query, **context: f"sof:{query}"  # noqa: E731
    router, _ = make_router(manager, legacy=agreeing, shadow_sample_rate=1.0)
    for n in range(5):
        router.route(f"q{n}")
    router.flush_shadow(timeout=30)
    router.close()
    shadow = router.metrics.snapshot()["shadow"]
    assert (shadow["runs"], shadow["differences"]) == (5, 0)


def test_shadow_mode_never_runs_sof_while_the_framework_is_disabled(
    manager: SOFConfigManager,
) -> None:
    manager.disable_sof_framework()
    router, _ = make_router(manager, shadow_sample_rate=1.0)
    router.route("q")
    router.flush_shadow(timeout=30)
    router.close()
    assert router.metrics.snapshot()["shadow"]["runs"] == 0


def test_shadow_runs_beyond_the_in_flight_bound_are_dropped_and_counted(
    manager: SOFConfigManager,
) -> None:
    release = threading.Event()

    def slow_legacy(query: str, **context: Any) -> str:
        release.wait(30)
        return "legacy"

    router, _ = make_router(manager, legacy=slow_legacy, shadow_sample_rate=1.0,
                            max_shadow_in_flight=1)
    for n in range(5):
        assert router.route(f"q{n}").path == "sof"  # the user never waits for the shadow
    release.set()
    router.flush_shadow(timeout=30)
    router.close()
    shadow = router.metrics.snapshot()["shadow"]
    assert (shadow["runs"], shadow["dropped"]) == (1, 4)


def test_shadow_sample_rate_is_validated(manager: SOFConfigManager) -> None:
    with pytest.raises(ConfigError) as info:
        make_router(manager, shadow_sample_rate=1.5)
    assert info.value.key == "shadow_sample_rate"


def test_crossing_error_and_skill_failure_thresholds_raises_sof_alert_once(
    manager: SOFConfigManager,
) -> None:
    sink = AlertSink()
    engine = make_engine(SKILLS, plugins=[("alerts", sink)], default_plan=["BrokenSkill"],
                         total_timeout=None)
    metrics = ABMetrics(thresholds=AlertThresholds(min_samples=5, window=50))
    router, _ = make_router(manager, engine=engine, metrics=metrics)
    for n in range(12):
        assert router.route(f"q{n}").response == f"legacy:q{n}"
    ours = [(kind, details) for kind, _, details in sink.alerts if kind != "skill_failed"]
    assert sorted(kind for kind, _ in ours) == ["error_rate", "skill_failure_rate"]
    assert all(details["path"] == "sof" and details["samples"] == 5 for _, details in ours)
    assert metrics.snapshot()["alerts"]["active"] == ["sof:error_rate", "sof:skill_failure_rate"]


def test_a_hung_shadow_call_does_not_keep_the_process_from_exiting(tmp_path: Path) -> None:
    """The shadow side runs the host's legacy pipeline, which has no timeout: its threads
    are daemons, so a legacy call that never returns cannot hold the interpreter at exit
    (a ThreadPoolExecutor's workers are joined there, and the process hung)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import time
        from sof_core import UIF, BaseSkillModule
        from sof_core.config.manager import SOFConfigManager
        from sof_core.routing.router import QueryRouter
        from sof_core.testing import make_engine

        class Answer(BaseSkillModule):
            skill_name = "ShadowAnswerSkill"
            skill_description = "Answers at once."
            output_keys = ["final_response"]
            def execute(self, uif):
                uif.final_response = "sof"
                return uif

        def legacy(query, **context):
            time.sleep(600)  # hangs: only ever reached as the shadow here
            return "legacy"

        manager = SOFConfigManager({str(tmp_path / "config.json")!r}, environ={{}})
        manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                              planner="static", default_plan=["ShadowAnswerSkill"])
        engine = make_engine([Answer], default_plan=["ShadowAnswerSkill"])
        router = QueryRouter(engine, legacy, manager, shadow_sample_rate=1.0)
        result = router.route("q", user_id="u")
        assert result.path == "sof" and result.response == "sof", result
        time.sleep(0.2)  # the shadow call is under way
        router.close(timeout=0.1)
        print("answered", flush=True)
    """)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and "answered" in done.stdout, done.stderr[-2000:]
    assert time.monotonic() - started < 60  # a joined shadow thread would take 600 s


# --- route observers: bounded like the engine's observers --------------------------------------


def test_a_hung_route_observer_does_not_hold_the_query(manager: SOFConfigManager,
                                                      within: Any) -> None:
    """Before: route observers were called in the query's thread with no bound, so one that
    hung (a push to a metrics server that stopped answering) held every routed query."""
    from sof_core import add_route_observer, inline_observer, remove_route_observer

    release = threading.Event()
    seen: list[tuple[str, str]] = []

    def hangs(router: Any, path: str, latency: float, details: dict[str, Any]) -> None:
        seen.append(("hangs", path))
        release.wait(60)

    @inline_observer
    def records(router: Any, path: str, latency: float, details: dict[str, Any]) -> None:
        seen.append(("records", threading.current_thread().name))

    engine = engine_for(["AnswerSkill"], observer_timeout=0.3)
    router, _ = make_router(manager, engine=engine)
    add_route_observer(hangs)
    add_route_observer(records)
    try:
        def route_two() -> tuple[list[Any], str]:
            return [router.route(f"q{i}") for i in range(2)], threading.current_thread().name

        results, thread = within(route_two, what="routed queries")
        assert [r.response for r in results] == ["sof:q0", "sof:q1"]
        assert seen == [("hangs", "sof"), ("records", thread), ("records", thread)]
        assert engine.plugins.observer_timeouts == 1  # then skipped while still hung
        assert engine.stats()["hung_observers"] == [f"{__name__}.hangs"]
    finally:
        remove_route_observer(hangs)
        remove_route_observer(records)
        release.set()
