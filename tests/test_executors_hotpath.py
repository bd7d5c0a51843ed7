"""The fast paths keep every guarantee: scoped views, write checks, merge order, failures.

Each behaviour is checked on the inline walk (no timeouts: the coordinator calls skills
itself), on the supervised walk (timeouts on), and on every built-in executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

FAST = {"skill_timeout": None, "total_timeout": None}
SUPERVISED = {"skill_timeout": 30.0, "total_timeout": 60.0}
CONFIGS = [
    pytest.param({"executor": e, **c}, id=f"{e}-{n}")
    for e in ("sequential", "threads", "asyncio")
    for n, c in (("inline", FAST), ("supervised", SUPERVISED))
]


def skill(name: str, body: Any, requires: Any = (), outputs: Any = (), **attrs: Any) -> type:
    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"test skill {name}",
        "required_inputs": list(requires), "output_keys": list(outputs),
        "max_execution_time": None, "execute": body, **attrs,
    })


def write(key: str, value: Any) -> Any:
    def body(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data[key] = value
        return uif
    return body


@pytest.mark.parametrize("config", CONFIGS)
def test_a_skill_sees_only_its_declared_inputs(config: dict[str, Any]) -> None:
    seen: dict[str, Any] = {}

    def peek(self: Any, uif: UIF) -> UIF:
        seen["keys"] = sorted(uif.intermediate_data)
        try:
            uif.intermediate_data["secret"]
        except KeyError as exc:
            seen["error"] = type(exc).__name__
        uif.intermediate_data["out"] = 1
        return uif

    engine = make_engine([
        skill("A", write("a", 1), outputs=["a"]),
        skill("S", write("secret", 2), outputs=["secret"]),
        skill("Peek", peek, requires=["a"], outputs=["out"]),
    ], **config)
    report = engine.execute_plan(["A", "S", "Peek"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert seen == {"keys": ["a"], "error": "UndeclaredReadError"}


@pytest.mark.parametrize("config", CONFIGS)
def test_an_undeclared_write_fails_the_skill_naming_the_key(config: dict[str, Any]) -> None:
    engine = make_engine([skill("Sneaky", write("not_mine", 1), outputs=["mine"])], **config)
    report = engine.execute_plan(["Sneaky"], UIF(input_query="q"))
    result = report.result("Sneaky")
    assert report.status == "failure"
    assert result.error_type == "UndeclaredWriteError" and "'not_mine'" in result.error
    assert "not_mine" not in report.uif.intermediate_data


@pytest.mark.parametrize("config", CONFIGS)
def test_an_undeclared_field_write_fails_naming_the_field(config: dict[str, Any]) -> None:
    def body(self: Any, uif: UIF) -> UIF:
        uif.final_response = "sneaky"
        return uif

    engine = make_engine([skill("Field", body, outputs=["x"])], **config)
    report = engine.execute_plan(["Field"], UIF(input_query="q"))
    assert report.result("Field").error_type == "UndeclaredWriteError"
    assert "'final_response'" in report.result("Field").error
    assert report.uif.final_response is None


@pytest.mark.parametrize("config", CONFIGS)
def test_set_error_inside_a_skill_fails_it_even_after_a_field_write(config: dict[str, Any]) -> None:
    # pydantic replaces a model's __dict__ on validated assignment; the check must see that.
    def body(self: Any, uif: UIF) -> UIF:
        uif.final_response = "partial"
        uif.set_error("backend down", self.skill_name)
        return uif

    engine = make_engine([skill("Broken", body, outputs=["final_response"])], **config)
    report = engine.execute_plan(["Broken"], UIF(input_query="q"))
    assert report.status == "failure"
    assert "backend down" in report.result("Broken").error
    assert report.uif.final_response is None  # a failed skill's writes are discarded


@pytest.mark.parametrize("config", CONFIGS)
def test_declared_writes_logs_and_outputs_are_merged(config: dict[str, Any]) -> None:
    def body(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["k"] = 1
        uif.final_response = "hello"
        uif.add_log_entry("did it", self.skill_name)
        uif.add_warning("careful")
        uif.set_skill_output(self.skill_name, {"n": 1})
        return uif

    engine = make_engine([skill("W", body, outputs=["k", "final_response"])], **config)
    report = engine.execute_plan(["W"], UIF(input_query="q"))
    uif = report.uif
    assert report.status == "success", report.errors
    assert uif.intermediate_data == {"k": 1} and uif.final_response == "hello"
    assert uif.log_trace == ["[W] did it"] and uif.warnings == ["careful"]
    assert uif.get_skill_output("W", "n") == 1 and uif.executed_skills == ["W"]


@pytest.mark.parametrize("config", CONFIGS)
def test_a_failed_skill_leaves_no_trace_in_the_uif(config: dict[str, Any]) -> None:
    def body(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["k"] = 1
        uif.add_log_entry("half way")
        raise RuntimeError("crash")

    engine = make_engine([skill("Crash", body, outputs=["k"])], **config)
    report = engine.execute_plan(["Crash"], UIF(input_query="q"))
    assert report.result("Crash").status == "failed" and "crash" in report.result("Crash").error
    assert report.uif.intermediate_data == {} and report.uif.log_trace == []


@pytest.mark.parametrize("config", CONFIGS)
def test_a_skill_whose_input_never_came_is_skipped_with_the_reason(
    config: dict[str, Any],
) -> None:
    def silent(self: Any, uif: UIF) -> UIF:
        return uif  # declares "a" but never writes it

    engine = make_engine([
        skill("Silent", silent, outputs=["a"]),
        skill("Needs", write("b", 1), requires=["a"], outputs=["b"]),
    ], continue_on_skill_failure=True, **config)
    report = engine.execute_plan(["Silent", "Needs"], UIF(input_query="q"))
    result = report.result("Needs")
    assert result.status == "skipped" and "'Silent' did not write it" in result.error


@pytest.mark.parametrize("config", CONFIGS)
def test_a_returned_copy_is_diffed_and_checked(config: dict[str, Any]) -> None:
    def body(self: Any, uif: UIF) -> UIF:
        return uif.model_copy(update={"intermediate_data": {"k": 2}, "final_response": "x"})

    engine = make_engine([
        skill("Copy", body, outputs=["k", "final_response"]),
        skill("Undeclared", body, outputs=["k"]),
    ], continue_on_skill_failure=True, **config)
    report = engine.execute_plan(["Copy"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data == {"k": 2} and report.uif.final_response == "x"
    report = engine.execute_plan(["Undeclared"], UIF(input_query="q"))
    assert report.result("Undeclared").error_type == "UndeclaredWriteError"
    assert "'final_response'" in report.result("Undeclared").error


@pytest.mark.parametrize("executor", ["threads", "asyncio"])
def test_concurrent_skills_merge_in_plan_order_whatever_finishes_first(executor: str) -> None:
    release = threading.Event()

    def slow_first(self: Any, uif: UIF) -> UIF:
        release.wait(5)  # finishes last
        uif.add_log_entry("first")
        uif.intermediate_data["a"] = 1
        return uif

    def fast_second(self: Any, uif: UIF) -> UIF:
        uif.add_log_entry("second")
        uif.intermediate_data["b"] = 2
        release.set()
        return uif

    engine = make_engine([
        skill("First", slow_first, outputs=["a"]),
        skill("Second", fast_second, outputs=["b"]),
    ], executor=executor, **FAST)
    report = engine.execute_plan(["First", "Second"], UIF(input_query="q"))
    assert report.stages == [["First", "Second"]]
    assert report.uif.log_trace == ["first", "second"]
    assert report.uif.executed_skills == ["First", "Second"]


class RecordingExecutor:
    """A third-party executor without the inline flag: it must see every stage."""

    name = "recording"
    concurrent = False

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run_stage(self, run: Any, steps: Any) -> list[Any]:
        self.calls.append([s.name for s in steps])
        return [run.call_inline(step) for step in steps]


def test_executors_without_the_inline_flag_run_every_stage_themselves() -> None:
    executor = RecordingExecutor()

    class Plugin:
        from sof_core import hookimpl

        @hookimpl
        def sof_register_executors(self) -> list[Any]:
            return [executor]

    engine = make_engine([
        skill("A", write("a", 1), outputs=["a"]),
        skill("B", write("b", 1), requires=["a"], outputs=["b"]),
    ], plugins=[("recording", Plugin())], executor="recording", **FAST)
    report = engine.execute_plan(["A", "B"], UIF(input_query="q"))
    assert report.status == "success"
    assert executor.calls == [["A"], ["B"]]


def test_an_executor_that_crashes_inline_becomes_a_failed_report() -> None:
    class Exploding:
        name = "exploding"
        concurrent = True

        def run_stage(self, run: Any, steps: Any) -> list[Any]:
            raise RuntimeError("executor bug")

    class Plugin:
        from sof_core import hookimpl

        @hookimpl
        def sof_register_executors(self) -> list[Any]:
            return [Exploding()]

    engine = make_engine([skill("A", write("a", 1), outputs=["a"])],
                         plugins=[("exploding", Plugin())], executor="exploding", **FAST)
    report = engine.execute_plan(["A"], UIF(input_query="q"))
    assert report.status == "failure"
    assert "executor 'exploding' crashed" in report.errors[0]


@pytest.mark.slow
def test_hundreds_of_concurrent_async_runs_do_not_starve_their_runners() -> None:
    # Each supervised run needs a runner thread; hosts of async runs must not take them all.
    gate = threading.Barrier(2, timeout=10)
    done = threading.Event()

    def body(self: Any, uif: UIF) -> UIF:
        if not done.is_set():
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait()
            done.set()
        uif.intermediate_data["x"] = 1
        return uif

    engine = make_engine([skill("X", body, outputs=["x"], max_execution_time=20.0)],
                         total_timeout=30.0)

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(engine.aexecute_plan(["X"], UIF(input_query="q")) for _ in range(600))
        )

    reports = asyncio.run(many())
    assert {r.status for r in reports} == {"success"}


def _plain_skill() -> type[BaseSkillModule]:
    """A skill that does nothing, for the tests of executors from plugins."""
    return type("Plain", (BaseSkillModule,), {
        "skill_name": "Plain", "skill_description": "plain", "required_inputs": ["input_query"],
        "output_keys": ["plain"], "execute": lambda self, uif: uif})


def test_an_executor_whose_constructor_raises_is_a_typed_error_naming_its_plugin() -> None:
    """Before: the constructor's own ``RuntimeError`` came out of ``execute_plan``."""
    from sof_core import PluginHookError, hookimpl

    class NeedsCluster:
        name = "needscluster"

        def __init__(self) -> None:
            raise RuntimeError("no scheduler at tcp://10.0.0.5:8786")

    class Registers:
        @hookimpl
        def sof_register_executors(self) -> list[Any]:
            return [NeedsCluster]

    skill = _plain_skill()
    engine = make_engine([skill], plugins=[("cluster", Registers())])
    with pytest.raises(PluginHookError) as caught:
        engine.execute_plan(["Plain"], UIF(input_query="q"), executor="needscluster")
    assert caught.value.plugin == "cluster"
    assert ("executor 'needscluster' could not be constructed: RuntimeError: no scheduler at "
            "tcp://10.0.0.5:8786") in str(caught.value)
    report = engine.execute_plan(["Plain"], UIF(input_query="q"))  # the others still run
    assert report.status == "success"


def test_an_executor_whose_constructor_hangs_is_given_up_on_at_the_plugin_deadline(
        within: Any) -> None:
    """Before: the constructor ran in the thread that called ``execute_plan``, unbounded:
    a cluster client that waited for its scheduler held the query forever."""
    from sof_core import PluginHookError, hookimpl

    release = threading.Event()

    class WaitsForScheduler:
        name = "waits"

        def __init__(self) -> None:
            release.wait(60)

    class Registers:
        @hookimpl
        def sof_register_executors(self) -> list[Any]:
            return [WaitsForScheduler]

    skill = _plain_skill()
    engine = make_engine([skill], plugins=[("cluster", Registers())],
                         plugin_import_timeout=0.3)
    try:
        with pytest.raises(PluginHookError) as caught:
            within(lambda: engine.execute_plan(["Plain"], UIF(input_query="q"),
                                               executor="waits"), what="execute_plan")
    finally:
        release.set()
    assert caught.value.plugin == "cluster"
    assert "executor 'waits' was not constructed within 0.3 s (plugin_import_timeout)" in (
        str(caught.value))


def test_an_executor_whose_constructor_needs_the_main_thread_is_made_there() -> None:
    """Constructed in a thread of its own first (see above), an executor that installs a
    signal handler fails there; it is made again on the main thread, as before."""
    import signal

    from sof_core import hookimpl
    from sof_core.execution.executors import SequentialExecutor

    previous = signal.getsignal(signal.SIGUSR2)

    class Signals(SequentialExecutor):
        name = "signals"

        def __init__(self) -> None:
            signal.signal(signal.SIGUSR2, lambda *a: None)

    class Registers:
        @hookimpl
        def sof_register_executors(self) -> list[Any]:
            return [Signals]

    skill = _plain_skill()
    try:
        engine = make_engine([skill], plugins=[("signals", Registers())])
        report = engine.execute_plan(["Plain"], UIF(input_query="q"), executor="signals")
        assert report.status == "success" and report.executor == "signals"
    finally:
        signal.signal(signal.SIGUSR2, previous)
