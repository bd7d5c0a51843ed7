"""SAM's ``BaseSkillModule``, its errors and ``SkillMetadata``, on ``sof_core``'s skill base.

A SAM skill subclassing this class is a ``sof_core.BaseSkillModule`` too: it registers with
``sof_core.CoordinatorEngine.register_skill`` (or an entry-point plugin) and runs under the
core coordinator, with SAM's class defaults and helpers. Differences from a native skill:

* A definition is checked when the skill is instantiated (``ValueError``, as SAM does), not
  when the class is defined; registering a class instantiates it, so the registry still
  refuses a broken one.
* ``estimated_execution_time = None`` (SAM's default, "unknown") is accepted: planners use
  1.0 s for it, while the attribute stays ``None`` for SAM code that reads it.
* ``max_execution_time = None`` means the configured ``skill_timeout`` applies (SOF stops a
  skill at its limit, where SAM only warned afterwards).
* With ``strict_declarations = false`` in the configuration, the skill may read and write
  ``intermediate_data`` keys and set UIF fields it does not declare; each is logged once
  with the declaration to add. By default it gets ``UndeclaredReadError`` /
  ``UndeclaredWriteError`` like any skill.
* ``execute`` must return a UIF, as SAM's coordinator required: run by SOF, a skill returning
  ``None`` fails with SAM's "'NoneType' object has no attribute 'mark_skill_complete'"
  (where a native skill's ``None`` means "the uif I was given"), and one returning a new UIF
  object (another task) fails, saying to return the one it was given (SAM went on with the
  new one).
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
import types
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import sof_core
from sof_core import SkillSpec
from sof_core import UIFStatus as SOFStatus
from sof_sam.uif import SAM_UIF

__all__ = [
    "BaseSkillModule",
    "SAMSkillAPI",
    "SkillDefinitionError",
    "SkillDependencyError",
    "SkillExecutionError",
    "SkillMetadata",
]


class SkillExecutionError(sof_core.SkillExecutionError):
    """Raised when a skill fails to execute properly (SAM's; a ``sof_core`` one too)."""


class SkillDependencyError(sof_core.SkillDependencyError):
    """Raised when a skill's required inputs are missing.

    As in SAM, not a ``SkillExecutionError`` of this module, so ``except SkillExecutionError``
    does not catch it; it is a ``sof_core.SkillDependencyError`` (and so a
    ``sof_core.SkillExecutionError``), as the core reports it.
    """


class SkillDefinitionError(sof_core.SkillDefinitionError, ValueError):
    """A SAM skill class breaks the skill contract: a ``ValueError``, as SAM raises, and a
    ``sof_core.SkillDefinitionError``, as the registry reports it."""

    def __init__(self, skill: str, message: str) -> None:
        self.skill = skill
        ValueError.__init__(self, message)  # the message as SAM words it, unprefixed


@dataclass
class SkillMetadata:
    """Metadata about a skill's capabilities and requirements (SAM's fields)."""

    name: str
    description: str
    version: str
    category: str
    requires_external_access: bool = False
    requires_vetting: bool = False
    estimated_execution_time: float | None = None


def _names(declared: Any) -> list[str]:
    """The key names of a declaration: SAM's list of names, or SOF's typed forms."""
    if isinstance(declared, Mapping):
        return list(declared)
    return [entry[0] if isinstance(entry, tuple) else entry for entry in declared or ()]


class NamesOnInstances:
    """A skill declaration that SAM code and SOF each read in their own shape.

    SAM's skills declare ``required_inputs``, ``optional_inputs`` and ``output_keys`` as
    lists of key names, and SAM code reads them on instances (``skill.required_inputs``);
    SOF's plugins declare types too (``("memory_results", list)``, a dict of outputs), which
    SOF reads on the class. On an instance this gives the names (a new list each time);
    on the class, the declaration itself.
    """

    def __init__(self, declared: Any) -> None:
        self.declared = declared

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self.declared
        return _names(self.declared)


class _SAMExecute:
    """A SAM skill class's own ``execute``, holding it to what SAM's coordinator accepted.

    SAM's ``execute_with_monitoring`` called ``result.mark_skill_complete(...)`` on what
    ``execute`` returned, so a skill returning ``None`` failed with "Unexpected error:
    'NoneType' object has no attribute 'mark_skill_complete'"; sof_core would take ``None``
    to mean the uif it passed. Run by SOF, such a skill fails with SAM's words (an
    ``AttributeError``), plus what to do. A skill returning a *new* UIF (another task) fails
    with a ``SkillExecutionError`` saying so, rather than an undeclared write of ``task_id``.

    Only the most derived ``execute`` checks (a ``super().execute(uif)`` inside a skill's
    own ``execute`` is not held to it). Read from the class, it is the skill's function's
    stand-in with the function's ``__code__``, so a failure's traceback still starts at the
    skill's own ``execute``.
    """

    def __init__(self, function: Any) -> None:
        functools.update_wrapper(self, function)
        self.__wrapped__ = function
        self.__code__ = function.__code__

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self if instance is None else types.MethodType(self, instance)

    def __call__(self, skill: Any, uif: Any) -> Any:
        result = self.__wrapped__(skill, uif)
        if getattr(type(skill), "execute", None) is not self:
            return result  # called through super() by a subclass's execute
        if result is None:
            raise AttributeError(
                "'NoneType' object has no attribute 'mark_skill_complete' "
                f"({skill.skill_name}.execute() returned None; return the uif it was given)"
            )
        if (isinstance(result, sof_core.UIF) and result is not uif
                and isinstance(uif, sof_core.UIF)
                and result.__dict__.get("task_id") != uif.__dict__.get("task_id")):
            raise SkillExecutionError(
                f"{skill.skill_name}.execute() returned a different UIF object (a new one, "
                "for another task) instead of the one it was given; return the one you "
                "were given"
            )
        return result


def _own_execute(skill: Any) -> Any:
    """``skill.execute`` as the skill wrote it (SAM's ``execute_with_monitoring`` checks
    what it returns itself, as SAM did)."""
    execute = getattr(type(skill), "execute", None)
    if isinstance(execute, _SAMExecute):
        return types.MethodType(execute.__wrapped__, skill)
    return skill.execute


class SAMSkillAPI:
    """SAM's skill helpers, over a ``sof_core`` skill's declarations.

    Mixed into ``BaseSkillModule``, and into SOF's plugin skills reached through ``sof_sam``
    (``sof_sam.MemoryRetrievalSkill``, ...), so SAM code calling ``can_execute`` or
    ``get_metadata().name`` works on them too.
    """

    skill_name: ClassVar[str]
    skill_version: ClassVar[str]
    skill_description: ClassVar[str]
    skill_category: ClassVar[str]
    required_inputs: ClassVar[Any]
    optional_inputs: ClassVar[Any]
    output_keys: ClassVar[Any]
    requires_external_access: ClassVar[bool]
    requires_vetting: ClassVar[bool]
    can_run_parallel: ClassVar[bool]
    estimated_execution_time: ClassVar[float | None]
    max_execution_time: ClassVar[float | None]
    logger: logging.Logger

    if TYPE_CHECKING:  # provided by the skill class the helpers are mixed into

        def execute(self, uif: SAM_UIF) -> SAM_UIF: ...

    def validate_dependencies(self, uif: SAM_UIF) -> None:
        """Raise ``SkillDependencyError`` naming every required input ``uif`` lacks."""
        available = self.get_available_inputs(uif)
        missing = [key for key in _names(self.required_inputs) if key not in available]
        if missing:
            raise SkillDependencyError(
                f"Skill {self.skill_name} missing required inputs: {missing}"
            )

    def get_available_inputs(self, uif: SAM_UIF) -> set[str]:
        """The ``intermediate_data`` keys present, plus the host fields that hold a value."""
        available = set(uif.intermediate_data.keys())
        for name in ("input_query", "source_documents", "user_context", "active_profile",
                     "session_id", "user_id"):
            if getattr(uif, name):
                available.add(name)
        return available

    def execute_with_monitoring(self, uif: SAM_UIF) -> SAM_UIF:
        """Run the skill as SAM's own coordinator did, outside any SOF run.

        Checks the inputs, logs the start, sets RUNNING, runs ``execute``, warns when it took
        longer than ``max_execution_time``, marks the skill complete with its time, and warns
        about declared outputs it did not produce. Errors never escape: a missing input, a
        ``SkillExecutionError`` (SAM's or ``sof_core``'s) or any other exception is recorded
        with ``set_error`` (``"Dependency error: ..."``, ``"Execution error: ..."``,
        ``"Unexpected error: ..."``) and ``uif`` is returned.
        """
        started = time.time()
        try:
            self.validate_dependencies(uif)
            uif.add_log_entry("Starting execution", self.skill_name)
            uif.status = SOFStatus.RUNNING
            result: SAM_UIF = _own_execute(self)(uif)
            elapsed = time.time() - started
            limit = self.max_execution_time
            if limit and elapsed > limit:
                result.add_warning(
                    f"Execution time ({elapsed:.2f}s) exceeded limit ({limit}s)"
                )
            result.mark_skill_complete(self.skill_name, elapsed)
            self._warn_missing_outputs(result)
            return result
        except sof_core.SkillDependencyError as exc:  # SAM's, and sof_core's
            uif.set_error(f"Dependency error: {exc}", self.skill_name)
        except sof_core.SkillExecutionError as exc:  # SAM's, and sof_core's
            uif.set_error(f"Execution error: {exc}", self.skill_name)
        except Exception as exc:
            self.logger.exception("Unexpected error in skill %s", self.skill_name)
            uif.set_error(f"Unexpected error: {exc}", self.skill_name)
        return uif

    def _warn_missing_outputs(self, uif: SAM_UIF) -> None:
        data, outputs = uif.intermediate_data, uif.skill_outputs
        missing = [key for key in _names(self.output_keys)
                   if key not in data and key not in outputs]
        if missing:
            uif.add_warning(
                f"Skill {self.skill_name} did not produce expected outputs: {missing}"
            )

    def get_metadata(self) -> SkillMetadata:
        """SAM's ``SkillMetadata`` for this skill."""
        return SkillMetadata(
            name=self.skill_name,
            description=self.skill_description,
            version=self.skill_version,
            category=self.skill_category,
            requires_external_access=self.requires_external_access,
            requires_vetting=self.requires_vetting,
            estimated_execution_time=self.estimated_execution_time,
        )

    def can_execute(self, uif: SAM_UIF) -> bool:
        """Whether the required inputs are in ``uif`` (subclasses add checks, calling super)."""
        try:
            self.validate_dependencies(uif)
        except SkillDependencyError:
            return False
        return True

    def get_dependency_info(self) -> dict[str, Any]:
        """SAM's eight keys: the declarations, capabilities and the time estimate."""
        return {
            "skill_name": self.skill_name,
            "required_inputs": _names(self.required_inputs),
            "optional_inputs": _names(self.optional_inputs),
            "output_keys": _names(self.output_keys),
            "requires_external_access": self.requires_external_access,
            "requires_vetting": self.requires_vetting,
            "can_run_parallel": self.can_run_parallel,
            "estimated_execution_time": self.estimated_execution_time,
        }

    def __str__(self) -> str:
        return f"{self.skill_name} v{self.skill_version} ({self.skill_category})"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.skill_name!r}, "
                f"version={self.skill_version!r}, category={self.skill_category!r})")




class BaseSkillModule(SAMSkillAPI, sof_core.BaseSkillModule):  # type: ignore[misc]
    """Base class of SAM skills: SAM's defaults and helpers over ``sof_core.BaseSkillModule``."""

    skill_version: ClassVar[str] = "1.0.0"
    skill_description: ClassVar[str] = "Base skill class"
    skill_category: ClassVar[str] = "core"

    required_inputs: ClassVar[list[str]] = []
    optional_inputs: ClassVar[list[str]] = []
    output_keys: ClassVar[list[str]] = []

    requires_external_access: ClassVar[bool] = False
    requires_vetting: ClassVar[bool] = False
    can_run_parallel: ClassVar[bool] = True

    estimated_execution_time: ClassVar[float | None] = None  # type: ignore[assignment]
    max_execution_time: ClassVar[float | None] = None

    #: What planners assume for ``estimated_execution_time = None`` (seconds).
    _sof_estimate_if_unknown: ClassVar[float] = 1.0
    #: ``strict_declarations = false`` may relax this skill's undeclared keys.
    _sof_declarations_relaxable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # SAM checks a definition when the skill is instantiated, so a module defining a
        # broken skill still imports; skip sof_core's check at class definition.
        super(sof_core.BaseSkillModule, cls).__init_subclass__(**kwargs)
        execute = cls.__dict__.get("execute")
        if (inspect.isfunction(execute) and not inspect.iscoroutinefunction(execute)
                and not getattr(execute, "__isabstractmethod__", False)):
            setattr(cls, "execute", _SAMExecute(execute))  # noqa: B010 (a descriptor)

    def __init__(self) -> None:
        self.logger = logging.getLogger(f"{__name__}.{self.skill_name}")
        self._validate_skill_definition()

    def _validate_skill_definition(self) -> None:
        """SAM's checks, then sof_core's (so a skill that constructs also registers)."""
        name = self.skill_name
        if not name or name == "BaseSkill":
            raise SkillDefinitionError(str(name), "Skill must define a unique skill_name")
        if not self.skill_description:
            raise SkillDefinitionError(name, f"Skill {name} must provide a description")
        overlap = set(_names(self.required_inputs)) & set(_names(self.optional_inputs))
        if overlap:
            raise SkillDefinitionError(
                name, f"Skill {name} has overlapping required/optional inputs: {overlap}"
            )
        try:
            SkillSpec.from_skill_class(type(self))
        except sof_core.SkillDefinitionError as exc:
            raise SkillDefinitionError(name, str(exc)) from exc

    @abstractmethod
    def execute(self, uif: SAM_UIF) -> SAM_UIF:  # type: ignore[override]
        """Run the skill on ``uif`` and return it (raise ``SkillExecutionError`` on failure)."""


# Named after the class is made: sof_core checks a class that names a skill when it is
# defined, and this one is abstract.
BaseSkillModule.skill_name = "BaseSkill"
