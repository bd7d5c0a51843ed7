"""What runs on a Dask worker: one skill on a plain UIF holding only its declared inputs.

The worker does no write checking: it reports what the skill changed (data keys, UIF fields,
log lines, warnings, skill outputs) and the coordinator replays those writes through the
skill's normal guarded view, so an undeclared write fails exactly as it does locally.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from sof_core.uif import UIF

#: UIF fields a skill appends to; they start empty on the worker and are sent back whole.
APPENDED = ("log_trace", "warnings", "skill_outputs")


def run_skill(payload: bytes) -> dict[str, Any]:
    """Unpickle ``(skill, inputs, fields)``, run the skill, return what it changed."""
    import cloudpickle

    skill, inputs, fields = cloudpickle.loads(payload)
    uif = UIF.model_construct(**fields, intermediate_data=dict(inputs))
    returned = skill.execute(uif)
    if inspect.iscoroutine(returned):
        returned = asyncio.run(returned)
    result = uif if returned is None else returned
    if not isinstance(result, UIF):
        return {"returned_type": type(returned).__name__}
    produced = result.__dict__
    data = produced["intermediate_data"]
    writes = {k: v for k, v in data.items() if k not in inputs or inputs[k] is not v}
    changed = {
        name: value
        for name, value in produced.items()
        if name not in APPENDED
        and name != "intermediate_data"
        and name in fields
        and not _same(fields[name], value)
    }
    return {
        "data": writes,
        "fields": changed,
        **{name: produced[name] for name in APPENDED},
    }


def _same(before: Any, after: Any) -> bool:
    if before is after:
        return True
    try:
        return bool(before == after)
    except Exception:  # an exotic __eq__ must not hide a write
        return False
