"""``sof_sam.SAM_UIF``: SAM's shape and helper formats, lossless to and from ``sof_core.UIF``,
and run directly by ``sof_core.CoordinatorEngine`` (the report's ``uif`` is the same object,
still a valid ``SAM_UIF``)."""

from __future__ import annotations

import json
import pickle
import re
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sof_sam import SAM_UIF, BaseSkillModule, UIFStatus

from sof_core import (
    UIF,
    Outcome,
    RunContext,
    Step,
    UIFError,
    call_payload,
    check_returned,
    hookimpl,
    replay_changes,
    run_skill_call,
    skill_view,
)
from sof_core import BaseSkillModule as NativeSkill
from sof_core import UIFStatus as SOFStatus
from sof_core.testing import make_engine

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?"
SAM_ONLY_FIELDS = {"created_at", "updated_at"}


def is_iso(text: Any) -> bool:
    return isinstance(text, str) and datetime.fromisoformat(text) is not None


# --- SAM's shape ---------------------------------------------------------------------------


def test_fields_are_the_uif_fields_plus_created_and_updated() -> None:
    assert set(SAM_UIF.model_fields) == set(UIF.model_fields) | SAM_ONLY_FIELDS
    assert issubclass(SAM_UIF, UIF)



def test_uif_status_is_sams_five_members_equal_to_sofs() -> None:
    assert [s.name for s in UIFStatus] == ["PENDING", "RUNNING", "SUCCESS", "FAILURE",
                                           "CANCELLED"]
    assert issubclass(UIFStatus, str)
    for member in UIFStatus:
        assert member == SOFStatus[member.name] == member.value
    uif = SAM_UIF(input_query="q", status=SOFStatus.RUNNING)  # either enum is taken
    assert uif.status == UIFStatus.RUNNING


def test_new_uif_has_sams_defaults() -> None:
    uif = SAM_UIF(input_query="What is the capital of France?")
    assert uif.status == UIFStatus.PENDING and uif.status == "pending"
    assert uif.vetted_content == {} and uif.skill_outputs == {}
    assert uif.start_time is None and uif.end_time is None
    assert is_iso(uif.created_at) and is_iso(uif.updated_at)
    assert re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", uif.task_id)


def test_status_is_stored_as_its_value_and_checked() -> None:
    uif = SAM_UIF(input_query="q", status=UIFStatus.RUNNING)
    assert uif.status == "running" and type(uif.status) is str
    uif.status = UIFStatus.CANCELLED
    assert uif.status == "cancelled" and uif.is_complete()
    with pytest.raises(ValidationError):
        uif.status = "paused"  # type: ignore[assignment]
    assert json.loads(uif.model_dump_json())["status"] == "cancelled"


def test_unknown_fields_and_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="created_by"):
        SAM_UIF(input_query="q", created_by="me")  # type: ignore[call-arg]
    uif = SAM_UIF(input_query="q")
    with pytest.raises(ValueError):
        uif.confidence_score = 1.5
    with pytest.raises(ValueError):
        uif.vetted_content = "vetted text"  # type: ignore[assignment]
    with pytest.raises(ValueError):
        uif.start_time = 12.5  # type: ignore[assignment]
    with pytest.raises(ValueError):
        uif.not_a_field = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("query", [" ", "\n\t", "   x   "])
def test_whitespace_queries_are_accepted_as_sam_accepts_them(query: str) -> None:
    assert SAM_UIF(input_query=query).input_query == query


def test_an_empty_query_is_refused() -> None:
    with pytest.raises(ValueError, match="input_query"):
        SAM_UIF(input_query="")


def test_sam_types_hold_what_sam_puts_there() -> None:
    uif = SAM_UIF(
        input_query="q",
        vetted_content={"web:1": {"text": "Paris", "score": 0.9}},
        skill_outputs={"Calc": 42, "Notes": ["a", "b"], "Memory": {"hits": 3}},
        start_time="2024-05-01T10:00:00.123456",
    )
    assert uif.skill_outputs["Calc"] == 42 and uif.get_skill_output("Notes") == ["a", "b"]
    assert uif.get_skill_output("Memory", "hits") == 3  # SOF's form works too
    assert uif.get_skill_output("Calc", "hits") is None and uif.get_skill_output("X") is None


def test_updated_at_is_refreshed_on_every_change() -> None:
    uif = SAM_UIF(input_query="q", updated_at="2000-01-01T00:00:00")
    assert uif.updated_at > "2020"  # SAM's rule: never the value given
    for change in (
        lambda: setattr(uif, "final_response", "Paris"),
        lambda: setattr(uif, "updated_at", "1999-01-01T00:00:00"),
        lambda: uif.add_log_entry("step"),
        lambda: uif.add_warning("careful"),
        lambda: uif.set_skill_output("S", 1),
    ):
        before = uif.updated_at
        time.sleep(0.002)
        change()
        assert uif.updated_at > before and is_iso(uif.updated_at)
    created = uif.created_at
    uif.final_response = "Lyon"
    assert uif.created_at == created


# --- SAM's helper formats ------------------------------------------------------------------


def test_log_lines_carry_an_iso_time_and_the_skill() -> None:
    uif = SAM_UIF(input_query="q")
    uif.add_log_entry("Loaded 3 passages", "MemoryRetrievalSkill")
    uif.add_log_entry("Plan ready")
    assert re.fullmatch(rf"\[{ISO}\] MemoryRetrievalSkill: Loaded 3 passages", uif.log_trace[0])
    assert re.fullmatch(rf"\[{ISO}\] Plan ready", uif.log_trace[1])


def test_add_warning_records_and_logs_it() -> None:
    uif = SAM_UIF(input_query="q")
    uif.add_warning("memory store is empty")
    assert uif.warnings == ["memory store is empty"]
    assert re.fullmatch(rf"\[{ISO}\] WARNING: memory store is empty", uif.log_trace[-1])


def test_set_error_keeps_the_message_as_given() -> None:
    uif = SAM_UIF(input_query="q")
    uif.set_error("LLM backend unreachable", "ResponseGenerationSkill")
    assert uif.status == UIFStatus.FAILURE == "failure"
    assert uif.error_details == "LLM backend unreachable"
    assert uif.log_trace[-1].endswith("ResponseGenerationSkill: ERROR: LLM backend unreachable")
    assert uif.is_complete()


def test_mark_skill_complete_records_a_skill_once() -> None:
    uif = SAM_UIF(input_query="q")
    uif.mark_skill_complete("MemoryRetrievalSkill", 0.25)
    uif.mark_skill_complete("MemoryRetrievalSkill")
    assert uif.executed_skills == ["MemoryRetrievalSkill"]
    assert uif.skill_timings == {"MemoryRetrievalSkill": 0.25}
    assert uif.log_trace[-1].endswith("MemoryRetrievalSkill: Completed successfully")


def test_set_skill_output_replaces() -> None:
    uif = SAM_UIF(input_query="q")
    uif.set_skill_output("ConflictDetectorSkill", {"conflicts": 2, "pairs": []})
    uif.set_skill_output("ConflictDetectorSkill", {"conflicts": 0})
    assert uif.get_skill_output("ConflictDetectorSkill") == {"conflicts": 0}
    assert uif.log_trace[-1].endswith("ConflictDetectorSkill: Output set: dict")


@pytest.mark.parametrize("status,complete", [
    ("pending", False), ("running", False), ("success", True), ("failure", True),
    ("cancelled", True), ("partial", True), ("timeout", True),
])
def test_is_complete(status: str, complete: bool) -> None:
    assert SAM_UIF(input_query="q", status=status).is_complete() is complete


def test_execution_summary() -> None:
    uif = SAM_UIF(input_query="q", execution_plan=["A", "B", "C"], confidence_score=0.8)
    uif.mark_skill_complete("A", 0.5)
    uif.mark_skill_complete("B", 0.25)
    uif.add_warning("w")
    summary = uif.get_execution_summary()
    assert summary == {
        "task_id": uif.task_id, "status": "pending", "executed_skills": ["A", "B"],
        "total_skills": 3, "warnings_count": 1, "has_errors": False,
        "confidence_score": 0.8, "execution_time_total": 0.75,
        "final_response_available": False,
    }
    assert SAM_UIF(input_query="q").get_execution_summary()["execution_time_total"] is None


def test_for_query_stamps_an_iso_start() -> None:
    uif = SAM_UIF.for_query("q", user_id="u1")
    assert is_iso(uif.start_time) and uif.user_id == "u1"
    with pytest.raises(UIFError, match="confidence_score"):
        SAM_UIF.for_query("q", confidence_score=2)


def test_a_new_uif_status_is_sams_pending_member_until_assigned() -> None:
    """SAM's default is the ``UIFStatus.PENDING`` member itself (pydantic does not validate
    defaults), so SAM's callers read ``uif.status.value`` on a new UIF; anything given or
    assigned is stored as its string, and the dumps are SAM's."""
    uif = SAM_UIF(input_query="q")
    assert uif.status is UIFStatus.PENDING and uif.status.value == "pending"
    assert uif.model_dump()["status"] is UIFStatus.PENDING
    assert uif.get_execution_summary()["status"] is UIFStatus.PENDING
    assert uif.model_copy().status is UIFStatus.PENDING
    assert json.loads(uif.model_dump_json())["status"] == "pending"
    assert uif.model_dump(mode="json")["status"] == "pending"
    assert SAM_UIF.model_validate_json(uif.model_dump_json()).status == "pending"
    assert type(SAM_UIF(**uif.model_dump()).status) is str
    assert type(SAM_UIF(input_query="q", status=UIFStatus.PENDING).status) is str
    uif.status = UIFStatus.RUNNING
    assert type(uif.status) is str and uif.status == "running"
    assert SAM_UIF(input_query="q").to_sof().status is SOFStatus.PENDING


def test_json_round_trip() -> None:
    uif = SAM_UIF(input_query="q", vetted_content={"a": [1, 2]}, skill_outputs={"S": "x"})
    again = SAM_UIF.model_validate_json(uif.model_dump_json())
    assert again.model_dump(exclude=SAM_ONLY_FIELDS) == uif.model_dump(exclude=SAM_ONLY_FIELDS)
    assert pickle.loads(pickle.dumps(uif)).model_dump() == uif.model_dump()


# --- conversion: strategies ----------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
special = st.sampled_from(["content", "__sam_value__", "k"])
keys = special | text
scalars = (st.none() | st.booleans() | st.integers(-(2**60), 2**60)
           | st.floats(allow_nan=False, allow_infinity=False) | text)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
json_dicts = st.dictionaries(keys, json_values, max_size=3)


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# Texts SOF may hold in vetted_content, including the JSON forms a dict converts to.
vetted_texts = st.none() | text | json_dicts.map(compact) | st.builds(
    lambda t: compact({"content": t}), text | json_dicts.map(compact)
)
epochs = st.none() | st.floats(min_value=86_400, max_value=4_000_000_000)
queries = text.filter(lambda q: q.strip() != "") | st.just("What is SOF?")


@st.composite
def common_fields(draw: Any) -> dict[str, Any]:
    return {
        "task_id": draw(text.filter(bool) | st.just("t-1")),
        "status": draw(st.sampled_from(list(SOFStatus))),
        "input_query": draw(queries),
        "source_documents": draw(st.lists(text, max_size=2)),
        "user_context": draw(json_dicts),
        "active_profile": draw(text),
        "session_id": draw(st.none() | text),
        "user_id": draw(st.none() | text),
        "intermediate_data": draw(json_dicts),
        "security_context": draw(json_dicts),
        "requires_vetting": draw(st.booleans()),
        "final_response": draw(st.none() | text),
        "confidence_score": draw(st.none() | st.floats(0, 1)),
        "error_details": draw(st.none() | text),
        "warnings": draw(st.lists(text, max_size=2)),
        "log_trace": draw(st.lists(text, max_size=2)),
        "execution_plan": draw(st.lists(text, max_size=2)),
        "executed_skills": draw(st.lists(text, max_size=2)),
        "skill_timings": draw(st.dictionaries(text, st.floats(0, 100), max_size=2)),
    }


@st.composite
def sof_uifs(draw: Any) -> UIF:
    return UIF(
        **draw(common_fields()),
        skill_outputs=draw(st.dictionaries(text, json_dicts, max_size=3)),
        vetted_content=draw(vetted_texts),
        start_time=draw(epochs),
        end_time=draw(epochs),
    )


def local_iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds).isoformat()


@st.composite
def sam_uifs(draw: Any) -> SAM_UIF:
    fields = draw(common_fields())
    fields["status"] = draw(st.sampled_from([s.value for s in SOFStatus]))
    return SAM_UIF(
        **fields,
        skill_outputs=draw(st.dictionaries(keys, json_values, max_size=3)),
        vetted_content=draw(json_dicts),
        start_time=draw(epochs.map(local_iso)),
        end_time=draw(epochs.map(local_iso)),
    )


def sam_data(uif: SAM_UIF) -> dict[str, Any]:
    return uif.model_dump(exclude=SAM_ONLY_FIELDS)


# --- conversion: round trips ---------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(sof_uifs())
def test_sof_to_sam_to_sof_is_exact(uif: UIF) -> None:
    sam = SAM_UIF.from_sof(uif)
    assert type(sam) is SAM_UIF and SAM_UIF.model_validate(sam.model_dump())  # valid
    back = sam.to_sof()
    assert type(back) is UIF and back == uif
    assert back.model_dump() == uif.model_dump()


@settings(max_examples=300, deadline=None)
@given(sam_uifs())
def test_sam_to_sof_to_sam_is_exact(uif: SAM_UIF) -> None:
    sof = uif.to_sof()
    assert type(sof) is UIF and UIF.model_validate(sof.model_dump())  # valid
    back = SAM_UIF.from_sof(sof)
    assert sam_data(back) == sam_data(uif)
    assert back.created_at == uif.created_at  # kept beside the sof_core.UIF (it was lost)


def test_created_at_comes_back_only_from_the_uif_to_sof_made() -> None:
    old = SAM_UIF(input_query="q", created_at="2001-02-03T04:05:06")
    converted = old.to_sof()
    assert SAM_UIF.from_sof(converted).created_at == "2001-02-03T04:05:06"
    assert converted == UIF(**converted.model_dump())  # nothing extra in the UIF itself
    fresh = SAM_UIF.from_sof(UIF(input_query="q"))
    assert fresh.created_at != "2001-02-03T04:05:06"  # a UIF made otherwise: now


@settings(max_examples=200, deadline=None)
@given(sof_uifs())
def test_times_survive_json_to_the_microsecond(uif: UIF) -> None:
    """Without the exact seconds kept in memory, the ISO text still holds microseconds."""
    sam = SAM_UIF.model_validate_json(SAM_UIF.from_sof(uif).model_dump_json())
    back = sam.to_sof()
    for name in ("start_time", "end_time"):
        before, after = getattr(uif, name), getattr(back, name)
        assert (before is None and after is None) or abs(before - after) < 1.5e-6


@pytest.mark.parametrize("vetted,text", [
    ({}, None),
    ({"content": "Paris is the capital."}, "Paris is the capital."),
    ({"web:1": "Paris"}, '{"web:1":"Paris"}'),
    ({"content": "a", "source": "web"}, '{"content":"a","source":"web"}'),
    ({"content": '{"web:1":"Paris"}'}, '{"content":"{\\"web:1\\":\\"Paris\\"}"}'),
    ({"content": ""}, ""),
])
def test_vetted_content_conversion(vetted: dict[str, Any], text: str | None) -> None:
    sam = SAM_UIF(input_query="q", vetted_content=vetted)
    assert sam.to_sof().vetted_content == text
    assert SAM_UIF.from_sof(UIF(input_query="q", vetted_content=text)).vetted_content == vetted


@pytest.mark.parametrize("sam_value,sof_value", [
    ({"hits": 3}, {"hits": 3}),
    (42, {"__sam_value__": 42}),
    ("text", {"__sam_value__": "text"}),
    ([1, 2], {"__sam_value__": [1, 2]}),
    (None, {"__sam_value__": None}),
    ({"__sam_value__": 1}, {"__sam_value__": {"__sam_value__": 1}}),
    ({"__sam_value__": {"a": 1}}, {"__sam_value__": {"a": 1}}),
])
def test_skill_output_conversion(sam_value: Any, sof_value: dict[str, Any]) -> None:
    sam = SAM_UIF(input_query="q", skill_outputs={"S": sam_value})
    assert sam.to_sof().skill_outputs == {"S": sof_value}
    back = SAM_UIF.from_sof(UIF(input_query="q", skill_outputs={"S": sof_value}))
    assert back.skill_outputs == {"S": sam_value}


def test_status_and_times_convert_to_each_models_form() -> None:
    started = time.time()
    sof = UIF(input_query="q", status=SOFStatus.TIMEOUT, start_time=started)
    sam = SAM_UIF.from_sof(sof)
    assert sam.status == "timeout" and type(sam.status) is str
    assert sam.start_time == datetime.fromtimestamp(started).isoformat()
    back = sam.to_sof()
    assert back.status is SOFStatus.TIMEOUT and back.start_time == started
    sam.start_time = "2024-05-01T10:00:00+00:00"  # an offset is honoured
    assert sam.to_sof().start_time == datetime.fromisoformat(sam.start_time).timestamp()


def test_conversions_share_nothing() -> None:
    sof = UIF(input_query="q", intermediate_data={"docs": [{"id": 1}]},
              user_context={"prefs": {"lang": "en"}})
    sam = SAM_UIF.from_sof(sof)
    sam.intermediate_data["docs"][0]["id"] = 2
    sam.user_context["prefs"]["lang"] = "fr"
    assert sof.intermediate_data == {"docs": [{"id": 1}]} and sof.user_context["prefs"] == {
        "lang": "en"}
    again = sam.to_sof()
    again.intermediate_data["docs"].append({"id": 3})
    assert sam.intermediate_data["docs"] == [{"id": 2}]


def test_from_sof_of_a_sam_uif_is_a_copy() -> None:
    sam = SAM_UIF(input_query="q", vetted_content={"a": 1}, start_time="2024-01-01T00:00:00")
    copy = SAM_UIF.from_sof(sam)
    assert copy is not sam and copy.model_dump() == sam.model_dump()


def test_what_sof_cannot_hold_raises_a_uif_error_naming_the_field() -> None:
    with pytest.raises(UIFError, match="input_query is whitespace only"):
        SAM_UIF(input_query="   ").to_sof()
    with pytest.raises(UIFError, match=r"start_time is 'yesterday'.*ISO 8601"):
        SAM_UIF(input_query="q", start_time="yesterday").to_sof()
    with pytest.raises(UIFError, match="end_time"):
        SAM_UIF.from_sof(UIF(input_query="q", end_time=1e20))
    with pytest.raises(UIFError, match=r"needs a sof_core\.UIF"):
        SAM_UIF.from_sof({"input_query": "q"})  # type: ignore[arg-type]


# --- run by sof_core's coordinator ---------------------------------------------------------


class PickledExecutor:
    """Runs each skill through sof_core's public remote-call API, its payload pickled."""

    name = "pickled"
    concurrent = True

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
        outcomes = []
        for step in steps:
            view, scope = skill_view(run.uif, step)
            skill, inputs, fields = call_payload(step, run.uif)
            sent = pickle.loads(pickle.dumps((inputs, fields)))
            box: dict[str, Any] = {}

            def far(skill: Any = skill, sent: Any = sent, box: dict[str, Any] = box) -> None:
                try:
                    box["changes"] = pickle.loads(pickle.dumps(run_skill_call(skill, *sent)))
                except Exception as exc:
                    box["error"] = exc

            worker = threading.Thread(target=far)
            worker.start()
            worker.join()
            try:
                if "error" in box:
                    raise box["error"]
                replay_changes(step, view, box["changes"])
                result = check_returned(step, view, view)
                outcomes.append(Outcome(step, result, view, scope, scope, None, 0.0, 1))
            except Exception as exc:
                outcomes.append(Outcome(step, None, None, None, None, exc, 0.0, 1))
        return outcomes


class PickledPlugin:
    @hookimpl
    def sof_register_executors(self) -> list[Any]:
        return [PickledExecutor]


FAST = {"skill_timeout": None, "total_timeout": None}
SUPERVISED = {"skill_timeout": 30.0, "total_timeout": 60.0}
CONFIGS = [
    pytest.param({"executor": e, **c}, id=f"{e}-{n}")
    for e in ("sequential", "threads", "asyncio")
    for n, c in (("inline", FAST), ("supervised", SUPERVISED))
] + [pytest.param({"executor": "pickled", **FAST}, id="remote-replay")]


def engine_for(skills: list[Any], config: dict[str, Any]) -> Any:
    plugins = [("pickled-executor", PickledPlugin())] if config["executor"] == "pickled" else []
    return make_engine(skills, plugins=plugins, **config)


class RetrieveSkill(BaseSkillModule):
    skill_name = "RetrieveSkill"
    skill_description = "Finds passages for the query"
    skill_category = "memory"
    required_inputs = ["input_query"]
    output_keys = ["passages"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        assert isinstance(uif, SAM_UIF)
        uif.intermediate_data["passages"] = [f"about {uif.input_query}"]
        uif.add_log_entry("found 1 passage", self.skill_name)
        uif.set_skill_output(self.skill_name, 1)
        uif.mark_skill_complete(self.skill_name, 0.01)  # the coordinator records it once
        return uif


class AnswerSkill(BaseSkillModule):
    skill_name = "AnswerSkill"
    skill_description = "Answers from the passages"
    required_inputs = ["passages"]
    output_keys = ["final_response", "confidence_score"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.final_response = "; ".join(uif.intermediate_data["passages"])
        uif.confidence_score = 0.75
        uif.add_warning("answer is short")
        uif.set_skill_output(self.skill_name, {"chars": len(uif.final_response)})
        return uif


@pytest.mark.parametrize("config", CONFIGS)
def test_the_core_engine_runs_a_sam_uif_in_place(config: dict[str, Any]) -> None:
    engine = engine_for([RetrieveSkill, AnswerSkill], config)
    uif = SAM_UIF(input_query="SOF", skill_outputs={"AnswerSkill": {"old": True}})
    report = engine.execute_plan(["RetrieveSkill", "AnswerSkill"], uif)
    assert report.status == "success", report.errors
    assert report.uif is uif and type(uif) is SAM_UIF
    assert uif.status == "success" and type(uif.status) is str
    assert is_iso(uif.start_time) and is_iso(uif.end_time) and uif.start_time <= uif.end_time
    assert uif.updated_at >= uif.end_time
    assert uif.final_response == "about SOF" and uif.confidence_score == 0.75
    assert uif.executed_skills == ["RetrieveSkill", "AnswerSkill"]
    assert set(uif.skill_timings) == {"RetrieveSkill", "AnswerSkill"}
    assert uif.skill_outputs == {"RetrieveSkill": 1, "AnswerSkill": {"chars": 9}}  # replaced
    assert uif.warnings == ["answer is short"]
    assert any(re.fullmatch(rf"\[{ISO}\] RetrieveSkill: found 1 passage", line)
               for line in uif.log_trace)
    assert type(uif.executed_skills) is list and type(uif.vetted_content) is dict
    SAM_UIF.model_validate(uif.model_dump())  # still a valid SAM_UIF


class FailingSkill(BaseSkillModule):
    skill_name = "FailingSkill"
    skill_description = "Reports a failure the SAM way"

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.set_error("backend unreachable", self.skill_name)
        return uif


@pytest.mark.parametrize("config", CONFIGS)
def test_set_error_in_a_sam_skill_fails_it(config: dict[str, Any]) -> None:
    engine = engine_for([FailingSkill], config)
    uif = SAM_UIF(input_query="q")
    report = engine.execute_plan(["FailingSkill"], uif)
    (result,) = report.results
    assert result.status == "failed" and "backend unreachable" in (result.error or "")
    assert report.status == "failure" and uif.status == "failure" and is_iso(uif.end_time)


class VettedWriter(BaseSkillModule):
    skill_name = "VettedWriter"
    skill_description = "Changes vetted_content in place"

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.vetted_content["web:2"] = "Lyon"
        return uif


@pytest.mark.parametrize("config", CONFIGS)
def test_vetted_content_is_read_only_to_a_skill_that_does_not_declare_it(
    config: dict[str, Any],
) -> None:
    engine = engine_for([VettedWriter], config)
    uif = SAM_UIF(input_query="q", vetted_content={"web:1": "Paris"})
    (result,) = engine.execute_plan(["VettedWriter"], uif).results
    assert result.error_type == "UndeclaredWriteError" and "vetted_content" in result.error
    assert uif.vetted_content == {"web:1": "Paris"} and type(uif.vetted_content) is dict

    declared = type("VettedOwner", (VettedWriter,), {
        "skill_name": "VettedOwner", "output_keys": ["vetted_content"]})
    engine = engine_for([declared], config)
    uif = SAM_UIF(input_query="q", vetted_content={"web:1": "Paris"})
    assert engine.execute_plan(["VettedOwner"], uif).status == "success"
    assert uif.vetted_content == {"web:1": "Paris", "web:2": "Lyon"}


class NativeCounter(NativeSkill):
    skill_name = "NativeCounter"
    skill_description = "A native SOF skill reading SAM's passages"
    required_inputs = ["passages"]
    output_keys = ["count"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["count"] = len(uif.intermediate_data["passages"])
        uif.add_log_entry("counted", self.skill_name)
        return uif


def test_native_and_sam_skills_share_a_run() -> None:
    engine = engine_for([RetrieveSkill, NativeCounter], {"executor": "threads", **FAST})
    uif = SAM_UIF(input_query="q")
    report = engine.execute_plan(["RetrieveSkill", "NativeCounter"], uif)
    assert report.status == "success" and uif.intermediate_data["count"] == 1


def test_a_cancelled_status_set_by_a_host_survives_conversion() -> None:
    uif = SAM_UIF(input_query="q")
    uif.status = UIFStatus.CANCELLED
    assert uif.to_sof().status is SOFStatus.CANCELLED
