"""Key types and boolean declarations are checked when a skill is defined.

A key type is what the validator compares between producer and consumer and what the
executor checks each write against (``isinstance``), so a form neither can use is refused
at definition with ``SkillDefinitionError`` naming the skill and the key, and every form it
accepts works at run time (``typing.Any`` once raised ``TypeError`` from ``isinstance`` in
the run). Boolean declarations must be ``True`` or ``False`` (``"no"`` counted as true).
"""

from __future__ import annotations

import pickle
import typing
from typing import (
    Annotated,
    Any,
    ForwardRef,
    Literal,
    NewType,
    Optional,
    Protocol,
    TypedDict,
    TypeVar,
    Union,
)

import pytest

from sof_core import UIF, BaseSkillModule, SkillDefinitionError
from sof_core.skills.spec import SkillSpec
from sof_core.testing import make_engine

UserId = NewType("UserId", int)
T = TypeVar("T")


class _Shape(Protocol):
    def area(self) -> float: ...


@typing.runtime_checkable
class _Sized(Protocol):
    def __len__(self) -> int: ...


class _Row(TypedDict):
    a: int


def _pair(key_type: Any, value: Any, *, consumed: Any = None, form: str = "mapping"
          ) -> tuple[type[BaseSkillModule], type[BaseSkillModule]]:
    """A producer writing ``value`` to ``o`` declared as ``key_type``, and a consumer of
    ``o`` declared as ``consumed`` (default: the same type)."""
    consumed = key_type if consumed is None else consumed
    outputs: Any = {"o": key_type} if form == "mapping" else [("o", key_type)]
    inputs: Any = {"o": consumed} if form == "mapping" else [("o", consumed)]

    class Producer(BaseSkillModule):
        skill_name = "Producer"
        skill_description = "writes o"
        required_inputs = ["input_query"]
        output_keys = outputs

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["o"] = value
            return uif

    class Consumer(BaseSkillModule):
        skill_name = "Consumer"
        skill_description = "reads o"
        required_inputs = inputs
        output_keys = ["done"]

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["done"] = True
            return uif

    return Producer, Consumer


def _run(producer: type[BaseSkillModule], consumer: type[BaseSkillModule]) -> Any:
    engine = make_engine([producer, consumer])
    try:
        assert engine.validate_plan(["Producer", "Consumer"]) == []
        return engine.execute_plan(["Producer", "Consumer"], UIF(input_query="q"))
    finally:
        engine.close()


@pytest.mark.parametrize("form", ["mapping", "pairs"])
@pytest.mark.parametrize(
    ("key_type", "value"),
    [
        (Any, 1),
        (Any, object()),
        (object, "anything"),
        (Optional[Any], "x"),  # noqa: UP045 (the spelling users write)
        (list[str], ["a"]),
        (typing.List[str], ["a"]),  # noqa: UP006
        (dict[str, Any], {"a": object()}),
        (typing.Dict[str, typing.Any], {}),  # noqa: UP006
        (Optional[int], None),  # noqa: UP045
        (Optional[int], 3),  # noqa: UP045
        (int | None, None),
        (Union[int, str], "s"),  # noqa: UP007
        (list[int] | None, [1]),
        (typing.Sequence[int], (1, 2)),
        (tuple[int, ...], (1,)),
        (Annotated[int, "metadata"], 3),
        (UserId, UserId(3)),
        (_Sized, [1]),
    ],
)
def test_every_accepted_key_type_runs(key_type: Any, value: Any, form: str) -> None:
    # Before: typing.Any passed definition and validation, then the run failed with
    # "TypeError: typing.Any cannot be used with isinstance()".
    report = _run(*_pair(key_type, value, form=form))
    assert report.status == "success", report.errors


@pytest.mark.parametrize(
    ("key_type", "value", "declared"),
    [
        (Optional[int], "x", "Optional[int]"),  # noqa: UP045
        (int | None, 2.5, "int | None"),
        (Union[int, str], [], "Union[int, str]"),  # noqa: UP007
        (list[str], ("a",), "list[str]"),
        (dict[str, Any], [], "dict[str, Any]"),
        (Annotated[int, "m"], "x", "int"),
    ],
)
def test_a_write_of_another_type_fails_naming_the_declared_type(
    key_type: Any, value: Any, declared: str
) -> None:
    # Before: parameterised types and unions were never checked at run time.
    report = _run(*_pair(key_type, value))
    assert report.status != "success"
    error = str(report.errors[0])
    assert "Producer" in error and "'o'" in error and error.endswith(f"declared {declared}")


def test_any_or_object_in_a_union_accepts_everything() -> None:
    from sof_core.skills.spec import output_check

    assert output_check(Union[int, Any]) is None  # noqa: UP007
    assert output_check(int | object) is None
    assert output_check(Any) is None and output_check(object) is None


def test_a_union_check_pickles() -> None:
    from sof_core.skills.spec import output_check

    check = output_check(Optional[int])  # noqa: UP045
    assert check is not None
    copy = pickle.loads(pickle.dumps(check))
    assert isinstance(None, copy) and isinstance(3, copy) and not isinstance("3", copy)
    assert copy.__name__ == "Optional[int]"


def test_the_validator_still_compares_accepted_forms() -> None:
    producer, consumer = _pair(Optional[int], None, consumed=int)  # noqa: UP045
    engine = make_engine([producer, consumer])
    try:
        [problem] = engine.validate_plan(["Producer", "Consumer"])
    finally:
        engine.close()
    assert problem.code == "type_mismatch" and problem.key == "o"
    assert "Optional[int]" in str(problem)


def test_annotated_and_newtype_are_normalised() -> None:
    producer, _ = _pair(Annotated[list[str], "m"], [])
    assert SkillSpec.from_skill_class(producer).output_types == {"o": list[str]}
    producer, _ = _pair(Optional[UserId], None)  # noqa: UP045
    assert SkillSpec.from_skill_class(producer).output_types == {"o": Optional[int]}  # noqa: UP045


@pytest.mark.parametrize("attribute", ["output_keys", "required_inputs", "optional_inputs"])
@pytest.mark.parametrize("form", ["mapping", "pairs"])
@pytest.mark.parametrize(
    ("key_type", "says"),
    [
        (5, "5 (an int), which is not a type"),
        ("notatype", "'notatype', which is a name, not a type"),
        ("int", "'int', which is a name, not a type"),
        (ForwardRef("int"), "is a name, not a type"),
        (["a"], "is not a type"),
        (None, None),  # None: an untyped key, accepted
        (T, "is a type variable"),
        (Literal["a", "b"], "declare the type of its values (str)"),
        (_Shape, "runtime_checkable"),
        (_Row, "TypedDict"),
        (Optional["int"], "is a name, not a type"),
        (typing.ClassVar[int], "is not a type"),
    ],
)
def test_what_is_not_a_key_type_is_refused_at_definition(
    attribute: str, form: str, key_type: Any, says: str | None
) -> None:
    # Before: ``{"o": 5}`` registered; the only sign was a later type_mismatch
    # "'P' produces 5 but 'C' expects int".
    declared: Any = {"o": key_type} if form == "mapping" else [("o", key_type)]

    def define() -> type[BaseSkillModule]:
        class Broken(BaseSkillModule):
            skill_name = "Broken"
            skill_description = "declares a key type that is not one"
            locals()[attribute] = declared

            def execute(self, uif: UIF) -> UIF:
                return uif

        return Broken

    if says is None:
        define()
        return
    with pytest.raises(SkillDefinitionError) as caught:
        define()
    message = str(caught.value)
    assert caught.value.skill == "Broken"
    assert f"{attribute} key 'o'" in message and says in message
    assert "a key type is a class" in message


def test_a_key_type_assigned_later_is_refused_at_registration() -> None:
    producer, consumer = _pair(int, 1)
    producer.output_keys = {"o": 5}
    with pytest.raises(SkillDefinitionError, match=r"output_keys key 'o' has type 5"):
        make_engine([producer, consumer])


FLAGS = ["can_run_parallel", "requires_external_access", "requires_vetting", "vets_content"]


@pytest.mark.parametrize("attribute", FLAGS)
@pytest.mark.parametrize("value", ["no", "yes", "", 1, 0, None, [True]])
def test_a_flag_must_be_true_or_false(attribute: str, value: Any) -> None:
    # Before: can_run_parallel = "no" was accepted and read as true.
    with pytest.raises(SkillDefinitionError) as caught:
        class Flagged(BaseSkillModule):
            skill_name = "Flagged"
            skill_description = "sets a flag to a non-bool"
            locals()[attribute] = value

            def execute(self, uif: UIF) -> UIF:
                return uif
    message = str(caught.value)
    assert caught.value.skill == "Flagged"
    assert f"{attribute} must be True or False, got {value!r}" in message
    assert f"write {attribute} = True or {attribute} = False" in message


@pytest.mark.parametrize("attribute", FLAGS)
def test_true_and_false_flags_are_kept(attribute: str) -> None:
    for value in (True, False):
        cls = type("Flagged", (BaseSkillModule,), {
            "skill_name": "Flagged", "skill_description": "sets a flag",
            attribute: value, "execute": lambda self, uif: uif,
        })
        assert getattr(SkillSpec.from_skill_class(cls), attribute) is value


def test_a_flag_assigned_later_is_refused_at_registration() -> None:
    producer, consumer = _pair(int, 1)
    producer.can_run_parallel = "no"  # type: ignore[assignment]
    with pytest.raises(SkillDefinitionError, match="can_run_parallel must be True or False"):
        make_engine([producer, consumer])
