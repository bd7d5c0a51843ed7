"""An observer that never returns must not hold ``execute_plan``.

Before: ``sof_before_plan`` and ``sof_after_plan`` (and the notes a run leaves for its end)
were called in the thread that called ``execute_plan``, with no bound: one observer that
hung (a metrics push to a server that stopped answering) held every query forever, though
DESIGN.md says observers may never break a run. Now each such call gets at most
``observer_timeout`` (5 s by default), in a thread of the engine's observer pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, SOFConfig, hookimpl, inline_observer
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
        make_skill: Any, within: Any, executor: str) -> None:
    skills = [make_skill(f"Wide{i}", ["input_query"], [f"w{i}"]) for i in range(2)]
    engine = make_engine(skills, plugins=[("hung", HangsAroundSkills())],
                         observer_timeout=0.3, executor=executor)
    ENGINES.append(engine)
    report = within(lambda: engine.execute_plan(["Wide0", "Wide1"], UIF(input_query="q")),
                    what="execute_plan")
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


# --- aexecute_plan: a hung observer holds its run, never the host's event loop -------------


class AsyncFetch(BaseSkillModule):
    skill_name = "AsyncFetch"
    skill_description = "an async skill on the host's loop"
    required_inputs = ["input_query"]
    output_keys = ["fetched"]
    max_execution_time = 0.2  # shorter than the observer timeout below

    async def execute(self, uif: UIF) -> UIF:
        await asyncio.sleep(0.01)
        uif.intermediate_data["fetched"] = uif.input_query.upper()
        return uif


class HangsEverywhere:
    """Every run hook hangs: before and after the plan and each skill."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def sof_before_plan(self, plan: list[str]) -> None:
        self.calls.append("before_plan")
        RELEASE.wait(60)

    @hookimpl
    def sof_before_skill(self, skill: Any) -> None:
        self.calls.append("before_skill")
        RELEASE.wait(60)

    @hookimpl
    def sof_after_skill(self, result: Any) -> None:
        self.calls.append("after_skill")
        RELEASE.wait(60)

    @hookimpl
    def sof_after_plan(self, report: Any) -> None:
        self.calls.append("after_plan")
        RELEASE.wait(60)


#: The hung observers' timeout in the event-loop tests, and the longest gap between a
#: ticking task's ticks that shows the loop was never held for one of them.
OBSERVER_TIMEOUT = 1.0
NEVER_HELD = 0.95 * OBSERVER_TIMEOUT


async def _ticking(coro: Any, period: float = 0.01) -> tuple[Any, float]:
    """Await ``coro`` while a task ticks on the same loop; the longest gap between ticks."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(period)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        result = await asyncio.wait_for(coro, 20)
    finally:
        stop.set()
        await ticker
    return result, max(gaps, default=0.0)


@pytest.mark.parametrize("skill_kind", ["async", "sync"])
def test_hung_observers_never_block_the_event_loop_of_aexecute_plan(
        make_skill: Any, skill_kind: str) -> None:
    """Before: each hung observer call was waited for on the loop, blocking the host's other
    tasks for ``observer_timeout`` each time (here 4 times 1 s). A sync skill's
    ``sof_before_skill`` is told in the pool thread that runs it. A loop held for an
    observer would not tick for the whole second; under load a loop that is not held can
    still miss ticks for a while (0.4 s was seen on a busy 2-core machine), so the bound is
    just under the observer timeout."""
    hung = HangsEverywhere()
    skill = AsyncFetch if skill_kind == "async" else make_skill(
        "AsyncFetch", ["input_query"], ["fetched"])
    engine = make_engine([skill], plugins=[("hung", hung)], observer_timeout=OBSERVER_TIMEOUT)
    ENGINES.append(engine)
    report, gap = asyncio.run(_ticking(engine.aexecute_plan(["AsyncFetch"],
                                                            UIF(input_query="q"))))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["fetched"]
    assert gap < NEVER_HELD  # the loop was never held for an observer_timeout
    assert hung.calls == ["before_plan", "before_skill", "after_skill", "after_plan"]
    assert engine.plugins.observer_timeouts == 4
    assert len(engine.stats()["hung_observers"]) == 4


def test_each_run_hook_is_awaited_and_given_up_on_under_aexecute_plan() -> None:
    """One observer per hook, each hung: every one is given up on in turn (the run goes on
    and succeeds), and the async skill is not timed out for the time its observer took."""
    hooks = ["sof_before_plan", "sof_before_skill", "sof_after_skill", "sof_after_plan"]
    plugins = [(hook, _hangs_on(hook)) for hook in hooks]
    records = Records()
    engine = make_engine([AsyncFetch], plugins=[*plugins, ("records", records)],
                         observer_timeout=OBSERVER_TIMEOUT)
    ENGINES.append(engine)
    report, gap = asyncio.run(_ticking(engine.aexecute_plan(["AsyncFetch"],
                                                            UIF(input_query="q"))))
    assert report.status == "success", report.errors  # not a 0.2 s timeout of the skill
    assert gap < NEVER_HELD  # (see the test above)
    assert engine.plugins.observer_timeouts == 4
    assert sorted(engine.stats()["hung_observers"]) == sorted(
        f"{hook}.{hook}" for hook in hooks)
    alerts = [e[2] for e in records.events if e[0] == "alert"]
    assert alerts == hooks  # in the order the run told them
    assert [e[:2] for e in records.events if e[0] != "alert"] == [
        ("before", "none"), ("after", "success")]


def _hangs_on(hook: str) -> Any:
    """An observer whose only hook is ``hook``, which hangs (pluggy reads the hook's name
    from the function's, and its arguments from its signature: none but ``self``)."""

    def hangs(self: Any) -> None:
        RELEASE.wait(60)

    hangs.__name__ = hook
    return type(f"Hangs_{hook}", (), {hook: hookimpl(hangs)})()


def test_observers_under_aexecute_plan_see_the_callers_context(make_skill: Any) -> None:
    records = Records()
    engine = _engine(make_skill, ("records", records))

    async def main() -> Any:
        REQUEST.set("req-async")
        return await engine.aexecute_plan(["Plain"], UIF(input_query="q"))

    report = asyncio.run(main())
    assert report.status == "success"
    assert records.events[0][:2] == ("before", "req-async")
    assert records.events[-1][:2] == ("after", "success")  # told before it returned


def test_anotify_observers_is_bounded_and_keeps_the_loop_free(make_skill: Any) -> None:
    class HangsOnAlert:
        @hookimpl
        def sof_alert(self, kind: str) -> None:
            RELEASE.wait(60)

    engine = _engine(make_skill, ("hung", HangsOnAlert()), timeout=0.3)
    _, gap = asyncio.run(_ticking(engine.anotify_observers("sof_alert", kind="x",
                                                           message="m", details={})))
    assert gap < 0.25
    assert engine.plugins.observer_timeouts == 1


def test_a_wide_async_stage_and_retries_tell_before_skill_observers_on_the_loop() -> None:
    """The other two ways an async step is awaited (beside others in a wide stage, and with
    retries): each attempt's ``sof_before_skill`` is told, off the loop, before it runs."""
    attempts: list[str] = []

    class Flaky(BaseSkillModule):
        skill_name = "Flaky"
        skill_description = "fails its first attempt"
        required_inputs = ["input_query"]
        output_keys = ["flaky"]
        max_retries = 1

        async def execute(self, uif: UIF) -> UIF:
            attempts.append("try")
            if len(attempts) == 1:
                raise RuntimeError("first attempt fails")
            uif.intermediate_data["flaky"] = "ok"
            return uif

    class Told:
        def __init__(self) -> None:
            self.seen: list[tuple[str, str]] = []

        @hookimpl
        def sof_before_skill(self, skill: Any, uif: UIF) -> None:
            self.seen.append((skill.name, threading.current_thread().name))

    told = Told()
    engine = make_engine([AsyncFetch, Flaky], plugins=[("told", told)])
    ENGINES.append(engine)
    loop_thread = threading.current_thread().name
    report = asyncio.run(engine.aexecute_plan(["AsyncFetch", "Flaky"], UIF(input_query="q")))
    assert report.status == "success", report.errors
    assert report.stages == [["AsyncFetch", "Flaky"]]
    assert sorted(name for name, _ in told.seen) == ["AsyncFetch", "Flaky", "Flaky"]
    assert all(thread != loop_thread for _, thread in told.seen)  # handed off, awaited


def test_a_hung_alert_observer_does_not_hold_plugin_loading(make_skill: Any,
                                                            within: Any) -> None:
    """``plugin_failed`` alerts come from the plugin manager while it loads, before any
    engine's observer pool: before, one ``sof_alert`` observer that hung there held the
    host's start-up forever."""

    class HangsOnAlert:
        def __init__(self) -> None:
            self.kinds: list[str] = []

        @hookimpl
        def sof_alert(self, kind: str) -> None:
            self.kinds.append(kind)
            RELEASE.wait(60)

    class Broken:  # a hook pluggy does not know: the registration fails
        @hookimpl
        def sof_no_such_hook(self) -> None: ...

    hung = HangsOnAlert()
    engine = _engine(make_skill, ("hung", hung), timeout=0.3)
    records = within(lambda: [engine.plugins.register(Broken(), f"broken{i}",
                                                      raise_errors=False) for i in range(2)],
                     what="registering a broken plugin")
    assert [record.status for record in records] == ["failed", "failed"]
    assert hung.kinds == ["plugin_failed"]  # the second alert skipped the hung observer
    assert engine.plugins.observer_timeouts == 1
    RELEASE.set()  # the hung call returns: the observer is told of the next failure again
    deadline = time.monotonic() + 5
    while engine.plugins._hung_alerts and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.plugins.register(Broken(), "broken-again", raise_errors=False)
    assert hung.kinds == ["plugin_failed", "plugin_failed"]


def test_an_async_skill_does_not_start_once_the_run_ended_during_its_observers() -> None:
    """The run's total timeout comes while a hung ``sof_before_skill`` is awaited: the run
    is over, so the skill is not started after it (nothing of it could be recorded)."""
    ran: list[str] = []

    class Records(BaseSkillModule):
        skill_name = "Records"
        skill_description = "notes that it ran"
        required_inputs = ["input_query"]
        output_keys = ["noted"]

        async def execute(self, uif: UIF) -> UIF:
            ran.append("ran")
            uif.intermediate_data["noted"] = True
            return uif

    engine = make_engine([Records], plugins=[("hung", _hangs_on("sof_before_skill"))],
                         observer_timeout=0.6, total_timeout=0.2)
    ENGINES.append(engine)
    started = time.monotonic()
    report = asyncio.run(asyncio.wait_for(
        engine.aexecute_plan(["Records"], UIF(input_query="q")), 10))
    assert time.monotonic() - started < 5  # hangs only
    assert report.status == "timeout"
    assert ran == []
    assert "noted" not in report.uif.intermediate_data


@pytest.mark.parametrize("executor", ["threads", "sequential", "aexecute_plan"])
@pytest.mark.parametrize("wide", [False, True])
def test_a_slow_before_skill_observer_is_not_counted_against_a_sync_skill(
        make_skill: Any, within: Any, executor: str, wide: bool) -> None:
    """Before: a sync skill's ``sof_before_skill`` observers were told inside its deadline,
    so one slower than the skill's timeout (here a hung one, given up on at 0.5 s) timed
    out a skill that needs no time at all. Now its deadline waits for them: both the run's
    own thread and, in a wide stage, a pool thread."""
    names = ["Quick0", "Quick1"] if wide else ["Quick0"]
    skills = [make_skill(name, ["input_query"], [name.lower()], max_execution_time=0.2)
              for name in names]
    engine = make_engine(skills, plugins=[("hung", _hangs_on("sof_before_skill"))],
                         observer_timeout=0.5,
                         executor="threads" if executor == "aexecute_plan" else executor)
    ENGINES.append(engine)

    def run() -> Any:
        if executor == "aexecute_plan":  # sync skills in the step pool, watched by the run
            return asyncio.run(engine.aexecute_plan(names, UIF(input_query="q")))
        return engine.execute_plan(names, UIF(input_query="q"))

    report = within(run, what="execute_plan")
    assert report.status == "success", report.errors
    assert [r.status for r in report.results] == ["success"] * len(names)
    assert engine.plugins.observer_timeouts >= 1


def test_a_skill_still_times_out_at_its_own_deadline_after_its_observers(
        make_skill: Any) -> None:
    """The deadline starts afresh once the observers were told: a skill that overruns it is
    still timed out, at its own timeout after them."""

    def sleeps(uif: Any) -> None:
        time.sleep(1.5)

    skills = [make_skill("Slow", ["input_query"], ["slow"], body=sleeps,
                         max_execution_time=0.2)]
    engine = make_engine(skills, plugins=[("hung", _hangs_on("sof_before_skill"))],
                         observer_timeout=0.3)
    ENGINES.append(engine)
    started = time.monotonic()
    report = engine.execute_plan(["Slow"], UIF(input_query="q"))
    took = time.monotonic() - started
    assert report.status in ("timeout", "failure", "partial"), report.errors
    assert report.results[0].status == "timeout"
    assert took < 1.4  # hangs only: given up on at its deadline, not when it returned


def test_a_retried_async_skills_deadline_starts_after_its_first_observers() -> None:
    class Retried(BaseSkillModule):
        skill_name = "Retried"
        skill_description = "retried async skill with a short timeout"
        required_inputs = ["input_query"]
        output_keys = ["retried"]
        max_execution_time = 0.2
        max_retries = 2

        async def execute(self, uif: UIF) -> UIF:
            await asyncio.sleep(0.01)
            uif.intermediate_data["retried"] = True
            return uif

    engine = make_engine([Retried], plugins=[("hung", _hangs_on("sof_before_skill"))],
                         observer_timeout=0.4)
    ENGINES.append(engine)
    report = asyncio.run(asyncio.wait_for(
        engine.aexecute_plan(["Retried"], UIF(input_query="q")), 10))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["retried"] is True


@pytest.mark.parametrize("error", [SystemExit(3), GeneratorExit(), BaseException("odd")],
                         ids=["SystemExit", "GeneratorExit", "BaseException"])
@pytest.mark.parametrize("hook", ["sof_before_plan", "sof_before_skill", "sof_after_skill",
                                  "sof_after_plan"])
def test_an_inline_observer_raising_any_exception_never_breaks_the_run(
        make_skill: Any, hook: str, error: BaseException) -> None:
    # only Exception was caught: SystemExit out of an inline sof_before_plan ended the run,
    # and out of sof_before_skill failed the skill (pooled observers were contained)
    def raises() -> None:
        raise error

    implementations = {  # each hook's own argument name: pluggy passes it by name
        "sof_before_plan": lambda self, plan: raises(),
        "sof_before_skill": lambda self, skill: raises(),
        "sof_after_skill": lambda self, result: raises(),
        "sof_after_plan": lambda self, report: raises(),
    }
    observer = type("Raises", (), {hook: hookimpl(inline_observer(implementations[hook]))})()
    engine = _engine(make_skill, ("raises", observer))
    errors_before = engine.plugins.observer_errors
    report = engine.execute_plan(["Plain"], UIF(input_query="q"))
    assert report.status == "success" and report.results[0].status == "success"
    assert engine.plugins.observer_errors == errors_before + 1


def test_ctrl_c_in_an_inline_observer_still_stops_the_host(make_skill: Any) -> None:
    class Interrupts:
        @hookimpl
        @inline_observer
        def sof_before_plan(self, plan: list[str]) -> None:
            raise KeyboardInterrupt

    engine = _engine(make_skill, ("interrupts", Interrupts()))
    with pytest.raises(KeyboardInterrupt):
        engine.execute_plan(["Plain"], UIF(input_query="q"))
