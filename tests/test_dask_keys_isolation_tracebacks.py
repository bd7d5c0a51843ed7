"""The same three guarantees on a real Dask cluster (``sof-dask``), whose replay goes through
``sof_core``'s public remote-call API: keys named like UIF fields work in both places,
in-place changes are refused exactly as locally, and a failure carries its traceback.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

distributed = pytest.importorskip("distributed")
dask_plugin = pytest.importorskip("sof_dask.plugin")

HERE = str(Path(__file__).resolve())


@pytest.fixture(scope="module")
def engine_for() -> Iterator[Any]:
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=4, processes=False,
                                       dashboard_address=None)

    def make(skills: list[Any], **config: Any) -> Any:
        return make_engine(
            skills, plugins=[("dask", dask_plugin)], executor="dask",
            plugin_settings={"dask": {"scheduler": cluster.scheduler_address}}, **config,
        )

    try:
        yield make
    finally:
        # Its kept client would retry the closed cluster for 10 s, then log into a later test.
        pytest.importorskip("sof_dask").close_clients(cluster.scheduler_address)
        cluster.close()


class Respond(BaseSkillModule):
    skill_name = "Respond"
    skill_description = "answers in the field and in the data key, as SAM's skill does"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "field"
        uif.intermediate_data["final_response"] = "data"
        return uif


class ReadBoth(BaseSkillModule):
    skill_name = "ReadBoth"
    skill_description = "reads both places"
    required_inputs = ["final_response", "docs"]
    output_keys = ["seen", "docs"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        data = uif.intermediate_data
        data["docs"].append("mine")  # declared as input and output: its write
        data["seen"] = [uif.final_response, data["final_response"], "final_response" in data]
        return uif


class Spoil(BaseSkillModule):
    skill_name = "Spoil"
    skill_description = "changes what it may only read"
    required_inputs = ["docs"]
    output_keys = ["x"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["docs"].append("theirs")
        return uif


class Context(BaseSkillModule):
    skill_name = "Context"
    skill_description = "changes the user context it did not declare"
    required_inputs = ["input_query"]
    output_keys = ["x"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.user_context["k"] = 1
        return uif


def fail_here(values: Any) -> None:
    raise ValueError("bad values")


class Boom(BaseSkillModule):
    skill_name = "Boom"
    skill_description = "fails in a helper"
    required_inputs = ["docs"]
    output_keys = ["x"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        fail_here(uif.intermediate_data["docs"])
        return uif


def test_keys_named_like_fields_and_in_out_keys_work_on_dask(engine_for: Any) -> None:
    uif = UIF(input_query="q", intermediate_data={"docs": ["a"]})
    report = engine_for([Respond, ReadBoth]).execute_plan(["Respond", "ReadBoth"], uif)
    assert report.status == "success", report.errors
    assert report.uif.final_response == "field"
    assert report.uif.intermediate_data["final_response"] == "data"
    assert report.uif.intermediate_data["seen"] == ["field", "data", True]
    assert report.uif.intermediate_data["docs"] == ["a", "mine"]


@pytest.mark.parametrize(("skill", "key"), [(Spoil, "docs"), (Context, "user_context")])
def test_in_place_changes_are_refused_on_dask_as_locally(engine_for: Any, skill: Any,
                                                         key: str) -> None:
    uif = UIF(input_query="q", intermediate_data={"docs": ["a"]}, user_context={"u": 1})
    report = engine_for([skill]).execute_plan([skill.skill_name], uif)
    result = report.result(skill.skill_name)
    assert result.error_type == "UndeclaredWriteError"
    assert f"{key!r} in place" in result.error, result.error
    assert report.uif.intermediate_data["docs"] == ["a"] and report.uif.user_context == {"u": 1}
    local = make_engine([skill]).execute_plan(
        [skill.skill_name], UIF(input_query="q", intermediate_data={"docs": ["a"]})
    ).result(skill.skill_name)
    assert (local.error_type, local.error) == (result.error_type, result.error)


def test_a_failure_on_dask_carries_the_skills_traceback(engine_for: Any) -> None:
    report = engine_for([Boom]).execute_plan(
        ["Boom"], UIF(input_query="q", intermediate_data={"docs": ["a"]})
    )
    result = report.result("Boom")
    _, first = inspect.getsourcelines(fail_here)
    assert result.location == f"{HERE}:{first + 1}"
    assert 'File "' + HERE in result.traceback and "fail_here(" in result.traceback
