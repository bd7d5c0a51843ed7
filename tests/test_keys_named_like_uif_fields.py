"""A declared key named like a UIF field is both that field and an ``intermediate_data`` key.

SAM's response skill declares ``final_response`` and writes ``uif.final_response`` and
``intermediate_data["final_response"]``; vetting skills use ``intermediate_data
["vetted_content"]``. Both places work for writers and for readers that declare the key,
each holding what was written there, on every executor (a remote one included), and no
message ever calls a declared key undeclared.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from sof_core import (
    UIF,
    BaseSkillModule,
    Outcome,
    RunContext,
    Step,
    UndeclaredReadError,
    UndeclaredWriteError,
    call_payload,
    check_returned,
    hookimpl,
    replay_changes,
    run_skill_call,
    skill_view,
)
from sof_core.testing import make_engine

FAST = {"skill_timeout": None, "total_timeout": None}
SUPERVISED = {"skill_timeout": 30.0, "total_timeout": 60.0}


class PickledExecutor:
    """Runs each skill through the public remote-call API, its payload really pickled."""

    name = "pickled"
    concurrent = True

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
        outcomes = []
        for step in steps:
            view, scope = skill_view(run.uif, step)
            run.before_skill(step, view)
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


CONFIGS = [
    pytest.param({"executor": e, **c}, id=f"{e}-{n}")
    for e in ("sequential", "threads", "asyncio")
    for n, c in (("inline", FAST), ("supervised", SUPERVISED))
] + [pytest.param({"executor": "pickled", **FAST}, id="remote-replay")]


def engine_for(skills: list[Any], config: dict[str, Any]) -> Any:
    plugins = [("pickled-executor", PickledPlugin())] if config["executor"] == "pickled" else []
    return make_engine(skills, plugins=plugins, **config)


def skill(name: str, body: Any, requires: Any = (), outputs: Any = (), optional: Any = (),
          **attrs: Any) -> type:
    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"test skill {name}",
        "required_inputs": requires, "optional_inputs": list(optional),
        "output_keys": outputs, "max_execution_time": None, "execute": body, **attrs,
    })


def respond(self: Any, uif: UIF) -> UIF:
    """SAM's ResponseGenerationSkill: the answer as the field and as a data key."""
    uif.final_response = "the answer"
    uif.intermediate_data["final_response"] = "the answer (data)"
    uif.confidence_score = 0.75
    uif.intermediate_data["confidence_score"] = 0.5
    return uif


def read_both(self: Any, uif: UIF) -> UIF:
    data = uif.intermediate_data
    uif.intermediate_data["seen"] = {
        "field": uif.final_response,
        "item": data["final_response"],
        "get": data.get("final_response"),
        "in": "final_response" in data,
        "keys": sorted(data),
        "items": dict(data.items()),
        "score_field": uif.confidence_score,
        "score_item": data["confidence_score"],
    }
    return uif


Respond = skill("Respond", respond, ["input_query"], ["final_response", "confidence_score"])
ReadBoth = skill("ReadBoth", read_both, ["final_response"], ["seen"],
                 optional=["confidence_score"])


@pytest.mark.parametrize("config", CONFIGS)
def test_a_key_named_like_a_field_is_written_and_read_in_both_places(
    config: dict[str, Any],
) -> None:
    report = engine_for([Respond, ReadBoth], config).execute_plan(
        ["Respond", "ReadBoth"], UIF(input_query="q")
    )
    assert report.status == "success", report.errors
    uif = report.uif
    assert uif.final_response == "the answer"
    assert uif.confidence_score == 0.75
    assert uif.intermediate_data["final_response"] == "the answer (data)"
    assert uif.intermediate_data["confidence_score"] == 0.5
    assert uif.intermediate_data["seen"] == {
        "field": "the answer",
        "item": "the answer (data)",
        "get": "the answer (data)",
        "in": True,
        "keys": ["confidence_score", "final_response"],
        "items": {"confidence_score": 0.5, "final_response": "the answer (data)"},
        "score_field": 0.75,
        "score_item": 0.5,
    }


@pytest.mark.parametrize("config", CONFIGS)
def test_each_place_holds_only_what_was_written_there(config: dict[str, Any]) -> None:
    """Writing the field does not create the data key, and the other way round."""

    def field_only(self: Any, uif: UIF) -> UIF:
        uif.vetted_content = "checked text"
        return uif

    def look(self: Any, uif: UIF) -> UIF:
        data = uif.intermediate_data
        uif.intermediate_data["seen"] = [uif.vetted_content, "vetted_content" in data,
                                         data.get("vetted_content", "absent")]
        return uif

    skills = [skill("Vet", field_only, ["input_query"], ["vetted_content"]),
              skill("Look", look, ["vetted_content"], ["seen"])]
    report = engine_for(skills, config).execute_plan(["Vet", "Look"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["seen"] == ["checked text", False, "absent"]
    assert "vetted_content" not in report.uif.intermediate_data


@pytest.mark.parametrize("config", CONFIGS)
def test_a_vetting_skill_may_use_the_data_key_alone(config: dict[str, Any]) -> None:
    def vet(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["vetted_content"] = "clean: " + uif.intermediate_data["raw"]
        return uif

    def use(self: Any, uif: UIF) -> UIF:
        uif.final_response = uif.intermediate_data["vetted_content"]
        return uif

    skills = [skill("Vet", vet, ["raw"], ["vetted_content"]),
              skill("Use", use, ["vetted_content"], ["final_response"])]
    report = engine_for(skills, config).execute_plan(
        ["Vet", "Use"], UIF(input_query="q", intermediate_data={"raw": "text"})
    )
    assert report.status == "success", report.errors
    assert report.uif.final_response == "clean: text"
    assert report.uif.vetted_content is None


@pytest.mark.parametrize("config", CONFIGS)
def test_an_output_not_yet_written_reads_as_absent_never_as_undeclared(
    config: dict[str, Any],
) -> None:
    def probe(self: Any, uif: UIF) -> UIF:
        data = uif.intermediate_data
        seen: dict[str, Any] = {"in": "final_response" in data,
                                "get": data.get("final_response", "default")}
        try:
            data["final_response"]
        except KeyError as exc:
            seen["item"] = type(exc).__name__
        data["final_response"] = "x"
        del data["final_response"]
        data["final_response"] = "y"
        uif.final_response = "z"
        seen["after"] = [data["final_response"], uif.final_response]
        data["seen"] = seen
        return uif

    report = engine_for([skill("Probe", probe, ["input_query"], ["final_response", "seen"])],
                        config).execute_plan(["Probe"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["seen"] == {
        "in": False, "get": "default", "item": "KeyError", "after": ["y", "z"],
    }


@pytest.mark.parametrize("config", CONFIGS)
def test_a_declared_type_is_checked_for_the_data_key_too(config: dict[str, Any]) -> None:
    def wrong(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["final_response"] = 42
        return uif

    report = engine_for([skill("Wrong", wrong, ["input_query"], {"final_response": str})],
                        config).execute_plan(["Wrong"], UIF(input_query="q"))
    result = report.result("Wrong")
    assert result.status == "failed"
    assert "wrote 'final_response' as int but declared str" in result.error
    assert "not in its output_keys" not in result.error


def test_undeclared_errors_still_name_keys_that_are_really_undeclared() -> None:
    def sneaky(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["final_response"] = "no"
        return uif

    def peek(self: Any, uif: UIF) -> UIF:
        return uif.intermediate_data["final_response"]  # type: ignore[no-any-return]

    engine = make_engine([skill("Sneaky", sneaky, ["input_query"], ["other"]),
                          skill("Peek", peek, ["input_query"], ["x"])], **FAST)
    report = engine.execute_plan(["Sneaky"], UIF(input_query="q"))
    assert report.result("Sneaky").error_type == "UndeclaredWriteError"
    report = engine.execute_plan(
        ["Peek"], UIF(input_query="q", intermediate_data={"final_response": "a"})
    )
    assert report.result("Peek").error_type == "UndeclaredReadError"


def test_the_compiled_step_treats_every_declared_key_as_a_data_key() -> None:
    engine = make_engine([Respond, ReadBoth])
    steps = engine.compile(["Respond", "ReadBoth"]).steps
    assert {"final_response", "confidence_score"} <= steps["Respond"].writable
    assert {"final_response", "confidence_score"} <= steps["Respond"].writable_fields
    assert {"final_response", "confidence_score"} <= steps["ReadBoth"].readable
    view, scope = skill_view(UIF(input_query="q"), steps["Respond"])
    scope["final_response"] = "ok"  # no UndeclaredWriteError
    view.final_response = "ok"
    assert scope.written == {"final_response": "ok"}
    assert scope.written_fields == {"final_response"}
    _, data = skill_view(
        UIF(input_query="q", intermediate_data={"final_response": "a"}), steps["ReadBoth"]
    )
    assert data["final_response"] == "a" and list(data) == ["final_response"]
    with pytest.raises(UndeclaredReadError):
        data["other"]
    with pytest.raises(UndeclaredWriteError):
        data["final_response"] = "readers may not write it"


@pytest.mark.parametrize("config", CONFIGS[:6])
@pytest.mark.parametrize("copy_kind", ["shallow", "deep"])
def test_a_skill_that_returns_a_copy_of_its_uif_keeps_its_writes(
    config: dict[str, Any], copy_kind: str
) -> None:
    def answer(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["final_response"] = "data"
        uif.final_response = "field"
        return uif.model_copy(deep=copy_kind == "deep")

    def read(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["seen"] = uif.intermediate_data["final_response"]
        return uif

    skills = [skill("Answer", answer, ["docs"], ["final_response"]),
              skill("Read", read, ["final_response"], ["seen"])]
    report = engine_for(skills, config).execute_plan(
        ["Answer", "Read"], UIF(input_query="q", intermediate_data={"docs": [{"a": 1}]})
    )
    assert report.status == "success", report.errors
    assert report.uif.final_response == "field"
    assert report.uif.intermediate_data["seen"] == "data"


# --- the coordinator's bookkeeping fields, declared -------------------------------------------


def _declaring(name: str, field: str, body: Any) -> type[BaseSkillModule]:
    def execute(self: Any, uif: UIF) -> UIF:
        body(uif)
        return uif

    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": name, "required_inputs": ["input_query"],
        "output_keys": [field], "execute": execute})


@pytest.mark.parametrize("field", ["warnings", "log_trace"])
def test_a_declared_log_field_assigned_whole_adds_its_entries_once(field: str) -> None:
    # the assignment replaced the run's entries, then the skill's were added again:
    # ['pre'] became ['mine', 'mine']
    skill = _declaring("Adds", field, lambda uif: setattr(
        uif, field, [*getattr(uif, field), "mine"]))
    uif = UIF(input_query="q", **{field: ["pre"]})
    report = make_engine([skill], **FAST).execute_plan(["Adds"], uif)
    assert report.status == "success", report.errors
    entries = getattr(report.uif, field)
    assert entries[0] == "pre" and entries.count("mine") == 1


@pytest.mark.parametrize("field", ["executed_skills", "skill_timings"])
def test_a_skill_declaring_the_run_record_cannot_erase_it(field: str) -> None:
    skill = _declaring("Erases", field, lambda uif: setattr(
        uif, field, [] if field == "executed_skills" else {}))
    report = make_engine([skill], **FAST).execute_plan(["Erases"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert "Erases" in getattr(report.uif, field)
