"""The UIF gives back what it accepts, and always serialises.

Found by the fault matrix of issue 8: NaN and infinity were accepted and came back as
``None``, tuples and sets came back as lists, and nesting past pydantic's serialisation depth
was accepted and then could not be dumped at all. Now a value that would not round-trip is
rejected when a field is built or assigned (``UIFError`` naming the field and path), tuples
become lists on the way in, and what a skill writes at run time (not checked: that is the
hot path) is made JSON by ``UIF.to_jsonable()`` / ``UIF.to_json_safe()``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from typing import Any

import pydantic
import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sof_core import UIF, BaseSkillModule, SOFError, UIFError
from sof_core.testing import make_engine
from sof_core.uif import FREE_FORM_FIELDS, MAX_JSON_DEPTH


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def self_containing() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses the NaN/Infinity tokens Python's json writes by default."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


# --- rejected on the way in --------------------------------------------------------------

BAD_VALUES = [
    pytest.param(math.nan, "is nan: JSON has no NaN or infinity", id="nan"),
    pytest.param(math.inf, "is inf: JSON has no NaN or infinity", id="inf"),
    pytest.param(-math.inf, "is -inf: JSON has no NaN or infinity", id="-inf"),
    pytest.param([1, {"deep": math.nan}], "[1]['deep'] is nan", id="nested-nan"),
    pytest.param({3, 1}, "is a set, which JSON cannot hold", id="set"),
    pytest.param(frozenset({1}), "is a frozenset, which JSON cannot hold", id="frozenset"),
    pytest.param(b"raw", "is bytes, which JSON cannot hold", id="bytes"),
    pytest.param(object(), "is a builtins.object, which is not JSON data", id="object"),
    pytest.param(datetime.date(2024, 1, 1), "is a datetime.date, which is not JSON", id="date"),
    pytest.param({"k": {2: "int key"}}, "['k'] has the key 2 (int)", id="int-key"),
    pytest.param("caf\udce9", "is not valid UTF-8 text (lone surrogate U+DCE9", id="surrogate"),
    pytest.param(nested(MAX_JSON_DEPTH + 5), f"more than {MAX_JSON_DEPTH} levels", id="deep"),
    pytest.param(nested(5000), f"more than {MAX_JSON_DEPTH} levels", id="5000-deep"),
    pytest.param(self_containing(), "(or contains itself)", id="cycle"),
    # more digits than Python writes as text: accepted, then model_validate_json refused it
    pytest.param(10**5000, "is an integer of more than 4300 digits", id="huge-int"),
]


@pytest.mark.parametrize("field", FREE_FORM_FIELDS)
@pytest.mark.parametrize(("value", "expected"), BAD_VALUES)
def test_construction_rejects_what_would_not_round_trip_naming_field_and_path(
    field: str, value: Any, expected: str
) -> None:
    data = {"S": {"v": value}} if field == "skill_outputs" else {"v": value}
    prefix = f"{field}['S']['v']" if field == "skill_outputs" else f"{field}['v']"
    with pytest.raises(UIFError) as info:
        UIF(input_query="q", **{field: data})
    message = str(info.value)
    assert message.startswith(f"invalid UIF: {prefix}")
    assert expected in message
    assert isinstance(info.value, SOFError) and isinstance(info.value, ValueError)
    assert len(message) < 600  # a 5,000-deep value is named, never printed


@pytest.mark.parametrize(("value", "expected"), BAD_VALUES)
def test_model_validate_and_for_query_and_assignment_reject_the_same(
    value: Any, expected: str
) -> None:
    with pytest.raises(UIFError, match=r"user_context\['v'\]"):
        UIF.model_validate({"input_query": "q", "user_context": {"v": value}})
    with pytest.raises(UIFError, match=r"user_context\['v'\]"):
        UIF.for_query("q", user_context={"v": value})
    uif = UIF(input_query="q", user_context={"kept": 1})
    with pytest.raises(UIFError) as info:
        uif.user_context = {"v": value}
    assert expected in str(info.value)
    assert uif.user_context == {"kept": 1}  # the failed assignment changed nothing


def test_json_with_nan_tokens_is_rejected_by_model_validate_json() -> None:
    with pytest.raises(UIFError, match=r"intermediate_data\['x'\] is nan"):
        UIF.model_validate_json('{"input_query": "q", "intermediate_data": {"x": NaN}}')


@pytest.mark.parametrize("field", ["confidence_score", "start_time", "end_time"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_float_fields_reject_nan_and_infinity(field: str, value: float) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        UIF(input_query="q", **{field: value})
    with pytest.raises(pydantic.ValidationError, match=field):
        UIF(input_query="q").__setattr__(field, value)
    with pytest.raises(pydantic.ValidationError, match="skill_timings"):
        UIF(input_query="q", skill_timings={"S": value})


def test_other_errors_keep_pydantics_type_and_a_mix_is_one_uif_error() -> None:
    with pytest.raises(pydantic.ValidationError):
        UIF(input_query="q", colour="blue")  # type: ignore[call-arg]
    with pytest.raises(UIFError) as info:
        UIF(input_query="q", colour="blue", user_context={"x": math.nan})  # type: ignore[call-arg]
    assert "user_context['x'] is nan" in str(info.value)
    assert "colour: is not a UIF field" in str(info.value)


# --- converted on the way in -------------------------------------------------------------


def test_tuples_become_lists_on_the_way_in_so_the_round_trip_is_exact() -> None:
    uif = UIF(input_query="q", user_context={"range": (1, 5), "pairs": [(1, 2), ["a", ("b",)]]})
    assert uif.user_context == {"range": [1, 5], "pairs": [[1, 2], ["a", ["b"]]]}
    assert UIF.model_validate_json(uif.model_dump_json()) == uif


def test_containers_without_tuples_are_kept_as_given_not_copied() -> None:
    context = {"a": [1, {"b": "c"}]}
    uif = UIF(input_query="q", user_context=context)
    assert uif.user_context["a"] is context["a"]


def test_nesting_up_to_the_limit_is_accepted_and_round_trips() -> None:
    uif = UIF(input_query="q", intermediate_data={"deep": nested(MAX_JSON_DEPTH - 1)})
    assert UIF.model_validate_json(uif.model_dump_json()) == uif


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(context=st.dictionaries(st.text(), json_values, max_size=4),
       data=st.dictionaries(st.text(), json_values, max_size=4))
def test_whatever_is_accepted_comes_back_equal_through_json(
    context: dict[str, Any], data: dict[str, Any]
) -> None:
    uif = UIF(input_query="q", user_context=context, intermediate_data=data,
              security_context={"c": context}, skill_outputs={"S": data})
    again = UIF.model_validate_json(uif.model_dump_json())
    assert again == uif
    assert again.model_dump() == uif.model_dump()


# --- what a skill writes at run time always serialises -----------------------------------


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(secret)"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_to_jsonable_turns_anything_a_skill_can_write_into_strict_json() -> None:
    uif = UIF(input_query="q")
    data = uif.intermediate_data
    data.update(
        nan=math.nan, inf=math.inf, ninf=-math.inf, tup=(1, 2), st={3, 1, 2},
        when=datetime.datetime(2024, 1, 2, 3, 4, 5), point=Point(1.0, math.nan),
        opaque=Opaque(), broken=BrokenRepr(), raw=b"\xff", text="caf\udce9",
        deep=nested(5000), loop=self_containing(), keys={1: "a", None: "b", (1, 2): "c"},
    )
    out = strict_json(uif.to_json_safe())
    got = out["intermediate_data"]
    assert (got["nan"], got["inf"], got["ninf"]) == ("NaN", "Infinity", "-Infinity")
    assert got["tup"] == [1, 2] and got["st"] == [1, 2, 3]
    assert got["when"] == "2024-01-02T03:04:05"
    assert got["point"] == {"x": 1.0, "y": "NaN"}
    assert got["opaque"] == "<not JSON: Opaque(secret)>"
    assert got["broken"] == "<not JSON: unprintable BrokenRepr>"
    assert got["raw"].startswith("<not JSON: b'\\xff'")
    assert got["text"] == "caf\\udce9"
    assert got["loop"] == {"self": "<not JSON: a dict that contains itself>"}
    assert got["keys"] == {"1": "a", "null": "b", "<not JSON: (1, 2)>": "c"}
    level = got["deep"]
    for _ in range(MAX_JSON_DEPTH - 2):
        level = level[0]
    assert level == [f"<not JSON: a list nested more than {MAX_JSON_DEPTH} levels deep>"]
    assert out["input_query"] == "q" and out["status"] == "pending"
    assert uif.to_jsonable() == out


def test_pydantics_own_dump_spells_a_run_time_nan_as_a_string_not_null() -> None:
    uif = UIF(input_query="q")
    uif.intermediate_data["score"] = math.nan
    assert json.loads(uif.model_dump_json())["intermediate_data"]["score"] == "NaN"


class WritesOddValues(BaseSkillModule):
    skill_name = "WritesOddValues"
    skill_description = "writes values JSON cannot hold, as a careless skill might"
    required_inputs = ["input_query"]
    output_keys = ["odd"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["odd"] = {
            "nan": math.nan, "deep": nested(5000), "obj": Opaque(), "set": {1},
        }
        return uif


def test_a_uif_left_odd_by_a_skill_still_dumps_safely_after_a_run() -> None:
    engine = make_engine([WritesOddValues])
    report = engine.run_query("q", ["WritesOddValues"])
    assert report.status == "success", report.errors
    with pytest.raises(pydantic_core.PydanticSerializationError):
        report.uif.model_dump_json()  # pydantic's own dump cannot: hence to_json_safe
    odd = strict_json(report.uif.to_json_safe())["intermediate_data"]["odd"]
    assert odd["nan"] == "NaN" and odd["obj"] == "<not JSON: Opaque(secret)>"
    assert odd["set"] == [1]


def test_the_longest_integer_python_writes_as_text_round_trips() -> None:
    longest = 10**4299  # 4,300 digits: the default int/str limit
    uif = UIF(input_query="q", intermediate_data={"n": longest, "small": 2**64})
    back = UIF.model_validate_json(uif.model_dump_json())
    assert back.intermediate_data == {"n": longest, "small": 2**64}


def test_to_json_safe_marks_an_integer_too_long_for_text_and_never_raises() -> None:
    # a skill's run-time write is not checked on the way in: json.dumps raised ValueError
    uif = UIF(input_query="q")
    uif.intermediate_data["n"] = 10**5000
    data = strict_json(uif.to_json_safe())
    assert data["intermediate_data"]["n"] == "<not JSON: an integer of more than 4300 digits>"
