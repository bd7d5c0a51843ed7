"""Claims of docs/operations.md that no other test checked, each against the real plugin
loader, engine, ``sof`` command, isolation workers or ``sof-serve`` pieces.

Every test names the part of the page it checks; the bounds on time are for hangs only."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sof_test_support import Alerts, wait_until

from sof_core import (
    UIF,
    BaseSkillModule,
    ConfigError,
    SkillDefinitionError,
    SOFConfig,
    SOFConfigManager,
    hookimpl,
    inline_observer,
)
from sof_core.plugins import PluginManager, reset_plugin_manager
from sof_core.testing import make_engine

MARKER_PLUGIN = """
    import sys
    from pathlib import Path
    from sof_core import hookimpl

    sys.modules.setdefault("sof_order_log", type(sys)("sof_order_log"))
    sys.modules["sof_order_log"].__dict__.setdefault("SEEN", []).append({name!r})
    Path({marker!r}).write_text("imported")

    @hookimpl
    def sof_register_skills():
        return []
"""


def marker_plugin(name: str, marker: Path) -> str:
    return MARKER_PLUGIN.format(name=name, marker=str(marker))


def _run(args: list[str], env: dict[str, str], timeout: float = 60
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)


# --- at start-up ---------------------------------------------------------------------------


def test_installed_plugins_are_imported_one_at_a_time_sorted_by_name(
    dists: Any, tmp_path: Path
) -> None:
    """"The first CoordinatorEngine() loads every installed plugin ... sorted by name"."""
    for name in ("zulu", "alpha", "mike"):
        dists.add(f"sof-{name}", marker_plugin(name, tmp_path / name), entry_name=name)
    try:
        pm = PluginManager(SOFConfig(plugins_only=["zulu", "alpha", "mike"])).load()
        assert {pm.records[n].status for n in ("zulu", "alpha", "mike")} == {"loaded"}
        assert sys.modules["sof_order_log"].SEEN == ["alpha", "mike", "zulu"]
    finally:
        sys.modules.pop("sof_order_log", None)


BROKEN = """
    raise RuntimeError("no GPU here")
"""


@pytest.fixture
def fresh_shared_manager() -> Iterator[None]:
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def test_a_broken_plugin_is_logged_as_a_warning_and_listed_by_failed(
    dists: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    tmp_path: Path, fresh_shared_manager: None,
) -> None:
    """"a broken plugin is logged (sof.plugins logger, WARNING), recorded, and skipped ...
    in code, engine.plugins.records / engine.plugins.failed()"."""
    from sof_core import CoordinatorEngine

    dists.add("sof-broken", BROKEN, entry_name="broken")
    dists.add("sof-fine", marker_plugin("fine", tmp_path / "fine"), entry_name="fine")
    monkeypatch.setenv("SOF_PLUGINS_ONLY", "broken,fine")
    try:
        with caplog.at_level(logging.WARNING, logger="sof.plugins"):
            engine = CoordinatorEngine()
        warned = [r for r in caplog.records
                  if r.name == "sof.plugins" and r.levelno == logging.WARNING]
        assert any("broken" in r.getMessage() and "no GPU here" in r.getMessage()
                   for r in warned), [r.getMessage() for r in warned]
        assert [r.name for r in engine.plugins.failed()] == ["broken"]
        assert engine.plugins.records["broken"].status == "failed"
        assert engine.plugins.records["fine"].status == "loaded"
        engine.close()
    finally:
        sys.modules.pop("sof_order_log", None)


def test_a_plugins_only_name_no_plugin_has_gets_one_warning_with_the_closest_name(
    dists: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """"a name in either list that no installed plugin or distribution has gets one
    warning, with the closest name" (the disable list has its own test; this is the
    only list)."""
    dists.add("sof-alpha", marker_plugin("alpha", tmp_path / "alpha"), entry_name="alpha")
    monkeypatch.setenv("SOF_PLUGINS_ONLY", "alpha,alhpa")
    try:
        with caplog.at_level(logging.WARNING, logger="sof.plugins"):
            pm = PluginManager().load()
        assert pm.records["alpha"].status == "loaded"
        about = [r.getMessage() for r in caplog.records if "'alhpa'" in r.getMessage()]
        assert len(about) == 1, about
        assert "did you mean 'alpha'?" in about[0]
    finally:
        sys.modules.pop("sof_order_log", None)


def test_plugins_are_imported_by_sof_help_but_not_by_import_sof_core_or_sof_version(
    dists: Any, tmp_path: Path
) -> None:
    """"Plugins are imported at this explicit step, never during import sof_core or
    sof --version (sof --help loads them to list the commands they add)"."""
    marker = tmp_path / "imported"
    dists.add("sof-probe", marker_plugin("probe", marker), entry_name="probe")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "probe",
           "SOF_CONFIG": str(tmp_path / "none.json")}

    done = _run([sys.executable, "-c", "import sof_core, sof_core.cli"], env)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()

    done = _run([sys.executable, "-m", "sof_core.cli", "--version"], env)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()

    done = _run([sys.executable, "-m", "sof_core.cli", "--help"], env)
    assert done.returncode == 0, done.stderr
    assert marker.exists()


class _Wide:
    """Four skills of one stage: each waits for all four to run at once (``barrier``), or
    notes how many run at once (``peak``)."""

    lock = threading.Lock()
    running = 0
    peak = 0
    barrier: threading.Barrier | None = None
    hold = 0.1  # seconds each runs when there is no barrier

    @staticmethod
    def body(uif: UIF, key: str) -> None:
        with _Wide.lock:
            _Wide.running += 1
            _Wide.peak = max(_Wide.peak, _Wide.running)
        try:
            if _Wide.barrier is not None:
                _Wide.barrier.wait(10)
            else:
                threading.Event().wait(_Wide.hold)
        finally:
            with _Wide.lock:
                _Wide.running -= 1
        uif.intermediate_data[key] = True


def _wide_skills() -> list[type[BaseSkillModule]]:
    def make(i: int) -> type[BaseSkillModule]:
        def execute(self: Any, uif: UIF) -> UIF:
            _Wide.body(uif, f"wide{i}")
            return uif

        return type(f"Wide{i}", (BaseSkillModule,), {
            "skill_name": f"Wide{i}", "skill_description": "one of a wide stage",
            "required_inputs": ["input_query"], "output_keys": [f"wide{i}"],
            "execute": execute})

    return [make(i) for i in range(4)]


def test_max_workers_is_read_when_the_step_pool_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """"The step pool's size (max_workers) is read when the engine's step pool starts ...:
    a pool already started keeps its size", and "a stage of four with max_workers = 2 runs
    three at once"."""
    from sof_core import CoordinatorEngine
    from sof_core.config import get_sof_config_manager, reset_sof_config_managers

    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "sof.json"))
    monkeypatch.delenv("SOF_MAX_WORKERS", raising=False)
    reset_sof_config_managers()
    plan = [f"Wide{i}" for i in range(4)]
    try:
        first = CoordinatorEngine()
        first.register_skills(_wide_skills(), plugin_name="wide")
        # its step pool starts at its first run (the size is read then, not at creation)
        assert _run_q(first, plan).status == "success"
        get_sof_config_manager().update_config(max_workers=2)
        first.refresh_config()
        # the engine made before keeps its pool: all four still run at once
        _Wide.barrier = threading.Barrier(4, timeout=10)
        report = _run_q(first, plan)
        assert report.status == "success", report.errors
        second = CoordinatorEngine()
        second.register_skills(_wide_skills(), plugin_name="wide")
        assert second.config.max_workers == 2
        _Wide.barrier, _Wide.peak, _Wide.hold = None, 0, 0.5
        report = _run_q(second, plan)
        assert report.status == "success", report.errors
        # at most two step-pool threads; the run's runner thread takes one step itself
        assert second.stats()["threads"]["steps"]["live"] == 2
        assert _Wide.peak == 3
        # closed, the first engine's next run starts a pool of the size now configured
        first.close()
        _Wide.peak = 0
        assert _run_q(first, plan).status == "success"
        assert first.stats()["threads"]["steps"]["live"] <= 2
        assert _Wide.peak == 3
        first.close()
        second.close()
    finally:
        _Wide.barrier, _Wide.hold = None, 0.1
        reset_sof_config_managers()


# --- timeouts and hung skills --------------------------------------------------------------


def test_the_documented_defaults() -> None:
    """The defaults the page gives, in one place."""
    config = SOFConfig()
    assert config.skill_timeout == 30 and config.total_timeout == 120
    assert config.observer_timeout == 5
    assert config.plugin_import_timeout == 60 and config.plugin_import_budget_ms == 1000
    assert config.max_hung_calls_per_skill == 4
    assert config.isolation_workers == 2
    assert config.isolation_limits == {"cpu_seconds": 60, "memory_mb": 2048,
                                       "open_files": 256, "output_mb": 256}
    assert config.fallback_to_legacy is True
    # "Alerts and automatic rollback": the table and the sentences below it
    assert config.alert_error_rate == 0.05 and config.alert_response_time == 10.0
    assert config.alert_skill_failure_rate == 0.10 and config.alert_memory_percent == 80.0
    assert config.alert_window_seconds == 60 and config.alert_min_samples == 20
    assert config.auto_rollback_step == 100


@pytest.mark.parametrize("key", ["skill_timeout", "total_timeout"])
def test_a_limit_is_a_positive_number_of_seconds_up_to_a_million_or_null(key: str) -> None:
    """"null means no limit; a limit must be a positive number of seconds up to
    1,000,000"."""
    assert getattr(SOFConfig(**{key: None}), key) is None
    assert getattr(SOFConfig(**{key: 1_000_000}), key) == 1_000_000
    for bad in (1_000_001, 0, -1):
        with pytest.raises(ConfigError, match=key):
            SOFConfig(**{key: bad})


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_an_endless_max_execution_time_on_a_skill_class_is_a_definition_error(
    value: float
) -> None:
    """"so inf, nan or 1e300 is a ConfigError (a SkillDefinitionError on a skill class)"
    (1e300 has its own test)."""
    with pytest.raises(SkillDefinitionError, match=r"Endless.*max_execution_time"):
        endless = type("Endless", (BaseSkillModule,), {
            "skill_name": "Endless", "skill_description": "never ends",
            "required_inputs": ["input_query"], "output_keys": ["out"],
            "max_execution_time": value, "execute": lambda self, uif: uif})
        make_engine([endless])


class _Hang(BaseSkillModule):
    """Waits on ``RELEASE`` (set when the test ends) under a short limit."""

    skill_name = "Hang"
    skill_description = "hangs until released"
    required_inputs = ["input_query"]
    output_keys = ["hung"]
    max_execution_time = 0.1
    release = threading.Event()

    def execute(self, uif: UIF) -> UIF:
        _Hang.release.wait(30)
        uif.intermediate_data["hung"] = True
        return uif


@pytest.fixture
def hang() -> Iterator[type[_Hang]]:
    _Hang.release.clear()
    yield _Hang
    _Hang.release.set()


def _run_q(engine: Any, plan: list[str]) -> Any:
    return engine.execute_plan(plan, UIF(input_query="q"))


def test_an_abandoned_calls_alert_names_its_timeout(hang: type[_Hang]) -> None:
    """"Each abandoned call raises sof_alert with kind skill_abandoned (details: skill,
    still_running, timeout)"."""
    alerts = Alerts()
    engine = make_engine([hang], plugins=[("alerts", alerts)])
    assert _run_q(engine, ["Hang"]).status == "timeout"
    details = [d for kind, _, d in alerts.seen if kind == "skill_abandoned"]
    assert len(details) == 1
    assert details[0]["skill"] == "Hang" and details[0]["still_running"] == 1
    assert details[0]["timeout"] == pytest.approx(0.1)
    hang.release.set()
    assert wait_until(lambda: engine.abandoned_calls() == {})
    engine.close()


def test_by_default_a_skill_is_quarantined_past_four_hung_calls(hang: type[_Hang]) -> None:
    """"A skill with more than max_hung_calls_per_skill (default 4) calls still running
    after their timeout is quarantined"."""
    alerts = Alerts()
    engine = make_engine([hang], plugins=[("alerts", alerts)])
    for _ in range(4):
        assert _run_q(engine, ["Hang"]).status == "timeout"
    assert engine.abandoned_calls() == {"Hang": 4}
    assert engine.stats()["quarantined"] == []  # four is not more than four
    assert _run_q(engine, ["Hang"]).status == "timeout"
    assert engine.stats()["quarantined"] == ["Hang"]
    assert [k for k, _, _ in alerts.seen].count("skill_quarantined") == 1
    result = _run_q(engine, ["Hang"]).result("Hang")
    assert result.error_type == "SkillQuarantinedError"
    hang.release.set()
    assert wait_until(lambda: engine.abandoned_calls() == {})
    engine.close()


def test_a_null_limit_never_quarantines(hang: type[_Hang]) -> None:
    """"or raise the limit (null: never quarantine)"."""
    engine = make_engine([hang], max_hung_calls_per_skill=None)
    for _ in range(6):
        assert _run_q(engine, ["Hang"]).status == "timeout"
    assert engine.abandoned_calls() == {"Hang": 6}
    assert engine.stats()["quarantined"] == []
    hang.release.set()
    assert wait_until(lambda: engine.abandoned_calls() == {})
    engine.close()


def test_current_deadline_is_none_in_a_skill_without_any_limit() -> None:
    """"(None outside a skill or without any limit)": inside a skill too, when neither it
    nor the configuration sets a limit."""
    from sof_core import current_deadline

    seen: dict[str, Any] = {}

    class Unbounded(BaseSkillModule):
        skill_name = "Unbounded"
        skill_description = "reads its deadline"
        required_inputs = ["input_query"]
        output_keys = ["read"]

        def execute(self, uif: UIF) -> UIF:
            seen["deadline"] = current_deadline()
            seen["left"] = uif.remaining_time()
            uif.intermediate_data["read"] = True
            return uif

    engine = make_engine([Unbounded], skill_timeout=None, total_timeout=None)
    assert _run_q(engine, ["Unbounded"]).status == "success"
    assert seen == {"deadline": None, "left": None}
    bounded = make_engine([Unbounded], skill_timeout=5, total_timeout=None)
    assert _run_q(bounded, ["Unbounded"]).status == "success"
    assert seen["deadline"] is not None and 0 < seen["left"] <= 5
    engine.close()
    bounded.close()


# --- watching it ---------------------------------------------------------------------------


class _Plain(BaseSkillModule):
    skill_name = "Plain"
    skill_description = "writes one key"
    required_inputs = ["input_query"]
    output_keys = ["plain"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["plain"] = "done"
        return uif


class _HungBeforePlan:
    release = threading.Event()

    @hookimpl
    def sof_before_plan(self, plan: list[str]) -> None:
        _HungBeforePlan.release.wait(30)


def test_an_observer_hung_alert_names_the_plugin_the_hook_and_the_timeout() -> None:
    """"reported as sof_alert kind observer_hung (details: plugin, hook, timeout)"."""
    _HungBeforePlan.release.clear()
    alerts = Alerts()
    engine = make_engine([_Plain], plugins=[("hung", _HungBeforePlan()), ("alerts", alerts)],
                         observer_timeout=0.2)
    try:
        assert _run_q(engine, ["Plain"]).status == "success"
        hung = [d for kind, _, d in alerts.seen if kind == "observer_hung"]
        assert len(hung) == 1
        assert hung[0]["plugin"] == "hung" and hung[0]["hook"] == "sof_before_plan"
        assert hung[0]["timeout"] == pytest.approx(0.2)
        assert engine.stats()["hung_observers"] == ["hung.sof_before_plan"]
    finally:
        _HungBeforePlan.release.set()
    assert wait_until(lambda: engine.stats()["hung_observers"] == [])
    engine.close()


class _SeesSkills:
    def __init__(self) -> None:
        self.after: dict[str, str] = {}
        self.alerts: list[tuple[str, str]] = []

    @hookimpl
    def sof_after_skill(self, skill: Any, result: Any) -> None:
        self.after[skill.name] = result.status

    @hookimpl
    def sof_alert(self, kind: str, details: dict[str, Any]) -> None:
        self.alerts.append((kind, details.get("skill", "")))


class _Fails(BaseSkillModule):
    skill_name = "Fails"
    skill_description = "raises"
    required_inputs = ["input_query"]
    output_keys = ["failed_out"]

    def execute(self, uif: UIF) -> UIF:
        raise ValueError("bad data")


class _NeedsFailed(BaseSkillModule):
    skill_name = "NeedsFailed"
    skill_description = "needs what Fails never writes"
    required_inputs = ["failed_out"]
    output_keys = ["after_failed"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["after_failed"] = True
        return uif


def test_after_skill_hears_of_failed_timed_out_and_skipped_skills_and_alerts_are_raised(
    hang: type[_Hang],
) -> None:
    """The hook table: sof_after_skill when "a skill finished, failed, timed out or was
    skipped"; sof_alert when "a skill failed or timed out (skill_failed, skill_timeout)"."""
    observer = _SeesSkills()
    engine = make_engine([_Plain, _Fails, _NeedsFailed, hang],
                         plugins=[("sees", observer)], continue_on_skill_failure=True)
    report = _run_q(engine, ["Plain", "Fails", "NeedsFailed", "Hang"])
    assert report.status == "partial", report.errors
    assert observer.after == {"Plain": "success", "Fails": "failed",
                              "NeedsFailed": "skipped", "Hang": "timeout"}
    assert ("skill_failed", "Fails") in observer.alerts
    assert ("skill_timeout", "Hang") in observer.alerts
    hang.release.set()
    assert wait_until(lambda: engine.abandoned_calls() == {})
    engine.close()


EXPORTING = [False]


class _SometimesInline:
    def __init__(self) -> None:
        self.threads: list[str] = []

    @hookimpl
    @inline_observer(unless=lambda: EXPORTING[0])
    def sof_after_plan(self, report: Any) -> None:
        self.threads.append(threading.current_thread().name)


def test_an_inline_observer_with_unless_is_handed_off_only_while_that_holds() -> None:
    """"as the bundled monitor observer is (except while it exports OpenTelemetry spans:
    @inline_observer(unless=...))": inline in the notifying thread unless the condition
    holds, then in the observer pool under observer_timeout."""
    observer = _SometimesInline()
    engine = make_engine([_Plain], plugins=[("sometimes", observer)])
    here = threading.current_thread().name
    try:
        EXPORTING[0] = False
        _run_q(engine, ["Plain"])
        EXPORTING[0] = True
        _run_q(engine, ["Plain"])
        EXPORTING[0] = False
        _run_q(engine, ["Plain"])
    finally:
        EXPORTING[0] = False
    assert observer.threads[0] == here and observer.threads[2] == here
    assert observer.threads[1] != here
    engine.close()


# --- process isolation ---------------------------------------------------------------------

PROBE_MODULE = """
    import os
    import sys
    from sof_core import BaseSkillModule

    class Probe(BaseSkillModule):
        skill_name = "Probe"
        skill_description = "reports the environment and command line of its process"
        required_inputs = ["input_query"]
        output_keys = ["probe"]
        isolation = "process"
        max_execution_time = 30.0

        def execute(self, uif):
            uif.intermediate_data["probe"] = {
                "env": dict(os.environ), "argv": list(sys.orig_argv), "pid": os.getpid()}
            return uif
"""

PROBE_HOST = """
    import json, os
    from sof_core import UIF
    from sof_core.testing import make_engine
    from sof_doc_probe import Probe

    report = make_engine([Probe]).execute_plan(["Probe"], UIF(input_query="q"))
    print(json.dumps({"status": report.status, "errors": report.errors, "host": os.getpid(),
                      **report.uif.intermediate_data.get("probe", {})}))
"""

#: The variables the page lists as the ones a worker starts with, besides PYTHONPATH.
WORKER_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/home/someone",
    "USER": "someone", "LOGNAME": "someone", "LANG": "C.UTF-8", "LANGUAGE": "en",
    "LC_MESSAGES": "C", "LC_TIME": "C", "TZ": "UTC", "TMPDIR": "/tmp", "TEMP": "/tmp",
    "TMP": "/tmp", "XDG_CONFIG_HOME": "/xdg/config", "XDG_DATA_HOME": "/xdg/data",
    "XDG_CACHE_HOME": "/xdg/cache", "XDG_RUNTIME_DIR": "/xdg/run",
}


def test_a_worker_starts_as_a_new_interpreter_with_only_the_listed_environment(
    tmp_path: Path,
) -> None:
    """"A worker starts with a clean environment: PATH, HOME, USER, LOGNAME, LANG, LANGUAGE,
    LC_*, TZ, TMPDIR/TEMP/TMP, XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_CACHE_HOME,
    XDG_RUNTIME_DIR, and a PYTHONPATH with the host's import path; nothing else" and "They
    are started as new interpreters (python -m sof_core.execution._worker), never by
    forking the host"."""
    (tmp_path / "sof_doc_probe.py").write_text(textwrap.dedent(PROBE_MODULE))
    env = {**WORKER_ENV, "PYTHONPATH": str(tmp_path), "SOF_CONFIG": str(tmp_path / "no.json"),
           "SOF_DISABLE_PLUGIN_AUTOLOAD": "1", "SOF_LLM_API_KEY": "secret",
           "AWS_SECRET_ACCESS_KEY": "secret", "SOME_OTHER_SETTING": "x"}
    done = _run([sys.executable, "-c", textwrap.dedent(PROBE_HOST)], env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == "success", seen["errors"]
    assert seen["pid"] != seen["host"]
    worker_env = seen["env"]
    assert set(worker_env) == set(WORKER_ENV) | {"PYTHONPATH"}, set(worker_env) ^ set(WORKER_ENV)
    assert {k: worker_env[k] for k in WORKER_ENV} == WORKER_ENV
    assert str(tmp_path) in worker_env["PYTHONPATH"].split(os.pathsep)
    argv = seen["argv"]
    assert "-m" in argv and argv[argv.index("-m") + 1] == "sof_core.execution._worker"


# --- the sof command's exit ----------------------------------------------------------------

LEAVES_PLUGIN = """
    import threading, time
    from sof_core import BaseSkillModule, hookimpl

    class Leaves(BaseSkillModule):
        skill_name = "Leaves"
        skill_description = "answers, leaving a non-daemon thread of its own behind"
        required_inputs = ["input_query"]
        output_keys = ["final_response"]

        def execute(self, uif):
            threading.Thread(target=time.sleep, args=(1.0,), name="left-behind",
                             daemon=False).start()
            uif.final_response = "done"
            return uif

    @hookimpl
    def sof_register_skills():
        return [Leaves]
"""

IN_PROCESS_HOST = """
    import threading
    from sof_core.cli import main

    code = main(["run", "q", "--plan", "Leaves"])
    left = [t.name for t in threading.enumerate() if t.name == "left-behind"]
    print("main returned", code, left, flush=True)
"""


def test_main_called_in_process_returns_and_leaves_the_process_alone(
    dists: Any, tmp_path: Path
) -> None:
    """"A host calling sof_core.cli.main() in-process is left alone: that is the console
    script's and python -m sof_core.cli's behaviour only"."""
    dists.add("sof-leaves", LEAVES_PLUGIN, entry_name="leaves")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "leaves",
           "SOF_CONFIG": str(tmp_path / "none.json")}
    done = _run([sys.executable, "-c", textwrap.dedent(IN_PROCESS_HOST)], env)
    assert done.returncode == 0, done.stderr
    assert "main returned 0 ['left-behind']" in done.stdout
    assert "exiting without waiting" not in done.stderr


# --- alerts and automatic rollback (sof-serve) ---------------------------------------------


@pytest.fixture
def fresh_metrics() -> Iterator[None]:
    metrics = pytest.importorskip("sof_serve.observe.metrics")
    metrics.set_metrics(metrics.SOFMetrics())
    yield
    metrics.set_metrics(None)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_and_skill_failure_thresholds_are_alerted_with_their_details(
    fresh_metrics: None,
) -> None:
    """"A threshold newly crossed is raised once through sof_alert with kind
    threshold_<name> (..., threshold_skill_failure_rate, threshold_memory_percent) and
    details path, value, threshold, samples and window_seconds"; "Rate and latency alerts
    wait until the window holds alert_min_samples (default 20) queries"."""
    from sof_serve.observe.alerts import AlertMonitor

    sent: list[tuple[str, dict[str, Any]]] = []
    clock = _Clock()
    monitor = AlertMonitor(clock=clock, memory=lambda: 93.0,
                           notify=lambda kind, message, details: sent.append((kind, details)))
    for _ in range(19):
        clock.now += 0.1
        monitor.on_route(None, "sof", 0.01, {"skills_run": 1, "skills_failed": 1})
    kinds = [kind for kind, _ in sent]
    assert kinds == ["threshold_memory_percent"]  # not a rate: no sample count to wait for
    memory = sent[0][1]
    assert memory["value"] == 93.0 and memory["threshold"] == 80.0
    assert set(memory) == {"path", "value", "threshold", "samples", "window_seconds"}
    clock.now += 0.1
    monitor.on_route(None, "sof", 0.01, {"skills_run": 1, "skills_failed": 1})
    for _ in range(5):  # still breached: not raised again
        clock.now += 0.1
        monitor.on_route(None, "sof", 0.01, {"skills_run": 1, "skills_failed": 1})
    kinds = [kind for kind, _ in sent]
    assert kinds == ["threshold_memory_percent", "threshold_skill_failure_rate"]
    failure = sent[1][1]
    assert failure == {"path": "sof", "value": 1.0, "threshold": 0.10, "samples": 20,
                       "window_seconds": 60.0}


def test_an_automatic_rollback_says_who_what_why_and_when(
    tmp_path: Path, fresh_metrics: None
) -> None:
    """"The rollback is recorded (who: sof auto_rollback (pid ... on host), what:
    sof_rollout_percentage 100 -> 0, why: the alert, when: UTC time), sent as sof_alert
    kind auto_rollback"."""
    from sof_serve.observe.alerts import AlertMonitor

    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          auto_rollback=True, alert_min_samples=5)
    sent: list[tuple[str, dict[str, Any]]] = []
    clock = _Clock()
    monitor = AlertMonitor(clock=clock, wall=lambda: 1_790_000_000.0, memory=lambda: 1.0,
                           manager=manager,
                           notify=lambda kind, message, details: sent.append((kind, details)))
    for _ in range(5):
        clock.now += 0.1
        monitor.on_route(None, "sof", 0.01, {"error": "boom", "skills_run": 1})
    rollbacks = [details for kind, details in sent if kind == "auto_rollback"]
    assert len(rollbacks) == 1
    record = rollbacks[0]
    assert record["who"] == f"sof auto_rollback (pid {os.getpid()} on {socket.gethostname()})"
    assert record["what"] == "sof_rollout_percentage 100 -> 0"
    assert "error rate" in record["why"]
    assert record["when"] == "2026-09-21T14:13:20+00:00"  # 1_790_000_000 in UTC
    assert manager.state().config.sof_rollout_percentage == 0


# --- sof serve -----------------------------------------------------------------------------


def test_serve_limits_have_the_documented_defaults_and_a_bad_one_is_named() -> None:
    """The "Limits" table's defaults, "It binds to 127.0.0.1 unless --host says otherwise",
    the 8765 of the example, shadow_sample_rate's 0, and the one line naming a bad value."""
    settings_module = pytest.importorskip("sof_serve.settings")
    settings = settings_module.ServeSettings.load({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8765)
    assert settings.max_body_bytes == 1_048_576 and settings.max_concurrency == 32
    assert settings.max_queue == 1024 and settings.request_timeout == 60
    assert settings.recent_runs == 200 and settings.shadow_sample_rate == 0
    with pytest.raises(ConfigError) as bad:
        settings_module.ServeSettings.load({"max_concurrency": 0})
    assert str(bad.value) == ("plugin_settings.serve.max_concurrency: must be a whole number "
                              ">= 1, got 0")


def test_serve_errors_are_json_with_status_code_and_message(tmp_path: Path) -> None:
    """"Errors are JSON, {"error": {"status": ..., "code": ..., "message": ...}}, the message
    naming the field or setting at fault: 400 for a body that is not JSON, 422 for ... a
    field sent as null instead of left out ..., 404 for a run no longer kept", and
    "413 body_too_large"."""
    pytest.importorskip("sof_serve")
    import httpx
    from sof_serve.app import create_app
    from sof_serve.server import BackgroundServer
    from sof_serve.service import SOFService
    from sof_serve.settings import ServeSettings

    engine = make_engine([_Plain])
    service = SOFService(engine=engine, legacy=lambda query, **context: f"legacy:{query}",
                         manager=SOFConfigManager(tmp_path / "sof.json", environ={}),
                         settings=ServeSettings(max_body_bytes=200))
    server = BackgroundServer(create_app(service)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            answers = {
                "not_json": http.post("/v1/query", content=b"{nope",
                                      headers={"content-type": "application/json"}),
                "null": http.post("/v1/query", json={"query": "q", "user_id": None}),
                "gone": http.get("/v1/runs/no-such-run"),
                "big": http.post("/v1/query", json={"query": "x" * 500}),
            }
    finally:
        server.stop()
        service.close()
        engine.close()
    expected = {"not_json": (400, "invalid_json"), "null": (422, "invalid_body"),
                "gone": (404, "unknown_run"), "big": (413, "body_too_large")}
    for name, (status, code) in expected.items():
        answer = answers[name]
        assert answer.status_code == status, (name, answer.text)
        error = answer.json()["error"]
        assert set(error) == {"status", "code", "message"}, (name, error)
        assert (error["status"], error["code"]) == (status, code), (name, error)
    assert "'user_id'" in answers["null"].json()["error"]["message"]
    assert "max_body_bytes" in answers["big"].json()["error"]["message"]
