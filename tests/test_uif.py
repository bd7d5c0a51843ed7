"""The UIF keeps SAM's field names, validates every write, and round-trips through JSON."""

from __future__ import annotations

import pydantic
import pytest

from sof_core import SAM_UIF, UIF, UIFStatus

SAM_FIELDS = """task_id status input_query source_documents user_context active_profile session_id
user_id intermediate_data skill_outputs security_context requires_vetting vetted_content
final_response confidence_score error_details warnings log_trace execution_plan executed_skills
skill_timings start_time end_time""".split()


def test_has_exactly_sams_fields_and_alias() -> None:
    assert set(UIF.model_fields) == set(SAM_FIELDS)
    assert SAM_UIF is UIF


def test_unknown_field_is_rejected_naming_it() -> None:
    with pytest.raises(pydantic.ValidationError, match="final_answer"):
        UIF(input_query="q", final_answer="x")  # type: ignore[call-arg]
    uif = UIF(input_query="q")
    with pytest.raises(pydantic.ValidationError, match="final_answer"):
        uif.final_answer = "x"


@pytest.mark.parametrize("query", ["", "   \n"])
def test_input_query_must_have_text(query: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="input_query"):
        UIF(input_query=query)


@pytest.mark.parametrize("score", [-0.1, 1.01])
def test_confidence_is_bounded_on_assignment(score: float) -> None:
    uif = UIF(input_query="q")
    with pytest.raises(pydantic.ValidationError, match="confidence_score"):
        uif.confidence_score = score
    assert uif.confidence_score is None


def test_assignment_is_validated() -> None:
    uif = UIF(input_query="q")
    with pytest.raises(pydantic.ValidationError, match="source_documents"):
        uif.source_documents = "not a list"  # type: ignore[assignment]


def test_json_round_trip_is_lossless() -> None:
    uif = UIF.for_query("what is SOF?", user_context={"lang": "en"}, session_id="s1")
    uif.intermediate_data["memory_results"] = [{"id": "a", "score": 0.5, "nested": [1, 2.5, None]}]
    uif.set_skill_output("Mem", {"count": 1})
    uif.mark_skill_complete("Mem", 0.25)
    uif.add_warning("careful")
    uif.confidence_score = 0.75
    uif.status = UIFStatus.SUCCESS
    again = UIF.model_validate_json(uif.model_dump_json())
    assert again == uif
    assert again.model_dump() == uif.model_dump()


def test_sam_helpers() -> None:
    uif = UIF(input_query="q")
    uif.add_log_entry("started", "Mem")
    uif.set_skill_output("Mem", {"a": 1})
    uif.set_skill_output("Mem", {"b": 2})
    uif.mark_skill_complete("Mem", 0.1)
    assert uif.log_trace == ["[Mem] started"]
    assert uif.get_skill_output("Mem") == {"a": 1, "b": 2}
    assert uif.get_skill_output("Mem", "b") == 2
    assert uif.get_skill_output("Other") is None
    assert not uif.is_complete()
    uif.set_error("boom", "Mem")
    assert uif.status is UIFStatus.FAILURE and uif.is_complete()
    assert uif.error_details == "Mem: boom"
    summary = uif.get_execution_summary()
    assert summary["status"] == "failure" and summary["executed_skills"] == ["Mem"]


def test_for_query_raises_one_sof_error_naming_every_bad_field() -> None:
    from sof_core import SOFError, UIFError

    with pytest.raises(UIFError) as info:
        UIF.for_query("  ", confidence_score=2.0, colour="blue")
    message = str(info.value)
    assert isinstance(info.value, SOFError) and isinstance(info.value, ValueError)
    assert "input_query: input_query must contain non-whitespace text" in message
    assert "confidence_score" in message and "colour: is not a UIF field" in message


def test_task_ids_are_distinct_random_uuid4_hex() -> None:
    """``task_id`` defaults to what ``uuid.uuid4().hex`` gives (hosts and logs parse it)."""
    import uuid

    ids = [UIF(input_query="q").task_id for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for task_id in ids[:200]:
        parsed = uuid.UUID(hex=task_id)
        assert parsed.hex == task_id and len(task_id) == 32
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
