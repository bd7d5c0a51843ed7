"""What runs on a Dask worker: one pickled skill call, through SOF's public remote-call API.

The worker does no write checking: ``sof_core.run_skill_call`` reports what the skill
changed, and the executor replays those writes through the skill's normal guarded view
(``sof_core.replay_changes``), so an undeclared write fails exactly as it does locally.

A ``BaseException`` that is not an ``Exception`` (``SystemExit`` from ``sys.exit()``,
``KeyboardInterrupt``, a ``CancelledError`` of the skill's own) must not leave the task:
on a worker thread Dask lets it through to the worker's event loop, which it stops (with
an in-process cluster, the whole cluster's). It travels back as ``SkillRaised`` instead,
an ordinary task error, and the executor reports the original against the skill.
"""

from __future__ import annotations

from typing import Any

from sof_core import run_skill_call


class SkillRaised(Exception):
    """Carries what a skill raised that is not an ``Exception`` back from the worker."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error

    def original(self) -> BaseException:
        """The skill's exception, with the traceback this carrier arrived with (its frames
        in the skill's code: pickling drops the original's own)."""
        return self.error.with_traceback(self.__traceback__ or self.error.__traceback__)


def run_skill(payload: bytes) -> dict[str, Any]:
    """Unpickle ``(skill, inputs, fields)``, run the skill, return what it changed."""
    import cloudpickle

    try:
        skill, inputs, fields = cloudpickle.loads(payload)
        return run_skill_call(skill, inputs, fields)
    except Exception:
        raise
    except BaseException as exc:
        raise SkillRaised(exc).with_traceback(exc.__traceback__) from None
