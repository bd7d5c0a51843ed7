"""The ``dask`` executor on a real LocalCluster (one per module, reached by its address).

The same guarantees as the local executors: skills see only declared inputs, undeclared
writes fail naming the key, merges follow plan order; plus a typed error for skills that
cannot be pickled.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sof_dask import DaskExecutor, close_clients, plugin

from sof_core import UIF, BaseSkillModule
from sof_core.testing import check_plugin_module, make_engine


def engine_for(scheduler: str, skills: list[Any], **config: Any) -> Any:
    return make_engine(
        skills, plugins=[("dask", plugin)], executor="dask",
        plugin_settings={"dask": {"scheduler": scheduler}}, **config,
    )


class Retrieve(BaseSkillModule):
    skill_name = "Retrieve"
    skill_description = "finds passages for the query"
    output_keys = [("passages", list)]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["passages"] = [f"about {uif.input_query}"]
        uif.add_log_entry("retrieved", self.skill_name)
        return uif


class Count(BaseSkillModule):
    skill_name = "Count"
    skill_description = "counts passages"
    required_inputs = ["passages"]
    output_keys = ["count"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["count"] = len(uif.intermediate_data["passages"])
        return uif


class Peek(BaseSkillModule):
    skill_name = "Peek"
    skill_description = "reports which data keys it can see"
    required_inputs = ["passages"]
    output_keys = ["seen"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["seen"] = sorted(uif.intermediate_data)
        return uif


class Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "writes the final response (async)"
    required_inputs = ["count"]
    output_keys = ["final_response", "confidence_score"]
    max_execution_time = None

    async def execute(self, uif: UIF) -> UIF:
        await asyncio.sleep(0)
        uif.final_response = f"{uif.intermediate_data['count']} passage(s)"
        uif.confidence_score = 0.9
        return uif


class Sneaky(BaseSkillModule):
    skill_name = "Sneaky"
    skill_description = "writes a key it did not declare"
    output_keys = ["declared"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["undeclared"] = 1
        return uif


class Locked(BaseSkillModule):
    skill_name = "Locked"
    skill_description = "holds a lock, so it cannot be pickled"
    output_keys = ["x"]
    max_execution_time = None

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["x"] = 1
        return uif


class Fails(BaseSkillModule):
    skill_name = "Fails"
    skill_description = "calls set_error"
    output_keys = ["final_response"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.set_error("backend down", self.skill_name)
        return uif


def test_the_plugin_registers_the_dask_executor() -> None:
    assert check_plugin_module("dask", plugin) == ["dask"]


def test_a_plan_runs_on_the_cluster_and_merges_like_a_local_run(scheduler: str) -> None:
    engine = engine_for(scheduler, [Retrieve, Count, Answer])
    report = engine.execute_plan(["Retrieve", "Count", "Answer"], UIF(input_query="SOF"))

    assert report.status == "success", report.errors
    assert report.executor == "dask"
    assert report.final_response == "1 passage(s)" and report.uif.confidence_score == 0.9
    assert report.uif.intermediate_data == {"passages": ["about SOF"], "count": 1}
    assert report.uif.log_trace == ["[Retrieve] retrieved"]
    assert report.uif.executed_skills == ["Retrieve", "Count", "Answer"]


def test_a_remote_skill_sees_only_its_declared_inputs(scheduler: str) -> None:
    engine = engine_for(scheduler, [Retrieve, Count, Peek])
    report = engine.execute_plan(["Retrieve", "Count", "Peek"], UIF(input_query="q"))
    assert report.uif.intermediate_data["seen"] == ["passages"]


def test_an_undeclared_remote_write_fails_naming_the_key(scheduler: str) -> None:
    engine = engine_for(scheduler, [Sneaky])
    report = engine.execute_plan(["Sneaky"], UIF(input_query="q"))
    result = report.result("Sneaky")
    assert result.error_type == "UndeclaredWriteError" and "'undeclared'" in result.error
    assert report.uif.intermediate_data == {}


def test_a_skill_that_cannot_pickle_is_a_typed_error_naming_it(scheduler: str) -> None:
    engine = engine_for(scheduler, [Locked])
    report = engine.execute_plan(["Locked"], UIF(input_query="q"))
    result = report.result("Locked")
    assert report.status == "failure"
    assert result.error_type == "SkillNotPicklableError"
    assert "the skill instance" in result.error and "lock" in result.error


def test_set_error_on_a_worker_fails_the_skill(scheduler: str) -> None:
    engine = engine_for(scheduler, [Fails])
    report = engine.execute_plan(["Fails"], UIF(input_query="q"))
    assert report.status == "failure" and "backend down" in report.result("Fails").error


def test_an_exception_on_a_worker_is_the_skills_error(scheduler: str) -> None:
    def boom(self: Any, uif: UIF) -> UIF:
        raise ValueError("bad input on the worker")

    Boom = type("Boom", (BaseSkillModule,), {
        "skill_name": "Boom", "skill_description": "raises", "output_keys": ["x"],
        "max_execution_time": None, "execute": boom,
    })
    engine = engine_for(scheduler, [Boom])
    report = engine.execute_plan(["Boom"], UIF(input_query="q"))
    result = report.result("Boom")
    assert result.status == "failed" and result.error_type == "ValueError"
    assert "bad input on the worker" in result.error


def test_a_wide_stage_runs_its_skills_concurrently_and_merges_in_plan_order(
    scheduler: str,
) -> None:
    def body(index: int) -> Any:
        def execute(self: Any, uif: UIF) -> UIF:
            uif.add_log_entry(f"w{index}")
            uif.intermediate_data[f"w{index}"] = index
            return uif
        return execute

    workers = [
        type(f"W{i}", (BaseSkillModule,), {
            "skill_name": f"W{i}", "skill_description": "worker", "output_keys": [f"w{i}"],
            "max_execution_time": 30.0, "execute": body(i),
        })
        for i in range(6)
    ]
    engine = engine_for(scheduler, workers)
    report = engine.execute_plan([f"W{i}" for i in range(6)], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.stages == [[f"W{i}" for i in range(6)]]
    assert report.uif.log_trace == [f"w{i}" for i in range(6)]


def test_an_unreachable_scheduler_fails_the_run_with_a_clear_error() -> None:
    engine = make_engine([Retrieve], plugins=[("dask", plugin)], executor="dask")
    engine._executors["dask"] = DaskExecutor(address="tcp://127.0.0.1:9", connect_timeout=0.5)
    report = engine.execute_plan(["Retrieve"], UIF(input_query="q"))
    assert report.status == "failure"
    assert "DaskUnavailableError" in report.errors[0] and "127.0.0.1:9" in report.errors[0]


def test_a_misspelt_dask_setting_fails_the_run_naming_it() -> None:
    # Before: plugin_settings.dask.scheduler_address was dropped, a private LocalCluster
    # started, and the run succeeded on the wrong cluster.
    engine = make_engine([Retrieve], plugins=[("dask", plugin)], executor="dask",
                         plugin_settings={"dask": {"scheduler_address": "tcp://10.0.0.1:8786"}})
    report = engine.execute_plan(["Retrieve"], UIF(input_query="q"))
    assert report.status == "failure"
    assert "plugin_settings.dask.scheduler_address" in report.errors[0]
    assert "did you mean 'scheduler'" in report.errors[0]


def test_a_client_that_closed_since_is_replaced_not_reused(scheduler: str) -> None:
    """A client gives up and closes when its scheduler is gone longer than it retries; a
    scheduler back at that address must be reached again without restarting the process."""
    first = engine_for(scheduler, [Retrieve])
    assert first.execute_plan(["Retrieve"], UIF(input_query="q")).status == "success"
    stale = first.executor("dask").client({})
    stale.close()
    for engine in (first, engine_for(scheduler, [Retrieve])):
        report = engine.execute_plan(["Retrieve"], UIF(input_query="q"))
        assert report.status == "success", report.errors
        assert engine.executor("dask").client({}) is not stale


def test_close_clients_closes_the_clients_kept_for_a_scheduler(scheduler: str) -> None:
    engine = engine_for(scheduler, [Retrieve])
    assert engine.execute_plan(["Retrieve"], UIF(input_query="q")).status == "success"
    client = engine.executor("dask").client({})
    assert close_clients(scheduler) == 1
    assert client.status == "closed"
    assert close_clients(scheduler) == 0
    # the next run connects again
    assert engine.execute_plan(["Retrieve"], UIF(input_query="q")).status == "success"


class Peeks(BaseSkillModule):
    skill_name = "Peeks"
    skill_description = "reads a key it did not declare"
    output_keys = ["seen"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["seen"] = uif.intermediate_data.get("secret", "absent")
        return uif


def test_an_undeclared_read_fails_on_a_worker_as_it_does_at_home(scheduler: str) -> None:
    # Before: the worker held only the declared inputs, so .get() answered "absent" and the
    # run succeeded; at home the same skill fails with UndeclaredReadError.
    remote = engine_for(scheduler, [Peeks]).execute_plan(
        ["Peeks"], UIF(input_query="q", intermediate_data={"secret": "s"}))
    local = make_engine([Peeks]).execute_plan(
        ["Peeks"], UIF(input_query="q", intermediate_data={"secret": "s"}))
    for report in (remote, local):
        (result,) = report.results
        assert (result.status, result.error_type) == ("failed", "UndeclaredReadError")
    assert remote.results[0].error == local.results[0].error


def test_concurrent_runs_against_an_unreachable_scheduler_each_get_the_clear_error() -> None:
    # Before: the connection was attempted under the process-wide lock, one run after the
    # other, so with 8 runs at once the later ones ran into total_timeout instead.
    from sof_core import run_batch

    engine = make_engine([Retrieve], plugins=[("dask", plugin)], executor="dask",
                         total_timeout=4.0)
    engine._executors["dask"] = DaskExecutor(address="tcp://127.0.0.1:9", connect_timeout=1.5)
    done = run_batch(engine, [f"q{i}" for i in range(8)], ["Retrieve"], concurrency=8)
    for item in done.items:
        assert item.report is not None and item.report.status == "failure"
        assert item.report.errors == [item.report.errors[0]]
        assert "DaskUnavailableError" in item.report.errors[0], item.report.errors
        assert "127.0.0.1:9" in item.report.errors[0]
