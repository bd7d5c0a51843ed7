"""Timeouts that hold (issue 10, item 3): the configured ``skill_timeout`` applies to skills
that set no ``max_execution_time``, a skill can read its deadline, retries stop at it, async
skills are cancelled for real and blamed when they block their loop, Ctrl-C in a skill is
reported against it and then raised, and a timeout that could never expire is a config
error."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
from sof_test_support import wait_until

import sof_core
from sof_core import UIF, BaseSkillModule, ConfigError, CoordinatorEngine, SOFConfig, hookimpl
from sof_core.testing import make_engine


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def run(engine: CoordinatorEngine, plan: list[str], **data: Any) -> Any:
    return engine.execute_plan(plan, UIF(input_query="q", intermediate_data=data))


# --- max_execution_time defaults to skill_timeout --------------------------------------------


class Plain(BaseSkillModule):
    """Sets no max_execution_time: the configured skill_timeout applies."""

    skill_name = "Plain"
    skill_description = "waits for the test's event"
    required_inputs = ["input_query"]
    output_keys = ["plain"]
    release: threading.Event | None = None

    def execute(self, uif: UIF) -> UIF:
        assert self.release is not None
        self.release.wait(5)
        uif.intermediate_data["plain"] = True
        return uif


def test_max_execution_time_defaults_to_the_configured_skill_timeout(
    release: threading.Event,
) -> None:
    assert BaseSkillModule.max_execution_time is None
    skill = type("Plain", (Plain,), {"release": release})
    engine = make_engine([skill], skill_timeout=0.2)
    assert engine.compile(["Plain"]).steps["Plain"].timeout == 0.2
    started = time.monotonic()
    report = run(engine, ["Plain"])
    assert report.result("Plain").status == "timeout"
    assert time.monotonic() - started < 2.0
    assert "0.2s" in report.result("Plain").error


def test_SOF_SKILL_TIMEOUT_reaches_skills_that_set_no_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from sof_core.config import load_config

    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.setenv("SOF_SKILL_TIMEOUT", "7.5")
    config = load_config(plugins_autoload=False)
    engine = CoordinatorEngine(sof_core.PluginManager(config), config)
    engine.register_skills([Plain], plugin_name="plain")
    assert engine.compile(["Plain"]).steps["Plain"].timeout == 7.5


# --- a skill reads its deadline ----------------------------------------------------------------


def test_a_skill_reads_its_deadline_with_current_deadline() -> None:
    seen: dict[str, Any] = {}

    class Reader(BaseSkillModule):
        skill_name = "Reader"
        skill_description = "records its deadline"
        required_inputs = ["input_query"]
        output_keys = ["left"]
        max_execution_time = 5.0

        def execute(self, uif: UIF) -> UIF:
            seen["deadline"] = sof_core.current_deadline()
            seen["now"] = time.monotonic()
            seen["view"] = uif.remaining_time()  # the same, read on the view
            seen["view_deadline"] = uif.current_deadline()
            uif.intermediate_data["left"] = True
            return uif

    class AsyncReader(Reader):
        skill_name = "AsyncReader"
        output_keys = ["aleft"]
        max_execution_time = 3.0

        async def execute(self, uif: UIF) -> UIF:  # type: ignore[override]
            await asyncio.sleep(0)
            seen["async"] = sof_core.current_deadline()
            seen["anow"] = time.monotonic()
            seen["aview"] = uif.remaining_time()
            seen["aview_deadline"] = uif.current_deadline()
            uif.intermediate_data["aleft"] = True
            return uif

    assert sof_core.current_deadline() is None  # outside a skill
    engine = make_engine([Reader, AsyncReader])
    for executor in ("threads", "sequential", "asyncio"):
        seen.clear()
        report = engine.execute_plan(["Reader", "AsyncReader"], UIF(input_query="q"),
                                     executor=executor)
        assert report.status == "success", report.errors
        assert 4.0 < seen["deadline"] - seen["now"] <= 5.0
        assert 2.0 < seen["async"] - seen["anow"] <= 3.0
        assert 4.0 < seen["view"] <= 5.0 and 2.0 < seen["aview"] <= 3.0
        assert seen["view_deadline"] == seen["deadline"]
        assert seen["aview_deadline"] == seen["async"]
    seen.clear()
    report = asyncio.run(engine.aexecute_plan(["Reader", "AsyncReader"], UIF(input_query="q")))
    assert report.status == "success", report.errors
    assert 4.0 < seen["deadline"] - seen["now"] <= 5.0
    assert 2.0 < seen["async"] - seen["anow"] <= 3.0
    assert 4.0 < seen["view"] <= 5.0 and 2.0 < seen["aview"] <= 3.0
    assert sof_core.current_deadline() is None
    assert UIF(input_query="q").remaining_time() is None  # outside a skill
    assert UIF(input_query="q").current_deadline() is None


def test_current_deadline_is_never_later_than_the_runs_total_timeout() -> None:
    # A skill with 30 s of its own in a run with 3 s in all has 3 s: the run ends then, so a
    # client given the skill's own time would still be waiting when the run is abandoned
    # (the LLM backend held its connection past the run and never fell back).
    seen: dict[str, float] = {}

    class Long(BaseSkillModule):
        skill_name = "Long"
        skill_description = "records the time it has left"
        required_inputs = ["input_query"]
        output_keys = ["long"]
        max_execution_time = 30.0

        def execute(self, uif: UIF) -> UIF:
            deadline = sof_core.current_deadline()
            assert deadline is not None
            seen["sync"] = deadline - time.monotonic()
            uif.intermediate_data["long"] = True
            return uif

    class AsyncLong(Long):
        skill_name = "AsyncLong"
        output_keys = ["along"]

        async def execute(self, uif: UIF) -> UIF:  # type: ignore[override]
            deadline = sof_core.current_deadline()
            assert deadline is not None
            seen["async"] = deadline - time.monotonic()
            uif.intermediate_data["along"] = True
            return uif

    class Wide(Long):
        skill_name = "Wide"
        output_keys = ["wide"]

        def execute(self, uif: UIF) -> UIF:
            deadline = sof_core.current_deadline()
            assert deadline is not None
            seen["pool"] = deadline - time.monotonic()
            uif.intermediate_data["wide"] = True
            return uif

    plan = ["Long", "AsyncLong", "Wide"]
    engine = make_engine([Long, AsyncLong, Wide], total_timeout=3.0)
    for executor in ("threads", "sequential", "asyncio"):
        seen.clear()
        report = engine.execute_plan(plan, UIF(input_query="q"), executor=executor)
        assert report.status == "success", report.errors
        assert set(seen) == {"sync", "async", "pool"}
        assert all(1.0 < left <= 3.0 for left in seen.values()), (executor, seen)
    seen.clear()
    report = asyncio.run(engine.aexecute_plan(plan, UIF(input_query="q")))
    assert report.status == "success", report.errors
    assert all(1.0 < left <= 3.0 for left in seen.values()), seen
    # No total timeout: the skill's own limit.
    seen.clear()
    report = make_engine([Long], total_timeout=None).execute_plan(["Long"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert 25.0 < seen["sync"] <= 30.0


# --- retries stop at the deadline ----------------------------------------------------------------


def test_retries_stop_at_the_deadline() -> None:
    calls: list[float] = []

    class Flaky(BaseSkillModule):
        skill_name = "Flaky"
        skill_description = "fails after a moment, every time"
        required_inputs = ["input_query"]
        output_keys = ["flaky"]
        max_execution_time = 0.35

        def execute(self, uif: UIF) -> UIF:
            calls.append(time.monotonic())
            time.sleep(0.1)
            raise RuntimeError("flaky backend")

    engine = make_engine([Flaky], skill_retries=50)
    report = run(engine, ["Flaky"])
    made = len(calls)
    time.sleep(0.5)  # an attempt still going would start more calls meanwhile
    assert len(calls) == made, "attempts went on after the run reported the skill"
    result = report.result("Flaky")
    assert result.status in ("timeout", "failed")
    assert result.attempts == made
    assert made <= 5


# --- Ctrl-C inside a skill --------------------------------------------------------------------


def test_keyboard_interrupt_in_a_skill_is_reported_against_it_then_raised() -> None:
    reports: list[Any] = []

    class Observer:
        @hookimpl
        def sof_after_plan(self, report: Any) -> None:
            reports.append(report)

    class Interrupted(BaseSkillModule):
        skill_name = "Interrupted"
        skill_description = "the user pressed Ctrl-C while it ran"
        required_inputs = ["input_query"]
        output_keys = ["never"]

        def execute(self, uif: UIF) -> UIF:
            raise KeyboardInterrupt

    for executor in ("threads", "sequential", "asyncio"):
        reports.clear()
        engine = make_engine([Interrupted], plugins=[("observer", Observer())])
        with pytest.raises(KeyboardInterrupt) as raised:
            engine.execute_plan(["Interrupted"], UIF(input_query="q"), executor=executor)
        assert "Interrupted" in " ".join(getattr(raised.value, "__notes__", []))
        (report,) = reports
        result = report.result("Interrupted")
        assert result.error_type == "KeyboardInterrupt"
        assert result.status == "failed"
        assert not any("executor" in error and "crashed" in error for error in report.errors)
        # The same report travels with the interrupt, for a host that goes on (a server).
        assert raised.value.sof_report is report  # type: ignore[attr-defined]


def test_keyboard_interrupt_out_of_aexecute_plan_carries_the_report() -> None:
    class Interrupted(BaseSkillModule):
        skill_name = "AsyncInterrupted"
        skill_description = "Ctrl-C while it awaited"
        required_inputs = ["input_query"]
        output_keys = ["never"]

        async def execute(self, uif: UIF) -> UIF:
            raise KeyboardInterrupt

    engine = make_engine([Interrupted])
    with pytest.raises(KeyboardInterrupt) as raised:
        asyncio.run(engine.aexecute_plan(["AsyncInterrupted"], UIF(input_query="q")))
    report = raised.value.sof_report  # type: ignore[attr-defined]
    assert report.result("AsyncInterrupted").error_type == "KeyboardInterrupt"
    assert report.status == "failure"


def test_each_retry_pause_doubles_the_one_before() -> None:
    starts: list[float] = []

    class Flaky(BaseSkillModule):
        skill_name = "Flaky"
        skill_description = "fails three times"
        required_inputs = ["input_query"]
        output_keys = ["flaky"]
        max_execution_time = 5.0

        def execute(self, uif: UIF) -> UIF:
            starts.append(time.monotonic())
            if len(starts) < 4:
                raise ConnectionError("try again")
            uif.intermediate_data["flaky"] = True
            return uif

    report = run(make_engine([Flaky], skill_retries=3, retry_backoff=0.05), ["Flaky"])
    assert report.status == "success" and report.result("Flaky").attempts == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2, gaps


@pytest.mark.parametrize("value", [float("inf"), 1e300])
def test_an_endless_retry_backoff_is_a_config_error(value: float) -> None:
    # With no timeout at all, it used to reach time.sleep: OverflowError, "executor crashed".
    with pytest.raises(ConfigError) as raised:
        SOFConfig(retry_backoff=value)
    assert raised.value.key == "retry_backoff"


# --- timeouts are finite -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("inf"), 1e300, float("nan")])
@pytest.mark.parametrize("key", ["skill_timeout", "total_timeout"])
def test_a_timeout_that_never_expires_is_a_config_error(key: str, value: float) -> None:
    from sof_core.config import load_config

    with pytest.raises(ConfigError) as raised:
        load_config(**{key: value})
    assert raised.value.key == key
    # Given to SOFConfig directly, or assigned, it is a ConfigError too (and still
    # pydantic's ValidationError, a ValueError, for code that catches that).
    with pytest.raises(ConfigError, match=key) as direct:
        SOFConfig(**{key: value})
    assert direct.value.key == key and isinstance(direct.value, pydantic.ValidationError)
    config = SOFConfig()
    with pytest.raises(ConfigError) as assigned:
        setattr(config, key, value)
    assert assigned.value.key == key and isinstance(assigned.value, ValueError)
    assert getattr(config, key) == getattr(SOFConfig(), key)  # the bad value was not kept


@pytest.mark.parametrize("key", ["skill_timeout", "total_timeout"])
def test_every_sofconfig_validator_raises_a_config_error(key: str) -> None:
    # The dict, JSON and string validators each turn pydantic's error into one naming the key.
    attempts = [
        lambda: SOFConfig.model_validate({key: 1e300}),
        lambda: SOFConfig.model_validate_json(f'{{"{key}": 1e300}}'),
        lambda: SOFConfig.model_validate_strings({key: "1e300"}),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigError, match=key) as raised:
            attempt()
        assert raised.value.key == key and isinstance(raised.value, pydantic.ValidationError)
    with pytest.raises(ConfigError) as broken:  # not JSON at all: no key to name
        SOFConfig.model_validate_json("{not json")
    assert broken.value.key is None and isinstance(broken.value, pydantic.ValidationError)
    assert SOFConfig.model_validate_json(f'{{"{key}": 2.5}}').model_dump()[key] == 2.5


def test_an_infinite_max_execution_time_is_a_definition_error_naming_the_skill() -> None:
    with pytest.raises(sof_core.SkillDefinitionError, match=r"Endless.*max_execution_time"):
        endless = type("Endless", (Plain,), {"skill_name": "Endless",
                                             "max_execution_time": 1e300})
        make_engine([endless])


def test_a_huge_timeout_never_overflows_out_of_execute_plan() -> None:
    class Quick(Plain):
        skill_name = "Quick"
        max_execution_time = 900_000.0

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["plain"] = True
            return uif

    report = run(make_engine([Quick], total_timeout=1_000_000), ["Quick"])
    assert report.status == "success", report.errors


# --- async skills --------------------------------------------------------------------------------


def test_an_async_skill_is_cancelled_for_real_at_its_deadline() -> None:
    state: dict[str, Any] = {}

    class Waiter(BaseSkillModule):
        skill_name = "Waiter"
        skill_description = "awaits a reply that never comes"
        required_inputs = ["input_query"]
        output_keys = ["reply"]
        max_execution_time = 0.2

        async def execute(self, uif: UIF) -> UIF:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                state["cancelled"] = time.monotonic()
                raise
            return uif

    engine = make_engine([Waiter])
    for executor in ("threads", "asyncio"):
        state.clear()
        report = engine.execute_plan(["Waiter"], UIF(input_query="q"), executor=executor)
        assert report.result("Waiter").status == "timeout"
        assert wait_until(lambda: "cancelled" in state, 2.0)
    state.clear()
    report = asyncio.run(engine.aexecute_plan(["Waiter"], UIF(input_query="q")))
    assert report.result("Waiter").status == "timeout"
    assert "cancelled" in state
    assert engine.abandoned_calls() == {}  # cancelled calls end: nothing is left hung


def test_an_async_skill_that_turns_its_cancellation_into_another_error_is_a_timeout() -> None:
    # A client library may catch the cancellation and raise its own error; the step still
    # ended at its deadline (before, it was reported "failed" with that error).
    class Wraps(BaseSkillModule):
        skill_name = "Wraps"
        skill_description = "turns CancelledError into RuntimeError"
        required_inputs = ["input_query"]
        output_keys = ["wrapped"]
        max_execution_time = 0.2

        async def execute(self, uif: UIF) -> UIF:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                raise RuntimeError("request aborted") from None
            return uif

    engine = make_engine([Wraps])
    reports = [engine.execute_plan(["Wraps"], UIF(input_query="q"), executor=executor)
               for executor in ("threads", "sequential", "asyncio")]
    reports.append(asyncio.run(engine.aexecute_plan(["Wraps"], UIF(input_query="q"))))
    for report in reports:
        result = report.result("Wraps")
        assert (result.status, result.error_type) == ("timeout", "SkillTimeoutError"), result
    assert engine.abandoned_calls() == {}


def _blocking_stage() -> list[type[BaseSkillModule]]:
    class Blocker1(BaseSkillModule):
        skill_name = "Blocker1"
        skill_description = "time.sleep inside async def"
        required_inputs = ["input_query"]
        output_keys = ["b1"]
        max_execution_time = 0.2

        async def execute(self, uif: UIF) -> UIF:
            time.sleep(0.5)  # blocks the event loop
            await asyncio.sleep(0)
            uif.intermediate_data[self.output_keys[0]] = True
            return uif

    class Blocker2(Blocker1):
        skill_name = "Blocker2"
        output_keys = ["b2"]

    class Polite(BaseSkillModule):
        skill_name = "Polite"
        skill_description = "awaits properly"
        required_inputs = ["input_query"]
        output_keys = ["polite"]
        max_execution_time = 0.2

        async def execute(self, uif: UIF) -> UIF:
            await asyncio.sleep(0.05)
            uif.intermediate_data["polite"] = True
            return uif

    return [Blocker1, Blocker2, Polite]


def test_the_blame_for_blocking_the_loop_says_the_stretch_is_the_last_one() -> None:
    # It awaited for a while, then blocked: the error gave the blocked stretch alone ("for
    # 0.36s" under a 0.5 s limit), which read as if it had not overrun at all.
    class AwaitsThenBlocks(BaseSkillModule):
        skill_name = "AwaitsThenBlocks"
        skill_description = "awaits, then blocks its event loop"
        required_inputs = ["input_query"]
        output_keys = ["blocked"]
        max_execution_time = 0.5

        async def execute(self, uif: UIF) -> UIF:
            await asyncio.sleep(0.2)
            time.sleep(0.6)  # blocks the event loop past the deadline
            uif.intermediate_data["blocked"] = True
            return uif

    engine = make_engine([AwaitsThenBlocks])
    report = asyncio.run(engine.aexecute_plan(["AwaitsThenBlocks"], UIF(input_query="q")))
    result = report.result("AwaitsThenBlocks")
    assert result.status == "timeout", report.errors
    found = re.search(r"did not finish within 0\.5s: it blocked its event loop, without "
                      r"awaiting, for the last (\d+\.\d+)s before its deadline",
                      result.error or "")
    assert found, result.error
    assert 0.1 < float(found.group(1)) < 0.45  # the stretch since its await, not 0.5 s


def test_an_async_skill_blocking_its_event_loop_is_blamed_not_its_neighbour() -> None:
    engine = make_engine(_blocking_stage(), continue_on_skill_failure=True)
    plan = ["Blocker1", "Blocker2", "Polite"]
    for executor in ("asyncio", "threads"):
        report = engine.execute_plan(plan, UIF(input_query="q"), executor=executor)
        assert report.result("Polite").status == "success", (executor, report.errors)
        for name in ("Blocker1", "Blocker2"):
            result = report.result(name)
            assert result.status == "timeout", (executor, report.errors)
            assert "blocked its event loop" in result.error
    report = asyncio.run(engine.aexecute_plan(plan, UIF(input_query="q")))
    assert report.result("Polite").status == "success", report.errors
    assert {report.result(n).status for n in ("Blocker1", "Blocker2")} == {"timeout"}
