"""Every exception SOF raises, in one tree, so callers can catch the base or the exact one.

    SOFError
    ├── PluginError ................ a plugin could not be loaded or used (has ``plugin``)
    │   ├── PluginLoadError ........ importing the plugin module raised
    │   ├── PluginHookError ........ a ``sof_*`` hook is unknown or has a bad signature,
    │   │                            or a registration hook raised / returned junk
    │   ├── PluginConflictError .... duplicate skill name or duplicate entry-point name
    │   └── PluginCompatibilityError the plugin needs another sof-core / API version
    ├── SkillDefinitionError ....... a skill class breaks the contract (has ``skill``)
    ├── UIFError ................... a UIF could not be built or is used wrongly
    ├── PlanError
    │   ├── PlanValidationError .... a plan failed validation (has ``problems``)
    │   └── GoalResolutionError .... no skill set produces the wanted keys
    ├── SkillExecutionError ........ a skill failed while running (has ``skill``)
    │   ├── SkillTimeoutError ...... it ran longer than its timeout
    │   ├── UndeclaredWriteError ... it wrote a key it did not declare as output
    │   ├── UndeclaredReadError .... it read a key it did not declare as input
    │   ├── SkillDependencyError ... a required input was missing when it ran
    │   ├── SkillCrashedError ...... its isolated process died (signal or exit code)
    │   ├── SkillResourceLimitError  its isolated process hit a resource limit
    │   ├── SkillNotPicklableError . it, an input or its output cannot cross to its process
    │   ├── SkillReplyRefusedError . its isolated process sent back something the host does
    │   │                            not load (a global that could run code on unpickling)
    │   ├── ToolRateLimitError ..... a tool was called more often than its calls_per_minute
    │   └── ToolPermissionError .... a tool did what it has no permission for (also an
    │                                OSError), or the tool policy denies it
    ├── RunTimeoutError ............ the whole run exceeded ``total_timeout``
    └── ConfigError ................ a config value, file or variable is invalid (has ``key``)

Messages always name the plugin, skill, key or field at fault and say what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ValidationProblem(Protocol):
    """What ``PlanValidationError`` holds (``sof_core.ValidationProblem`` is defined with the
    validator, a layer above this module, so it is named here by shape only)."""

    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...


class SOFError(Exception):
    """Base class of every error SOF raises on purpose.

    Picklable whatever a subclass's constructor takes (plain pickle calls ``cls(*args)``,
    which ``UndeclaredReadError(skill, key)`` and the like refuse): a skill's error raised in
    an isolation or Dask worker comes back home as itself, attributes included.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return _restore_error, (type(self), self.args, self.__dict__)


def validation_message(error: Any) -> str:
    """One pydantic error's message without pydantic's ``"Value error, "`` prefix (our
    validators' own words are the message): one wording for config, SAM's file and the UIF."""
    return str(error["msg"]).removeprefix("Value error, ")


def _restore_error(cls: type[SOFError], args: tuple[Any, ...], state: dict[str, Any]
                   ) -> SOFError:
    if not (isinstance(cls, type) and issubclass(cls, SOFError)):  # only what it pickles
        raise TypeError(f"not a SOF error class: {cls!r}")
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


# --- plugins -----------------------------------------------------------------------------


class PluginError(SOFError):
    """A plugin could not be loaded or used; ``plugin`` names it."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class PluginLoadError(PluginError):
    """Importing the plugin's entry point raised."""


class PluginHookError(PluginError):
    """A hook implementation is unknown, mis-typed, raised, or returned something unusable."""


class PluginConflictError(PluginError):
    """The plugin clashes with another one (same skill name, same entry-point name)."""


class PluginCompatibilityError(PluginError):
    """The plugin declares a sof-core requirement or API version this core does not meet."""


# --- skills and the UIF ------------------------------------------------------------------


class SkillDefinitionError(SOFError):
    """A skill class or instance breaks the skill contract."""

    def __init__(self, skill: str, message: str) -> None:
        self.skill = skill
        super().__init__(f"skill {skill!r}: {message}")


class DuplicateSkillError(PluginConflictError, SkillDefinitionError):
    """A skill name registered twice where only one may be (two skills of one name in one
    registration, or a name another in-code plugin on the engine already registered). A
    conflict between plugins and a broken skill registration alike: ``except`` either
    catches it. ``plugin`` names the registering plugin, ``skill`` the name."""

    def __init__(self, plugin: str, skill: str, message: str) -> None:
        self.plugin = plugin
        self.skill = skill
        SOFError.__init__(self, f"plugin {plugin!r}: {message}")


class UIFError(SOFError, ValueError):
    """A UIF could not be built from the given data, or was used in a way SOF forbids."""


# --- plans -------------------------------------------------------------------------------


class PlanError(SOFError):
    """A plan cannot be run as given."""


class PlanValidationError(PlanError):
    """Validation found problems; all of them are in ``problems``, not only the first."""

    def __init__(self, problems: Sequence[ValidationProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"plan is invalid ({len(self.problems)} problem(s)):\n{lines}")


class GoalResolutionError(PlanError):
    """No set of registered skills produces the requested output keys."""


def goal_needs_no_skill(goal: str | Sequence[str]) -> GoalResolutionError:
    """The error for a goal the query's UIF holds already (``resolve_goal`` gives ``[]``):
    running the planner's plan instead would answer another question."""
    keys = [goal] if isinstance(goal, str) else list(goal)
    return GoalResolutionError(
        f"the goal {keys} needs no skill: a query's UIF holds it already; ask for a key a "
        "skill produces (e.g. 'final_response')")


# --- running -----------------------------------------------------------------------------


class SkillExecutionError(SOFError):
    """A skill failed while running; ``skill`` names it.

    SAM skills raise this themselves, so the constructor also accepts a bare message.
    """

    def __init__(self, message: str, skill: str | None = None) -> None:
        self.skill = skill
        super().__init__(f"skill {skill!r}: {message}" if skill else message)


class SkillTimeoutError(SkillExecutionError):
    """The skill ran longer than its timeout and was abandoned."""


class SkillQuarantinedError(SkillExecutionError):
    """The skill has more calls still hung after their timeout than
    ``max_hung_calls_per_skill``: it fails fast until they return."""


class SkillNotStartedError(SkillExecutionError):
    """The skill never started: every thread of the executor's pool (or, for an isolated
    skill, every isolation worker process) stayed busy until the run ended (its deadline
    starts when it starts, so this is not a timeout)."""


class SkillNotRunError(SkillExecutionError):
    """The skill was not run: the run stopped before its turn (an earlier skill failed or
    timed out and ``continue_on_skill_failure`` is off, or the executor crashed). Its
    ``SkillResult`` is ``skipped`` so that ``report.results`` has one entry per planned
    skill (and ``failed_skills`` lists it, as SAM counts an unrun skill); ``errors`` names
    only the failure that stopped the run."""


def stopped_when(skill: str, status: str) -> str:
    """Why a run not continuing past failures stopped: ``skill`` ended with ``status``.
    One wording for a run and for a query run in parts (``planning.adapt``)."""
    how = {"failed": "failed", "timeout": "timed out"}.get(status, "was skipped")
    return f"the run stopped when {skill!r} {how} (continue_on_skill_failure is off)"


class UndeclaredWriteError(SkillExecutionError):
    """The skill wrote a key it does not list in ``output_keys``."""

    def __init__(self, skill: str, key: str) -> None:
        self.key = key
        super().__init__(
            f"wrote {key!r}, which is not in its output_keys; "
            f"add {key!r} to output_keys or stop writing it",
            skill,
        )


class UndeclaredReadError(SkillExecutionError, KeyError):
    """The skill read an ``intermediate_data`` key it does not list as an input."""

    def __init__(self, skill: str, key: str) -> None:
        self.key = key
        super().__init__(
            f"read {key!r}, which is not in its required_inputs or optional_inputs; "
            f"declare it so the coordinator can order the skill after its producer",
            skill,
        )

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class SkillDependencyError(SkillExecutionError):
    """A required input was absent when the skill ran (SAM's name, kept for ports)."""


# --- isolated skills (``isolation = "process"``) ----------------------------------------------


class SkillCrashedError(SkillExecutionError):
    """The isolated skill's process died before returning: ``signal`` names the signal that
    killed it (a segfault is 11), else ``exit_code`` is what it exited with (``os._exit``)."""

    def __init__(self, skill: str, message: str, *, exit_code: int | None = None,
                 signal: int | None = None) -> None:
        self.exit_code = exit_code
        self.signal = signal
        super().__init__(message, skill)


class SkillResourceLimitError(SkillExecutionError):
    """The isolated skill went past one of its limits; ``limit`` names it (``cpu_seconds``,
    ``memory_mb``, ``open_files`` or ``output_mb``) and ``value`` is the limit it had."""

    def __init__(self, skill: str, limit: str, value: float, message: str) -> None:
        self.limit = limit
        self.value = value
        super().__init__(message, skill)


class SkillNotPicklableError(SkillExecutionError):
    """The skill instance, a declared input or what it wrote cannot be pickled to cross to
    or from its isolated process; ``what`` says which."""

    def __init__(self, skill: str, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(
            f"cannot pickle {what} for its isolated process: {reason}; keep clients, locks "
            "and open files out of its instance state (create them in execute() or "
            "implement __getstate__), or run it in-thread (isolation = \"thread\")",
            skill,
        )


class SkillReplyRefusedError(SkillExecutionError):
    """What an isolated skill's process sent back names a global the host does not load
    from an isolated process (``sof_core.security.unpickling``): unpickling it could run
    code in the host. ``name`` is the global (``posix.system``, say); nothing it wrote is
    applied, and its worker process is replaced."""

    def __init__(self, skill: str, name: str, trustable: bool = True) -> None:
        self.name = name
        advice = ("write plain data, or list the package in the skill's "
                  "isolation_reply_packages (or the isolation_reply_packages setting) to "
                  "trust it" if trustable else
                  "write plain data instead (this package cannot be trusted: it can run "
                  "any code)")
        super().__init__(
            f"its isolated process sent back {name}, which the host does not load from an "
            "isolated process: only plain data, the standard library's value types, "
            "exceptions and the classes of the skill's own package are (a function or "
            f"another package's class could run code in the host on unpickling); {advice}",
            skill,
        )


# --- tools (docs/security.md) ---------------------------------------------------------------


class ToolRateLimitError(SkillExecutionError):
    """The tool was called more often than its ``calls_per_minute``; the call did not run.
    ``limit`` is the limit, ``retry_after`` the seconds until a call would be allowed."""

    def __init__(self, skill: str, limit: int, retry_after: float) -> None:
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(
            f"rate limited: more than {limit} calls per minute (calls_per_minute); the "
            f"next call is allowed in {retry_after:.1f}s; raise the tool's calls_per_minute "
            "or tool_policy.limits if it needs more",
            skill,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.skill, self.limit, self.retry_after))


class ToolPermissionError(SkillExecutionError, PermissionError):
    """The tool did something it has no permission for (``permission``: "network",
    "filesystem" or "subprocess"), or the tool policy denies it; also a ``PermissionError``
    (an ``OSError``), so code that handles failed I/O handles this too."""

    def __init__(self, skill: str | None, permission: str, message: str) -> None:
        self.permission = permission
        self._message = message
        SkillExecutionError.__init__(self, message, skill)

    def __str__(self) -> str:  # OSError would otherwise format its args itself
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.skill, self.permission, self._message))


class RunTimeoutError(SOFError):
    """The whole run exceeded its total timeout."""


def exceeded_total_timeout(timeout: float | None) -> str:
    """What a run past its total deadline says, in its errors and its skills' results."""
    return f"run exceeded total_timeout of {timeout}s"


# --- configuration -----------------------------------------------------------------------


class ConfigError(SOFError, ValueError):
    """A configuration value, file or environment variable is invalid; ``key`` names it."""

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        super().__init__(message)
