"""Turning a plan into something cheap to run: validated once, cached per registry version.

Everything the executor needs per skill (which keys it may read and write, its timeout and
retries) is computed here, so the hot path does set lookups and nothing else.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from threading import Lock
from typing import Any, NamedTuple

from sof_core.config import SOFConfig
from sof_core.config.model import ISOLATION_IDLE_TIMEOUT_DEFAULT, ISOLATION_LIMIT_DEFAULTS
from sof_core.graph.edges import describe_cycle
from sof_core.graph.validate import ValidationProblem
from sof_core.plugins.registry import Registry, SkillEntry
from sof_core.security.policy import ToolLimits, ToolPolicy
from sof_core.skills.spec import SkillSpec, output_check
from sof_core.skills.views import LenientScopedData, ReadOnlyList, ScopedData, copyable_fields
from sof_core.uif import BOOKKEEPING_FIELDS, UIF_FIELD_TYPES


@dataclass(frozen=True)
class IsolationSettings:
    """How an isolated step's process is set up: its limits (None: no limit), the
    environment variables it may see besides the minimal set, the worker pool's size."""

    cpu_seconds: float | None
    memory_mb: float | None
    open_files: float | None
    env: tuple[str, ...] = ()
    workers: int = 2
    #: For a tool (registered through ``sof_register_tools``): its permissions and limits,
    #: enforced by the isolation pool (docs/security.md); None for other skills.
    tool: ToolLimits | None = None
    #: MB the call may send back; last, so the fields above keep their positions for
    #: settings made by hand.
    output_mb: float | None = ISOLATION_LIMIT_DEFAULTS["output_mb"]
    #: Top-level packages trusted whole in what the call sends back (the skill's and the
    #: configured ``isolation_reply_packages``; ``sof_core.security.unpickling``).
    reply_packages: frozenset[str] = frozenset()
    #: Seconds the worker that ran the call may stay idle before it is retired; None:
    #: kept for good (``SOFConfig.isolation_idle_timeout``).
    idle_timeout: float | None = ISOLATION_IDLE_TIMEOUT_DEFAULT


@dataclass(slots=True)
class Step:
    """One skill of a compiled plan, with its access rules and limits precomputed.

    Read-only by convention, not ``frozen``: a frozen dataclass assigns each of these
    fields through ``object.__setattr__`` (3 us a step instead of 0.7 here, 30 ms of a
    10,000-skill compile). Compiled plans are shared between runs; nothing writes a step.

    ``readable`` and ``writable`` are the ``intermediate_data`` keys the skill may read and
    write: every declared key, including those named like a UIF field (``final_response``
    is both). ``writable_fields`` are the UIF fields it may assign; ``copied_fields`` those
    of them that hold a container (``source_documents``, ``user_context``, ...): its view
    gets its own copies, so it may change them in place. ``required_data`` are the required
    inputs checked for presence before it runs (UIF-field keys are not: the field is there).
    """

    name: str
    spec: SkillSpec
    instance: Any
    plugin: str
    readable: frozenset[str]
    writable: frozenset[str]
    writable_fields: frozenset[str]
    required_data: tuple[str, ...]
    producer_of: dict[str, str]
    timeout: float | None
    retries: int
    output_checks: tuple[tuple[str, type], ...]
    copied_fields: frozenset[str] = frozenset()
    #: What the skill's scope is: ``LenientScopedData`` for a skill whose class opts in
    #: (``_sof_declarations_relaxable``) when ``strict_declarations`` is off.
    scope_type: type[ScopedData] = ScopedData
    #: "process": the skill runs in an isolation worker process (``isolation_settings``
    #: says how); "thread": in the run's threads.
    isolation: str = "thread"
    isolation_settings: IsolationSettings | None = None
    #: A sync skill run in the run's thread, with no retries and no container field of its
    #: own: the step most plans are made of, which the walk runs on its shortest path.
    plain: bool = False


@dataclass(frozen=True)
class CompiledPlan:
    """A plan checked against the registry: its steps, stages and any problems.

    ``stages`` are the topological generations concurrent executors run; ``order`` is the
    plan's own order wherever the dependencies allow (``graph.build.plan_order``), which
    sequential executors run and ``execution_plan`` shows.
    """

    plan: tuple[str, ...]
    steps: dict[str, Step]
    stages: tuple[tuple[str, ...], ...]
    problems: tuple[ValidationProblem, ...]
    order: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    # Per-run lookups, computed once per compiled plan (runs reuse them from the cache).

    @cached_property
    def step_stages(self) -> tuple[tuple[Step, ...], ...]:
        """``stages`` as ``Step`` objects, for executors that run a stage concurrently."""
        return tuple(tuple(self.steps[name] for name in stage) for stage in self.stages)

    @cached_property
    def sequential_stages(self) -> tuple[tuple[str, ...], ...]:
        """One stage per skill in ``order``, for executors that run skills one at a time."""
        return tuple((name,) for name in self.order)

    @cached_property
    def sequential_step_stages(self) -> tuple[tuple[Step, ...], ...]:
        return tuple((self.steps[name],) for name in self.order)

    @cached_property
    def read_only_order(self) -> ReadOnlyList:
        """``order`` as the run's read-only ``execution_plan`` (made once, not per run)."""
        order = ReadOnlyList(self.order)
        order._sof_owner = ("execution_plan", True)
        return order

    @cached_property
    def timeouts(self) -> tuple[float, ...]:
        """The timeouts of the steps that have one (none means no supervisor is needed)."""
        return tuple(s.timeout for s in self.steps.values() if s.timeout is not None)

    @cached_property
    def has_async(self) -> bool:
        """Some step is an async skill (run inline, it needs an event loop of its own)."""
        return any(step.spec.is_async for step in self.steps.values())

    @cached_property
    def min_timeout(self) -> float:
        """The shortest step timeout (``inf`` when no step has one)."""
        return min(self.timeouts, default=math.inf)


def compile_plan(
    plan: Sequence[str],
    registry: Registry,
    config: SOFConfig,
    available: frozenset[str] = frozenset(),
) -> CompiledPlan:
    """Validate ``plan`` and precompute its stages; never raises for a bad plan."""
    from sof_core.graph.plan_store import plan_graph
    from sof_core.graph.validate import check_keys, check_plan_shape, check_vetting

    plan = tuple(plan)
    known = set(registry.skill_names())
    # Why a name is missing (contested, or its plugin failed) is looked up only if one is.
    missing = not known.issuperset(plan)
    contested = registry.contested() if missing else {}
    problems = check_plan_shape(
        plan,
        known,
        config.max_plan_length,
        contested=contested,
        skill_providers={n: s for n in contested if (s := registry.skill_provider_setting(n))},
        failures=registry.failures() if missing else (),
    )
    entries: dict[str, SkillEntry] = {}
    for name in plan:
        entry = registry.skill(name)
        if entry is not None and name not in entries:
            entries[name] = entry
    specs = [entry.spec for entry in entries.values()]
    # Cycles, stages and order come from networkx, or from the plan store when an earlier
    # process computed them for these very declarations (see graph/plan_store.py).
    skill_graph = plan_graph(specs, config)
    problems += check_keys(specs, skill_graph.producers, available)
    cycles = skill_graph.cycles
    for path in cycles:
        problems.append(
            ValidationProblem(
                "cycle",
                f"cycle: {describe_cycle(path, skill_graph.edge_keys)}; break it by removing "
                "one of these inputs",
                tuple(dict.fromkeys(path)),
                None,
                tuple(path),
            )
        )
    stages: tuple[tuple[str, ...], ...] = ()
    order: tuple[str, ...] = ()
    if not cycles:
        stages = skill_graph.stages
        order = skill_graph.order
        if config.require_vetting:
            problems += check_vetting([entries[n].spec for n in order], skill_graph.producers)
    # Tool security (docs/security.md): the policy's refusals, and each tool's limits.
    policy = ToolPolicy.from_config(config)
    problems += [
        ValidationProblem("tool_denied", denial.message, (denial.skill,))
        for denial in policy.denials(entries.values())
    ]
    copyable = _same_copyable(copyable_fields())
    defaults = _StepDefaults.of(config)
    producers = skill_graph.producers
    steps = {
        name: _step(entry, producers, config, copyable, policy, defaults)
        for name, entry in entries.items()
    }
    return CompiledPlan(plan, steps, stages, tuple(problems), order)


class _StepDefaults(NamedTuple):
    """The settings every step of one compile reads, read from the config once (a
    pydantic attribute read per setting per step is 10,000 of each in a large plan)."""

    skill_timeout: float | None
    skill_retries: int
    strict: bool
    isolate: frozenset[str]

    @classmethod
    def of(cls, config: SOFConfig) -> _StepDefaults:
        return cls(config.skill_timeout, config.skill_retries, config.strict_declarations,
                   frozenset(config.isolate_skills or ()))


_copyable: list[frozenset[str]] = [frozenset()]


def _same_copyable(names: frozenset[str]) -> frozenset[str]:
    """``names`` as the very object earlier compiles got while it is unchanged (a UIF
    subclass defined since can add fields), so ``_declared`` can compare by identity."""
    if names != _copyable[0]:
        _copyable[0] = names
    return _copyable[0]


class _Declared(NamedTuple):
    """What a step's access rules are, from its skill's declarations alone (see ``_declared``)."""

    inputs: tuple[str, ...]
    readable: frozenset[str]
    writable: frozenset[str]
    writable_fields: frozenset[str]
    required_data: tuple[str, ...]
    copied_fields: frozenset[str]
    output_checks: tuple[tuple[str, type], ...]


def _declared(spec: SkillSpec, copyable: frozenset[str]) -> _Declared:
    """The access rules ``spec`` implies, worked out at its first compile and kept on it.

    A ``SkillSpec`` never changes once made, and these depend on nothing else but the UIF
    fields (``copyable`` is ``copyable_fields()``, fixed per process), so every later
    compile of the skill (another plan, a registry change, a plan-cache miss) reuses them.
    """
    cached: tuple[frozenset[str], _Declared] | None = spec.__dict__.get("_sof_declared")
    if cached is not None and cached[0] is copyable:
        return cached[1]
    fields = UIF_FIELD_TYPES
    inputs = spec.inputs
    outputs = spec.output_keys
    declared = _Declared(
        inputs=inputs,
        readable=frozenset(inputs),
        writable=frozenset(outputs),
        # The coordinator's bookkeeping (warnings, log_trace, executed_skills, ...) is never
        # a field write, declared or not: what a skill adds to it is merged as it always is
        # (an assignment replaced the run's warnings, and then added them again).
        writable_fields=frozenset([k for k in outputs
                                   if k in fields and k not in BOOKKEEPING_FIELDS]),
        required_data=tuple([k for k in spec.required_inputs if k not in fields]),
        copied_fields=frozenset([k for k in outputs
                                 if k in copyable and k not in BOOKKEEPING_FIELDS]),
        # The class each typed output's value must be an instance of (``list`` for
        # ``list[str]``; none for ``typing.Any`` or ``object``): ``isinstance`` per write.
        output_checks=tuple(
            (key, check) for key, tp in spec.output_types.items()
            if (check := output_check(tp)) is not None
        ) if spec.output_types else (),
    )
    # Stored past the frozen dataclass's __setattr__, as functools.cached_property does.
    spec.__dict__["_sof_declared"] = (copyable, declared)
    return declared


def _step(
    entry: SkillEntry,
    producers: dict[str, list[str]],
    config: SOFConfig,
    copyable: frozenset[str],
    policy: ToolPolicy | None,
    defaults: _StepDefaults,
) -> Step:
    # Runs once per skill per compile (10,000 times for a 10,000-skill plan): what the
    # declarations alone decide is computed once per skill (``_declared``), the settings
    # once per compile (``_StepDefaults``).
    spec = entry.spec
    name = spec.name
    declared = _declared(spec, copyable)
    tool = policy.tool_limits(entry) if policy is not None and entry.kind == "tools" else None
    timeout = spec.max_execution_time if tool is None else tool.timeout
    if timeout is None:
        timeout = defaults.skill_timeout
    producer_of = {}
    for key in declared.inputs:
        found = producers.get(key)
        if found and found[0] != name:
            producer_of[key] = found[0]
    isolated = (
        None if tool is None and spec.isolation != "process" and not defaults.isolate
        else _isolation(entry, config, tool)
    )
    retries = spec.max_retries if spec.max_retries is not None else defaults.skill_retries
    return Step(
        name,
        spec,
        entry.instance,
        entry.plugin,
        declared.readable,
        declared.writable,
        declared.writable_fields,
        declared.required_data,
        producer_of,
        timeout,
        retries,
        declared.output_checks,
        declared.copied_fields,
        (
            LenientScopedData
            if not defaults.strict
            and getattr(spec.skill_class, "_sof_declarations_relaxable", False) is True
            else ScopedData
        ),
        "thread" if isolated is None else "process",
        isolated,
        isolated is None and not retries and not spec.is_async and not declared.copied_fields,
    )


def _isolation(
    entry: SkillEntry, config: SOFConfig, tool: ToolLimits | None = None
) -> IsolationSettings | None:
    """The step's process settings if it is isolated: by its own declaration, because
    ``isolate_skills`` names it, its plugin or its distribution, or because it is a tool
    (``tool``: its limits; tools always run isolated)."""
    spec = entry.spec
    named = config.isolate_skills
    if tool is None and spec.isolation != "process" and not (named and (
        spec.name in named or entry.plugin in named
        or (entry.distribution is not None and entry.distribution in named)
    )):
        return None
    limits = {**config.isolation_limits, **spec.isolation_limits}
    return IsolationSettings(
        cpu_seconds=limits.get("cpu_seconds"),
        memory_mb=limits.get("memory_mb"),
        open_files=limits.get("open_files"),
        output_mb=limits.get("output_mb"),
        env=tuple(config.isolation_env),
        workers=config.isolation_workers,
        tool=tool,
        reply_packages=frozenset(config.isolation_reply_packages)
        | frozenset(spec.isolation_reply_packages),
        idle_timeout=config.isolation_idle_timeout,
    )


class PlanCache:
    """A small LRU of compiled plans keyed by plan, registry version and available keys."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[Any, ...], CompiledPlan] = OrderedDict()
        self._lock = Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> CompiledPlan | None:
        with self._lock:
            compiled = self._items.get(key)
            if compiled is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return compiled

    def put(self, key: tuple[Any, ...], compiled: CompiledPlan) -> None:
        with self._lock:
            self._items[key] = compiled
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
