"""Claims of docs/api.md's "Plugins", "Running" and "Writing an executor" sections that no
other test checked, each checked here against the real engine with skills defined in this
file (each test quotes the claim it checks).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import math
import pickle
import threading
import time
from typing import Any

import networkx as nx
import pytest

import sof_core
from sof_core import (
    UIF,
    BaseSkillModule,
    CoordinatorEngine,
    ExecutionReport,
    Outcome,
    PluginManager,
    PluginRecord,
    SOFConfig,
    ValidationProblem,
    call_payload,
    check_returned,
    pack_call,
    replay_changes,
    run_skill_call,
    skill_view,
)
from sof_core import errors as E
from sof_core.testing import make_engine

# --- skills ---------------------------------------------------------------------------------


class Fetch(BaseSkillModule):
    skill_name = "Fetch"
    skill_description = "fetches passages"
    required_inputs = ["input_query"]
    output_keys = ["passages"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["passages"] = [uif.input_query]
        return uif


class Count(BaseSkillModule):
    skill_name = "Count"
    skill_description = "counts the query's words"
    required_inputs = ["input_query"]
    output_keys = ["words"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["words"] = len(uif.input_query.split())
        return uif


class Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers from passages"
    required_inputs = ["passages"]
    optional_inputs = ["words"]
    output_keys = ["final_response"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "answer: " + uif.intermediate_data["passages"][0]
        return uif


class PingA(BaseSkillModule):
    skill_name = "PingA"
    skill_description = "half of a cycle"
    required_inputs = ["pong"]
    output_keys = ["ping"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        return uif


class PongB(BaseSkillModule):
    skill_name = "PongB"
    skill_description = "the other half of a cycle"
    required_inputs = ["ping"]
    output_keys = ["pong"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        return uif


class Sneaky(BaseSkillModule):
    skill_name = "Sneaky"
    skill_description = "writes a key it never declared"
    required_inputs = ["input_query"]
    output_keys = ["declared"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["undeclared"] = 1
        return uif


class Peeks(BaseSkillModule):
    skill_name = "Peeks"
    skill_description = "reads a key it never declared"
    required_inputs = ["input_query"]
    output_keys = ["seen"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["seen"] = uif.intermediate_data["secret"]
        return uif


class SetsError(BaseSkillModule):
    skill_name = "SetsError"
    skill_description = "reports its failure through set_error"
    required_inputs = ["input_query"]
    output_keys = ["never"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.set_error("could not do it")
        return uif


def _keyword_only(function: Any) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


# --- api.md: Plugins ------------------------------------------------------------------------


def test_hookimpl_and_hookspec_are_pluggy_markers_of_project_sof() -> None:
    # "`hookimpl`, `hookspec` — pluggy markers of project `sof`."
    import pluggy

    assert isinstance(sof_core.hookimpl, pluggy.HookimplMarker)
    assert isinstance(sof_core.hookspec, pluggy.HookspecMarker)
    assert sof_core.hookimpl.project_name == sof_core.hookspec.project_name == "sof"


def test_plugin_manager_config_defaults_to_none() -> None:
    # "`PluginManager(config=None)`"
    parameter = inspect.signature(PluginManager).parameters["config"]
    assert parameter.default is None
    assert next(iter(inspect.signature(PluginManager).parameters)) == "config"


def test_load_registers_the_builtins_and_returns_the_manager() -> None:
    # "`.load()` registers built-ins and every allowed `sof.plugins` entry point"
    manager = PluginManager(SOFConfig(plugins_autoload=False))
    assert manager.load() is manager
    builtins = {n for n, r in manager.records.items() if r.source == "builtin"}
    assert {"sof-executors", "sof-planners"} <= builtins
    assert all(manager.records[n].status == "loaded" for n in builtins)
    assert {"sequential", "threads", "asyncio"} <= set(manager.registry.components("executors"))


def test_plugin_record_has_the_documented_fields() -> None:
    # "`.records` maps names to `PluginRecord` (`name`, `distribution`, `version`, `module`,
    # `source`, `status`, `error`, `error_type`, `import_time_ms`, `hooks`, `provides`,
    # `offered`, `conflicts`, `warnings`"
    documented = {"name", "distribution", "version", "module", "source", "status", "error",
                  "error_type", "import_time_ms", "hooks", "provides", "offered", "conflicts",
                  "warnings"}
    assert documented <= {f.name for f in dataclasses.fields(PluginRecord)}

    class Skills:
        @sof_core.hookimpl
        def sof_register_skills(self) -> list[Any]:
            return [Fetch]

    engine = make_engine()
    record = engine.plugins.register(Skills(), name="fetching")
    assert engine.plugins.records["fetching"] is record
    assert (record.name, record.source, record.status) == ("fetching", "code", "loaded")
    assert record.hooks == ["sof_register_skills"]
    assert record.provides == {"skills": ["Fetch"]} and record.offered == ["Fetch"]
    assert record.error is None and record.error_type is None
    assert set(record.to_dict()) >= documented


def test_notify_calls_observers_in_the_calling_thread_without_a_bound() -> None:
    # "`.notify(hook, **kwargs)` calls observers safely, in the calling thread, without a
    # bound" ... "`.observer_errors` ... count observer calls that raised"
    seen: list[tuple[str, str]] = []

    class Slow:
        @sof_core.hookimpl
        def sof_alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
            time.sleep(0.15)  # longer than observer_timeout: notify waits anyway
            seen.append((threading.current_thread().name, message))

    class Raising:
        @sof_core.hookimpl
        def sof_alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
            raise RuntimeError("observer broke")

    engine = make_engine(observer_timeout=0.02)
    engine.plugins.register(Slow(), name="slow")
    engine.plugins.register(Raising(), name="raising")
    before_errors = engine.plugins.observer_errors
    before_timeouts = engine.plugins.observer_timeouts
    engine.plugins.notify("sof_alert", kind="k", message="hello", details={})  # no raise
    assert seen == [(threading.current_thread().name, "hello")]
    assert engine.plugins.observer_errors == before_errors + 1
    assert engine.plugins.observer_timeouts == before_timeouts  # no bound: nothing given up


def test_overlay_takes_the_config_given_else_the_managers() -> None:
    # "`.overlay(config=None)` returns a manager layered over this one ..., whose `.parent`
    # is this one."
    manager = PluginManager(SOFConfig(plugins_autoload=False, skill_timeout=4)).load()
    assert manager.overlay().config == manager.config
    own = SOFConfig(plugins_autoload=False, skill_timeout=9)
    overlay = manager.overlay(own)
    assert overlay.parent is manager and overlay.config.skill_timeout == 9
    overlay.register_skills([Fetch], "mine")
    assert "Fetch" in overlay.registry and "Fetch" not in manager.registry


def test_registry_reading_methods() -> None:
    # "`Registry` — `skill(name)`, `skills()`, `skill_names()`, `components(kind)`,
    # `component(kind, name)`, `version`"
    engine = make_engine()
    registry = engine.registry
    version = registry.version
    assert registry.skill("Fetch") is None
    engine.register_skills([Fetch, Answer], plugin_name="mine")
    assert registry.version != version  # moves on a change
    entry = registry.skill("Fetch")
    assert entry is not None and entry.plugin == "mine" and entry.spec.name == "Fetch"
    assert [e.spec.name for e in registry.skills()] == ["Answer", "Fetch"]  # sorted
    assert registry.skill_names() == ["Answer", "Fetch"]
    executors = registry.components("executors")
    assert "threads" in executors
    threads = registry.component("executors", "threads")
    assert threads is not None and threads.name == "threads"
    assert registry.component("executors", "no-such-executor") is None


def test_registry_providers_and_contested_for_names_in_code() -> None:
    # "`providers(name)` → every plugin offering a name"; "`contested()` → `{skill:
    # [candidate plugins]}` for names several installed plugins register"
    engine = make_engine([Fetch])
    assert engine.registry.providers("Fetch") == ["test-skills"]
    assert engine.registry.providers("Nothing") == []
    assert engine.registry.contested() == {}


def test_failed_plugin_has_plugin_error_and_skills() -> None:
    # "`failures()` → plugins that failed to load (`FailedPlugin(plugin, error, skills)`)."
    from sof_core.plugins import FailedPlugin

    assert [f.name for f in dataclasses.fields(FailedPlugin)] == ["plugin", "error", "skills"]

    class Half:
        @sof_core.hookimpl
        def sof_register_skills(self) -> list[Any]:
            return [Fetch, object()]  # the second is no skill: the plugin fails

    engine = make_engine()
    engine.plugins.register(Half(), name="half")
    (failure,) = [f for f in engine.registry.failures() if f.plugin == "half"]
    assert failure.error and failure.skills is not None and "Fetch" in failure.skills
    assert "Fetch" not in engine.registry  # nothing of it registered


def test_get_plugin_manager_is_the_process_wide_loaded_manager() -> None:
    # "`sof_core.plugins.get_plugin_manager()` — the process-wide, lazily loaded manager."
    from sof_core.plugins import get_plugin_manager

    first = get_plugin_manager()
    assert get_plugin_manager() is first
    assert first.records["sof-executors"].status == "loaded"  # loaded when handed out
    assert CoordinatorEngine().plugins.parent is first


# --- api.md: Running ------------------------------------------------------------------------


def test_engine_signature_and_keyword_only_run_arguments() -> None:
    # "`CoordinatorEngine(plugins=None, config=None, **settings)` (a `*` in a signature: the
    # parameters after it are keyword-only)"
    parameters = inspect.signature(CoordinatorEngine).parameters
    assert [(n, p.default) for n, p in list(parameters.items())[:2]] == [
        ("plugins", None), ("config", None)]
    assert parameters["settings"].kind is inspect.Parameter.VAR_KEYWORD
    # "`execute_plan(plan, uif, *, executor=None)`", "`aexecute_plan(plan, uif, *,
    # executor=None)`"
    assert _keyword_only(CoordinatorEngine.execute_plan) == {"executor": None}
    assert _keyword_only(CoordinatorEngine.aexecute_plan) == {"executor": None}
    # "`run_query(query, plan=None, *, goal=None, executor=None, include_optional=False,
    # prefer=None, **uif_fields)`"; "`arun_query(...)` (the same arguments)"
    run_query = inspect.signature(CoordinatorEngine.run_query).parameters
    assert run_query["plan"].default is None
    assert _keyword_only(CoordinatorEngine.run_query) == {
        "goal": None, "executor": None, "include_optional": False, "prefer": None}
    assert run_query["uif_fields"].kind is inspect.Parameter.VAR_KEYWORD
    assert (inspect.signature(CoordinatorEngine.arun_query).parameters.keys()
            == run_query.keys())
    # "`run_planned(planned, uif, *, config=None, executor=None)`"; "`arun_planned(...)`"
    for method in (CoordinatorEngine.run_planned, CoordinatorEngine.arun_planned):
        assert _keyword_only(method) == {"config": None, "executor": None}
    # "`resolve_goal(goals, *, available=(), include_optional=False, prefer=None)`"
    assert _keyword_only(CoordinatorEngine.resolve_goal) == {
        "available": (), "include_optional": False, "prefer": None}
    # "`register_skill(skill, plugin_name=None)` / `register_skills(skills,
    # plugin_name=None)`"; "`build_graph(plan=None)`"; "`refresh_config(config=None)`"
    assert inspect.signature(CoordinatorEngine.register_skill).parameters[
        "plugin_name"].default is None
    assert inspect.signature(CoordinatorEngine.register_skills).parameters[
        "plugin_name"].default is None
    assert inspect.signature(CoordinatorEngine.build_graph).parameters["plan"].default is None
    assert inspect.signature(CoordinatorEngine.refresh_config).parameters[
        "config"].default is None


def test_planning_plan_signature_and_result() -> None:
    # "`planning.plan(query, *, config=None, profile=None, planner=None, use_cache=True)
    # -> PlanResult` — the plan a planner makes for `query` (cached; `sof plan`), without
    # running it; `stats()["planning"]` counts plans ..."
    from sof_core.planning import PlanResult

    engine = make_engine([Fetch, Answer])
    assert _keyword_only(engine.planning.plan) == {
        "config": None, "profile": None, "planner": None, "use_cache": True}
    ran: list[str] = []
    assert engine.plugins.register(_AfterSkill(ran), name="watch").status == "loaded"
    planned = engine.planning.plan("what is SOF")
    assert isinstance(planned, PlanResult) and ran == []  # planned, not run
    assert "planning" in engine.stats()


class _AfterSkill:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @sof_core.hookimpl
    def sof_after_skill(self, skill: Any, result: Any) -> None:
        self.seen.append(skill.name)


def test_refresh_config_takes_the_config_given_and_returns_it() -> None:
    # "`refresh_config(config=None) -> SOFConfig` takes it as it is now (the one given, or
    # read then ...)"
    engine = CoordinatorEngine()
    try:
        assert engine.follows_host_config is True
        given = engine.config.model_copy(update={"skill_timeout": 3.5})
        assert engine.refresh_config(given) == given
        assert engine.config.skill_timeout == 3.5
        assert isinstance(engine.refresh_config(), SOFConfig)
    finally:
        engine.close()


def test_validate_plan_gives_validation_problems_and_compile_is_cached() -> None:
    # "`validate_plan(plan) -> list[ValidationProblem]`; `compile(plan) -> CompiledPlan`
    # (cached)"
    from sof_core.graph import CompiledPlan

    engine = make_engine([Fetch, Answer])
    (problem,) = engine.validate_plan(["Answer"])
    assert isinstance(problem, ValidationProblem) and "passages" in str(problem)
    assert engine.validate_plan(["Fetch", "Answer"]) == []
    compiled = engine.compile(["Fetch", "Answer"])
    assert isinstance(compiled, CompiledPlan)
    assert engine.compile(["Fetch", "Answer"]) is compiled


def test_build_graph_defaults_to_default_plan_and_keeps_cycles() -> None:
    # "`build_graph(plan=None) -> networkx.DiGraph` — the plan's DAG (default:
    # `default_plan`) ...; a fresh copy each call, cycles included (for drawing or
    # inspecting)"
    engine = make_engine([Fetch, Answer, PingA, PongB], default_plan=["Fetch", "Answer"])
    graph = engine.build_graph()
    assert set(graph.nodes) == {"Fetch", "Answer"}
    assert graph.edges["Fetch", "Answer"]["keys"] == ["passages"]
    assert engine.build_graph() is not graph
    cyclic = engine.build_graph(["PingA", "PongB"])
    assert set(cyclic.edges) == {("PingA", "PongB"), ("PongB", "PingA")}
    assert not nx.is_directed_acyclic_graph(cyclic)


def test_resolve_goal_counts_available_keys_as_given() -> None:
    # "keys in `available` count as given"
    engine = make_engine([Fetch, Answer])
    assert engine.resolve_goal("final_response") == ["Fetch", "Answer"]
    assert engine.resolve_goal("final_response", available=["passages"]) == ["Answer"]


def test_register_skill_failure_changes_nothing() -> None:
    # "`register_skill(skill, plugin_name=None)` ... raises `PluginConflictError`,
    # `SkillDefinitionError` or `PluginHookError` and then changes nothing"
    engine = make_engine([Fetch])
    names, version = engine.registry.skill_names(), engine.registry.version
    with pytest.raises(E.PluginConflictError):
        engine.register_skills([Count], plugin_name="test-skills")  # name in use
    with pytest.raises(E.PluginHookError):
        engine.register_skills([Count, object()], plugin_name="mixed")
    assert engine.registry.skill_names() == names == ["Fetch"]
    assert engine.registry.version == version
    assert "mixed" not in engine.plugins.records


def test_engine_registry_and_plugins_are_its_own_layer() -> None:
    # "`registry` — this engine's registry (its own registrations over the installed
    # plugins')"; "`plugins` — this engine's `PluginManager` (for a default engine, an
    # overlay of the shared one)"
    first, second = CoordinatorEngine(), CoordinatorEngine()
    try:
        first.register_skill(Fetch, plugin_name="first-only")
        assert "Fetch" in first.registry and "Fetch" not in second.registry
        assert first.registry is first.plugins.registry
        assert first.plugins.parent is second.plugins.parent is not None
        assert "threads" in first.registry.components("executors")  # the installed ones'
    finally:
        first.close()
        second.close()


def test_engine_executor_unknown_name_is_a_config_error() -> None:
    # "`executor(name)` — an executor from the registry"
    engine = make_engine()
    assert engine.executor("sequential").name == "sequential"
    assert engine.executor().name == engine.config.executor
    with pytest.raises(E.ConfigError, match="no-such"):
        engine.executor("no-such")


def test_with_block_closes_the_engine_and_it_stays_usable() -> None:
    # "`with CoordinatorEngine() as engine:` closes it at the end of the block"; "the engine
    # stays usable"
    from sof_core.execution.coordinator import CLOSE_WAIT

    assert CLOSE_WAIT == 0.25
    engine = make_engine([Fetch, Count], executor="threads")
    before = set(threading.enumerate())
    with engine as entered:
        assert entered is engine
        assert engine.execute_plan(["Fetch", "Count"], UIF.for_query("a b")).status == "success"
        started = {t for t in set(threading.enumerate()) - before
                   if t.name.startswith(("sof-run", "sof-step"))}
        assert engine.stats()["threads"]["steps"]["live"] >= 1 and started
    threads = engine.stats()["threads"]
    assert all(pool["live"] == 0 for pool in threads.values()), threads
    assert not [t.name for t in started if t.is_alive()]  # the idle ones are gone
    assert engine.execute_plan(["Fetch", "Count"], UIF.for_query("a b")).status == "success"
    engine.close()


def test_abandoned_calls_and_the_stats_it_adds() -> None:
    # "`abandoned_calls() -> dict[str, int]` — skill calls given up on at their timeout and
    # still running, per skill; `stats()` adds `abandoned_total` (ever, per skill),
    # `quarantined`, `max_hung_calls_per_skill` and the pools' `threads`"
    release = threading.Event()

    class Hangs(BaseSkillModule):
        skill_name = "Hangs"
        skill_description = "blocks until released"
        required_inputs = ["input_query"]
        output_keys = ["never"]
        max_execution_time = 0.05

        def execute(self, uif: UIF) -> UIF:
            release.wait(5)
            return uif

    engine = make_engine([Hangs], executor="threads")
    try:
        assert engine.abandoned_calls() == {}
        report = engine.execute_plan(["Hangs"], UIF.for_query("q"))
        assert report.result("Hangs").status == "timeout"
        assert engine.abandoned_calls() == {"Hangs": 1}
        stats = engine.stats()
        assert {"abandoned_total", "quarantined", "max_hung_calls_per_skill",
                "threads"} <= set(stats)
        assert stats["abandoned_total"] == {"Hangs": 1}
    finally:
        release.set()
    deadline = time.monotonic() + 2
    while engine.abandoned_calls() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.abandoned_calls() == {}  # "still running": gone once it returned
    assert engine.stats()["abandoned_total"] == {"Hangs": 1}  # "ever": still counted
    engine.close()


def test_remaining_time_is_never_negative_and_matches_current_deadline() -> None:
    # "`uif.current_deadline()` gives the same and `uif.remaining_time()` gives it as
    # seconds left (never negative; `None` likewise)."
    seen: list[Any] = []
    done = threading.Event()

    class Overruns(BaseSkillModule):
        skill_name = "Overruns"
        skill_description = "reads its time left before and after its limit"
        required_inputs = ["input_query"]
        output_keys = ["left"]
        max_execution_time = 0.05

        def execute(self, uif: UIF) -> UIF:
            seen.append((uif.remaining_time(), uif.current_deadline(),
                         sof_core.current_deadline()))
            time.sleep(0.1)  # past its own limit
            seen.append(uif.remaining_time())
            done.set()
            return uif

    engine = make_engine([Overruns], executor="threads")
    report = engine.execute_plan(["Overruns"], UIF.for_query("q"))
    assert done.wait(2), "the overrunning skill never finished"
    assert report.result("Overruns").status == "timeout"
    (left, on_view, deadline), after = seen
    assert on_view == deadline is not None and 0 < left <= 0.05
    assert after == 0.0  # never negative
    assert UIF.for_query("q").remaining_time() is None  # outside a skill
    engine.close()


def test_not_run_defaults_to_invalid_in_the_run_schema() -> None:
    # "`ExecutionReport.not_run(plan, uif, error, *, problems=(), status="invalid")` is the
    # report of a run that never started, in the same schema."
    assert _keyword_only(ExecutionReport.not_run) == {"problems": (), "status": "invalid"}
    report = ExecutionReport.not_run(["Fetch"], UIF.for_query("q"), "never started")
    assert report.status == "invalid" and report.to_dict()["schema"] == "sof.run/1"
    assert report.results == []


def test_isolation_pool_signatures() -> None:
    # "`IsolationPool(size=2, prefix=())`"; "`start(count=None)`"; "`call(step, uif,
    # deadline=math.inf)`"; "`isolation_pool(prefix)` is the process's pool for that
    # sandbox"
    from sof_core import IsolationPool, isolation_pool

    parameters = inspect.signature(IsolationPool).parameters
    assert (parameters["size"].default, parameters["prefix"].default) == (2, ())
    assert inspect.signature(IsolationPool.start).parameters["count"].default is None
    assert inspect.signature(IsolationPool.call).parameters["deadline"].default == math.inf
    assert isolation_pool() is isolation_pool()
    assert isinstance(isolation_pool(), IsolationPool)


# --- api.md: Writing an executor ------------------------------------------------------------


class MyRemoteExecutor:
    """The example of docs/api.md, with the far side run here: ``send_and_wait`` unpickles
    the payload with plain ``pickle.loads`` and calls ``run_skill_call``."""

    name = "my-remote"
    concurrent = True

    def __init__(self) -> None:
        self.stages: list[list[str]] = []

    def run_stage(self, run: Any, steps: Any) -> list[Outcome]:
        self.stages.append([step.name for step in steps])
        outcomes = []
        for step in steps:
            view, scope = skill_view(run.uif, step)
            run.before_skill(step, view)
            payload = pack_call(step.name, call_payload(step, run.uif))
            try:
                changes = run_skill_call(*pickle.loads(payload))
                replay_changes(step, view, changes)
                result = check_returned(step, view, view)
                outcomes.append(Outcome(step, result, view, scope, scope, None, 0.0, 1))
            except Exception as exc:
                outcomes.append(Outcome(step, None, None, None, None, exc, 0.0, 1))
        return outcomes


class _Executors:
    def __init__(self, *executors: Any) -> None:
        self.executors = list(executors)

    @sof_core.hookimpl
    def sof_register_executors(self) -> list[Any]:
        return self.executors


def test_the_documented_remote_executor_runs_a_plan_with_the_local_guarantees() -> None:
    # The example executor of "Writing an executor", registered "through
    # `sof_register_executors` like the built-in ones", runs a plan; undeclared writes and
    # `set_error` fail as in a local run; observers hear `before_skill`.
    remote = MyRemoteExecutor()
    seen: list[str] = []

    class Before:
        @sof_core.hookimpl
        def sof_before_skill(self, skill: Any, uif: UIF) -> None:
            seen.append(skill.name)

    engine = make_engine([Fetch, Count, Answer, Sneaky, SetsError],
                         plugins=[("remote", _Executors(remote)), ("before", Before())])
    assert engine.executor("my-remote") is remote
    report = engine.execute_plan(["Fetch", "Count", "Answer"], UIF.for_query("what is SOF"),
                                 executor="my-remote")
    assert report.status == "success", report.errors
    assert report.final_response == "answer: what is SOF"
    assert report.uif.intermediate_data["words"] == 3
    assert report.executor == "my-remote"
    assert sorted(seen) == ["Answer", "Count", "Fetch"]
    assert remote.stages[0] == ["Fetch", "Count"]  # concurrent: one stage of both
    bad = engine.execute_plan(["Sneaky", "SetsError"], UIF.for_query("q"),
                              executor="my-remote", )
    assert bad.result("Sneaky").status == "failed"
    assert bad.result("Sneaky").error_type == "UndeclaredWriteError"
    assert bad.result("SetsError").status == "failed"
    assert "could not do it" in (bad.result("SetsError").error or "")
    assert "undeclared" not in bad.uif.intermediate_data


def test_an_executor_that_is_not_concurrent_gets_one_skill_per_stage() -> None:
    # "`concurrent: bool` (`False`: every stage is one skill); `run_stage(run, steps) ->
    # list[Outcome]`, one outcome per step, in order."
    class OneAtATime:
        name = "one-at-a-time"
        concurrent = False

        def __init__(self) -> None:
            self.stages: list[list[str]] = []

        def run_stage(self, run: Any, steps: Any) -> list[Outcome]:
            self.stages.append([step.name for step in steps])
            return [run.execute(step) for step in steps]

    executor = OneAtATime()
    engine = make_engine([Fetch, Count, Answer], plugins=[("one", _Executors(executor))])
    report = engine.execute_plan(["Fetch", "Count", "Answer"], UIF.for_query("a b"),
                                 executor="one-at-a-time")
    assert report.status == "success", report.errors
    assert all(len(stage) == 1 for stage in executor.stages)
    assert sorted(n for stage in executor.stages for n in stage) == ["Answer", "Count", "Fetch"]


def test_inline_single_steps_lets_the_coordinator_call_a_lone_skill_itself() -> None:
    # "Optional `inline_single_steps = True` lets the coordinator call a lone skill itself."
    class Inline:
        name = "inline"
        concurrent = True
        inline_single_steps = True

        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def run_stage(self, run: Any, steps: Any) -> list[Outcome]:
            self.calls.append([step.name for step in steps])
            return [run.call_inline(step) for step in steps]

    executor = Inline()
    engine = make_engine([Fetch, Count, Answer], plugins=[("inline", _Executors(executor))])
    report = engine.execute_plan(["Fetch", "Answer"], UIF.for_query("q"), executor="inline")
    assert report.status == "success", report.errors
    assert executor.calls == []  # two stages of one skill: the coordinator ran both
    wide = engine.execute_plan(["Fetch", "Count"], UIF.for_query("q"), executor="inline")
    assert wide.status == "success" and executor.calls == [["Fetch", "Count"]]


def test_run_context_members() -> None:
    # "`RunContext` — ... `uif` (the run's UIF ...), `config`; `execute(step) -> Outcome` runs a
    # step in the calling thread (view, retries, checks); ... `timed_out(step, duration) ->
    # Outcome` is what to return for a step abandoned at its timeout"
    captured: dict[str, Any] = {}

    class Probe:
        name = "probe"
        concurrent = True

        def run_stage(self, run: Any, steps: Any) -> list[Outcome]:
            captured["uif"] = run.uif
            captured["config"] = run.config
            outcomes = []
            for step in steps:
                if step.name == "Count":
                    outcomes.append(run.timed_out(step, 0.5))
                else:
                    outcome = run.execute(step)
                    captured["thread"] = threading.current_thread()
                    outcomes.append(outcome)
            return outcomes

    engine = make_engine([Fetch, Count], plugins=[("probe", _Executors(Probe()))],
                         continue_on_skill_failure=True)
    uif = UIF.for_query("q")
    report = engine.execute_plan(["Fetch", "Count"], uif, executor="probe")
    assert isinstance(captured["uif"], UIF) and isinstance(captured["config"], SOFConfig)
    assert captured["config"] == engine.config
    assert report.result("Fetch").status == "success"
    assert report.result("Count").status == "timeout"
    assert report.result("Count").error_type == "SkillTimeoutError"
    assert report.uif.intermediate_data["passages"] == ["q"]


def test_step_has_the_documented_fields() -> None:
    # "`Step` — one skill of the compiled plan: `name`, `spec`, `instance`, `plugin`, `readable`
    # and `writable` (... every declared key, those named like UIF fields included),
    # `writable_fields` ..., `required_data`, `timeout`, `retries`, `output_checks`,
    # `scope_type` ..., `isolation` (`"process"` or `"thread"`) and ... `isolation_settings`"
    from sof_core.skills.views import ScopedData

    engine = make_engine([Fetch, Answer], skill_timeout=7)
    step = engine.compile(["Fetch", "Answer"]).steps["Answer"]
    assert (step.name, step.plugin, step.spec.name) == ("Answer", "test-skills", "Answer")
    assert isinstance(step.instance, Answer)
    assert {"passages", "words"} <= set(step.readable)
    assert "final_response" in step.writable_fields
    assert "passages" in step.required_data and "words" not in step.required_data
    assert step.timeout == 7 and isinstance(step.retries, int)
    assert step.scope_type is ScopedData
    assert step.isolation == "thread"
    for name in ("writable", "copied_fields", "output_checks", "isolation_settings"):
        assert hasattr(step, name), name


def test_outcome_positional_fields_and_optional_failure_and_merge() -> None:
    # "`Outcome(step, result, view, data, guard, error, duration, attempts)` ... Two optional
    # fields follow, which an executor may leave out: `failure` ... and `merge`"
    parameters = list(inspect.signature(Outcome).parameters.values())
    assert [p.name for p in parameters] == ["step", "result", "view", "data", "guard", "error",
                                            "duration", "attempts", "failure", "merge"]
    assert all(p.default is inspect.Parameter.empty for p in parameters[:8])
    assert parameters[8].default is None and parameters[9].default is None


def test_skill_view_gives_a_guarded_copy_and_its_scope() -> None:
    # "`skill_view(uif, step) -> (view, scope)` — the guarded copy of `uif` a skill runs on,
    # and its `ScopedData` (what it wrote: `written`, `written_fields`)."
    from sof_core.skills.views import ScopedData

    engine = make_engine([Fetch, Answer])
    step = engine.compile(["Fetch", "Answer"]).steps["Answer"]
    uif = UIF.for_query("q", intermediate_data={"passages": ["p"]})
    view, scope = skill_view(uif, step)
    assert isinstance(scope, ScopedData) and view is not uif
    view.final_response = "r"
    assert uif.final_response != "r"
    assert "final_response" in scope.written_fields
    with pytest.raises(E.UndeclaredWriteError):
        view.intermediate_data["other"] = 1
    assert "other" not in scope.written and "other" not in uif.intermediate_data


def test_check_returned_refuses_set_error_and_a_wrong_return_type() -> None:
    # "`check_returned(step, view, returned) -> UIF` — ... (raises `SkillExecutionError` for
    # `set_error` or a wrong return type)."
    engine = make_engine([Fetch])
    step = engine.compile(["Fetch"]).steps["Fetch"]
    view, _ = skill_view(UIF.for_query("q"), step)
    assert check_returned(step, view, view) is view
    with pytest.raises(E.SkillExecutionError):
        check_returned(step, view, {"not": "a UIF"})
    view.set_error("broken")
    with pytest.raises(E.SkillExecutionError, match="broken"):
        check_returned(step, view, view)


def test_call_payload_sends_declared_inputs_and_the_other_fields() -> None:
    # "`call_payload(step, uif) -> (skill, inputs, fields)` — what to send: the skill
    # instance, its declared inputs present in `uif` ..., the UIF's other fields ...
    # Read-only containers pickle as plain ones."
    engine = make_engine([Fetch, Answer])
    step = engine.compile(["Fetch", "Answer"]).steps["Answer"]
    uif = UIF.for_query("q", intermediate_data={"passages": ["p"], "unrelated": 1})
    skill, inputs, fields = call_payload(step, uif)
    assert skill is step.instance
    assert inputs == {"passages": ["p"]}  # declared and present only
    assert fields["input_query"] == "q" and "intermediate_data" not in fields
    assert "__uif_class__" not in fields  # a plain UIF: the default class
    view, _ = skill_view(uif, step)
    _, from_view, _ = call_payload(step, view)  # read-only containers in a view
    assert type(pickle.loads(pickle.dumps(from_view["passages"]))) is list


def test_call_payload_names_a_uif_subclass() -> None:
    # "for a UIF subclass the fields also hold the class under `"__uif_class__"`"; "a UIF of
    # the class the fields name, `UIF` by default"
    class Kinds(BaseSkillModule):
        skill_name = "Kinds"
        skill_description = "records the UIF class it ran on"
        required_inputs = ["input_query"]
        output_keys = ["kind"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["kind"] = type(uif).__name__
            return uif

    engine = make_engine([Kinds])
    step = engine.compile(["Kinds"]).steps["Kinds"]
    sub = _MyUIF(input_query="q")
    skill, inputs, fields = call_payload(step, sub)
    assert fields["__uif_class__"] is _MyUIF
    assert run_skill_call(skill, inputs, fields)["data"]["kind"] == "_MyUIF"
    plain = call_payload(step, UIF(input_query="q"))
    assert run_skill_call(*plain)["data"]["kind"] == "UIF"


class _MyUIF(UIF):
    pass


def test_pack_call_loads_with_plain_pickle_and_names_what_cannot_travel() -> None:
    # "`pack_call(skill_name, call) -> bytes` pickles it for another process ..., which loads
    # it with plain `pickle.loads`"; "What cannot travel at all is a `SkillNotPicklableError`
    # naming the skill and the part"
    engine = make_engine([Fetch, Answer])
    step = engine.compile(["Fetch", "Answer"]).steps["Answer"]
    call = call_payload(step, UIF.for_query("q", intermediate_data={"passages": ["p"]}))
    skill, inputs, fields = pickle.loads(pack_call("Answer", call))
    assert type(skill).__name__ == "Answer" and inputs == {"passages": ["p"]}
    assert fields["input_query"] == "q"
    assert "by_value" in _keyword_only(pack_call)
    lock_inputs = {"passages": threading.Lock()}
    with pytest.raises(E.SkillNotPicklableError) as info:
        pack_call("Answer", (call[0], lock_inputs, call[2]))
    assert "Answer" in str(info.value) and "passages" in str(info.value)


def test_run_skill_call_refuses_an_undeclared_read_there() -> None:
    # "a read or an assignment of an undeclared key raises `UndeclaredReadError` /
    # `UndeclaredWriteError` there, as at home"
    engine = make_engine([Peeks, Sneaky])
    peeks = engine.compile(["Peeks"]).steps["Peeks"]
    uif = UIF.for_query("q", intermediate_data={"secret": "s"})
    skill, inputs, fields = call_payload(peeks, uif)
    assert "secret" not in inputs
    with pytest.raises(E.UndeclaredReadError):
        run_skill_call(skill, inputs, fields)
    sneaky = engine.compile(["Sneaky"]).steps["Sneaky"]
    with pytest.raises(E.UndeclaredWriteError):
        run_skill_call(*call_payload(sneaky, UIF.for_query("q")))


def test_run_skill_call_reports_changes_that_replay_changes_applies() -> None:
    # "`run_skill_call(skill, inputs, fields) -> dict` — ... reports what it changed";
    # "`replay_changes(step, view, changes)` — back home, into a fresh `skill_view`"
    engine = make_engine([Fetch, Answer])
    step = engine.compile(["Fetch", "Answer"]).steps["Answer"]
    uif = UIF.for_query("q", intermediate_data={"passages": ["p"]})
    changes = run_skill_call(*call_payload(step, uif))
    assert isinstance(changes, dict)
    view, scope = skill_view(uif, step)
    assert replay_changes(step, view, changes) is None  # "-> None": the executor builds the Outcome
    assert view.final_response == "answer: p" and "final_response" in scope.written_fields
    assert check_returned(step, view, view) is view
    assert uif.final_response != "answer: p"  # home UIF untouched until merged


def test_replay_changes_refuses_an_undeclared_write_made_far_away() -> None:
    # "every change goes through the guarded view, so undeclared writes (in-place ones too),
    # type mismatches and `set_error` fail as in a local run"
    engine = make_engine([Fetch, Answer])
    step = engine.compile(["Fetch", "Answer"]).steps["Answer"]
    uif = UIF.for_query("q", intermediate_data={"passages": ["p"]})
    changes = run_skill_call(*call_payload(step, uif))
    changes["data"]["smuggled"] = 1  # what a far side that broke the rules would send
    view, _ = skill_view(uif, step)
    with pytest.raises(E.UndeclaredWriteError):
        replay_changes(step, view, changes)


def test_aexecute_plan_runs_a_plan_on_the_callers_loop() -> None:
    # "`aexecute_plan(plan, uif, *, executor=None)` — the same for async hosts"
    engine = make_engine([Fetch, Answer])
    report = asyncio.run(engine.aexecute_plan(["Fetch", "Answer"], UIF.for_query("q")))
    assert report.status == "success" and report.final_response == "answer: q"


def test_assigning_settings_stops_the_engine_following_the_host() -> None:
    # "assigning a `SOFConfig` applies it from the next run on ... and stops the engine
    # following the host's configuration"; "`follows_host_config` — True for an engine made
    # with neither argument"
    engine = CoordinatorEngine()
    try:
        assert engine.follows_host_config is True
        engine.config = SOFConfig(plugins_autoload=False, skill_timeout=2)
        assert engine.follows_host_config is False
        ignored = engine.config.model_copy(update={"skill_timeout": 9})
        assert engine.refresh_config(ignored).skill_timeout == 2  # its own settings stay
    finally:
        engine.close()


def _gate(name: str, barrier: threading.Barrier) -> type[BaseSkillModule]:
    def execute(self: Any, uif: UIF) -> UIF:
        barrier.wait()  # BrokenBarrierError unless all three run at once
        uif.intermediate_data[f"{name}_out"] = True
        return uif

    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": "meets the others at a barrier",
        "required_inputs": ["input_query"], "output_keys": [f"{name}_out"],
        "max_execution_time": None, "execute": execute,
    })


def test_refreshed_settings_keep_the_engines_plugins_and_its_started_step_pool() -> None:
    # "Settings about which plugins load (`plugins_*`, `plugin_settings`, `skill_providers`,
    # `strict_plugins`) leave the engine's plugins as it was made with them; a new engine
    # takes them. `max_workers` is read when the engine's step pool starts: a pool already
    # started keeps its size (`close()` lets the next run start one of the new size)"
    # (api.md said `max_workers` kept the value the engine was made with: corrected).
    engine = CoordinatorEngine()
    try:
        barriers = [threading.Barrier(3, timeout=0.3)]
        gates = [_gate(n, _Proxy(barriers)) for n in ("GateA", "GateB", "GateC")]  # type: ignore[arg-type]
        engine.register_skills(gates, plugin_name="gates")
        plan = ["GateA", "GateB", "GateC"]
        plugins, executors = engine.plugins, set(engine.registry.components("executors"))
        assert engine.execute_plan(plan, UIF.for_query("q"), executor="threads").status \
            == "success"
        engine.refresh_config(engine.config.model_copy(update={
            "max_workers": 1, "plugins_autoload": False, "strict_plugins": True}))
        assert engine.config.max_workers == 1
        assert engine.plugins is plugins and "GateA" in engine.registry
        assert set(engine.registry.components("executors")) == executors
        barriers[0] = threading.Barrier(3, timeout=0.3)
        started = engine.execute_plan(plan, UIF.for_query("q"), executor="threads")
        assert started.status == "success", started.errors  # the pool keeps its size
        engine.close()  # the next run starts a pool of max_workers = 1: two at once
        barriers[0] = threading.Barrier(3, timeout=0.3)
        small = engine.execute_plan(plan, UIF.for_query("q"), executor="threads")
        assert small.status != "success"
        assert {r.error_type for r in small.results if r.status != "success"} \
            == {"BrokenBarrierError"}
    finally:
        engine.close()


class _Proxy:
    """The barrier in ``holder[0]``, replaced between runs."""

    def __init__(self, holder: list[threading.Barrier]) -> None:
        self.holder = holder

    def wait(self) -> int:
        return self.holder[0].wait()


def test_scope_type_is_lenient_only_for_a_sam_skill_with_strict_declarations_off() -> None:
    # "`scope_type` (the `ScopedData` class of its views: `LenientScopedData` for a SAM skill
    # when `strict_declarations` is off)"; "`call_payload` ... (all of `intermediate_data`
    # for a skill allowed undeclared keys)"
    sof_sam = pytest.importorskip("sof_sam")
    from sof_core.skills.views import LenientScopedData, ScopedData

    class SamAnswer(sof_sam.BaseSkillModule):
        skill_name = "SamAnswer"
        skill_description = "a SAM skill"
        required_inputs = ["input_query"]
        output_keys = ["final_response"]

        def execute(self, uif: Any) -> Any:
            return uif

    for strict, expected in ((True, ScopedData), (False, LenientScopedData)):
        engine = make_engine([SamAnswer, Fetch], strict_declarations=strict)
        compiled = engine.compile(["SamAnswer", "Fetch"])
        assert compiled.steps["SamAnswer"].scope_type is expected
        assert compiled.steps["Fetch"].scope_type is ScopedData  # a native skill stays strict
        uif = UIF.for_query("q", intermediate_data={"unrelated": 1})
        inputs = call_payload(compiled.steps["SamAnswer"], uif)[1]
        assert ("unrelated" in inputs) is (not strict)


def test_pack_call_by_value_sends_the_class_so_from_then_on(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "`pack_call(..., by_value=True)` sends the class by value although this process can
    # import it ..., and from then on."; "classes that process can import by name travel by
    # name"
    import importlib
    import sys
    import textwrap

    module_name = "sof_doc_claims_by_value_probe"
    (tmp_path / f"{module_name}.py").write_text(textwrap.dedent("""
        from sof_core import BaseSkillModule

        class ByValueLater(BaseSkillModule):
            skill_name = "ByValueLater"
            skill_description = "importable by name"
            required_inputs = ["input_query"]
            output_keys = ["x"]
            max_execution_time = None

            def execute(self, uif):
                uif.intermediate_data["x"] = 1
                return uif
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module(module_name)
        engine = make_engine([module.ByValueLater])
        step = engine.compile(["ByValueLater"]).steps["ByValueLater"]
        call = call_payload(step, UIF.for_query("q"))
        assert b"cloudpickle" not in pack_call("ByValueLater", call)  # by name
        assert b"cloudpickle" in pack_call("ByValueLater", call, by_value=True)
        assert b"cloudpickle" in pack_call("ByValueLater", call)  # from then on
        skill, inputs, fields = pickle.loads(pack_call("ByValueLater", call))
        assert run_skill_call(skill, inputs, fields)["data"] == {"x": 1}
    finally:
        sys.modules.pop(module_name, None)
