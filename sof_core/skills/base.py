"""``BaseSkillModule``: the class every skill subclasses, with SAM's attribute names.

A skill says what it reads (``required_inputs``, ``optional_inputs``) and what it writes
(``output_keys``); the coordinator derives the execution graph from those declarations alone,
so a skill never names another skill. Keys name ``intermediate_data`` entries or UIF fields.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Literal

from sof_core.errors import SkillDependencyError
from sof_core.skills.spec import KeyDeclaration, SkillSpec
from sof_core.uif import HOST_FIELDS, UIF, UIF_FIELD_TYPES


class BaseSkillModule(ABC):
    """Base class of every skill (SAM's attribute names; ``execute`` may be ``async``)."""

    skill_name: ClassVar[str] = ""
    skill_version: ClassVar[str] = "1.0.0"
    skill_description: ClassVar[str] = ""
    skill_category: ClassVar[str] = "general"

    required_inputs: ClassVar[KeyDeclaration] = []
    optional_inputs: ClassVar[KeyDeclaration] = []
    output_keys: ClassVar[KeyDeclaration] = []

    requires_external_access: ClassVar[bool] = False
    requires_vetting: ClassVar[bool] = False
    #: SOF extension: this skill checks untrusted content, so its outputs count as vetted.
    vets_content: ClassVar[bool] = False
    can_run_parallel: ClassVar[bool] = True
    estimated_execution_time: ClassVar[float] = 1.0
    #: Seconds before the coordinator abandons the skill; ``None`` (the default) uses the
    #: configured ``skill_timeout`` (``SOF_SKILL_TIMEOUT``, 30 s unless set).
    max_execution_time: ClassVar[float | None] = None
    #: SOF extension: extra attempts after an exception; ``None`` uses the configured default.
    max_retries: ClassVar[int | None] = None
    #: Whether ``strict_declarations = false`` may relax this skill's undeclared
    #: ``intermediate_data`` reads and writes and UIF field writes (to logged warnings).
    #: Native skills: never; ``sof_sam.BaseSkillModule`` sets it, so SAM skills can migrate
    #: one by one.
    _sof_declarations_relaxable: ClassVar[bool] = False
    #: SOF extension: "process" runs the skill in an isolation worker process (killed at its
    #: deadline, with resource limits and a clean environment; see docs/operations.md);
    #: ``None`` leaves it to the plugin (``SOF_ISOLATION`` in the skill's module or
    #: top-level package), else "thread".
    isolation: ClassVar[Literal["thread", "process"] | None] = None
    #: SOF extension: this skill's own limits when isolated (``cpu_seconds``, ``memory_mb``,
    #: ``open_files``, ``output_mb``; None: no limit), over ``SOFConfig.isolation_limits``.
    isolation_limits: ClassVar[Mapping[str, float | None] | None] = None
    #: SOF extension: top-level packages whose functions and classes what the skill writes
    #: may hold when isolated (``("numpy",)`` for arrays), besides plain data and its own
    #: package's classes: the host loads nothing else from an isolated process.
    isolation_reply_packages: ClassVar[Collection[str]] = ()
    #: SOF extension, tool security (docs/security.md): what the skill may do besides
    #: computing: "network" (open sockets), "filesystem" (write or change files),
    #: "subprocess" (start programs). A tool without a permission runs where it cannot.
    permissions: ClassVar[Collection[str]] = ()
    #: SOF extension: most bytes one call may write (longer output is cut and flagged);
    #: None: ``tool_policy.default_max_output_bytes`` for tools, no cap for other skills.
    max_output_bytes: ClassVar[int | None] = None
    #: SOF extension: most calls in any 60 s (per process); more is ``ToolRateLimitError``.
    calls_per_minute: ClassVar[int | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Only classes that name a skill are checked here; unnamed intermediate bases are
        # checked when registered, so authors get the error at import time where possible.
        if "skill_name" in cls.__dict__:
            SkillSpec.from_skill_class(cls)

    def __getstate__(self) -> dict[str, Any]:
        """The instance's attributes, as a dict even when there are none: pickle then calls a
        subclass's ``__setstate__`` on the copy (for Dask, isolation workers) whatever it
        holds, as it did when every skill held its logger from the start."""
        return dict(self.__dict__)

    @functools.cached_property
    def logger(self) -> logging.Logger:
        """``sof.skill.<skill_name>``, made the first time the skill logs: ``getLogger``
        takes logging's module lock and builds the logger tree, half the cost of registering
        a skill, and most skills never log. Assigning ``self.logger`` replaces it."""
        return logging.getLogger(f"sof.skill.{self.skill_name or type(self).__name__}")

    @abstractmethod
    def execute(self, uif: UIF) -> UIF:
        """Read declared inputs from ``uif``, write declared outputs, return ``uif``."""

    # --- SAM's helpers -------------------------------------------------------------------

    def validate_dependencies(self, uif: UIF) -> None:
        """Raise ``SkillDependencyError`` naming every required input ``uif`` lacks."""
        spec = SkillSpec.from_skill_class(type(self))
        missing = [key for key in spec.required_inputs if not _uif_has(uif, key)]
        if missing:
            raise SkillDependencyError(f"missing required inputs {missing}", self.skill_name)

    def get_dependency_info(self) -> dict[str, Any]:
        """The declarations, as SAM's coordinator printed them."""
        spec = SkillSpec.from_skill_class(type(self))
        return {
            "skill_name": spec.name,
            "required_inputs": list(spec.required_inputs),
            "optional_inputs": list(spec.optional_inputs),
            "output_keys": list(spec.output_keys),
        }

    def get_metadata(self) -> dict[str, Any]:
        """Everything a planner or a ``sof skills`` listing needs to know about the skill."""
        return SkillSpec.from_skill_class(type(self)).describe()


class BaseToolModule(BaseSkillModule):
    """Base class of tools: skills registered through ``sof_register_tools``.

    Nothing more than a skill with the tool defaults: it is listed as a tool and runs in an
    isolation worker (killed at ``max_execution_time``), with no permission unless it
    declares ``permissions``. See docs/security.md.
    """

    skill_category: ClassVar[str] = "tool"
    isolation: ClassVar[Literal["thread", "process"] | None] = "process"

    @abstractmethod
    def execute(self, uif: UIF) -> UIF:
        """Read declared inputs from ``uif``, write declared outputs, return ``uif``."""


def _uif_has(uif: UIF, key: str) -> bool:
    if key in UIF_FIELD_TYPES:
        return key in HOST_FIELDS or getattr(uif, key) is not None
    return key in uif.intermediate_data


