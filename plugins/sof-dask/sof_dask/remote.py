"""What runs on a Dask worker: one pickled skill call, through SOF's public remote-call API.

The worker does no write checking: ``sof_core.run_skill_call`` reports what the skill
changed, and the executor replays those writes through the skill's normal guarded view
(``sof_core.replay_changes``), so an undeclared write fails exactly as it does locally.
"""

from __future__ import annotations

from typing import Any

from sof_core import run_skill_call


def run_skill(payload: bytes) -> dict[str, Any]:
    """Unpickle ``(skill, inputs, fields)``, run the skill, return what it changed."""
    import cloudpickle

    skill, inputs, fields = cloudpickle.loads(payload)
    return run_skill_call(skill, inputs, fields)
