"""``run_sandboxed``: one function call with a tool's guarantees, outside any plan.

For code that is not a skill but must run like a tool (``sof_sam.security``'s
``ToolSecurityManager`` and ``SecureSandbox``, say): the call runs in an isolation worker
that is killed at ``timeout``, kept off the network unless ``permissions`` has "network",
refused what else it lacks, rate limited and output-capped, exactly like a tool step
(``isolation._tool_call``). The function travels by name, or by value when the worker
could not import it (a lambda, a closure, a ``__main__`` function: ``remote.pack_call``).
A function or arguments no pickler carries (a closure over a lock) cannot reach a worker: on
POSIX the call then runs in a forked child with the same permissions and limits
(``sof_core.security.forked``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

from sof_core.config.model import ISOLATION_LIMIT_DEFAULTS
from sof_core.errors import SkillExecutionError, SkillNotPicklableError
from sof_core.execution.deadlines import current_deadline
from sof_core.graph.compile import IsolationSettings, Step
from sof_core.security.policy import ToolLimits
from sof_core.security.unpickling import reply_sources
from sof_core.skills.base import BaseSkillModule
from sof_core.skills.spec import PERMISSIONS, SkillSpec
from sof_core.uif import UIF

_RESULT = "result"
#: ``SkillNotPicklableError.what`` when the call itself could not reach the worker.
_CALL_NOT_SENT = ("the skill instance", "the skill or its inputs")


class FunctionCall(BaseSkillModule):
    """A function call wrapped as a skill, so it crosses to a worker like one."""

    skill_name: ClassVar[str] = "sof.function_call"
    skill_description: ClassVar[str] = "Runs one function call for run_sandboxed"
    output_keys: ClassVar[list[str]] = [_RESULT]

    def __init__(
        self, func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.func = func
        self.args = tuple(args)
        self.kwargs = dict(kwargs)

    @property
    def _sof_reply_sources(self) -> tuple[Any, ...]:
        """Where the classes its result may hold come from (``isolation.trusted_for``)."""
        return reply_sources(self.func)

    def __getstate__(self) -> dict[str, Any]:
        return {"func": self.func, "args": self.args, "kwargs": self.kwargs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["func"], state["args"], state["kwargs"])  # type: ignore[misc]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data[_RESULT] = self.func(*self.args, **self.kwargs)
        return uif


def run_sandboxed(
    func: Callable[..., Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    name: str = "sandboxed call",
    timeout: float | None = 30.0,
    permissions: Collection[str] = (),
    max_output_bytes: int | None = None,
    calls_per_minute: int | None = None,
    memory_mb: float | None = ISOLATION_LIMIT_DEFAULTS["memory_mb"],
    cpu_seconds: float | None = ISOLATION_LIMIT_DEFAULTS["cpu_seconds"],
    network_isolation: str = "auto",
    env: Sequence[str] = (),
) -> Any:
    """``func(*args, **kwargs)`` in a sandboxed worker process; its return value.

    Called inside a skill, the call ends by that skill's deadline too
    (``sof_core.current_deadline()``), whichever comes first: the worker is killed then
    rather than left running for a skill already given up on.

    Raises what the function raised, or ``SkillTimeoutError`` (killed at ``timeout``
    seconds, or at the calling skill's deadline), ``ToolRateLimitError``,
    ``ToolPermissionError`` (from a refused action, when the function does not catch it),
    ``SkillResourceLimitError``, ``SkillCrashedError`` or
    ``SkillNotPicklableError``, each naming ``name``. An output over ``max_output_bytes``
    is cut (see ``sof_core.security.output``).
    """
    unknown = sorted(set(permissions) - PERMISSIONS)
    if unknown:
        raise ValueError(f"unknown permissions {unknown}; known: {sorted(PERMISSIONS)}")
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    skill_deadline = current_deadline()
    if skill_deadline is not None and skill_deadline < deadline:
        deadline = skill_deadline
        timeout = round(max(0.0, deadline - time.monotonic()), 3)  # what a timeout reports
    tool = ToolLimits(
        permissions=frozenset(permissions),
        timeout=timeout,
        max_output_bytes=max_output_bytes,
        calls_per_minute=calls_per_minute,
        network_isolation=network_isolation,
    )
    settings = IsolationSettings(
        cpu_seconds=cpu_seconds,
        memory_mb=memory_mb,
        open_files=ISOLATION_LIMIT_DEFAULTS["open_files"],
        env=tuple(env),
        tool=tool,
    )
    step = Step(
        name=name,
        spec=SkillSpec.from_skill_class(FunctionCall),
        instance=FunctionCall(func, args, kwargs or {}),
        plugin="sof",
        readable=frozenset(),
        writable=frozenset({_RESULT}),
        writable_fields=frozenset(),
        required_data=(),
        producer_of={},
        timeout=timeout,
        retries=0,
        output_checks=(),
        isolation="process",
        isolation_settings=settings,
    )
    from sof_core.execution.isolation import RemoteTraceback, _tool_call

    try:
        changes = _tool_call(step, UIF(input_query=name), tool, deadline)
    except SkillNotPicklableError as exc:
        # A call no pickler carries (a closure over a lock) cannot reach a worker: fork, with
        # the same permissions and limits (sof_core.security.forked; rate already counted).
        from sof_core.security.forked import can_fork, run_forked

        if exc.what not in _CALL_NOT_SENT or not can_fork():
            raise
        return run_forked(func, args, kwargs or {}, name=name, tool=tool,
                          memory_mb=memory_mb, cpu_seconds=cpu_seconds, count_rate=False,
                          deadline=deadline)
    except BaseException as exc:
        if isinstance(exc, Exception) or not isinstance(exc.__cause__, RemoteTraceback):
            raise  # an error of its own, or this process's Ctrl-C while it waited
        # SystemExit and the like, raised over there, must not end this process (as forked)
        raise SkillExecutionError(f"raised {type(exc).__name__}: {exc}", name) from exc.__cause__
    return changes["data"].get(_RESULT)
