"""With no scheduler configured, the executor starts (and reuses) its own LocalCluster."""

from __future__ import annotations

import pytest
from sof_dask import plugin
from sof_dask.executor import ENV_SCHEDULER

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine


class Hello(BaseSkillModule):
    skill_name = "Hello"
    skill_description = "says hello"
    output_keys = ["final_response"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"hello {uif.input_query}"
        return uif


def test_no_scheduler_means_a_local_cluster_shared_by_engines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_SCHEDULER, raising=False)
    settings = {"dask": {"threads_per_worker": 2}}
    first = make_engine([Hello], plugins=[("dask", plugin)], executor="dask",
                        plugin_settings=settings)
    second = make_engine([Hello], plugins=[("dask", plugin)], executor="dask",
                         plugin_settings=settings)

    assert first.execute_plan(["Hello"], UIF(input_query="a")).final_response == "hello a"
    assert second.execute_plan(["Hello"], UIF(input_query="b")).final_response == "hello b"
    client = first.executor("dask").client({})
    assert client is second.executor("dask").client({})
    assert client.scheduler_info()["workers"]  # a real cluster with a worker


def test_the_environment_variable_names_the_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SCHEDULER, "tcp://127.0.0.1:9")
    engine = make_engine([Hello], plugins=[("dask", plugin)], executor="dask",
                         plugin_settings={"dask": {"connect_timeout": 0.5}})
    report = engine.execute_plan(["Hello"], UIF(input_query="q"))
    assert report.status == "failure" and "tcp://127.0.0.1:9" in report.errors[0]
