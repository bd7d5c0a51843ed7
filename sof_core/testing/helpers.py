"""Skill-level helpers: an isolated engine, one skill's contract, a plugin object's checks.

Imported by ``sof_core.testing`` on first use of one of its names (the pytest plugin loads
``sof_core.testing`` in every pytest session, so nothing here is imported eagerly).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from sof_core.cli.contract import ContractViolation
from sof_core.config import SOFConfig
from sof_core.execution.coordinator import CoordinatorEngine
from sof_core.execution.report import ExecutionReport
from sof_core.plugins import PluginManager
from sof_core.skills.spec import SkillSpec, sample_classes
from sof_core.uif import UIF, UIF_FIELD_TYPES


def make_engine(
    skills: Iterable[Any] = (),
    *,
    plugins: Iterable[tuple[str, object] | object] = (),
    autoload: bool = False,
    **config: Any,
) -> CoordinatorEngine:
    """An engine isolated from the environment: only the given skills and plugin objects.

    Each of ``plugins`` is a ``(name, plugin)`` pair or a plugin alone (a module, a class or
    an instance with ``@hookimpl`` methods), then named after it.
    """
    cfg = SOFConfig(plugins_autoload=autoload, **config)
    manager = PluginManager(cfg)
    engine = CoordinatorEngine(manager, cfg)
    for entry in plugins:
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            name, plugin = entry
        else:  # a plugin alone: named after it, -2, -3... when that name is taken
            plugin, name = entry, manager.unused_name(_label(entry))
        record = manager.register(plugin, name=name)
        if record.status != "loaded":
            raise ContractViolation(f"plugin {name!r} did not load: {record.error}")
    skills = list(skills)
    if skills:
        engine.register_skills(skills, plugin_name="test-skills")
    return engine


def _label(plugin: object) -> str:
    """A plugin object's name: its module's or class's, else its class's."""
    own = getattr(plugin, "__name__", None) if isinstance(plugin, (type, ModuleType)) else None
    return own if isinstance(own, str) else type(plugin).__qualname__


#: Declared input types whose empty value (``list()``, ...) ``check_skill_contract`` gives a
#: skill for a required input the caller left out.
_EMPTY_OK: tuple[type, ...] = (list, dict, tuple, set, frozenset, str)


def check_skill_contract(
    skill: Any,
    *,
    query: str = "What is SOF?",
    inputs: Mapping[str, Any] | None = None,
    uif_fields: Mapping[str, Any] | None = None,
    **config: Any,
) -> ExecutionReport:
    """Run ``skill`` alone with ``inputs`` and check it keeps the contract.

    A required input left out of ``inputs`` is given empty (``[]``, ``{}``, ``""``) when its
    declared type allows it; an untyped one is a ``ContractViolation`` asking for a sample.
    Checked: the declarations are valid; the run succeeds; every declared output that is an
    ``intermediate_data`` key is written; UIF output fields are set; inputs are untouched;
    nothing undeclared is written (the coordinator enforces that on every run).
    """
    skill_class = skill if isinstance(skill, type) else type(skill)
    spec = SkillSpec.from_skill_class(skill_class)
    engine = make_engine([skill], **config)
    data = dict(inputs or {})
    empty: dict[str, Any] = {}
    for key in spec.required_inputs:  # a required input not given: an empty one if typed
        if key in UIF_FIELD_TYPES or key in data:
            continue
        kind = next((c for c in sample_classes(spec.key_types.get(key)) if c in _EMPTY_OK),
                    None)  # list[str] and list | None: a list
        if kind is None:
            raise ContractViolation(
                f"{spec.name} requires input {key!r}, which nothing given produces: pass "
                f"check_skill_contract(..., inputs={{{key!r}: <a sample value>}})")
        empty[key] = kind()
    uif = UIF(input_query=query, intermediate_data=data, **dict(uif_fields or {}))
    # Put in after construction, of the declared type: a UIF is built from JSON data only
    # (a set is refused, a tuple becomes a list), as a skill's own writes are not.
    uif.intermediate_data.update(empty)
    # What the skill is given, as the UIF holds it (a tuple given is a list there).
    snapshot = {k: repr(v) for k, v in uif.intermediate_data.items()}
    report = engine.execute_plan([spec.name], uif)
    if report.status != "success":
        raise ContractViolation(f"{spec.name} did not succeed: {report.errors}"
                                + describe_failures(report))
    for key in spec.output_keys:
        if key in UIF_FIELD_TYPES:
            if key not in ("source_documents",) and getattr(report.uif, key) is None:
                raise ContractViolation(f"{spec.name} declares output {key!r} but left it unset")
        elif key not in report.uif.intermediate_data:
            raise ContractViolation(f"{spec.name} declares output {key!r} but did not write it")
    for key, before in snapshot.items():
        if key not in spec.output_keys and repr(report.uif.intermediate_data.get(key)) != before:
            raise ContractViolation(f"{spec.name} modified input {key!r} in place")
    return report


def describe_failures(report: ExecutionReport) -> str:
    """Where each failed skill of ``report`` failed, with its traceback: for test output."""
    parts = []
    for result in report.results:
        if result.status == "success":
            continue
        head = f"\n\n{result.skill} {result.status}: {result.error_type}: {result.error}"
        if result.location:
            head += f"\n  at {result.location}"
        parts.append(head)
        if result.traceback:
            parts.append("\n" + result.traceback.rstrip())
    return "".join(parts)


def check_plugin_module(name: str, module: object) -> list[str]:
    """Register ``module`` as a plugin in isolation; return what it provides, or raise."""
    manager = PluginManager(SOFConfig(plugins_autoload=False))
    manager.load()
    record = manager.register(module, name=name)
    if record.status != "loaded":
        raise ContractViolation(f"plugin {name!r} failed to load: {record.error}")
    return [item for items in record.provides.values() for item in items]


__all__ = [
    "check_plugin_module",
    "check_skill_contract",
    "describe_failures",
    "make_engine",
]
