"""One coordinator for the UIF and its subclasses: a subclass keeps its own formats.

``execute_plan`` records a run through hooks on the UIF class (``_sof_run_started``,
``_sof_run_finished``, ``_sof_merge_skill_outputs``, ``_sof_now``, ``_sof_bookkeeping``), so a
subclass that stores the status as its string value and times as text (``sof_sam.SAM_UIF``
does) runs on the same engine, graph and executors and comes back in its own shape. A
subclass's own container fields are read-only during a run like the UIF's. Also here:
``UIFStatus.CANCELLED``, and the time estimate a class may give for "unknown".
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ConfigDict, Field

from sof_core import (
    UIF,
    BaseSkillModule,
    CoordinatorEngine,
    SkillDefinitionError,
    SOFConfig,
    UIFStatus,
    UndeclaredWriteError,
)
from sof_core.testing import make_engine

_spec = importlib.util.spec_from_file_location(
    "_keys_test_helpers_for_subclasses",
    Path(__file__).with_name("test_keys_named_like_uif_fields.py"),
)
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
LOCAL_CONFIGS = [p for p in _helpers.CONFIGS if p.id != "remote-replay"]


class TextTimesUIF(UIF):
    """A UIF that keeps the status as text, times as text and a container of its own."""

    model_config = ConfigDict(use_enum_values=True)

    status: UIFStatus = Field(default=UIFStatus.PENDING, validate_default=True)
    start_time: str | None = None  # type: ignore[assignment]
    end_time: str | None = None  # type: ignore[assignment]
    notes: dict[str, Any] = Field(default_factory=dict)
    touched: int = 0

    _sof_bookkeeping: ClassVar[frozenset[str]] = UIF._sof_bookkeeping | {"touched"}

    @classmethod
    def _sof_now(cls) -> Any:
        return "now"

    def _sof_run_started(self) -> None:
        self.__dict__["status"] = "running"
        if self.__dict__["start_time"] is None:
            self.__dict__["start_time"] = "started"

    def _sof_run_finished(self, status: str) -> None:
        self.__dict__["status"] = UIFStatus(status).value
        self.__dict__["end_time"] = f"ended {status}"

    def _sof_merge_skill_outputs(self, outputs: dict[str, Any]) -> None:
        self.__dict__["skill_outputs"].update(outputs)  # replaced, not merged


def skill(name: str, body: Any, requires: Any = (), outputs: Any = (), **attrs: Any) -> type:
    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"test skill {name}",
        "required_inputs": list(requires), "output_keys": list(outputs),
        "max_execution_time": None, "execute": body, **attrs,
    })


def _answer(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["answer"] = "42"
    uif.final_response = "42"
    uif.add_log_entry("answered", "Answer")
    return uif


Answer = skill("Answer", _answer, outputs=["answer", "final_response"])


@pytest.mark.parametrize("config", LOCAL_CONFIGS)
def test_a_subclass_run_comes_back_in_its_own_formats(config: dict[str, Any]) -> None:
    engine = make_engine([Answer], **config)
    uif = TextTimesUIF(input_query="q")
    report = engine.execute_plan(["Answer"], uif)
    assert report.status == "success" and report.uif is uif
    assert uif.status == "success" and type(uif.status) is str
    assert (uif.start_time, uif.end_time) == ("started", "ended success")
    assert uif.final_response == "42" and uif.intermediate_data["answer"] == "42"
    assert uif.executed_skills == ["Answer"] and type(uif.executed_skills) is list
    assert TextTimesUIF.model_validate(uif.model_dump()) == uif  # still a valid instance


def test_a_plain_uif_run_is_recorded_as_before() -> None:
    engine = make_engine([Answer], skill_timeout=None, total_timeout=None)
    uif = UIF(input_query="q")
    report = engine.execute_plan(["Answer"], uif)
    assert uif.status is UIFStatus.SUCCESS and report.status == "success"
    assert isinstance(uif.start_time, float) and isinstance(uif.end_time, float)
    assert uif.start_time <= uif.end_time


def test_for_query_stamps_the_start_in_the_class_format() -> None:
    assert TextTimesUIF.for_query("q").start_time == "now"
    assert isinstance(UIF.for_query("q").start_time, float)


def _fails(self: Any, uif: UIF) -> UIF:
    uif.set_error("no source found", "Fails")
    return uif


@pytest.mark.parametrize("config", LOCAL_CONFIGS)
def test_set_error_fails_the_skill_when_the_status_is_kept_as_text(
    config: dict[str, Any],
) -> None:
    """The status a subclass keeps as a string ("failure") fails the skill like the member."""
    engine = make_engine([skill("Fails", _fails)], **config)
    uif = TextTimesUIF(input_query="q")
    report = engine.execute_plan(["Fails"], uif)
    (result,) = report.results
    assert result.status == "failed" and "no source found" in (result.error or "")
    assert report.status == "failure" and uif.status == "failure"


def _sets_success(self: Any, uif: UIF) -> UIF:
    uif.status = UIFStatus.SUCCESS  # changing the status to anything but FAILURE is fine
    uif.intermediate_data["done"] = True
    return uif


def test_a_skill_that_changes_the_status_to_success_still_succeeds() -> None:
    engine = make_engine([skill("Sets", _sets_success, outputs=["done"])],
                         skill_timeout=None, total_timeout=None)
    for uif in (UIF(input_query="q"), TextTimesUIF(input_query="q")):
        report = engine.execute_plan(["Sets"], uif)
        assert report.status == "success" and uif.intermediate_data["done"] is True


def _outputs(self: Any, uif: UIF) -> UIF:
    uif.skill_outputs["Out"] = {"second": 2}
    return uif


def test_skill_outputs_are_merged_by_the_class_hook() -> None:
    engine = make_engine([skill("Out", _outputs)], skill_timeout=None, total_timeout=None)
    plain = UIF(input_query="q", skill_outputs={"Out": {"first": 1}})
    engine.execute_plan(["Out"], plain)
    assert plain.skill_outputs == {"Out": {"first": 1, "second": 2}}  # UIF merges
    text = TextTimesUIF(input_query="q", skill_outputs={"Out": {"first": 1}})
    engine.execute_plan(["Out"], text)
    assert text.skill_outputs == {"Out": {"second": 2}}  # the subclass replaces


def _changes_notes(self: Any, uif: UIF) -> UIF:
    uif.notes["seen"] = True  # type: ignore[attr-defined]
    return uif


@pytest.mark.parametrize("config", LOCAL_CONFIGS)
def test_a_subclass_container_field_is_read_only_unless_declared(config: dict[str, Any]) -> None:
    undeclared = make_engine([skill("Notes", _changes_notes)], **config)
    uif = TextTimesUIF(input_query="q", notes={"kept": 1})
    report = undeclared.execute_plan(["Notes"], uif)
    (result,) = report.results
    assert result.status == "failed" and result.error_type == "UndeclaredWriteError"
    assert "'notes'" in (result.error or "")
    assert uif.notes == {"kept": 1} and type(uif.notes) is dict  # untouched, plain again

    declared = make_engine([skill("Notes", _changes_notes, outputs=["notes"])], **config)
    uif = TextTimesUIF(input_query="q", notes={"kept": 1})
    assert declared.execute_plan(["Notes"], uif).status == "success"
    assert uif.notes == {"kept": 1, "seen": True} and type(uif.notes) is dict


def _touches(self: Any, uif: UIF) -> UIF:
    uif.touched = 5  # type: ignore[attr-defined]
    uif.intermediate_data["ok"] = True
    return uif


def test_a_subclass_bookkeeping_field_passes_the_guard_and_is_not_merged() -> None:
    engine = make_engine([skill("Touch", _touches, outputs=["ok"])],
                         skill_timeout=None, total_timeout=None)
    uif = TextTimesUIF(input_query="q")
    assert engine.execute_plan(["Touch"], uif).status == "success"
    assert uif.touched == 0 and uif.intermediate_data["ok"] is True


def _returns_a_copy(self: Any, uif: UIF) -> UIF:
    other = uif.model_copy()
    other.__dict__["touched"] = 9
    other.__dict__["final_response"] = "x"
    return other


def test_a_returned_copy_is_compared_without_the_class_bookkeeping() -> None:
    engine = make_engine([skill("Copy", _returns_a_copy, outputs=["final_response"])],
                         skill_timeout=None, total_timeout=None)
    uif = TextTimesUIF(input_query="q")
    assert engine.execute_plan(["Copy"], uif).status == "success"
    assert uif.final_response == "x"


def test_an_undeclared_field_on_a_subclass_view_is_still_refused() -> None:
    def body(self: Any, uif: UIF) -> UIF:
        uif.confidence_score = 0.5
        return uif

    engine = make_engine([skill("Conf", body)], skill_timeout=None, total_timeout=None)
    report = engine.execute_plan(["Conf"], TextTimesUIF(input_query="q"))
    assert report.results[0].error_type == UndeclaredWriteError.__name__


# --- UIFStatus.CANCELLED --------------------------------------------------------------------


def test_cancelled_extends_the_statuses_and_is_complete() -> None:
    assert [s.value for s in UIFStatus] == [
        "pending", "running", "success", "partial", "failure", "timeout",
        "vetting_required", "cancelled",
    ]
    uif = UIF(input_query="q", status="cancelled")
    assert uif.status is UIFStatus.CANCELLED and uif.is_complete()


# --- estimated_execution_time = None ---------------------------------------------------------


def test_an_unknown_estimate_is_refused_for_native_skills() -> None:
    """Named when the class is defined (it was a bare TypeError), and when registered."""
    with pytest.raises(SkillDefinitionError, match="estimated_execution_time must be a number"):
        skill("Unknown", _answer, estimated_execution_time=None)

    class Unnamed(BaseSkillModule):  # no skill_name of its own: checked when registered
        skill_description = "test skill"
        estimated_execution_time = None  # type: ignore[assignment]

        def execute(self, uif: UIF) -> UIF:
            return uif

    Unnamed.skill_name = "Unnamed"
    engine = CoordinatorEngine(config=SOFConfig(plugins_autoload=False))
    with pytest.raises(SkillDefinitionError, match="estimated_execution_time must be a number"):
        engine.register_skill(Unnamed)


def test_a_class_that_says_what_to_plan_with_may_leave_the_estimate_unknown() -> None:
    unknown = skill("Unknown", _answer, outputs=["answer", "final_response"],
                    estimated_execution_time=None, _sof_estimate_if_unknown=2.5)
    engine = make_engine([unknown], skill_timeout=None, total_timeout=None)
    assert engine.registry.skill("Unknown").spec.estimated_execution_time == 2.5  # type: ignore[union-attr]
    assert unknown.estimated_execution_time is None
    assert engine.execute_plan(["Unknown"], UIF(input_query="q")).status == "success"
