"""Claims of docs/api.md's Data, Skills, Tool security, Packaging, "Configuration, routing
and metrics" and Testing sections that no other test checked, each checked here against
the real code (real skills, a real engine, real sandboxed subprocesses).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import sof_core
from sof_core import (
    UIF,
    BaseSkillModule,
    BaseToolModule,
    ExecutionReport,
    RateLimiter,
    SOFConfig,
    ToolPolicy,
    UIFStatus,
    hookimpl,
    network_sandbox,
    run_sandboxed,
)
from sof_core.config.manager import SOFConfigManager
from sof_core.routing.router import QueryRouter
from sof_core.testing import ContractViolation, make_engine

# --- skills ---------------------------------------------------------------------------------


class Answer(BaseSkillModule):
    skill_name = "SurfaceAnswer"
    skill_description = "answers by echoing the query"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"sof:{uif.input_query}"
        return uif


class Breaks(BaseSkillModule):
    skill_name = "SurfaceBreaks"
    skill_description = "always raises"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        raise RuntimeError("surface skill broke")


class Lookup(BaseToolModule):
    skill_name = "SurfaceLookup"
    skill_description = "a tool that declares no permissions"
    required_inputs = ["input_query"]
    output_keys = ["found"]
    max_execution_time = 5.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["found"] = uif.input_query
        return uif


class LookupTools:
    @hookimpl
    def sof_register_tools(self) -> list[Any]:
        return [Lookup]


class AnswerPlugin:
    @hookimpl
    def sof_register_skills(self) -> list[Any]:
        return [Answer]


def _parameters(function: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(function).parameters)


def _keyword_only(function: Any) -> set[str]:
    return {name for name, p in _parameters(function).items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _defaults(function: Any) -> dict[str, Any]:
    return {name: p.default for name, p in _parameters(function).items()
            if p.default is not inspect.Parameter.empty}


# --- ## Data --------------------------------------------------------------------------------


def test_for_query_builds_a_uif_with_start_time_set() -> None:
    # "`UIF.for_query(query, **fields)` builds one with `start_time` set."
    before = time.time()
    uif = UIF.for_query("what is SOF?", session_id="s1", user_context={"lang": "en"})
    assert uif.input_query == "what is SOF?" and uif.session_id == "s1"
    assert uif.user_context == {"lang": "en"}
    assert uif.start_time is not None and before <= uif.start_time <= time.time()
    assert UIF(input_query="q").start_time is None  # the plain constructor leaves it unset


def test_uif_status_has_exactly_the_documented_values() -> None:
    # "`UIFStatus` — `pending`, `running`, `success`, `partial`, `failure`, `timeout`,
    # `vetting_required`, `cancelled`"
    assert [s.value for s in UIFStatus] == [
        "pending", "running", "success", "partial", "failure", "timeout",
        "vetting_required", "cancelled"]


@pytest.mark.parametrize("start", [UIFStatus.VETTING_REQUIRED, UIFStatus.CANCELLED])
def test_the_coordinator_never_sets_sams_statuses(start: UIFStatus) -> None:
    # "`vetting_required`, `cancelled` (SAM's; never set by the coordinator)": a run ends
    # in one of its own end statuses, whatever the UIF held before, success or failure.
    engine = make_engine([Answer, Breaks])
    ok = engine.execute_plan(["SurfaceAnswer"], UIF(input_query="q", status=start))
    failed = engine.execute_plan(["SurfaceBreaks"], UIF(input_query="q", status=start))
    assert ok.uif.status is UIFStatus.SUCCESS
    assert failed.uif.status is UIFStatus.FAILURE


# --- ## Skills ------------------------------------------------------------------------------


def test_a_tool_is_a_skill_registered_through_sof_register_tools() -> None:
    # "`BaseToolModule` — base class of tools (skills registered through
    # `sof_register_tools`): `skill_category = "tool"`, `isolation = "process"`"
    engine = make_engine(plugins=[("surface-tools", LookupTools())])
    entry = engine.registry.skill("SurfaceLookup")
    assert entry is not None and entry.plugin == "surface-tools"
    assert Lookup.skill_category == "tool" and Lookup.isolation == "process"
    assert sof_core.SkillSpec.from_skill_class(Lookup).isolation == "process"


# --- ## Tool security -----------------------------------------------------------------------


def test_tool_policy_settings_default_to_none_and_from_config_reads_tool_policy() -> None:
    # "`ToolPolicy(settings=None)` / `ToolPolicy.from_config(config)` — `tool_policy` ready
    # to apply"
    assert _defaults(ToolPolicy) == {"settings": None}
    assert ToolPolicy().denial("Anything", ["network", "subprocess"], tool=True) is None
    config = SOFConfig(tool_policy={"deny_permissions": ["network"]})
    denial = ToolPolicy.from_config(config).denial("Fetch", ["network"], tool=False)
    from sof_core.security.policy import Denial  # not in sof_core.__all__: not bold in the page

    assert isinstance(denial, Denial)
    assert (denial.skill, denial.permission) == ("Fetch", "network")
    assert "deny_permissions" in denial.message


def test_tool_limits_fields_and_the_compiled_tool_step_holds_them() -> None:
    # "`tool_limits(entry)` → `ToolLimits` (`permissions`, `timeout`, `max_output_bytes`,
    # `calls_per_minute`, `network_isolation`, `denied`), which a tool step's
    # `isolation_settings.tool` holds."
    policy = {"default_max_output_bytes": 1234, "network_isolation": "audit",
              "limits": {"SurfaceLookup": {"calls_per_minute": 3}}}
    engine = make_engine(plugins=[("surface-tools", LookupTools())], tool_policy=policy)
    entry = engine.registry.skill("SurfaceLookup")
    assert entry is not None
    limits = ToolPolicy(policy).tool_limits(entry)
    assert limits == sof_core.ToolLimits(permissions=frozenset(), timeout=5.0,
                                         max_output_bytes=1234, calls_per_minute=3,
                                         network_isolation="audit", denied=None)
    step = engine.compile(["SurfaceLookup"]).steps["SurfaceLookup"]
    assert step.isolation_settings is not None
    assert step.isolation_settings.tool == limits
    denied = ToolPolicy({"deny_tools": ["Surface*"]}).tool_limits(entry)
    assert denied.denied is not None and "deny_tools" in denied.denied


def test_rate_limiter_cooldown_per_hour_stats_and_reset() -> None:
    # "`RateLimiter(per_minute=None, per_hour=None, *, cooldown=0.0)` — sliding windows:
    # `acquire()` records a call and returns 0.0, or the seconds until one is allowed
    # (recording nothing); `stats()`; `reset()`."
    assert {k: v for k, v in _defaults(RateLimiter).items() if k != "clock"} == {
        "per_minute": None, "per_hour": None, "cooldown": 0.0}
    now = [1000.0]
    unlimited = RateLimiter(clock=lambda: now[0])
    assert all(unlimited.acquire() == 0.0 for _ in range(100))
    spaced = RateLimiter(cooldown=2.0, clock=lambda: now[0])
    assert spaced.acquire() == 0.0
    now[0] += 0.5
    assert spaced.acquire() == pytest.approx(1.5)
    assert spaced.stats()["requests_last_minute"] == 1  # the refused call recorded nothing
    now[0] += 1.5
    assert spaced.acquire() == 0.0
    hourly = RateLimiter(per_hour=2, clock=lambda: now[0])
    assert hourly.acquire() == 0.0 and hourly.acquire() == 0.0
    now[0] += 120.0  # out of the minute window, still in the hour
    assert hourly.acquire() == pytest.approx(3600.0 - 120.0)
    assert hourly.stats() == {"requests_last_minute": 0, "requests_last_hour": 2,
                              "limit_per_minute": None, "limit_per_hour": 2}
    hourly.reset()
    assert hourly.stats()["requests_last_hour"] == 0 and hourly.acquire() == 0.0


def test_network_sandbox_kind_prefix_and_namespace() -> None:
    # "`network_sandbox(mode="auto") -> Sandbox` — the sandbox no-network tools run in here
    # (`kind`: "unshare", "bwrap" or "audit"; `prefix`, the command it starts workers with;
    # `namespace`)."
    assert _defaults(network_sandbox) == {"mode": "auto"}
    chosen = network_sandbox()
    assert chosen == network_sandbox("auto")
    assert chosen.kind in ("unshare", "bwrap", "audit")
    assert chosen.namespace is (chosen.kind != "audit")
    assert bool(chosen.prefix) is chosen.namespace
    audit = network_sandbox("audit")
    assert (audit.kind, audit.prefix, audit.namespace) == ("audit", (), False)
    if chosen.namespace:
        assert Path(chosen.prefix[0]).name == chosen.kind  # "unshare ..." / "bwrap ..."


def test_run_sandboxed_signature_defaults() -> None:
    # "`run_sandboxed(func, args=(), kwargs=None, *, name="sandboxed call", timeout=30.0,
    # permissions=(), max_output_bytes=None, calls_per_minute=None, memory_mb=2048,
    # cpu_seconds=60, network_isolation="auto", env=())`"
    assert _defaults(run_sandboxed) == {
        "args": (), "kwargs": None, "name": "sandboxed call", "timeout": 30.0,
        "permissions": (), "max_output_bytes": None, "calls_per_minute": None,
        "memory_mb": 2048, "cpu_seconds": 60, "network_isolation": "auto", "env": ()}
    assert _keyword_only(run_sandboxed) == {
        "name", "timeout", "permissions", "max_output_bytes", "calls_per_minute",
        "memory_mb", "cpu_seconds", "network_isolation", "env"}


def test_run_sandboxed_returns_the_value_or_raises_what_the_call_raised() -> None:
    # "one picklable call with a tool's guarantees; returns its value or raises what it
    # raised"
    assert run_sandboxed(int, ("ff",), {"base": 16}, name="hex") == 255
    with pytest.raises(ValueError, match="invalid literal for int"):
        run_sandboxed(int, ("not a number",), name="bad int")


# --- ## Packaging ---------------------------------------------------------------------------


@pytest.mark.parametrize("package", [
    "sof_core", "sof_core.testing", "sof_calculator", "sof_conflict", "sof_serve",
    "sof_vetting", "sof_web"])
def test_sof_core_and_bundled_plugins_use_lazy_exports(package: str) -> None:
    # "`sof_core` itself and the bundled plugins `sof_calculator`, `sof_conflict`,
    # `sof_serve`, `sof_vetting` and `sof_web` use it"
    module = importlib.import_module(package)
    getattr_ = vars(module)["__getattr__"]
    assert getattr_.__module__ == "sof_core._lazy"
    assert getattr_.__qualname__ == "lazy_exports.<locals>.__getattr__"


# --- ## Configuration, routing and metrics --------------------------------------------------


def test_config_manager_and_sof_core_config_have_the_documented_names() -> None:
    # "`SOFConfigManager` — `sof_core.config.get_sof_config_manager()`; `update_config(
    # **changes)`, `disable_sof_framework()`, `enable_sof_framework()` ... SAM's manager
    # methods too (...) and, in `sof_core.config`, `get_sof_config()`, `is_sof_enabled()`,
    # `SAM_KEYS` (how SAM's 31 config keys map onto SOF's settings) and `unknown_env_vars()`"
    import sof_core.config as config

    for method in ("update_config", "disable_sof_framework", "enable_sof_framework",
                   "load_config", "save_config", "is_sof_enabled", "enable_sof",
                   "disable_sof", "validate_config", "reset_to_defaults",
                   "get_migration_config", "get_skill_config"):
        assert callable(getattr(SOFConfigManager, method)), method
    assert isinstance(config.get_sof_config_manager(), SOFConfigManager)
    for name in ("get_sof_config", "is_sof_enabled", "unknown_env_vars"):
        assert callable(getattr(config, name)), name
    assert len(config.SAM_KEYS) == 31


@pytest.fixture
def manager(tmp_path: Path) -> SOFConfigManager:
    """A manager on a private file, deaf to the environment, SOF on for everyone, the
    static planner running ``SurfaceAnswer``."""
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          planner="static", default_plan=["SurfaceAnswer"])
    return manager


def _legacy(query: str, **context: Any) -> str:
    return f"legacy:{query}"


def _router(manager: SOFConfigManager, **options: Any) -> QueryRouter:
    engine = make_engine([Answer], default_plan=["SurfaceAnswer"], total_timeout=None)
    return QueryRouter(engine, _legacy, manager, **options)


def test_run_sof_keeps_shadow_mode(manager: SOFConfigManager) -> None:
    # "`route(query, ..., run_sof=fn)` lets a host that drives the engine its own way ...
    # keep all of that" (rollout, fallback "and shadow mode"): with SOF on for nobody and
    # every query shadowed, the shadow SOF run is the host's own.
    manager.update_config(sof_rollout_percentage=0)
    calls: list[str] = []

    def run_sof(uif: UIF) -> ExecutionReport:
        calls.append(uif.input_query)
        uif.final_response = f"host:{uif.input_query}"
        return ExecutionReport(uif=uif, status="success", plan=[])

    router = _router(manager, shadow_sample_rate=1.0)
    try:
        result = router.route("hi", run_sof=run_sof)
        router.flush_shadow(timeout=30)
    finally:
        router.close(timeout=30)
    assert (result.path, result.response) == ("legacy", "legacy:hi")
    assert calls == ["hi"]
    shadow = router.metrics.snapshot()["shadow"]
    assert shadow["runs"] == 1 and shadow["differences"] == 1


def test_route_observers_see_every_routers_paths_with_plan_and_planning(
    manager: SOFConfigManager,
) -> None:
    # "`add_route_observer(fn)` / `remove_route_observer(fn)` — `fn(router, path, latency,
    # details)` is called for every query any `QueryRouter` records (`path` is `sof`,
    # `legacy` or `shadow`; `details` holds the run's `plan` and `planning` when there was
    # one)" ... "unless `fn` is marked `@inline_observer` (it records in memory), which
    # calls it in the router's thread."
    seen: list[tuple[Any, str, float, dict[str, Any], str]] = []

    @sof_core.inline_observer
    def record(router: Any, path: str, latency: float, details: dict[str, Any]) -> None:
        seen.append((router, path, latency, details, threading.current_thread().name))

    first, second = _router(manager), _router(manager, shadow_sample_rate=1.0)
    sof_core.add_route_observer(record)
    try:
        assert first.route("a").path == "sof"
        manager.update_config(sof_rollout_percentage=0)
        assert second.route("b").path == "legacy"
        second.flush_shadow(timeout=30)
        sof_core.remove_route_observer(record)
        first.route("c")  # no longer told
    finally:
        sof_core.remove_route_observer(record)
        second.close(timeout=30)
    here = threading.current_thread().name
    assert [(r, p) for r, p, *_ in seen] == [(first, "sof"), (second, "legacy"),
                                             (second, "shadow")]
    _, _, latency, details, thread = seen[0]
    assert latency > 0 and thread == here
    assert details["plan"] == ["SurfaceAnswer"] and details["planning"] is not None
    assert "plan" not in seen[1][3] and seen[1][4] == here
    assert set(seen[2][3]) == {"error", "differs"}  # a shadow comparison, no run's plan


def test_a_plain_route_observer_runs_in_the_engines_observer_pool_and_is_waited_for(
    manager: SOFConfigManager,
) -> None:
    # "Each call is bounded like an observer hook's, through the router's engine: it runs
    # in the engine's observer pool and is waited for at most `observer_timeout`"
    threads: list[str] = []

    def record(router: Any, path: str, latency: float, details: dict[str, Any]) -> None:
        time.sleep(0.05)  # still waited for: the observer's work is done when route returns
        threads.append(threading.current_thread().name)

    router = _router(manager)
    sof_core.add_route_observer(record)
    try:
        router.route("q")
        assert len(threads) == 1
    finally:
        sof_core.remove_route_observer(record)
    assert threads[0] != threading.current_thread().name


class AlertSink:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def sof_alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        self.alerts.append((kind, details))


def test_a_hung_route_observer_is_reported_as_observer_hung_and_called_again_once_back(
    manager: SOFConfigManager,
) -> None:
    # "(one that hangs is given up on, counted, reported as `observer_hung` and skipped
    # until it returns)"
    release = threading.Event()
    calls: list[str] = []

    def stalls(router: Any, path: str, latency: float, details: dict[str, Any]) -> None:
        calls.append(path)
        if len(calls) == 1:
            release.wait(30)

    sink = AlertSink()
    engine = make_engine([Answer], plugins=[("surface-alerts", sink)],
                         default_plan=["SurfaceAnswer"], total_timeout=None,
                         observer_timeout=0.2)
    router = QueryRouter(engine, _legacy, manager)
    sof_core.add_route_observer(stalls)
    try:
        assert router.route("first").response == "sof:first"  # not held by the observer
        hung = [details for kind, details in sink.alerts if kind == "observer_hung"]
        assert len(hung) == 1 and hung[0]["timeout"] == pytest.approx(0.2)
        assert engine.plugins.observer_timeouts == 1
        router.route("second")  # skipped: its first call is still hung
        assert calls == ["sof"]
        release.set()
        deadline = time.monotonic() + 10.0  # a bound for a hang only
        while engine.stats()["hung_observers"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.stats()["hung_observers"] == []
        router.route("third")  # back: called again
        assert calls == ["sof", "sof"]
    finally:
        sof_core.remove_route_observer(stalls)
        release.set()


# --- ## Testing -----------------------------------------------------------------------------


def test_make_engine_signature_and_isolation_from_installed_plugins() -> None:
    # "`make_engine(skills=(), *, plugins=(), autoload=False, **config)` — an engine
    # isolated from installed plugins (`autoload=True` loads them too)."
    assert _defaults(make_engine) == {"skills": (), "plugins": (), "autoload": False}
    assert _keyword_only(make_engine) == {"plugins", "autoload"}
    isolated = make_engine([Answer], skill_timeout=7)
    assert isolated.registry.skill_names() == ["SurfaceAnswer"]
    assert isolated.config.skill_timeout == 7
    loaded = make_engine([Answer], autoload=True)
    assert "SurfaceAnswer" in loaded.registry.skill_names()
    installed = {r.name for r in loaded.plugins.records.values() if r.source == "entry-point"}
    assert installed  # the installed plugins were loaded too


def test_the_sof_engine_fixture_is_make_engine(sof_engine: Any) -> None:
    # "Fixtures: `sof_engine`, ..."
    assert sof_engine is make_engine
    report = sof_engine([Answer]).execute_plan(["SurfaceAnswer"], UIF.for_query("x"))
    assert report.final_response == "sof:x"


@pytest.mark.parametrize(("kind", "declared"), [
    (list, list), (dict, dict), (tuple, tuple), (set, set), (str, str),
    (list, list[str]), (dict, dict[str, Any]), (list, list[int] | None),
])
def test_check_skill_contract_gives_a_left_out_typed_input_empty(kind: type,
                                                                 declared: Any) -> None:
    # "A required input left out of `inputs` is given empty when its declared type is a
    # list, dict, tuple, set or str" (a parameterised one too: list[str] is a list)
    from sof_core.testing import check_skill_contract

    class Counts(BaseSkillModule):
        skill_name = "SurfaceCounts"
        skill_description = "counts its input"
        required_inputs = [("items", declared)]  # a declared type: (key, type)
        output_keys = ["count"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            items = uif.intermediate_data["items"]
            uif.intermediate_data["count"] = [isinstance(items, kind), len(items)]
            return uif

    report = check_skill_contract(Counts())
    assert report.uif.intermediate_data["count"] == [True, 0]


def test_check_skill_contract_takes_a_tuple_input_as_the_uif_holds_it() -> None:
    # "`check_skill_contract(skill, inputs=..., **config)` — runs a skill alone and checks
    # it keeps the contract": a tuple given is a list in the UIF (JSON data), which is not
    # a change the skill made (it was reported as "modified input in place").
    from sof_core.testing import check_skill_contract

    class Sums(BaseSkillModule):
        skill_name = "SurfaceSums"
        skill_description = "sums its input"
        required_inputs = ["numbers"]
        output_keys = ["total"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["total"] = sum(uif.intermediate_data["numbers"])
            return uif

    report = check_skill_contract(Sums, inputs={"numbers": (1, 2, 3)}, skill_timeout=9)
    assert report.uif.intermediate_data["total"] == 6


def test_check_plugin_module_registers_in_isolation_and_says_what_it_provides(
    sof_plugin_check: Any,
) -> None:
    # "`check_plugin_module(name, module)` — registers a plugin module in isolation."
    # (the `sof_plugin_check` fixture is it)
    from sof_core.testing import check_plugin_module

    assert sof_plugin_check is check_plugin_module
    assert check_plugin_module("surface", AnswerPlugin()) == ["SurfaceAnswer"]

    class Broken:
        @hookimpl
        def sof_register_skills(self) -> list[Any]:
            raise RuntimeError("cannot register")

    with pytest.raises(ContractViolation, match="plugin 'surface-broken' failed to load"):
        check_plugin_module("surface-broken", Broken())


def test_check_plugins_signature_and_an_unknown_name_is_a_lookup_error() -> None:
    # "`check_plugins(names=None, *, modules=None, config=None, isolate=True)` and
    # `check_plugin(name)` ... An unknown name raises `LookupError`."
    from sof_core.testing import check_plugin, check_plugins

    assert {k: v for k, v in _defaults(check_plugins).items() if k != "listener"} == {
        "names": None, "modules": None, "config": None, "isolate": True}
    assert {"modules", "config", "isolate"} <= _keyword_only(check_plugins)
    with pytest.raises(LookupError, match="no plugin named 'surface-no-such-plugin'"):
        check_plugins(["surface-no-such-plugin"])
    with pytest.raises(LookupError, match="no plugin named 'surface-no-such-plugin'"):
        check_plugin("surface-no-such-plugin")


def test_plugin_contract_of_a_plugin_object_given_as_modules() -> None:
    # "the plugin contract ... against installed plugins (and plugin objects given as
    # `modules`) ...; return `PluginContract` objects (`plugin`, `distribution`, `version`,
    # `checks`, `passed`, `failures()`, `summary()`, `raise_for_failures()`, `to_dict()`)."
    from sof_core.testing import PluginContract, check_plugins

    (report,) = check_plugins(["surface-answer"], modules={"surface-answer": AnswerPlugin()})
    assert isinstance(report, PluginContract)
    assert report.plugin == "surface-answer" and report.checks
    assert report.passed and report.failures() == [], report.summary()
    report.raise_for_failures()  # nothing failed: no error
    as_dict = report.to_dict()
    assert set(as_dict) == {"plugin", "distribution", "version", "passed", "checks"}
    assert as_dict["passed"] is True and len(as_dict["checks"]) == len(report.checks)

    failing = PluginContract("surface-bad", checks=[
        sof_core.testing.ContractCheck("run", "failed", "it broke", "SurfaceBreaks")])
    assert not failing.passed and [c.check for c in failing.failures()] == ["run"]
    assert "[run] SurfaceBreaks: it broke" in failing.summary()
    with pytest.raises(ContractViolation, match="it broke"):
        failing.raise_for_failures()


def test_sof_cli_env_and_inprocess_are_keyword_arguments(tmp_path: Path) -> None:
    # "`SofCLI(root, *, env=None, inprocess=False)` ... each call returns a `SofResult`
    # (`returncode`, `stdout`, `stderr`, `ok`, `json()`)."
    from sof_core.testing import SofCLI, SofResult

    assert _defaults(SofCLI) == {"env": None, "inprocess": False}
    assert _keyword_only(SofCLI) == {"env", "inprocess"}
    cli = SofCLI(tmp_path, inprocess=True)
    shown = cli("config", "show", "--json")
    assert isinstance(shown, SofResult)
    assert shown.ok and shown.returncode == 0 and isinstance(shown.stderr, str)
    assert shown.json()["path"] == str(cli.config_path)


def test_import_footprint_default_setup() -> None:
    # "`import_footprint(*phases, setup="import sof_core, sof_core.config")`"
    from sof_core.testing import import_footprint

    assert _defaults(import_footprint)["setup"] == "import sof_core, sof_core.config"
    (phase,) = import_footprint("import sof_core.config")  # already imported by the setup
    assert phase.loaded(["sof_core", "sof_core.config"]) == []


def test_importing_sof_core_testing_imports_none_of_its_helpers() -> None:
    # "`import sof_core.testing` ... imports none of these until one is used."
    import subprocess

    code = ("import sys, sof_core.testing\n"
            "mods = ['sof_core.testing.helpers', 'sof_core.testing.cli',\n"
            "        'sof_core.testing.footprint', 'sof_core.cli.contract']\n"
            "print([m for m in mods if m in sys.modules])\n"
            "sof_core.testing.describe_failures\n"
            "print('sof_core.testing.helpers' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]
