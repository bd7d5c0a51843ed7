"""Shared pieces of the observer tests: skills, a legacy pipeline, a fake clock, parsing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sof_serve.observe import plugin as monitor_plugin
from sof_serve.observe.alerts import AlertMonitor, set_monitor
from sof_serve.observe.metrics import SOFMetrics, render_latest, set_metrics

from sof_core import UIF, BaseSkillModule, SOFConfigManager, hookimpl
from sof_core.execution.coordinator import CoordinatorEngine
from sof_core.routing.router import QueryRouter
from sof_core.testing import make_engine

__all__ = ["make_engine"]


class AnswerSkill(BaseSkillModule):
    skill_name = "AnswerSkill"
    skill_description = "Answers by echoing the query."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"sof:{uif.input_query}"
        return uif


class FlakySkill(BaseSkillModule):
    """Answers until ``FlakySkill.fail_after`` calls, then raises (a backend going down)."""

    skill_name = "FlakySkill"
    skill_description = "Starts failing partway through a load test."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    fail_after: int | None = None
    calls = 0
    lock = threading.Lock()

    def execute(self, uif: UIF) -> UIF:
        with FlakySkill.lock:
            FlakySkill.calls += 1
            failing = FlakySkill.fail_after is not None and FlakySkill.calls > FlakySkill.fail_after
        if failing:
            raise RuntimeError("backend is down")
        uif.final_response = f"sof:{uif.input_query}"
        return uif


class HangingSkill(BaseSkillModule):
    skill_name = "HangingSkill"
    skill_description = "Hangs past its timeout."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    max_execution_time = 0.05

    def execute(self, uif: UIF) -> UIF:
        time.sleep(0.3)
        return uif


class SlowSkill(BaseSkillModule):
    skill_name = "SlowSkill"
    skill_description = "Answers correctly, but slowly."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        time.sleep(0.02)
        uif.final_response = f"slow:{uif.input_query}"
        return uif


SKILLS = [AnswerSkill, FlakySkill, HangingSkill, SlowSkill]


class Legacy:
    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, query: str, **context: Any) -> str:
        with self.lock:
            self.calls += 1
        return f"legacy:{query}"


class AlertSink:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    @hookimpl
    def sof_alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        with self.lock:
            self.alerts.append((kind, message, details))


class FakeClock:
    """Monotonic seconds that move only when told (thread-safe)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def fresh_observers(monitor: AlertMonitor | None = None) -> tuple[SOFMetrics, AlertMonitor]:
    """Zeroed metrics and a new monitor, connected to the router as the plugin does."""
    metrics = SOFMetrics()
    set_metrics(metrics)
    monitor = monitor or AlertMonitor()
    set_monitor(monitor)
    monitor_plugin.install()
    return metrics, monitor


@pytest.fixture(autouse=True)
def fresh_singletons() -> Iterator[None]:
    """Leave no test's monitor (holding its tmp config) or counts to the next test."""
    yield
    set_metrics(None)
    set_monitor(None)
    monitor_plugin.install()


def engine_with_monitor(plan: list[str], *extra: tuple[str, object]) -> CoordinatorEngine:
    """An engine loading the real ``monitor`` entry point of the installed sof-serve."""
    engine = make_engine(SKILLS, plugins=extra, autoload=True, plugins_only=["monitor"],
                         default_plan=plan, total_timeout=None)
    records = engine.plugins.records
    assert "monitor" in records and records["monitor"].status == "loaded", (
        "the sof-serve `monitor` entry point did not load")
    return engine


def make_router(manager: SOFConfigManager, engine: CoordinatorEngine) -> tuple[QueryRouter, Legacy]:
    manager.update_config(planner="static", default_plan=list(engine.config.default_plan))
    legacy = Legacy()
    return QueryRouter(engine, legacy, manager), legacy


def samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The current exposition, parsed: (sample name, labels) -> value."""
    body, content_type = render_latest()
    assert content_type.startswith("text/plain")
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


def total(parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    """Sum of ``name`` over every label set containing ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in parsed.items() if n == name and want <= set(ls))


def iter_names(parsed: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> Iterator[str]:
    return iter({name for name, _ in parsed})
