"""The plugin contract, checked against any installed plugin: ``sof plugins check``.

The checks are the ones SOF's own test suite runs against every bundled plugin, so a
third-party plugin that passes them works with SOF the way the bundled ones do. The pytest
plugin offers the same checks (``pytest --sof-contract``, the ``sof_plugin_contract``
fixture); they live here, below ``sof_core.testing``, because layers only point down and the
``sof`` command needs them too.

Each plugin gets plugin-level checks (``loads``, ``declarations``, ``requirement``,
``conflicts``) and, for each skill or tool it provides, the run checks (``outputs``,
``undeclared``, ``errors``, ``cancel``, ``pickle``). A skill runs on a *sample UIF*: the
skill's own ``contract_sample`` (a mapping of keys to values, optional), then what the
installed skills that produce its other inputs write, then a plain value for a typed key.
Sample runs use a temporary data and cache directory and a temporary memory store, never
the user's. ``check_plugins`` runs in the calling process; ``sof plugins check`` and
``pytest --sof-contract`` run it in a child (``contract_command``), so that a skill that
ends its process fails a check instead of ending the command.
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sof_core.config import SOFConfig
    from sof_core.execution.coordinator import CoordinatorEngine
    from sof_core.graph.compile import Step
    from sof_core.plugins import PluginManager, PluginRecord
    from sof_core.plugins.registry import SkillEntry
    from sof_core.uif import UIF

#: Every check, with the promise it tests (``sof plugins check`` prints these).
CHECKS: dict[str, str] = {
    "loads": ("the plugin's module imports and its hooks run (a failure a skill's "
              "declarations or a hook's signature caused counts under 'declarations')"),
    "declarations": "every skill's declarations are valid and every component has a name",
    "requirement": "its distribution declares the sof-core versions it works with",
    "conflicts": "no skill, component or entry-point name clashes with another plugin",
    "outputs": "run on a sample UIF, the skill succeeds and writes every declared output",
    "undeclared": "the skill changes nothing it does not declare as an output",
    "errors": "given malformed inputs, the skill copes or raises a typed error (SOFError)",
    "cancel": "an async skill cancelled mid-run stops and leaves no task running",
    "pickle": ("the skill, its inputs and its results pickle (Dask, isolation='process'); "
               "isolated, the host loads its results"),
}
PLUGIN_CHECKS = ("loads", "declarations", "requirement", "conflicts")
SKILL_CHECKS = ("outputs", "undeclared", "errors", "cancel", "pickle")
#: The skill attribute that gives its sample inputs (keys of ``intermediate_data`` or UIF
#: fields such as ``input_query``).
SAMPLE_ATTRIBUTE = "contract_sample"
SAMPLE_QUERY = "What is SOF?"
#: An ``intermediate_data`` key no skill declares: the sample run must leave it as it was.
CANARY_KEY = "_sof_contract_canary"
#: Seconds a skill may take in the malformed-input and cancellation checks when it declares
#: no ``max_execution_time`` of its own.
DEFAULT_LIMIT = 10.0
#: Plain values for typed keys that no installed skill produces.
_PLAIN_VALUES: dict[type, Any] = {
    str: "sample", int: 1, float: 1.0, bool: True, list: [], dict: {}, tuple: (), set: set(),
}
#: Error types on a failed load, and the check each one belongs to.
_LOAD_ERRORS = {
    "PluginCompatibilityError": "requirement",
    "PluginConflictError": "conflicts",
    "SkillDefinitionError": "declarations",
    "PluginHookError": "declarations",
}

#: A ``PluginHookError`` from a hook that ran and raised (or hung), not from a bad signature
#: or a bad item: the plugin failed to load, its declarations may be fine.
_HOOK_RAN_AND_FAILED = re.compile(
    r"\(\) raised |\(\) result raised |registering it raised |plugin_import_timeout|"
    r"hung in an earlier load"
)

Status = Literal["passed", "failed", "skipped"]
#: ``listener(event, data)``: "plugins" (the names about to be checked), "start" and "check"
#: (one check of one plugin), "done" (a plugin's whole ``to_dict()``).
Listener = Callable[[str, dict[str, Any]], None]


class ContractViolation(AssertionError):
    """A skill or plugin breaks the SOF contract; the message says how and what to do."""


@dataclass
class ContractCheck:
    """One check of one plugin: on the plugin itself or on one of its skills."""

    check: str
    status: Status
    detail: str = ""
    skill: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "skill": self.skill, "status": self.status,
                "detail": self.detail}


@dataclass
class PluginContract:
    """Every check of one plugin; ``passed`` when none failed (skipped ones do not count)."""

    plugin: str
    distribution: str | None = None
    version: str | None = None
    checks: list[ContractCheck] = field(default_factory=list)
    #: Told of each check as it starts and ends (``run_isolated`` follows a child this way).
    listener: Listener | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return not self.failures()

    def failures(self) -> list[ContractCheck]:
        return [c for c in self.checks if c.status == "failed"]

    def add(self, check: str, status: Status, detail: str = "", skill: str | None = None) -> None:
        self.checks.append(ContractCheck(check, status, detail, skill))
        if self.listener is not None:
            self.listener("check", {"plugin": self.plugin, **self.checks[-1].to_dict()})

    def started(self, check: str, skill: str | None = None) -> None:
        """``check`` (of ``skill``) starts: runs the plugin's code from here."""
        if self.listener is not None:
            self.listener("start", {"plugin": self.plugin, "check": check, "skill": skill})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PluginContract:
        """The inverse of ``to_dict`` (``passed`` is recomputed from the checks)."""
        checks = [ContractCheck(c["check"], c["status"], c.get("detail", ""), c.get("skill"))
                  for c in data.get("checks", ())]
        return cls(data["plugin"], data.get("distribution"), data.get("version"), checks)

    def summary(self) -> str:
        """One line per failed check, for an assertion message (one line saying so when
        every check passed: the summary of a passing plugin never reads as a failure)."""
        if self.passed:
            ran = sum(c.status == "passed" for c in self.checks)
            return f"plugin {self.plugin!r} keeps the SOF contract ({ran} check(s) passed)"
        lines = [f"plugin {self.plugin!r} breaks the SOF contract:"]
        for c in self.failures():
            where = f"{c.skill}: " if c.skill else ""
            lines.append(f"  [{c.check}] {where}{c.detail}")
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        if not self.passed:
            raise ContractViolation(self.summary())

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
        }


# --- entry points ----------------------------------------------------------------------


def check_plugins(
    names: Sequence[str] | None = None,
    *,
    modules: Mapping[str, object] | None = None,
    config: SOFConfig | None = None,
    isolate: bool = True,
    listener: Listener | None = None,
) -> list[PluginContract]:
    """Check installed plugins against the contract, each next to all the others.

    ``names`` picks plugins by entry-point or distribution name (default: every installed
    plugin, built-ins excluded); ``modules`` registers plugin objects in code first (a
    plugin under development) and checks them too. Unknown names raise ``LookupError``.
    With ``isolate`` (the default) plugins are loaded and skills run with temporary data,
    cache and memory locations, so a check never reads or writes the user's.
    """
    with _isolated() if isolate else contextlib.nullcontext():
        from sof_core.config import load_config
        from sof_core.execution.coordinator import CoordinatorEngine
        from sof_core.plugins import PluginManager

        config = config if config is not None else load_config()
        config = config.model_copy(update={"strict_plugins": False})
        manager = PluginManager(config).load()
        checked = [manager.register(obj, name=name).name for name, obj in (modules or {}).items()]
        records = list(manager.records.values())
        if names:
            chosen = []
            for name in names:  # a distribution's name: every plugin it declares
                chosen += [r for r in find_records(name, records) if r not in chosen]
        else:
            chosen = [r for r in records if r.source == "entry-point"]
        chosen += [manager.records[n] for n in checked if manager.records[n] not in chosen]
        engine = CoordinatorEngine(manager)
        if listener is not None:
            listener("plugins", {
                "names": [record.name for record in chosen],
                "versions": {r.name: [r.distribution, r.version] for r in chosen},
            })
        reports = []
        for record in chosen:
            reports.append(_check_plugin(engine, record, listener))
            if listener is not None:
                listener("done", reports[-1].to_dict())
        return reports


def check_plugin(name: str, **options: Any) -> PluginContract:
    """``check_plugins([name])`` for one plugin; the result's ``raise_for_failures()``
    turns failures into a ``ContractViolation``."""
    return check_plugins([name], **options)[0]


def find_record(name: str, records: Iterable[PluginRecord]) -> PluginRecord:
    """The record of the plugin called ``name`` (entry-point or distribution name, any case
    and ``-``/``_`` spelling), or ``LookupError`` listing the installed ones. For a
    distribution that declares several plugins, the first; ``find_records`` gives them all."""
    return find_records(name, records)[0]


def find_records(name: str, records: Iterable[PluginRecord]) -> list[PluginRecord]:
    """The plugins ``name`` names: the plugin of that entry-point name, or every plugin the
    distribution of that name declares (sof-serve: ``monitor`` and ``serve``); any case and
    ``-``/``_`` spelling. ``LookupError`` listing the installed ones when none."""
    from sof_core.plugins.loader import entry_point_name, records_named

    records = list(records)
    found = records_named(name, records)
    shared = [r for r in found if entry_point_name(r.name) != r.name]  # "name (dist)"
    if len(shared) > 1:  # a check runs one plugin's code: which one is for the user to say
        dists = ", ".join(repr(r.distribution) for r in shared)
        raise LookupError(f"plugin name {name!r} is declared by several distributions "
                          f"({dists}); name one of them instead")
    if found:
        return found
    known = sorted(r.name for r in records if r.source != "builtin")
    raise LookupError(
        f"no plugin named {name!r} is installed; installed plugins: {known or 'none'}"
    )


@contextlib.contextmanager
def _isolated() -> Iterator[None]:
    """Temporary data, cache and memory locations for the duration of a check."""
    saved = {k: os.environ.get(k) for k in _ISOLATED_VARS}
    with tempfile.TemporaryDirectory(prefix="sof-contract-") as tmp:
        os.environ.update(
            XDG_DATA_HOME=os.path.join(tmp, "data"),
            XDG_CACHE_HOME=os.path.join(tmp, "cache"),
        )
        from sof_core._installed import plugin_variable

        if plugin_variable("SOF_MEMORY_PATH"):  # else nothing reads it, and SOF warns so
            os.environ["SOF_MEMORY_PATH"] = os.path.join(tmp, "memory.db")
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


_ISOLATED_VARS = ("XDG_DATA_HOME", "XDG_CACHE_HOME", "SOF_MEMORY_PATH")


# --- plugin-level checks -------------------------------------------------------------------


def _check_plugin(engine: CoordinatorEngine, record: PluginRecord,
                  listener: Listener | None = None) -> PluginContract:
    result = PluginContract(record.name, record.distribution, record.version, listener=listener)
    if record.status == "disabled":
        result.add("loads", "failed", f"the plugin is disabled: {record.error}; allow it to "
                   "check it (plugins_only / plugins_disable)")
        _skip_rest(result, "loads", "the plugin is disabled")
        return result
    if record.status != "loaded":
        check = _failed_check(record)
        failed_at = PLUGIN_CHECKS.index(check)
        for index, name in enumerate(PLUGIN_CHECKS):
            if name == check:
                result.add(name, "failed", f"{record.error_type}: {record.error}")
            elif name == "requirement":  # the distribution's metadata: readable all the same
                _check_requirement(result, record)
            elif index < failed_at:
                result.add(name, "passed")
            else:
                result.add(name, "skipped", "the plugin did not load")
        _skip_rest(result, PLUGIN_CHECKS[-1], "the plugin did not load")
        return result
    result.add("loads", "passed", _load_detail(record))
    result.add("declarations", "passed", _declared(record))
    _check_requirement(result, record)
    manager = engine.plugins
    mine = _skills_of(manager, record)
    conflicts = list(record.conflicts) + _victims(manager, record)
    unavailable = [name for name, entry in mine.items() if entry is None]
    if conflicts or unavailable:
        detail = "; ".join(conflicts) or f"skills {unavailable} are provided by another plugin"
        result.add("conflicts", "failed", detail)
    else:
        result.add("conflicts", "passed")
    for name, entry in mine.items():
        if entry is None:
            for check in SKILL_CHECKS:
                result.add(check, "skipped", "unavailable: another plugin provides it", name)
            continue
        _check_skill(engine, entry, result)
    return result


def _failed_check(record: PluginRecord) -> str:
    """The check a failed load breaks. Skills validate their declarations when their class is
    defined, so invalid declarations usually fail the import itself: the loader's message
    (``importing 'module' raised SkillDefinitionError: ...``) names the real cause."""
    check = _LOAD_ERRORS.get(record.error_type or "", "loads")
    if check == "loads" and " raised SkillDefinitionError: " in (record.error or ""):
        return "declarations"
    if record.error_type == "PluginHookError" and _HOOK_RAN_AND_FAILED.search(
            record.error or ""):
        return "loads"
    return check


def _victims(manager: PluginManager, record: PluginRecord) -> list[str]:
    """Other plugins that failed to load because ``record`` registered a name first: which
    of the two loses depends on load order, so the conflict is the checked plugin's too."""
    by = f"already registered by plugin {record.name!r}"
    return [
        f"plugin {other.name!r} ({other.distribution or 'in code'}) could not load: "
        f"{other.error}; rename the component or skill in one of the two"
        for other in manager.records.values()
        if other is not record and other.error_type == "PluginConflictError"
        and by in (other.error or "")
    ]


def _skip_rest(result: PluginContract, after: str, why: str) -> None:
    order = list(PLUGIN_CHECKS) + list(SKILL_CHECKS)
    for name in order[order.index(after) + 1:]:
        result.add(name, "skipped", why)


def _load_detail(record: PluginRecord) -> str:
    took = "" if record.import_time_ms is None else f"imported in {record.import_time_ms:.1f} ms"
    return "; ".join(filter(None, [took, *record.warnings]))


def _declared(record: PluginRecord) -> str:
    parts = [f"{kind.replace('_', ' ')}: {', '.join(names)}"
             for kind, names in sorted(record.provides.items()) if names]
    return "; ".join(parts) or "provides nothing (registration hooks returned no items)"


def _check_requirement(result: PluginContract, record: PluginRecord) -> None:
    if record.source != "entry-point":
        result.add("requirement", "skipped", "registered in code: no distribution")
    elif record.requires:
        result.add("requirement", "passed", f"sof-core{record.requires}")
    else:
        from sof_core.cli.new_plugin import core_requirement

        result.add(
            "requirement",
            "failed",
            f"distribution {record.distribution!r} declares no sof-core requirement; add "
            f"'{core_requirement()}' to its dependencies so SOF refuses an incompatible "
            "pairing before importing it",
        )


def _skills_of(manager: PluginManager, record: PluginRecord) -> dict[str, SkillEntry | None]:
    """The plugin's skills and tools by name; ``None`` where another plugin's entry serves
    the name (or nobody's, while it is contested)."""
    found: dict[str, SkillEntry | None] = {}
    for kind in ("skills", "tools"):
        for name in record.provides.get(kind, ()):
            entry = manager.registry.skill(name)
            found[name] = entry if entry is not None and entry.plugin == record.name else None
    return found


# --- skill checks --------------------------------------------------------------------------


def _check_skill(engine: CoordinatorEngine, entry: SkillEntry, result: PluginContract) -> None:
    name = entry.spec.name
    result.started("outputs", name)  # making the sample runs the producers of its inputs
    try:
        sample = _sample(engine, entry)
    except _NoSample as why:
        for check in SKILL_CHECKS:
            result.add(check, "skipped", str(why), name)
        return
    _check_run(engine, entry, sample, result)
    result.started("errors", name)
    _check_errors(entry, sample, result)
    result.started("cancel", name)
    _check_cancel(entry, sample, result)
    result.started("pickle", name)
    _check_pickle(entry, sample, result, engine.compile([name]).steps[name])


class _NoSample(Exception):
    """No sample UIF could be made for a skill; the message says how to give one."""


def _sample(engine: CoordinatorEngine, entry: SkillEntry) -> UIF:
    """A UIF holding every required input of the skill, and the canary key."""
    from sof_core.uif import UIF, UIF_FIELD_TYPES

    spec = entry.spec
    given = getattr(spec.skill_class, SAMPLE_ATTRIBUTE, None) or {}
    if not isinstance(given, Mapping):
        raise _NoSample(f"{SAMPLE_ATTRIBUTE} must be a mapping of keys to values, got "
                        f"{type(given).__name__}")
    fields = {k: v for k, v in given.items() if k in UIF_FIELD_TYPES}
    data = {k: copy.deepcopy(v) for k, v in given.items() if k not in UIF_FIELD_TYPES}
    fields.setdefault("input_query", SAMPLE_QUERY)
    uif = UIF(**fields, intermediate_data=data)
    missing = [k for k in spec.required_inputs if k not in UIF_FIELD_TYPES and k not in data]
    if missing:
        _produce(engine, entry, uif, missing)
    uif.intermediate_data[CANARY_KEY] = {"untouched": [1, 2, 3]}
    return uif


def _produce(engine: CoordinatorEngine, entry: SkillEntry, uif: UIF, missing: list[str]) -> None:
    """Fill ``missing`` inputs by running the installed skills that produce them, else with
    a plain value of the declared type."""
    from sof_core.skills.spec import sample_classes
    from sof_core.uif import UIF

    spec = entry.spec
    producible = []
    for key in missing:
        producers = [e.spec.name for e in engine.registry.skills()
                     if key in e.spec.output_keys and e.spec.name != spec.name]
        if producers:
            producible.append(key)
            continue
        kind = next((c for c in sample_classes(spec.key_types.get(key))
                     if c in _PLAIN_VALUES), None)  # list[str], list | None: a list
        plain = _PLAIN_VALUES.get(kind) if kind is not None else None
        if kind is None:
            raise _NoSample(
                f"no installed skill produces its required input {key!r}; give the skill a "
                f"sample: {SAMPLE_ATTRIBUTE} = {{{key!r}: ...}}"
            )
        uif.intermediate_data[key] = copy.deepcopy(plain)
    if not producible:
        return
    available = set(uif.intermediate_data)
    try:
        plan = engine.resolve_goal(producible, available=available)
        plan = [s for s in plan if s != spec.name]
        work = UIF(input_query=uif.input_query, intermediate_data=dict(uif.intermediate_data))
        report = engine.execute_plan(plan, work)
    except Exception as exc:
        raise _NoSample(
            f"could not produce its inputs {producible} with the installed skills "
            f"({type(exc).__name__}: {exc}); give the skill a sample: {SAMPLE_ATTRIBUTE}"
        ) from exc
    absent = [k for k in producible if k not in report.uif.intermediate_data]
    if absent:
        raise _NoSample(
            f"the installed skills {plan} did not produce its inputs {absent} "
            f"({'; '.join(report.errors) or report.status}); give the skill a sample: "
            f"{SAMPLE_ATTRIBUTE}"
        )
    for key in producible:
        uif.intermediate_data[key] = report.uif.intermediate_data[key]


def _check_run(
    engine: CoordinatorEngine, entry: SkillEntry, sample: UIF, result: PluginContract
) -> None:
    from sof_core.uif import UIF_FIELD_TYPES

    spec = entry.spec
    name = spec.name
    uif = sample.model_copy(deep=True)
    before = {k: repr(v) for k, v in uif.intermediate_data.items()}
    fields_before = _content_fields(uif)
    try:
        report = engine.execute_plan([name], uif)
    except Exception as exc:
        result.add("outputs", "failed", f"the sample run raised {type(exc).__name__}: {exc}",
                   name)
        result.add("undeclared", "skipped", "the sample run did not happen", name)
        return
    own = next((r for r in report.results if r.skill == name), None)
    if own is None or own.status != "success":
        why = "; ".join(report.errors) or (own.status if own else report.status)
        where = f" at {own.location}" if own is not None and own.location else ""
        result.add("outputs", "failed", f"failed on the sample UIF{where}: {why}", name)
    else:
        unset = [
            k for k in spec.output_keys
            if (k in UIF_FIELD_TYPES and k != "source_documents"
                and getattr(report.uif, k) is None)
            or (k not in UIF_FIELD_TYPES and k not in report.uif.intermediate_data)
        ]
        if unset:
            result.add("outputs", "failed",
                       f"declares outputs {unset} but did not write them on the sample UIF", name)
        else:
            result.add("outputs", "passed", f"wrote {list(spec.output_keys) or 'nothing'}", name)
    data = report.uif.intermediate_data
    changed = sorted(
        k for k, v in before.items() if k not in spec.output_keys and repr(data.get(k)) != v
    )
    added = sorted(k for k in data if k not in before and k not in spec.output_keys)
    fields_after = _content_fields(report.uif)
    failed = own is None or own.status != "success"
    # On a failed run the coordinator itself records the failure in ``error_details``.
    fields_changed = sorted(k for k, v in fields_after.items()
                            if k not in spec.output_keys and v != fields_before.get(k)
                            and not (failed and k == "error_details"))
    wrong = changed + added + fields_changed
    if own is not None and own.error_type == "UndeclaredWriteError":
        result.add("undeclared", "failed", f"{own.error}", name)
    elif wrong:
        result.add("undeclared", "failed", f"changed keys it does not declare: {wrong}", name)
    else:
        result.add("undeclared", "passed", "", name)


#: UIF fields a skill may write when it declares them; the coordinator keeps the others.
_CONTENT_FIELDS = ("final_response", "confidence_score", "vetted_content", "security_context",
                   "requires_vetting", "source_documents", "user_context", "active_profile",
                   "error_details")


def _content_fields(uif: UIF) -> dict[str, str]:
    return {k: repr(getattr(uif, k, None)) for k in _CONTENT_FIELDS}


class _Malformed:
    """A value of no documented shape: not iterable, no attributes, not a number."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<malformed sample value>"


def _check_errors(entry: SkillEntry, sample: UIF, result: PluginContract) -> None:
    from sof_core.errors import SOFError
    from sof_core.uif import UIF_FIELD_TYPES

    spec = entry.spec
    keys = [k for k in spec.inputs if k not in UIF_FIELD_TYPES]
    if not keys:
        result.add("errors", "skipped", "reads no intermediate_data keys", spec.name)
        return
    problems = []
    for key in keys:
        uif = sample.model_copy(deep=True)
        uif.intermediate_data[key] = _Malformed()
        outcome, value = _call(entry, uif, _limit(spec.max_execution_time))
        if outcome == "raised" and not isinstance(value, SOFError):
            problems.append(
                f"given a malformed {key!r} it raised {type(value).__name__}: {value}; raise a "
                "sof_core.SkillExecutionError (or another SOFError) that names the key"
            )
        elif outcome == "hung":
            problems.append(f"given a malformed {key!r} it did not finish in {value:g} s")
    if problems:
        result.add("errors", "failed", "; ".join(problems), spec.name)
    else:
        result.add("errors", "passed", f"malformed {keys}: coped or raised a SOFError",
                   spec.name)


def _limit(declared: float | None) -> float:
    return DEFAULT_LIMIT if declared is None else min(declared, DEFAULT_LIMIT)


def _call(entry: SkillEntry, uif: UIF, limit: float) -> tuple[str, Any]:
    """Run the skill's ``execute`` on ``uif`` in a thread of its own: ``("returned",
    value)``, ``("raised", exception)`` or ``("hung", seconds)``."""
    import inspect

    def call() -> Any:
        value = entry.instance.execute(uif)
        if inspect.iscoroutine(value):
            import asyncio

            value = asyncio.run(value)
        return value

    return _bounded(call, limit, f"sof-contract-{entry.spec.name}")


def _bounded(function: Any, limit: float, name: str) -> tuple[str, Any]:
    """``function()`` in a daemon thread, waited for at most ``limit`` seconds: a skill that
    never returns is reported, and never keeps the check (or the process) from finishing."""
    box: list[tuple[str, Any]] = []

    def target() -> None:
        try:
            box.append(("returned", function()))
        except BaseException as exc:
            box.append(("raised", exc))

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    worker.join(limit)
    return box[0] if box else ("hung", limit)


def _check_cancel(entry: SkillEntry, sample: UIF, result: PluginContract) -> None:
    spec = entry.spec
    if not spec.is_async:
        result.add("cancel", "skipped", "synchronous skill", spec.name)
        return
    box: list[tuple[Status, str]] = []
    limit = _limit(spec.max_execution_time)

    def target() -> None:
        import asyncio

        try:
            box.append(asyncio.run(_cancel_probe(entry, sample.model_copy(deep=True), limit)))
        except BaseException as exc:
            box.append(("failed", f"the cancellation probe raised {type(exc).__name__}: {exc}"))

    worker = threading.Thread(target=target, name=f"sof-contract-cancel-{spec.name}",
                              daemon=True)
    worker.start()
    worker.join(limit + 5)
    status, detail = box[0] if box else ("failed", "its event loop did not close after cancel")
    result.add("cancel", status, detail, spec.name)


async def _cancel_probe(entry: SkillEntry, uif: UIF, limit: float) -> tuple[Status, str]:
    import asyncio

    task = asyncio.ensure_future(entry.instance.execute(uif))
    await asyncio.sleep(0)  # the skill runs up to its first await
    if task.done():
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning
        return "passed", "finished before its first await: nothing to cancel"
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=limit)
    if not done:
        return "failed", (f"still running {limit:g} s after it was cancelled; let "
                          "asyncio.CancelledError propagate from every await")
    if not task.cancelled():
        error = task.exception()
        if error is None:
            return "failed", ("swallowed the cancellation and returned; re-raise "
                              "asyncio.CancelledError after cleaning up")
        return "failed", (f"raised {type(error).__name__}: {error} when cancelled, instead of "
                          "asyncio.CancelledError")
    await asyncio.sleep(0)  # tasks it cancelled on the way out finish now
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    if left:
        names = ", ".join(sorted(t.get_name() for t in left))
        return "failed", (f"left {len(left)} task(s) running after it was cancelled ({names}); "
                          "cancel and await the tasks it starts")
    return "passed", "stopped at once when cancelled"


#: What a failed pickle check tells the author, whichever part failed.
_PICKLE_ADVICE = ("a skill must pickle to run on Dask or with isolation = 'process': keep "
                  "connections, locks and clients out of its pickled state (__getstate__)")


def _check_pickle(entry: SkillEntry, sample: UIF, result: PluginContract,
                  step: Step | None = None) -> None:
    """What the Dask executor and process isolation send and get back, through pickle; for
    a skill whose compiled ``step`` runs isolated, its results as the host loads them from
    its process."""
    from sof_core.errors import SkillNotPicklableError
    from sof_core.execution.isolation import trusted_for
    from sof_core.execution.remote import pack_call, run_skill_call
    from sof_core.security.unpickling import RefusedGlobal, load_reply

    spec = entry.spec
    uif = sample.model_copy(deep=True)
    source = uif.intermediate_data
    inputs = {k: source[k] for k in spec.inputs if k in source}
    fields = {k: v for k, v in uif.__dict__.items()
              if k not in ("intermediate_data", "log_trace", "warnings", "skill_outputs")}
    stage = "the skill and its sample inputs"
    try:
        # as they travel: by name, or by value for what a worker could not import
        skill, inputs, fields = pickle.loads(pack_call(spec.name, (entry.instance, inputs,
                                                                   fields)))
        stage = "a run of the unpickled skill"
        limit = _limit(spec.max_execution_time)
        outcome, changes = _bounded(lambda: run_skill_call(skill, inputs, fields), limit,
                                    f"sof-contract-pickle-{spec.name}")
        if outcome == "hung":
            result.add("pickle", "skipped", f"pickled and unpickled, but the unpickled skill "
                       f"did not finish in {limit:g} s on the sample", spec.name)
            return
        if outcome == "raised":
            raise changes if isinstance(changes, Exception) else RuntimeError(
                f"{type(changes).__name__}: {changes}")
        stage = "its results"
        sent = pickle.dumps(changes)
        pickle.loads(sent)
        if step is not None and step.isolation_settings is not None:  # it runs isolated
            load_reply(sent, trusted_for(step, sample), step.isolation_settings.reply_packages)
    except RefusedGlobal as refused:
        result.add(
            "pickle", "failed",
            f"its results hold {refused.name}, which the host does not load from an isolated "
            "process (only plain data, standard value types, exceptions and its own "
            "package's classes); write plain data, or list the package in "
            "isolation_reply_packages",
            spec.name,
        )
        return
    except SkillNotPicklableError as exc:
        result.add(
            "pickle", "failed",
            f"{exc.what} cannot be pickled ({exc.reason}); {_PICKLE_ADVICE}",
            spec.name,
        )
        return
    except Exception as exc:
        result.add(
            "pickle", "failed",
            f"{stage} failed with {type(exc).__name__}: {exc}; {_PICKLE_ADVICE}",
            spec.name,
        )
        return
    result.add("pickle", "passed", "", spec.name)


__all__ = [
    "CHECKS",
    "ContractCheck",
    "ContractViolation",
    "PluginContract",
    "check_plugin",
    "check_plugins",
    "find_record",
    "find_records",
]
