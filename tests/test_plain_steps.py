"""The walk's shortest path for plain steps reports exactly what the general path does.

A plain step (sync, run in the run's thread, no retries, no container field of its own) is
run by the walk itself instead of through ``run_step``. Every behaviour a skill can show
(writes, field writes, logs, set_error, another UIF returned, a non-UIF returned, an
exception, an undeclared write, a type mismatch) must give the same report either way; the
general path is forced by clearing the steps' ``plain`` flag. (KeyboardInterrupt on the
plain path: ``test_exact_timeouts``.)
"""

from __future__ import annotations

from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

FAST = {"skill_timeout": None, "total_timeout": None}
SUPERVISED = {"skill_timeout": 30.0, "total_timeout": 60.0}


def skill(name: str, body: Any, requires: Any = (), outputs: Any = (), **attrs: Any) -> type:
    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"test skill {name}",
        "required_inputs": list(requires), "output_keys": list(outputs),
        "max_execution_time": None, "execute": body, **attrs,
    })


def first(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["a"] = "from first"
    return uif


def writes_and_logs(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["b"] = uif.intermediate_data["a"].upper()
    uif.final_response = "answer"
    uif.add_log_entry("did it", self.skill_name)
    uif.add_warning("careful")
    uif.set_skill_output(self.skill_name, {"n": 1})
    return uif


def data_and_logs(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["b"] = "data only"
    uif.add_log_entry("logged", self.skill_name)
    uif.add_warning("warned")
    uif.set_skill_output(self.skill_name, {"m": 2})
    return uif


def returns_none(self: Any, uif: UIF) -> None:
    uif.intermediate_data["b"] = "none returned"


def calls_set_error(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["b"] = "half"
    uif.set_error("could not", self.skill_name)
    return uif


def returns_a_copy(self: Any, uif: UIF) -> UIF:
    other = uif.model_copy(deep=True)
    other.intermediate_data["b"] = "from the copy"
    return other


def returns_text(self: Any, uif: UIF) -> str:
    return "not a uif"


def raises(self: Any, uif: UIF) -> UIF:
    raise ValueError("broken on purpose")


def logs_then_raises(self: Any, uif: UIF) -> UIF:
    uif.add_log_entry("half done", self.skill_name)
    uif.add_warning("never merged")
    uif.set_skill_output(self.skill_name, {"half": True})
    raise RuntimeError("after logging")


def writes_undeclared(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["not_mine"] = 1
    return uif


def writes_wrong_type(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["b"] = 42  # declared str below
    return uif


def sets_undeclared_field(self: Any, uif: UIF) -> UIF:
    uif.confidence_score = 0.5
    return uif


BODIES = [writes_and_logs, data_and_logs, returns_none, calls_set_error, returns_a_copy, returns_text, raises,
          logs_then_raises, writes_undeclared, writes_wrong_type, sets_undeclared_field]


def _engine(body: Any, config: dict[str, Any]) -> Any:
    return make_engine([
        skill("First", first, outputs=["a"]),
        skill("Middle", body, requires=["a"], outputs=[("b", str), "final_response"]),
        skill("Last", lambda self, uif: uif, requires=["b"]),
    ], continue_on_skill_failure=True, **config)


def _facts(report: Any) -> dict[str, Any]:
    """Everything a report says that does not depend on the clock."""
    uif = report.uif
    return {
        "status": report.status,
        "errors": report.errors,
        "results": [(r.skill, r.status, r.attempts, r.stage, r.error, r.error_type, r.plugin,
                     r.location is not None) for r in report.results],
        "data": dict(uif.intermediate_data),
        "final_response": uif.final_response,
        "confidence_score": uif.confidence_score,
        "log": [entry.split("] ", 1)[-1] for entry in uif.log_trace],
        "warnings": list(uif.warnings),
        "outputs": dict(uif.skill_outputs),
        "executed": list(uif.executed_skills),
        "error_details": uif.error_details,
    }


def _run(body: Any, config: dict[str, Any], plain: bool) -> dict[str, Any]:
    engine = _engine(body, config)
    plan = ["First", "Middle", "Last"]
    compiled = engine.compile(plan)
    assert all(step.plain for step in compiled.steps.values())
    if not plain:
        for step in compiled.steps.values():
            step.plain = False  # the general path (run_step), as for a step with retries
    return _facts(engine.execute_plan(plan, UIF(input_query="q")))


@pytest.mark.parametrize("config", [FAST, SUPERVISED], ids=["inline", "supervised"])
@pytest.mark.parametrize("body", BODIES, ids=[b.__name__ for b in BODIES])
def test_a_plain_step_reports_what_the_general_path_reports(
    body: Any, config: dict[str, Any]
) -> None:
    assert _run(body, config, plain=True) == _run(body, config, plain=False)


def test_the_bodies_cover_success_and_each_kind_of_failure() -> None:
    """The comparison above means something only if the cases differ from each other."""
    statuses = {body.__name__: _run(body, FAST, plain=True)["results"][1][1:6:4]
                for body in BODIES}
    assert statuses["writes_and_logs"] == ("success", None)
    assert statuses["returns_none"] == ("success", None)
    assert statuses["data_and_logs"] == ("success", None)
    merged = _run(data_and_logs, FAST, plain=True)
    assert "warned" in merged["warnings"] and merged["outputs"]["Middle"] == {"m": 2}
    assert any(entry.endswith("logged") for entry in merged["log"]), merged["log"]
    assert statuses["calls_set_error"] == ("failed", "SkillExecutionError")
    assert statuses["returns_a_copy"] == ("success", None)
    assert statuses["returns_text"] == ("failed", "SkillExecutionError")
    assert statuses["raises"] == ("failed", "ValueError")
    assert statuses["logs_then_raises"] == ("failed", "RuntimeError")
    failed = _run(logs_then_raises, FAST, plain=True)
    assert "never merged" not in failed["warnings"] and "Middle" not in failed["outputs"]
    assert statuses["writes_undeclared"] == ("failed", "UndeclaredWriteError")
    assert statuses["writes_wrong_type"] == ("failed", "SkillExecutionError")
    assert statuses["sets_undeclared_field"] == ("failed", "UndeclaredWriteError")


@pytest.mark.parametrize(("attrs", "config", "plain"), [
    ({}, {}, True),
    ({"max_retries": 1}, {}, False),
    ({}, {"skill_retries": 2}, False),
    ({"isolation": "process"}, {}, False),
    ({"output_keys": ["source_documents"]}, {}, False),  # a container field: its own copy
])
def test_which_steps_are_plain(attrs: dict[str, Any], config: dict[str, Any],
                               plain: bool) -> None:
    outputs = attrs.pop("output_keys", ["a"])
    engine = make_engine([skill("One", first, outputs=outputs, **attrs)], **config)
    assert engine.compile(["One"]).steps["One"].plain is plain


def test_an_async_step_is_not_plain() -> None:
    async def body(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["a"] = 1
        return uif

    engine = make_engine([skill("One", body, outputs=["a"])])
    assert engine.compile(["One"]).steps["One"].plain is False
