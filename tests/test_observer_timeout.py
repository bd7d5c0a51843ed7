"""An observer that never returns must not hold ``execute_plan``.

Before: ``sof_before_plan`` and ``sof_after_plan`` (and the notes a run leaves for its end)
were called in the thread that called ``execute_plan``, with no bound: one observer that
hung (a metrics push to a server that stopped answering) held every query forever, though
DESIGN.md says observers may never break a run. Now each such call gets at most
``observer_timeout`` (5 s by default), in a thread of the engine's observer pool.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sof_core import UIF, SOFConfig, hookimpl, inline_observer
from sof_core.testing import make_engine

RELEASE = threading.Event()
REQUEST = contextvars.ContextVar("request", default="none")


ENGINES: list[Any] = []


@pytest.fixture(autouse=True)
def _release() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()  # lets the abandoned observer calls end, while this test still runs:
    deadline = time.monotonic() + 5  # what they log must not land in a later test's output
    while any(e.stats()["hung_observers"] for e in ENGINES) and time.monotonic() < deadline:
        time.sleep(0.01)
    ENGINES.clear()


class HangsBeforePlan:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def sof_before_plan(self, plan: list[str]) -> None:
        self.calls += 1
        RELEASE.wait(60)  # "forever", until the test is over


class HangsAfterPlan:
    @hookimpl
    def sof_after_plan(self, report: Any) -> None:
        RELEASE.wait(60)


class Records:
    """A well-behaved observer beside the hung one: it still hears everything."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    @hookimpl
    def sof_before_plan(self, plan: list[str]) -> None:
        self.events.append(("before", REQUEST.get(), threading.current_thread().name))

    @hookimpl
    def sof_after_plan(self, report: Any) -> None:
        self.events.append(("after", str(report.status), threading.current_thread().name))

    @hookimpl
    def sof_alert(self, kind: str, details: dict[str, Any]) -> None:
        self.events.append(("alert", kind, details["hook"]))


class InlineRecords:
    def __init__(self) -> None:
        self.threads: list[str] = []

    @hookimpl
    @inline_observer
    def sof_after_plan(self, report: Any) -> None:
        self.threads.append(threading.current_thread().name)


def _engine(make_skill: Any, *observers: tuple[str, Any], timeout: float = 0.3) -> Any:
    skill = make_skill("Plain", ["input_query"], ["plain"])
    engine = make_engine([skill], plugins=list(observers), observer_timeout=timeout)
    ENGINES.append(engine)
    return engine


def _run_bounded(engine: Any, limit: float = 10.0) -> tuple[Any, float]:
    box: list[Any] = []
    started = time.monotonic()
    worker = threading.Thread(target=lambda: box.append(
        engine.execute_plan(["Plain"], UIF(input_query="q"))), daemon=True)
    worker.start()
    worker.join(limit)
    assert box, f"execute_plan did not return within {limit} s"
    return box[0], time.monotonic() - started


def test_a_hung_before_plan_observer_is_given_up_on_and_the_run_goes_on(
        make_skill: Any) -> None:
    hung, records = HangsBeforePlan(), Records()
    engine = _engine(make_skill, ("hung", hung), ("records", records))
    report, _ = _run_bounded(engine)
    assert report.status == "success"
    assert report.uif.intermediate_data["plain"]
    assert engine.plugins.observer_timeouts == 1
    assert ("alert", "observer_hung", "sof_before_plan") in records.events
    assert [e[:2] for e in records.events if e[0] != "alert"] == [
        ("before", "none"), ("after", "success")]
    assert engine.stats()["hung_observers"] == ["hung.sof_before_plan"]


def test_an_observer_still_hung_is_skipped_not_waited_for_again(make_skill: Any) -> None:
    hung = HangsBeforePlan()
    engine = _engine(make_skill, ("hung", hung), timeout=0.5)
    _run_bounded(engine)
    report, took = _run_bounded(engine)
    assert report.status == "success"
    assert hung.calls == 1  # not called while its first call hangs
    assert took < 0.5  # hangs only: the second run did not wait out the timeout again
    RELEASE.set()  # the hung call returns: the observer is called again from then on
    deadline = time.monotonic() + 5
    while engine.stats()["hung_observers"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.stats()["hung_observers"] == []
    _run_bounded(engine)
    assert hung.calls == 2


def test_a_hung_after_plan_observer_does_not_hold_the_report(make_skill: Any) -> None:
    records = Records()
    engine = _engine(make_skill, ("hung", HangsAfterPlan()), ("records", records))
    report, _ = _run_bounded(engine)
    assert report.status == "success"
    assert ("after", "success") in [e[:2] for e in records.events]
    assert ("alert", "observer_hung", "sof_after_plan") in records.events


def test_observers_see_the_callers_context_variables(make_skill: Any) -> None:
    records = Records()
    engine = _engine(make_skill, ("records", records))
    token = REQUEST.set("req-42")
    try:
        engine.execute_plan(["Plain"], UIF(input_query="q"))
    finally:
        REQUEST.reset(token)
    assert records.events[0][:2] == ("before", "req-42")
    assert records.events[0][2] != threading.current_thread().name  # an observer thread


def test_an_inline_observer_runs_in_the_callers_thread(make_skill: Any) -> None:
    inline = InlineRecords()
    engine = _engine(make_skill, ("inline", inline))
    engine.execute_plan(["Plain"], UIF(input_query="q"))
    assert inline.threads == [threading.current_thread().name]


def test_observer_timeout_none_calls_observers_directly(make_skill: Any) -> None:
    records = Records()
    skill = make_skill("Plain", ["input_query"], ["plain"])
    engine = make_engine([skill], plugins=[("records", records)], observer_timeout=None)
    engine.execute_plan(["Plain"], UIF(input_query="q"))
    assert {e[2] for e in records.events} == {threading.current_thread().name}


def test_the_default_bound_is_five_seconds() -> None:
    assert SOFConfig().observer_timeout == 5.0
    with pytest.raises(ValueError, match="observer_timeout"):
        SOFConfig(observer_timeout=float("inf"))


def test_notify_observers_is_bounded_too(make_skill: Any) -> None:
    """The router sends its alerts (error rate, latency) this way, from the query's thread."""

    class HangsOnAlert:
        @hookimpl
        def sof_alert(self, kind: str) -> None:
            RELEASE.wait(60)

    engine = _engine(make_skill, ("hung", HangsOnAlert()))
    started = time.monotonic()
    engine.notify_observers("sof_alert", kind="x", message="m", details={})
    assert time.monotonic() - started < 5  # hangs only
    assert engine.plugins.observer_timeouts == 1


class HangsAroundSkills:
    @hookimpl
    def sof_before_skill(self, skill: Any) -> None:
        RELEASE.wait(60)

    @hookimpl
    def sof_after_skill(self, result: Any) -> None:
        RELEASE.wait(60)


@pytest.mark.parametrize("executor", ["threads", "sequential", "asyncio"])
def test_hung_skill_observers_are_blamed_not_the_skill_nor_the_run(
        make_skill: Any, executor: str) -> None:
    skills = [make_skill(f"Wide{i}", ["input_query"], [f"w{i}"]) for i in range(2)]
    engine = make_engine(skills, plugins=[("hung", HangsAroundSkills())],
                         observer_timeout=0.3, executor=executor)
    ENGINES.append(engine)
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(
        engine.execute_plan(["Wide0", "Wide1"], UIF(input_query="q"))), daemon=True)
    worker.start()
    worker.join(10)
    assert box, "execute_plan did not return within 10 s"
    report = box[0]
    assert report.status == "success", report.errors
    assert [r.status for r in report.results] == ["success", "success"]
    # each hook's first calls hung (both skills' at once in a wide stage); later ones were
    # skipped, not waited for
    assert 2 <= engine.plugins.observer_timeouts <= 3
    assert engine.stats()["hung_observers"] == ["hung.sof_after_skill",
                                                "hung.sof_before_skill"]


def test_an_observer_that_exits_is_counted_and_the_next_call_waits_for_nothing(
        make_skill: Any) -> None:
    class Exits:
        @hookimpl
        def sof_after_plan(self, report: Any) -> None:
            raise SystemExit(3)

    engine = _engine(make_skill, ("exits", Exits()), timeout=5.0)
    report, took = _run_bounded(engine)
    assert report.status == "success"
    assert engine.plugins.observer_errors == 1
    assert engine.plugins.observer_timeouts == 0
    assert took < 5.0  # hangs only: it was not waited out as a hung call
