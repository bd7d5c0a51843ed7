"""``isolation = "process"`` under the ``dask`` executor: the request holds as under the local
executors. The isolated step is not sent to the cluster (whose workers may be threads of the
host, as the default in-process LocalCluster's are): it runs in one of this process's
isolation workers, with a clean environment and a kill at its deadline."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule

SECRET = "SOF_DASK_TEST_SECRET"


class Where(BaseSkillModule):
    skill_name = "Where"
    skill_description = "says which process ran it and what secret it could see"
    output_keys = ["where_pid", "where_secret"]
    isolation = "process"

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["where_pid"] = os.getpid()
        uif.intermediate_data["where_secret"] = os.environ.get(SECRET)
        return uif


class Local(BaseSkillModule):
    skill_name = "Local"
    skill_description = "runs on the cluster beside the isolated one"
    output_keys = ["local_pid"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["local_pid"] = os.getpid()
        return uif


class Hangs(BaseSkillModule):
    skill_name = "Hangs"
    skill_description = "never returns"
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 1.0

    def execute(self, uif: UIF) -> UIF:
        time.sleep(3600)
        return uif


def test_an_isolated_skill_runs_in_a_worker_process_with_a_clean_environment(
        dask_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET, "hunter2")
    engine = dask_engine([Where, Local])
    report = engine.execute_plan(["Where", "Local"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    data = report.uif.intermediate_data
    assert data["where_pid"] != os.getpid()
    assert data["where_secret"] is None
    assert data["local_pid"] == os.getpid()  # the in-process cluster ran the other one


def test_a_hung_isolated_skill_is_killed_at_its_deadline_under_dask(dask_engine: Any) -> None:
    engine = dask_engine([Hangs, Local])
    report = engine.execute_plan(["Hangs", "Local"], UIF(input_query="q"))
    by_skill = {r.skill: r for r in report.results}
    assert by_skill["Hangs"].status == "timeout", report.errors
    assert by_skill["Local"].status == "success"
    assert "its process was killed" in (by_skill["Hangs"].error or "")  # not left hanging
    assert engine.stats()["abandoned_calls"] == {}
