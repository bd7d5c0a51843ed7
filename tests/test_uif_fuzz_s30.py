"""Bad UIF input is a clear error naming the field, and what the UIF accepts serialises.

Found by fuzzing the public API: a lone surrogate in a string field other than
``input_query`` was accepted and then ``model_dump_json()`` raised; ``for_query`` and
``run_query`` given ``start_time`` or ``input_query`` as a field raised a bare ``TypeError``;
a non-string dict key whose ``repr`` fails (deep, broken, a 5000-digit int) escaped as
``RecursionError``/``RuntimeError``/pydantic's int-conversion error instead of the documented
``UIFError``; and a too-long integer was pydantic's ``json_invalid`` in
``model_validate_json`` and slipped through as an ``int`` subclass.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from sof_core import UIF, BaseSkillModule, UIFError
from sof_core.testing import make_engine

STRING_FIELDS = ["task_id", "input_query", "active_profile", "session_id", "user_id",
                 "vetted_content", "final_response", "error_details"]
LIST_FIELDS = ["source_documents", "warnings", "log_trace", "execution_plan",
               "executed_skills"]
SURROGATE = "text \udc80"


def _unicode_error(exc: pydantic.ValidationError, field: str) -> None:
    """The error input_query always gave: pydantic's ``string_unicode``, naming the field."""
    (error,) = exc.errors()
    assert error["type"] == "string_unicode"
    assert error["loc"][0] == field
    assert error["msg"] == ("Input should be a valid string, unable to parse raw data as a "
                            "unicode string")


# --- lone surrogates in string fields --------------------------------------------------


@pytest.mark.parametrize("field", STRING_FIELDS)
def test_a_lone_surrogate_in_a_string_field_is_refused_as_in_input_query(field: str) -> None:
    data = {"input_query": "q", field: SURROGATE}
    with pytest.raises(pydantic.ValidationError) as caught:
        UIF(**data)
    _unicode_error(caught.value, field)


@pytest.mark.parametrize("field", [f for f in STRING_FIELDS if f != "input_query"])
def test_an_assigned_lone_surrogate_is_refused_and_the_field_kept(field: str) -> None:
    uif = UIF(input_query="q")
    before = getattr(uif, field)
    with pytest.raises(pydantic.ValidationError) as caught:
        setattr(uif, field, SURROGATE)
    _unicode_error(caught.value, field)
    assert getattr(uif, field) == before
    UIF.model_validate_json(uif.model_dump_json())


@pytest.mark.parametrize("field", LIST_FIELDS)
def test_a_lone_surrogate_in_a_list_of_strings_is_refused(field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        UIF(input_query="q", **{field: ["fine", SURROGATE]})
    _unicode_error(caught.value, field)


def test_a_lone_surrogate_in_a_skill_timings_key_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="skill_timings"):
        UIF(input_query="q", skill_timings={SURROGATE: 1.0})


def test_for_query_gives_the_surrogate_as_a_uif_error_naming_the_field() -> None:
    with pytest.raises(UIFError, match="final_response"):
        UIF.for_query("q", final_response=SURROGATE)


def test_valid_unicode_in_string_fields_round_trips() -> None:
    uif = UIF(input_query="café ☕", final_response="naïve 😀", warnings=["ß"],
              skill_timings={"Ünï": 1.0})
    uif.error_details = "日本"
    assert UIF.model_validate_json(uif.model_dump_json()) == uif


# --- for_query / run_query given a field they set themselves ----------------------------


def test_for_query_keeps_a_start_time_the_caller_gives() -> None:
    assert UIF.for_query("q", start_time=123.0).start_time == 123.0
    assert UIF.for_query("q").start_time is not None  # stamped when not given


def test_for_query_given_input_query_too_is_a_uif_error_naming_it() -> None:
    with pytest.raises(UIFError, match="input_query"):
        UIF.for_query("q", input_query="other")


class _Answer(BaseSkillModule):
    skill_name = "S30Answer"
    skill_description = "answers"
    required_inputs = ["input_query"]
    output_keys = {"answer": str}

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["answer"] = "a"
        return uif


def test_run_query_keeps_a_start_time_the_caller_gives() -> None:
    engine = make_engine([_Answer])
    report = engine.run_query("q", ["S30Answer"], start_time=123.0)
    assert report.uif.start_time == 123.0


def test_run_query_given_input_query_too_is_a_uif_error_naming_it() -> None:
    engine = make_engine([_Answer])
    with pytest.raises(UIFError, match="input_query"):
        engine.run_query("q", ["S30Answer"], input_query="other")


# --- keys whose repr fails ---------------------------------------------------------------


def _deep_tuple(depth: int) -> Any:
    value: Any = ()
    for _ in range(depth):
        value = (value,)
    return value


class _BrokenRepr:
    def __hash__(self) -> int:
        return 1

    def __repr__(self) -> str:
        raise RuntimeError("repr boom")


@pytest.mark.parametrize("key", [_deep_tuple(5000), _BrokenRepr(), 10**5000],
                         ids=["deep-tuple", "broken-repr", "5000-digit-int"])
@pytest.mark.parametrize("nested", [False, True], ids=["top", "nested"])
def test_a_non_string_key_whose_repr_fails_is_the_uif_error_about_string_keys(
        key: Any, nested: bool) -> None:
    context = {"a": {key: 1}} if nested else {key: 1}
    with pytest.raises(UIFError, match=r"user_context.* use string keys"):
        UIF(input_query="q", user_context=context)


# --- integers too long for JSON text -----------------------------------------------------


def test_model_validate_json_with_a_too_long_integer_is_a_uif_error() -> None:
    text = '{"input_query": "q", "user_context": {"a": ' + "9" * 5000 + "}}"
    with pytest.raises(UIFError, match="store it as a string"):
        UIF.model_validate_json(text)


class _MyInt(int):
    pass


def test_a_too_long_int_subclass_is_refused_like_an_int() -> None:
    with pytest.raises(UIFError, match=r"user_context\['a'\] is an integer of more than"):
        UIF(input_query="q", user_context={"a": _MyInt(10**5000)})


def test_a_short_int_subclass_round_trips_as_its_value() -> None:
    uif = UIF(input_query="q", user_context={"a": _MyInt(7)})
    assert UIF.model_validate_json(uif.model_dump_json()).user_context == {"a": 7}
