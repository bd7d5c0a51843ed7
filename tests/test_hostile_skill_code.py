"""A skill's own code runs in more places than ``execute``: none of it may hold the run.

Its exception's ``__str__``: before, one that raised ended the run as "executor 'threads'
crashed" with no result for the skill; one that hung did so while the run held its lock,
so neither the step's timeout nor the run's ``total_timeout`` could end it, and
``execute_plan`` never returned. Now it is read in the thread that ran the skill.

The values it wrote: before, the merge ran the output type check (``isinstance``, which
asks a value for its ``__class__``), the ``==`` that diffs a returned UIF against the view,
and the key lookups of the run's dicts while the run held its lock. A value whose
``__class__`` never returned (a lazy proxy stuck loading) kept ``execute_plan`` from
returning in the same way. Now those checks run in the thread that ran the skill, under
its deadline, and only plain stores happen under the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

RELEASE = threading.Event()


class Unreadable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class Endless(Exception):
    def __str__(self) -> str:
        RELEASE.wait(60)  # "forever", until the test is over
        return "finally"


class RaisesUnreadable(BaseSkillModule):
    skill_name = "RaisesUnreadable"
    skill_description = "raises an exception whose str() raises"
    required_inputs = ["input_query"]
    output_keys = ["unreadable"]

    def execute(self, uif: UIF) -> UIF:
        raise Unreadable()


class RaisesEndless(BaseSkillModule):
    skill_name = "RaisesEndless"
    skill_description = "raises an exception whose str() never returns"
    required_inputs = ["input_query"]
    output_keys = ["endless"]
    max_execution_time = 0.5

    def execute(self, uif: UIF) -> UIF:
        raise Endless()


class After(BaseSkillModule):
    skill_name = "After"
    skill_description = "runs after the others"
    required_inputs = ["input_query"]
    output_keys = ["after"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["after"] = True
        return uif


class StuckProxy:
    """Stands for a lazy proxy whose ``__class__`` loads its target, and that load hangs."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        RELEASE.wait(60)  # "forever", until the test is over
        return str


class BrokenProxy:
    """A proxy whose ``__class__`` fails to load its target."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise ConnectionError("the proxy's target could not be loaded")


class StuckEquality:
    """A value whose ``==`` never returns (compared when a returned UIF is diffed)."""

    def __eq__(self, other: object) -> bool:
        RELEASE.wait(60)
        return False

    __hash__ = object.__hash__


class WritesStuckProxy(BaseSkillModule):
    skill_name = "WritesStuckProxy"
    skill_description = "writes a typed output whose __class__ never returns"
    required_inputs = ["input_query"]
    output_keys = {"proxied": str}
    max_execution_time = 0.5

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["proxied"] = StuckProxy()
        return uif


class WritesBrokenProxy(BaseSkillModule):
    skill_name = "WritesBrokenProxy"
    skill_description = "writes a typed output whose __class__ raises"
    required_inputs = ["input_query"]
    output_keys = {"broken": str}

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["broken"] = BrokenProxy()
        return uif


class ReturnsStuckCopy(BaseSkillModule):
    skill_name = "ReturnsStuckCopy"
    skill_description = "returns another UIF whose input value's == never returns"
    required_inputs = ["input_query", "seed"]
    output_keys = ["copied"]
    max_execution_time = 0.5

    def execute(self, uif: UIF) -> UIF:
        # model_copy: not validated, as a skill that builds its own UIF may do
        return uif.model_copy(update={"intermediate_data": {"seed": StuckEquality(),
                                                            "copied": 1}})


class KeyLike(str):
    """A ``str`` subclass key with an ``==`` of its own (an enum-like key type)."""

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)

    __hash__ = str.__hash__


class WritesSubclassKey(BaseSkillModule):
    skill_name = "WritesSubclassKey"
    skill_description = "writes its output under a str subclass key"
    required_inputs = ["input_query"]
    output_keys = ["answer"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data[KeyLike("answer")] = "yes"
        return uif


@pytest.fixture(autouse=True)
def _release() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()  # lets the abandoned str() calls end


def _run_bounded(engine: Any, plan: list[str], uif: UIF | None = None,
                 limit: float = 10.0) -> Any:
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(
        engine.execute_plan(plan, uif or UIF(input_query="q"))), daemon=True)
    worker.start()
    worker.join(limit)
    assert box, f"execute_plan({plan}) did not return within {limit} s"
    return box[0]


@pytest.mark.parametrize("executor", ["threads", "sequential", "asyncio"])
def test_an_exception_whose_str_raises_fails_its_skill_not_the_run(executor: str) -> None:
    engine = make_engine([RaisesUnreadable, After], executor=executor,
                         continue_on_skill_failure=True)
    report = _run_bounded(engine, ["RaisesUnreadable", "After"])
    result = next(r for r in report.results if r.skill == "RaisesUnreadable")
    assert result.status == "failed"
    assert result.error_type == "Unreadable"
    assert "its message could not be read: str() raised RuntimeError" in result.error
    assert report.uif.intermediate_data["after"] is True
    assert not any("crashed" in error for error in report.errors)


def test_an_exception_whose_str_never_returns_is_given_up_on_at_the_steps_deadline() -> None:
    engine = make_engine([RaisesEndless, After], continue_on_skill_failure=True)
    report = _run_bounded(engine, ["RaisesEndless", "After"])
    result = next(r for r in report.results if r.skill == "RaisesEndless")
    assert result.status == "timeout"
    assert report.uif.intermediate_data["after"] is True
    again = _run_bounded(engine, ["After"])  # the engine, and the watchdog, go on
    assert again.status == "success", again.errors


def test_in_a_wide_stage_too() -> None:
    engine = make_engine([RaisesEndless, RaisesUnreadable, After],
                         continue_on_skill_failure=True)
    report = _run_bounded(engine, ["RaisesEndless", "RaisesUnreadable", "After"])
    by_skill = {r.skill: r for r in report.results}
    assert by_skill["RaisesEndless"].status == "timeout"
    assert by_skill["RaisesUnreadable"].error_type == "Unreadable"
    assert by_skill["After"].status == "success"


@pytest.mark.parametrize("executor", ["threads", "sequential"])
def test_an_output_whose_class_never_returns_times_out_its_skill_not_the_run(
        executor: str) -> None:
    engine = make_engine([WritesStuckProxy, After], executor=executor,
                         continue_on_skill_failure=True)
    report = _run_bounded(engine, ["WritesStuckProxy", "After"])
    by_skill = {r.skill: r for r in report.results}
    assert by_skill["WritesStuckProxy"].status == "timeout"
    assert by_skill["After"].status == "success"
    assert "proxied" not in report.uif.intermediate_data  # nothing of it was merged
    assert report.uif.intermediate_data["after"] is True
    again = _run_bounded(engine, ["After"])  # the engine and its watchdog go on
    assert again.status == "success", again.errors


def test_in_a_wide_stage_the_other_skills_are_merged() -> None:
    engine = make_engine([WritesStuckProxy, WritesBrokenProxy, After],
                         continue_on_skill_failure=True)
    report = _run_bounded(engine, ["WritesStuckProxy", "WritesBrokenProxy", "After"])
    by_skill = {r.skill: r for r in report.results}
    assert by_skill["WritesStuckProxy"].status == "timeout"
    assert by_skill["WritesBrokenProxy"].status == "failed"
    assert by_skill["After"].status == "success"
    assert report.uif.intermediate_data["after"] is True


@pytest.mark.parametrize("executor", ["threads", "sequential", "asyncio"])
def test_an_output_whose_class_raises_fails_its_skill_with_that_error(executor: str) -> None:
    engine = make_engine([WritesBrokenProxy, After], executor=executor,
                         continue_on_skill_failure=True)
    report = _run_bounded(engine, ["WritesBrokenProxy", "After"])
    result = next(r for r in report.results if r.skill == "WritesBrokenProxy")
    assert result.status == "failed"
    assert result.error_type == "ConnectionError"
    assert "could not be loaded" in result.error
    assert "broken" not in report.uif.intermediate_data
    assert not any("crashed" in error for error in report.errors)


def test_a_returned_uif_whose_values_never_compare_times_out_its_skill() -> None:
    engine = make_engine([ReturnsStuckCopy, After], continue_on_skill_failure=True)
    report = _run_bounded(engine, ["ReturnsStuckCopy", "After"],
                          UIF(input_query="q", intermediate_data={"seed": "s"}))
    by_skill = {r.skill: r for r in report.results}
    assert by_skill["ReturnsStuckCopy"].status == "timeout"
    assert "copied" not in report.uif.intermediate_data
    assert by_skill["After"].status == "success"


@pytest.mark.parametrize("executor", ["threads", "sequential", "asyncio"])
def test_keys_a_skill_writes_are_stored_as_plain_strings(executor: str) -> None:
    engine = make_engine([WritesSubclassKey], executor=executor)
    report = _run_bounded(engine, ["WritesSubclassKey"])
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["answer"] == "yes"
    assert all(type(key) is str for key in report.uif.intermediate_data)
