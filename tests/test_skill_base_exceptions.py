"""``KeyboardInterrupt`` is the one exception that leaves ``execute_plan`` (docs/errors.md).

Any other exception a skill raises is that skill's failure in the report, including those
that are not ``Exception``s: ``SystemExit``, ``GeneratorExit``, a bare ``BaseException`` and
a ``CancelledError`` of the skill's own (raised, or let out of an await of a future that
something else cancelled). They used to leave ``execute_plan`` and ``aexecute_plan``: a
cancellation inside a skill's own code cancelled the host's call. A cancellation of the
caller's task (``task.cancel()``, ``asyncio.timeout``) still propagates.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

RAISED = {
    "SystemExit": SystemExit(3),
    "GeneratorExit": GeneratorExit(),
    "CancelledError": asyncio.CancelledError(),
    "BaseException": BaseException("odd"),
}


def skills(error: BaseException, is_async: bool) -> list[type[BaseSkillModule]]:
    """A skill raising ``error`` and one after it that needs nothing from it."""

    class Raises(BaseSkillModule):
        skill_name = "Raises"
        skill_description = "raises a BaseException"
        output_keys = ["never"]

        if is_async:
            async def execute(self, uif: UIF) -> UIF:
                raise error
        else:
            def execute(self, uif: UIF) -> UIF:
                raise error

    class After(BaseSkillModule):
        skill_name = "After"
        skill_description = "runs after it"
        output_keys = ["after"]

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["after"] = True
            return uif

    return [Raises, After]


def check(report: Any, name: str, status: str = "failure") -> None:
    raised = next(r for r in report.results if r.skill == "Raises")
    assert report.status == status
    assert (raised.status, raised.error_type) == ("failed", name)


@pytest.mark.parametrize("name", list(RAISED))
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("executor", ["threads", "sequential", "asyncio"])
def test_a_skills_base_exception_is_its_failure_not_the_hosts(
    name: str, is_async: bool, executor: str
) -> None:
    engine = make_engine(skills(RAISED[name], is_async), continue_on_skill_failure=True)
    report = engine.execute_plan(["Raises", "After"], UIF.for_query("q"), executor=executor)
    check(report, name, "partial")  # the run went on
    assert report.uif.intermediate_data["after"] is True


@pytest.mark.parametrize("name", list(RAISED))
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_on_the_callers_loop_too(name: str, is_async: bool) -> None:
    if name == "CancelledError" and is_async and sys.version_info < (3, 11):
        pytest.skip("before 3.11 a task cannot tell its own cancellation from its caller's")
    engine = make_engine(skills(RAISED[name], is_async))

    async def go() -> Any:
        report = await engine.aexecute_plan(["Raises", "After"], UIF.for_query("q"))
        task = asyncio.current_task()
        assert task is not None and getattr(task, "cancelling", lambda: 0)() == 0
        await asyncio.sleep(0)  # the host's task goes on
        return report

    check(asyncio.run(go()), name)


class AwaitsACancelledFuture(BaseSkillModule):
    skill_name = "AwaitsACancelledFuture"
    skill_description = "awaits a task that something else cancels"
    output_keys = ["never"]

    async def execute(self, uif: UIF) -> UIF:
        inner = asyncio.ensure_future(asyncio.sleep(10))
        asyncio.get_running_loop().call_later(0.01, inner.cancel)
        await inner  # raises CancelledError in the skill; its task was not cancelled
        return uif


class Waits(BaseSkillModule):
    skill_name = "Waits"
    skill_description = "awaits 10 s"
    output_keys = ["never"]

    async def execute(self, uif: UIF) -> UIF:
        await asyncio.sleep(10)
        return uif


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tasks say who cancelled from 3.11")
def test_a_cancellation_inside_the_skills_own_awaits_is_its_failure() -> None:
    engine = make_engine([AwaitsACancelledFuture])
    report = asyncio.run(engine.aexecute_plan(["AwaitsACancelledFuture"], UIF.for_query("q")))
    result = report.results[0]
    assert (result.status, result.error_type) == ("failed", "CancelledError")


def test_the_callers_cancellation_still_propagates() -> None:
    engine = make_engine([Waits])

    async def go() -> None:
        task = asyncio.ensure_future(engine.aexecute_plan(["Waits"], UIF.for_query("q")))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
def test_asyncio_timeout_around_aexecute_plan_still_times_out() -> None:
    engine = make_engine([Waits])

    async def go() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await engine.aexecute_plan(["Waits"], UIF.for_query("q"))

    asyncio.run(go())
