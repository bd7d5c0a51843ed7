"""Running a skill somewhere else (another process, a Dask worker) with the local guarantees.

Three steps, one implementation for every executor that leaves the run's thread:

1. ``call_payload(step, uif)`` - what to send: the skill instance, only its declared inputs,
   and the UIF's other fields. The caller pickles it however it likes (pickle, cloudpickle).
2. ``run_skill_call(skill, inputs, fields)`` - on the far side: run the skill on a plain UIF
   and report what it changed (data keys, UIF fields, appended logs). No checks here: the far
   side is not trusted to enforce them.
3. ``replay_changes(step, view, changes)`` - back home: apply those changes to the skill's
   normal guarded view, so an undeclared write, a type mismatch or ``set_error`` fails
   exactly as it does in a local run, and the merge order stays deterministic.

This module is public (``sof_core`` re-exports its names) so third-party executors get what
the built-in ones use.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from typing import Any

from sof_core.errors import SkillExecutionError
from sof_core.graph.compile import Step
from sof_core.uif import UIF, UIFStatus

#: UIF fields a skill appends to; they start empty on the far side and come back whole.
APPENDED = ("log_trace", "warnings", "skill_outputs")
_NOT_SENT = frozenset({"intermediate_data", *APPENDED})

SkillCall = tuple[Any, dict[str, Any], dict[str, Any]]


def call_payload(step: Step, uif: UIF) -> SkillCall:
    """``(skill instance, declared inputs present in uif, other UIF fields)`` to send."""
    source = uif.__dict__["intermediate_data"]
    inputs = {key: source[key] for key in step.readable if key in source}
    fields = {k: v for k, v in uif.__dict__.items() if k not in _NOT_SENT}
    return step.instance, inputs, fields


def run_skill_call(skill: Any, inputs: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Run ``skill`` on a UIF holding ``inputs``; return what it changed (far side)."""
    # A snapshot, so an input the skill changed in place is reported as a write (and then
    # checked against its output_keys at home) rather than lost.
    before = copy.deepcopy(inputs)
    uif = UIF.model_construct(**fields, intermediate_data=dict(inputs))
    for name in APPENDED:
        uif.__dict__[name] = {} if name == "skill_outputs" else []
    returned = skill.execute(uif)
    if inspect.iscoroutine(returned):
        returned = asyncio.run(returned)
    result = uif if returned is None else returned
    if not isinstance(result, UIF):
        return {"returned_type": type(returned).__name__}
    produced = result.__dict__
    data = produced["intermediate_data"]
    writes = {k: v for k, v in data.items() if k not in before or not _same(before[k], v)}
    changed = {
        name: value
        for name, value in produced.items()
        if name not in _NOT_SENT and name in fields and not _same(fields[name], value)
    }
    return {"data": writes, "fields": changed, **{name: produced[name] for name in APPENDED}}


def replay_changes(step: Step, view: UIF, changes: dict[str, Any]) -> None:
    """Apply the far side's report to the skill's guarded view (home side)."""
    if "returned_type" in changes:
        raise SkillExecutionError(
            f"execute() returned {changes['returned_type']}; return the uif it was given",
            step.name,
        )
    data = view.intermediate_data
    for key, value in changes["data"].items():
        data[key] = value  # the scope raises UndeclaredWriteError for undeclared keys
    fields = dict(changes["fields"])
    status = fields.pop("status", None)
    error_details = fields.pop("error_details", None)
    for name, value in fields.items():
        setattr(view, name, value)  # the guard rejects undeclared fields, pydantic checks types
    view.log_trace.extend(changes["log_trace"])
    view.warnings.extend(changes["warnings"])
    for skill, values in changes["skill_outputs"].items():
        view.skill_outputs[skill] = values
    if status is UIFStatus.FAILURE or status == UIFStatus.FAILURE.value:
        view.__dict__["status"] = UIFStatus.FAILURE
        view.__dict__["error_details"] = error_details


def _same(before: Any, after: Any) -> bool:
    if before is after:
        return True
    try:
        return bool(before == after)
    except Exception:  # an exotic __eq__ must not hide a write
        return False
