"""The coordinator: plan in, ``ExecutionReport`` out.

A run compiles its plan (cached per plan and registry version), then hands it to a
``RunContext`` that walks the stages (see ``sof_core.execution.run``; on the caller's event
loop, ``sof_core.execution.arun``). The engine owns the threads its runs use
(``sof_core.execution.resources``): ``close()`` releases them.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
import time
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from sof_core._bounded import call_bounded
from sof_core._repr import safe_repr
from sof_core.config import SOFConfig, as_config, get_sof_config_manager
from sof_core.config.model import config_revision
from sof_core.errors import (
    ConfigError,
    PlanValidationError,
    PluginHookError,
    UIFError,
    goal_needs_no_skill,
)
from sof_core.execution import observers
from sof_core.execution.deadlines import clock
from sof_core.execution.report import ExecutionReport, NotRunStatus, RunStatus
from sof_core.execution.resources import EngineThreads
from sof_core.execution.run import Executor, RunContext
from sof_core.execution.segments import SegmentedPlan, current_segments
from sof_core.graph.compile import CompiledPlan, PlanCache, compile_plan
from sof_core.graph.validate import (
    ValidationProblem,
    available_keys,
    available_problem,
    check_plan_type,
)
from sof_core.plugins.loader import (
    CODE_PLUGIN,
    PluginManager,
    contested_message,
    engine_plugin_manager,
    host_config,
)
from sof_core.plugins.registry import (
    Registry,
    is_skill_like,
    item_label,
    not_a_skill,
)
from sof_core.uif import UIF

if TYPE_CHECKING:
    import networkx as nx

    from sof_core.planning.result import PlanResult
    from sof_core.planning.service import Planning

_T = TypeVar("_T")


#: How long ``close()`` waits, at most, for the engine's idle threads to end: they end as
#: soon as they are scheduled, so a host (or a test) that closes an engine sees them gone.
CLOSE_WAIT = 0.25


class CoordinatorEngine:
    """Plans in, reports out. One engine serves many concurrent runs."""

    def __init__(
        self,
        plugins: PluginManager | None = None,
        config: SOFConfig | Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        """Without ``plugins``, the engine gets its own overlay of the process-wide manager
        (installed plugins are loaded once per process and shared; what is registered on this
        engine stays on it), or, given ``config``, its own manager loaded with that config.
        A ``plugins`` manager passed in is used as is, shared with whoever else holds it.

        Made with neither, the engine takes the host's configuration as it is now (a change
        made since an earlier engine applies) and ``follows_host_config``: a ``QueryRouter``
        then hands it the live configuration with each query (``refresh_config``).
        ``config`` may be a ``SOFConfig`` or a mapping of settings (``{"skill_timeout": 5}``).
        Settings given as keywords (``CoordinatorEngine(skill_timeout=5)``) override
        ``config``'s, or the host's configuration as it is now: the engine's own settings.
        """
        if config is not None:
            config = as_config(config, "CoordinatorEngine(config=...)")
        if plugins is not None and not isinstance(plugins, PluginManager):
            raise ConfigError(
                f"CoordinatorEngine(plugins=...) takes a sof_core.PluginManager, got "
                f"{safe_repr(plugins)}; to choose which plugins load, pass "
                "plugins_only=[...] (or config=SOFConfig(plugins_only=[...]))",
                key="plugins",
            )
        if settings:
            base = config if config is not None else (
                plugins.config if plugins is not None else host_config())
            config = _with_settings(base, settings)
        #: Made from the host's configuration (no ``plugins``, no ``config``) and not given
        #: other settings since: ``refresh_config`` takes the host's current ones.
        self.follows_host_config = plugins is None and config is None
        if plugins is None:
            plugins = engine_plugin_manager() if config is None else PluginManager(config).load()
        else:
            plugins.load()
        self.plugins = plugins
        self._config = config if config is not None else plugins.config
        #: Compiled plans, with the settings they were compiled under (see ``compile``).
        self._plans = (self._config, config_revision(),
                       PlanCache(self._config.plan_cache_size))
        self._executors: dict[str, Executor] = {}
        #: Runner and step threads, and the calls given up on (see ``stats``).
        self._threads = EngineThreads(self._config)
        # An engine dropped without close() releases its idle threads when collected, so a
        # host (or a test session) that makes many engines does not keep their threads.
        weakref.finalize(self, self._threads.close)

    # --- settings ------------------------------------------------------------------------

    @property
    def config(self) -> SOFConfig:
        """The settings the engine's next runs use. Assigning new ones applies them from
        the next run on (and the engine no longer follows the host's configuration)."""
        return self._config

    @config.setter
    def config(self, config: SOFConfig | Mapping[str, Any]) -> None:
        self.follows_host_config = False
        self._use(as_config(config, "engine.config"))

    def refresh_config(self, config: SOFConfig | None = None) -> SOFConfig:
        """For an engine that ``follows_host_config``: use the host's configuration as it
        is now (``config``, as a caller that just read it passes it, or read here) from the
        next run on; the plugins' ``sof_configure`` is called again with them when they
        changed (``PluginManager.reconfigure``), so ``plugin_settings`` apply too. Settings
        about which plugins load (``plugins_*``, ``skill_providers``, ``strict_plugins``)
        keep the values the engine was made with: make a new engine for those. The step
        pool's size (``max_workers``) is read when the pool starts: a pool already started
        keeps it (``close()`` lets the next run start one with the new size). Does nothing
        for an engine given its own settings.
        While the host's configuration cannot be read (a corrupt file, a bad ``SOF_*``
        variable: logged once by the config manager), the settings in use stay. Returns the
        settings in use."""
        if self.follows_host_config:
            if config is None:
                config = get_sof_config_manager().state().config
            if config is not None and config is not self._config:
                self._use(config)
                self.plugins.reconfigure(config)
        return self._config

    def _use(self, config: SOFConfig) -> None:
        if not isinstance(config, SOFConfig):
            raise ConfigError(
                f"an engine's config must be a SOFConfig, not {type(config).__name__}",
                key="config",
            )
        self._config = config
        self._threads.configure(config)

    # --- the engine's threads ------------------------------------------------------------

    def close(self) -> None:
        """Release the engine's threads: idle ones stop, and are gone when this returns (it
        waits up to ``CLOSE_WAIT`` seconds for them); a skill call still running, or hung
        after its timeout, keeps its (daemon) thread until it returns, and is never waited
        for.

        The engine stays usable (a later run starts new threads). ``with CoordinatorEngine()
        as engine:`` closes it at the end of the block; engines still open at interpreter
        exit are closed then, without waiting, and their threads never hold the exit up.
        """
        self._threads.close(wait=CLOSE_WAIT)
        planning = self.__dict__.get("_planning")
        if planning is not None:
            planning.close()  # the persistent plan cache's SQLite connection, if any
        for executor in self._executors.values():
            shutdown = getattr(executor, "shutdown", None)
            if callable(shutdown):
                shutdown()

    def __enter__(self) -> CoordinatorEngine:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def abandoned_calls(self) -> dict[str, int]:
        """Skill calls given up on at their timeout and still running, per skill."""
        return self._threads.hung.running()

    def stats(self) -> dict[str, Any]:
        """The engine's thread and hung-call state, for health checks and dashboards:

        ``abandoned_calls`` (per skill, still running), ``abandoned_total`` (per skill,
        ever), ``quarantined`` (skills failing fast), ``max_hung_calls_per_skill``,
        ``threads`` (the runner, step and observer pools: ``live``, ``idle``, ``queued``,
        ``abandoned``), ``hung_observers`` (``"plugin.hook"`` of observers with a call
        still running past ``observer_timeout``), ``plan_cache`` (compiled plans:
        ``hits``, ``misses``) and
        ``planning`` (``Planning.stats()``: plans per planner, fallbacks, and the
        planners' plan cache with hits, misses and evictions).
        """
        stats = self._threads.stats()
        cache = self._plans[2]
        stats["plan_cache"] = {"hits": cache.hits, "misses": cache.misses}
        stats["planning"] = self.planning.stats()
        return stats

    @property
    def planning(self) -> Planning:
        """This engine's planners, plan cache and planning metrics (made on first use)."""
        planning = self.__dict__.get("_planning")
        if planning is None:
            from sof_core.planning.service import Planning

            planning = self.__dict__.setdefault("_planning", Planning(self))
        return planning  # type: ignore[no-any-return]

    @property
    def registry(self) -> Registry:
        """What this engine can run: its own registrations over the installed plugins'."""
        return self.plugins.registry

    # --- registration in code (SAM's API) ------------------------------------------------

    def register_skill(self, skill: Any, plugin_name: str | None = None) -> None:
        """Register one skill class or instance on this engine; raises if it cannot be used.

        Without ``plugin_name`` the skill gets the plugin name ``code:<skill_name>``, and
        registering a skill of the same name that way again replaces it (SAM's rule), but only
        once the new one has passed every check. A name already registered on this engine by
        another plugin raises ``PluginConflictError``; a name provided by an installed plugin
        is overridden, on this engine only. A failure raises the specific error
        (``PluginConflictError``, ``SkillDefinitionError``, ``PluginHookError``) and leaves
        the engine exactly as it was.
        """
        _check_plugin_name(plugin_name)
        if not is_skill_like(skill):  # named before ``code:<label>`` is made of it
            raise not_a_skill(plugin_name or CODE_PLUGIN, skill, "register_skill")
        name = plugin_name or f"code:{item_label(skill)}"
        self.plugins.register_skills([skill], name, replace=plugin_name is None)

    def register_skills(self, skills: Iterable[Any], plugin_name: str | None = None) -> None:
        """Register several skills as one in-code plugin on this engine (all or nothing).

        Without ``plugin_name`` the plugin is named ``code``, or ``code-2``, ``code-3``...
        when an earlier call took that name, so batches registered one after another each
        get their own. A ``plugin_name`` given and already in use raises
        ``PluginConflictError``; like any failure here, it leaves what was registered before
        untouched.
        """
        _check_plugin_name(plugin_name)
        if plugin_name is not None and not plugin_name:
            raise PluginHookError(repr(plugin_name), "plugin_name must be a non-empty string")
        if isinstance(skills, (type, str, bytes)) or not isinstance(skills, Iterable):
            raise PluginHookError(
                plugin_name or CODE_PLUGIN,
                f"register_skills takes a list of skill classes or instances, got "
                f"{safe_repr(skills)}; for one skill, call register_skill or pass [skill]",
            )
        self.plugins.register_skills(list(skills), plugin_name)

    # --- planning ------------------------------------------------------------------------

    def compile(self, plan: Sequence[str], available: Iterable[str] = ()) -> CompiledPlan:
        """Validate ``plan`` and compute its stages, cached per (plan, registry version)
        under the engine's current settings (new settings start a new cache)."""
        listed = type(plan) is list or type(plan) is tuple
        if not listed:  # checked before the lookup: a str would pass as one-letter names
            check_plan_type(plan)
        config = self._config
        compiled_for, revision, cache = self._plans
        if compiled_for is not config or revision != config_revision():
            # steps carry timeouts, retries, isolation: new settings (or a setting assigned
            # on these) compile afresh
            fresh = PlanCache(config.plan_cache_size)
            fresh.hits, fresh.misses = cache.hits, cache.misses
            self._plans = (config, config_revision(), fresh)
            cache = fresh
        available = available_keys(available, available_problem)
        key = (tuple(plan), self.plugins.registry.version, available)
        if config.enable_plan_cache:
            try:
                cached = cache.get(key)
            except TypeError:  # an unhashable item: check_plan_type names it below
                cached = None
            if cached is not None:  # its items were checked when it was compiled
                return cached
        if listed:
            check_plan_type(plan)
        compiled = compile_plan(plan, self.plugins.registry, config, available)
        if config.enable_plan_cache:
            cache.put(key, compiled)
        return compiled

    def validate_plan(
        self, plan: Sequence[str], available: Iterable[str] = ()
    ) -> list[ValidationProblem]:
        """Every problem of ``plan`` (an empty list means it is runnable)."""
        return list(self.compile(plan, available).problems)

    def build_graph(self, plan: Sequence[str] | None = None) -> nx.DiGraph:
        """The plan's DAG (default: the configured ``default_plan``) as a networkx
        ``DiGraph``: a node per skill, an edge producer -> consumer for each pair where one
        writes a key the other declares as input, its ``keys`` attribute listing them. A
        fresh graph each call, built the way the coordinator builds it, for a host to
        inspect or draw; cycles are kept (``validate_plan`` reports them). A plan naming
        a skill nobody registered raises ``PlanValidationError`` naming it."""
        from sof_core._networkx_guard import networkx  # imported only when asked
        from sof_core.graph.build import build_graph

        given = self._config.default_plan if plan is None else plan
        check_plan_type(given)  # before list(): a str would be read letter by letter
        names = list(given)
        registry = self.plugins.registry
        entries = [registry.skill(name) for name in names]
        unknown = [name for name, entry in zip(names, entries, strict=True) if entry is None]
        if unknown:
            raise PlanValidationError([problem for problem in self.validate_plan(names)
                                       if problem.code == "unknown_skill"])
        built = build_graph([entry.spec for entry in entries if entry is not None])
        graph: nx.DiGraph = networkx.DiGraph(built.graph)
        for (producer, consumer), keys in built.edges.items():
            graph.edges[producer, consumer]["keys"] = list(keys)
        return graph

    def resolve_goal(
        self,
        goals: Iterable[str],
        *,
        available: Iterable[str] = (),
        include_optional: bool = False,
        prefer: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The minimal plan of registered skills that produces ``goals``."""
        from sof_core.graph.build import resolve_goal

        registry = self.plugins.registry
        specs = {entry.spec.name: entry.spec for entry in registry.skills()}
        return resolve_goal(
            goals, specs, available=available, include_optional=include_optional,
            prefer=prefer, unavailable=_contested_producers(registry),
        )

    def executor(self, name: str | None = None) -> Executor:
        """The executor called ``name`` (default: the configured one), from the registry."""
        if name is None:
            name = self._config.executor
        if not isinstance(name, str):  # a list would be a bare "unhashable type" TypeError
            known = sorted(self.plugins.registry.components("executors"))
            raise ConfigError(
                f"executor must be an executor's name (a string), got {safe_repr(name)}; "
                f"installed executors are {known}", key="executor")
        executor = self._executors.get(name)
        if executor is None:
            entry = self.plugins.registry.component("executors", name)
            if entry is None:
                known = sorted(self.plugins.registry.components("executors"))
                raise ConfigError(
                    f"unknown executor {name!r}; installed executors are {known}", key="executor"
                )
            if isinstance(entry.obj, type):
                executor = self._construct_executor(name, entry.obj, entry.plugin)
            else:
                executor = entry.obj
            _check_executor(name, executor, entry.plugin)
            executor = self._executors.setdefault(name, executor)
        return executor

    def _construct_executor(self, name: str, cls: type[Any], plugin: str) -> Any:
        """An executor class's instance. A plugin's is made in a daemon thread within
        ``plugin_import_timeout`` (as its start-up hooks are): a constructor that hangs (a
        cluster that does not answer) or raises is a ``PluginHookError`` naming the plugin,
        not a hung or crashed ``execute_plan``."""
        if cls.__module__.startswith("sof_core."):
            return cls()
        fix = "fix or remove the plugin, or choose another executor (setting 'executor')"
        limit = self._config.plugin_import_timeout
        outcome = call_bounded(cls, limit, f"sof-executor-{name}", main_thread_retry=True)
        if outcome is None:
            raise PluginHookError(
                plugin, f"executor {name!r} was not constructed within {limit:g} s "
                f"(plugin_import_timeout); its constructor is left running; {fix}")
        ok, value = outcome
        if ok:
            return value
        if not isinstance(value, Exception):  # KeyboardInterrupt, SystemExit: theirs
            raise value
        raise PluginHookError(
            plugin, f"executor {name!r} could not be constructed: "
            f"{type(value).__name__}: {value}; {fix}") from value

    # --- running -------------------------------------------------------------------------

    def execute_plan(
        self, plan: Sequence[str], uif: UIF, *, executor: str | None = None
    ) -> ExecutionReport:
        """Run ``plan`` on ``uif``; raises ``PlanValidationError`` before running if invalid.

        Skill failures never raise: they are in the report, whose status says how it went.
        """
        started = time.perf_counter()
        compiled = self.compile(plan, _given_keys(uif))
        compiled_at = time.perf_counter()
        if compiled.problems and (self._config.enable_plan_validation or not compiled.order):
            raise PlanValidationError(compiled.problems)
        chosen = self.executor(executor)
        segments = current_segments.get()
        if segments is not None:  # a segment (segmented_plan): runs its skills start are not
            token = current_segments.set(None)
        try:
            run = self._start(compiled, uif, chosen, segments)
            total = self._config.total_timeout
            if total is not None or compiled.timeouts or (compiled.has_async
                                                          and _loop_running()):
                # (An async skill run inline needs a loop of this thread's own, which it
                # cannot have while the caller's runs: the run goes to a runner thread.)
                deadline = clock() + total if total is not None else math.inf
                if segments is not None:  # the query's total_timeout, not each segment's
                    deadline = segments.share_deadline(deadline)
                run.supervise(deadline)
            else:
                run.drive_inline()
            return self._report(run, compiled, chosen, started, compiled_at, segments)
        finally:
            if segments is not None:
                current_segments.reset(token)

    @contextmanager
    def segmented_plan(
        self, plan: Sequence[str]
    ) -> Iterator[Callable[[ExecutionReport], None]]:
        """Run ``plan`` as several ``execute_plan`` calls that observers see as one plan.

        Inside the ``with``, the first run to start notifies ``sof_before_plan`` with
        ``plan``; no run notifies ``sof_after_plan``. Call the function it gives with the
        merged report to notify it once (``run_query``'s adaptive runs use this; see
        ``sof_core.execution.segments``). A run that a ``KeyboardInterrupt`` ends notifies
        it, since the query ends there; any other exception leaving the block once a run
        began notifies it too, naming the exception, then propagates. Either way observers
        get the reports of the runs that ended, merged, marked ``failure``.
        """
        segments = SegmentedPlan(list(plan))
        token = current_segments.set(segments)

        def finish(report: ExecutionReport) -> None:
            if segments.began and not segments.ended:
                segments.ended = True
                if self.plugins.run_observers()["sof_after_plan"]:
                    self.notify_observers("sof_after_plan", report=report)

        try:
            yield finish
        except BaseException as exc:
            if segments.began and not segments.ended:
                finish(_ended_by(segments, exc))
            raise
        finally:
            current_segments.reset(token)

    @asynccontextmanager
    async def asegmented_plan(
        self, plan: Sequence[str]
    ) -> AsyncIterator[Callable[[ExecutionReport], Awaitable[None]]]:
        """``segmented_plan`` for runs awaited on an event loop (``aexecute_plan``): the
        function it gives is awaited, and observers are notified without blocking the
        loop (``anotify_observers``)."""
        segments = SegmentedPlan(list(plan))
        token = current_segments.set(segments)

        async def finish(report: ExecutionReport) -> None:
            if segments.began and not segments.ended:
                segments.ended = True
                if self.plugins.run_observers()["sof_after_plan"]:
                    await self.anotify_observers("sof_after_plan", report=report)

        try:
            yield finish
        except BaseException as exc:
            if segments.began and not segments.ended:
                await finish(_ended_by(segments, exc))
            raise
        finally:
            current_segments.reset(token)

    def _start(self, compiled: CompiledPlan, uif: UIF, chosen: Executor,
               segments: SegmentedPlan | None = None, tell: bool = True) -> RunContext:
        """The run's context; ``sof_before_plan`` told unless ``tell`` is False (the
        caller awaits it on its loop)."""
        uif._sof_run_started()  # status RUNNING, start_time (in the UIF class's own formats)
        uif.__dict__["execution_plan"] = list(compiled.order)
        run = RunContext(self.plugins, self._config, compiled, uif, chosen, self._threads)
        if segments is not None:  # only the first segment tells, with the whole plan
            if segments.began:
                return run
            segments.began = True
            segments.uif = uif
        if tell and run.observing["sof_before_plan"]:
            plan = compiled.order if segments is None else segments.plan
            self.notify_observers("sof_before_plan", plan=list(plan), uif=uif)
        return run

    def notify_observers(self, hook_name: str, **kwargs: Any) -> None:
        """Call observer hook ``hook_name`` (``sof_alert``, ...) from the calling thread as
        the engine does: each observer call is given at most ``observer_timeout``, and an
        exception in one is logged and counted, never raised (docs/hooks.md)."""
        observers.notify(self.plugins, self._threads, self._config.observer_timeout,
                         hook_name, **kwargs)

    def _notify_one(self, impl: Any, hook_name: str, kwargs: dict[str, Any]) -> None:
        """One observer that is not a pluggy hook's (``observers.notify_one``), bounded as
        the engine's own notifications are: the router's route observers."""
        observers.notify_one(self.plugins, self._threads, self._config.observer_timeout,
                             impl, hook_name, kwargs)

    async def anotify_observers(self, hook_name: str, **kwargs: Any) -> None:
        """``notify_observers`` for a caller on an event loop: an observer call handed to a
        thread is awaited, so the loop serves the host's other tasks meanwhile."""
        await observers.anotify(self.plugins, self._threads, self._config.observer_timeout,
                                hook_name, **kwargs)

    def _report(self, run: RunContext, compiled: CompiledPlan, chosen: Executor,
                started: float, compiled_at: float,
                segments: SegmentedPlan | None = None) -> ExecutionReport:
        """The run's report; a KeyboardInterrupt a skill raised is raised now, once the
        report says which skill it was (observers of ``sof_after_plan`` get it first)."""
        report, tell = self._build_report(run, compiled, chosen, started, compiled_at,
                                          segments)
        if tell and run.observing["sof_after_plan"]:
            self.notify_observers("sof_after_plan", report=report)
        _raise_interrupt(run, report)
        return report

    def _build_report(self, run: RunContext, compiled: CompiledPlan, chosen: Executor,
                      started: float, compiled_at: float,
                      segments: SegmentedPlan | None = None) -> tuple[ExecutionReport, bool]:
        """The run's report, and whether ``sof_after_plan`` is to be told of it."""
        uif = run.uif
        with run.lock:
            status = run.status()
            uif._sof_run_finished(status)
            ended = time.perf_counter()
            report = ExecutionReport(
                uif=uif,
                status=status,
                plan=list(compiled.plan),
                stages=list(map(list, run.stages)),
                results=[*run.results, *run.not_run()],
                errors=list(run.errors),
                duration=ended - started,
                executor=chosen.name,
                timings={"compile": compiled_at - started, "run": ended - compiled_at},
            )
        tell = segments is None
        if segments is not None:
            segments.reports.append(report)
            if run.interrupt is not None and not segments.ended:
                # The query ends with this segment: observers get the whole query so far.
                segments.ended = tell = True
                report = _so_far(segments, report.status)
        return report, tell

    async def aexecute_plan(
        self, plan: Sequence[str], uif: UIF, *, executor: str | None = None
    ) -> ExecutionReport:
        """``execute_plan`` for async hosts, on the caller's event loop.

        Async skills are awaited on this loop (they may share the host's clients), sync
        skills run on the engine's step pool, and no thread hosts the run. Executors that
        cannot walk a plan on a loop (third-party ones, such as ``dask``) run it in one of
        the engine's runner threads, awaited here.
        """
        started = time.perf_counter()
        compiled = self.compile(plan, _given_keys(uif))
        compiled_at = time.perf_counter()
        if compiled.problems and (self._config.enable_plan_validation or not compiled.order):
            raise PlanValidationError(compiled.problems)
        chosen = self.executor(executor)
        if getattr(chosen, "native_async", False) is not True:
            return await self._hosted(plan, uif, executor)
        from sof_core.execution.arun import drive_async

        segments = current_segments.get()
        # Only a plan's first segment tells observers it began (asegmented_plan).
        first = segments is None or not segments.began
        if segments is not None:  # runs its skills start are plans of their own
            token = current_segments.set(None)
        try:
            run = self._start(compiled, uif, chosen, segments, tell=False)
            if first and run.observing["sof_before_plan"]:
                plan = compiled.order if segments is None else segments.plan
                await self.anotify_observers("sof_before_plan", plan=list(plan), uif=uif)
            total = self._config.total_timeout
            deadline = clock() + total if total is not None else math.inf
            if segments is not None:  # the query's total_timeout, not each segment's
                deadline = segments.share_deadline(deadline)
            await drive_async(run, deadline)
            report, tell = self._build_report(run, compiled, chosen, started, compiled_at,
                                              segments)
            if tell and run.observing["sof_after_plan"]:
                await self.anotify_observers("sof_after_plan", report=report)
            _raise_interrupt(run, report)
            return report
        finally:
            if segments is not None:
                current_segments.reset(token)

    async def _hosted(self, plan: Sequence[str], uif: UIF,
                      executor: str | None) -> ExecutionReport:
        """``execute_plan`` in a runner thread, awaited on this loop."""
        return await self._off_loop(lambda: self.execute_plan(plan, uif, executor=executor))

    async def _off_loop(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` in one of the engine's runner threads (daemons), awaited on this loop:
        for blocking work an async caller must not do on its loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()

        def settle(outcome: Any, failed: bool) -> None:
            if not future.done():
                (future.set_exception if failed else future.set_result)(outcome)

        def job() -> None:
            try:
                result = fn()
            except BaseException as exc:
                loop.call_soon_threadsafe(settle, exc, True)
            else:
                loop.call_soon_threadsafe(settle, result, False)

        # In the caller's context, as asyncio.to_thread does: a segmented plan
        # (asegmented_plan) run by a hosted executor stays one plan to observers.
        self._threads.runners().submit(contextvars.copy_context().run, job)
        return await future

    def run_query(
        self,
        query: str,
        plan: Sequence[str] | None = None,
        *,
        goal: Sequence[str] | None = None,
        executor: str | None = None,
        include_optional: bool = False,
        prefer: Mapping[str, str] | None = None,
        **uif_fields: Any,
    ) -> ExecutionReport:
        """Build a UIF for ``query`` and run ``plan`` (default: the configured planner's).

        With ``goal``, the plan is ``resolve_goal(goal, include_optional=..., prefer=...)``,
        with the same defaults as ``resolve_goal`` and ``sof run --goal``: required inputs'
        producers only. Without either, ``self.planning`` plans it (``planner`` setting)
        and the report's ``planning`` says how. ``timings["planning"]`` is the time it took.
        An engine that ``follows_host_config`` takes the host's current settings first
        (``refresh_config``), so a changed planner or timeout applies to this query.
        """
        uif, plan, planning_started = self._query(query, plan, goal, include_optional, prefer,
                                                  uif_fields)
        planned = None
        if plan is None:  # an empty plan (given, or a goal already met) is run as given
            planned = self.planning.plan(query, profile=uif.active_profile)
        return self._run_planned(uif, plan, planned, planning_started, executor)

    async def arun_query(
        self,
        query: str,
        plan: Sequence[str] | None = None,
        *,
        goal: Sequence[str] | None = None,
        executor: str | None = None,
        include_optional: bool = False,
        prefer: Mapping[str, str] | None = None,
        **uif_fields: Any,
    ) -> ExecutionReport:
        """``run_query`` for async hosts, on the caller's event loop: the same plan, the
        same adaptive choice and re-planning, each run through ``aexecute_plan``.

        A planner that may block (the LLM planner, a plugin's) is asked in one of the
        engine's runner threads, awaited here; SOF's own planners that do no I/O are
        asked in place.
        """
        uif, plan, planning_started = self._query(query, plan, goal, include_optional, prefer,
                                                  uif_fields)
        planned = None
        if plan is None:  # an empty plan (given, or a goal already met) is run as given
            profile = uif.active_profile
            if self.planning.asks_in_place(self._config.planner):
                planned = self.planning.plan(query, profile=profile)
            else:
                planned = await self._off_loop(
                    lambda: self.planning.plan(query, profile=profile))
        return await self._arun_planned(uif, plan, planned, planning_started, executor)

    def _query(self, query: str, plan: Sequence[str] | None, goal: Sequence[str] | None,
               include_optional: bool, prefer: Mapping[str, str] | None,
               uif_fields: dict[str, Any]) -> tuple[UIF, Sequence[str] | None, float]:
        """A query's UIF, its given plan (or ``goal``'s) checked, None to plan it, and when
        choosing the plan began (``timings["planning"]`` counts from there)."""
        if self.follows_host_config:  # planner, default_plan, timeouts: as they are now
            self.refresh_config()
        uif = UIF.for_query(query, **uif_fields)
        planning_started = time.perf_counter()
        if goal is not None:
            plan = goal_plan(self, goal, include_optional=include_optional, prefer=prefer)
        if plan is not None:
            check_plan_type(plan)
        return uif, plan, planning_started

    def run_planned(self, planned: PlanResult, uif: UIF, *, config: SOFConfig | None = None,
                    executor: str | None = None) -> ExecutionReport:
        """Run a planner's ``planned`` (``planning.plan(...)``) on ``uif`` as ``run_query``
        does: the UIF's trace says how the plan was made, the plan is adjusted while it
        runs (docs/planning.md) and the report's ``planning`` says how it was chosen.
        ``config``: the settings the adjustments follow (default: the engine's)."""
        return self._run_adaptive(planned, uif, config, executor, None)

    def _run_adaptive(self, planned: PlanResult, uif: UIF, config: SOFConfig | None,
                      executor: str | None, planning_time: float | None) -> ExecutionReport:
        from sof_core.planning.adapt import run_adaptive
        from sof_core.planning.service import record_planning

        record_planning(uif, planned)
        report: ExecutionReport = run_adaptive(self, planned, uif, config=config,
                                               executor=executor, planning_time=planning_time)
        return report

    async def arun_planned(self, planned: PlanResult, uif: UIF, *,
                           config: SOFConfig | None = None,
                           executor: str | None = None) -> ExecutionReport:
        """``run_planned`` for async hosts: each engine run through ``aexecute_plan``."""
        return await self._arun_adaptive(planned, uif, config, executor, None)

    async def _arun_adaptive(self, planned: PlanResult, uif: UIF, config: SOFConfig | None,
                             executor: str | None,
                             planning_time: float | None) -> ExecutionReport:
        from sof_core.planning.adapt import arun_adaptive
        from sof_core.planning.service import record_planning

        record_planning(uif, planned)
        report: ExecutionReport = await arun_adaptive(
            self, planned, uif, config=config, executor=executor, planning_time=planning_time)
        return report

    def _run_planned(self, uif: UIF, plan: Sequence[str] | None, planned: PlanResult | None,
                     planning_started: float, executor: str | None) -> ExecutionReport:
        planning = time.perf_counter() - planning_started
        if planned is None:
            report = self.execute_plan(list(plan or ()), uif, executor=executor)
            report.timings["planning"] = planning
        else:
            report = self._run_adaptive(planned, uif, None, executor, planning)
        return report

    async def _arun_planned(self, uif: UIF, plan: Sequence[str] | None,
                            planned: PlanResult | None, planning_started: float,
                            executor: str | None) -> ExecutionReport:
        planning = time.perf_counter() - planning_started
        if planned is None:
            report = await self.aexecute_plan(list(plan or ()), uif, executor=executor)
            report.timings["planning"] = planning
        else:
            report = await self._arun_adaptive(planned, uif, None, executor, planning)
        return report


def _loop_running() -> bool:
    """An event loop runs in this thread (a sync ``execute_plan`` called from async code)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _contested_producers(registry: Registry) -> dict[str, str]:
    """Per key, why the skills that would produce it are unavailable: their name is offered
    by several plugins and ``skill_providers`` names none (goal planning says so, instead of
    advising to install a plugin that is installed twice over)."""
    why: dict[str, str] = {}
    for name, plugins in registry.contested().items():
        keys = {key for offer in registry.offers(name) for key in offer.spec.output_keys}
        reason = contested_message({name: plugins})
        for key in sorted(keys):
            why[key] = f"{why[key]}; {reason}" if key in why else reason
    return why


def _given_keys(uif: UIF) -> Iterable[str]:
    """The ``intermediate_data`` keys a run starts with; a ``UIFError`` saying what to pass
    when ``uif`` is not a UIF (a dict, None: an ``AttributeError`` from deep inside before)."""
    try:
        return uif.__dict__["intermediate_data"].keys()  # type: ignore[no-any-return]
    except (AttributeError, KeyError, TypeError):
        raise UIFError(
            f"the uif argument must be a sof_core.UIF, not {type(uif).__name__}: build one "
            "with UIF(input_query=...) or UIF.for_query(query, **fields) (or call "
            "engine.run_query(query, plan))") from None


def _raise_interrupt(run: RunContext, report: ExecutionReport) -> None:
    """A KeyboardInterrupt (or SystemExit) a skill raised, raised now that the report
    says which skill it was; the report travels with it as ``sof_report``, so a host that
    goes on (a server whose worker thread it was) can keep the run's record."""
    if run.interrupt is not None:
        interrupt = run.interrupt
        try:  # noqa: SIM105 - an exception class with __slots__ cannot take it
            interrupt.sof_report = report  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        failed = [r.skill for r in report.results if r.error_type == type(interrupt).__name__]
        if failed:
            note = f"sof: raised in skill {failed[0]!r}; the run stopped there"
            if hasattr(interrupt, "add_note"):  # Python 3.11+
                interrupt.add_note(note)
            else:  # 3.10: the same attribute, which tracebacks there do not print
                notes = [*getattr(interrupt, "__notes__", ()), note]
                interrupt.__notes__ = notes  # type: ignore[attr-defined]
        raise interrupt


def _ended_by(segments: SegmentedPlan, exc: BaseException) -> ExecutionReport:
    """What observers are told of a segmented plan an exception ended: the segments that
    ended, merged (an empty report if none did), a ``failure`` naming the exception."""
    why = f"the query ended by {type(exc).__name__}: {exc}"
    if not segments.reports:
        assert segments.uif is not None  # set with ``began``
        return ExecutionReport(uif=segments.uif, status="failure", plan=list(segments.plan),
                               errors=[why])
    merged = _so_far(segments, "failure")
    merged.errors.append(why)
    return merged


def _so_far(segments: SegmentedPlan, status: RunStatus | NotRunStatus) -> ExecutionReport:
    """One report of every segment that ended, with ``status`` and the whole plan."""
    reports = segments.reports
    merged = reports[0]
    if len(reports) > 1:
        from sof_core.planning.adapt import merge

        for report in reports[1:]:
            merged = merge(merged, report)
    return dataclasses.replace(merged, status=status, plan=list(segments.plan),
                               stages=[list(s) for s in merged.stages],
                               results=list(merged.results), errors=list(merged.errors))


def _with_settings(base: SOFConfig, settings: Mapping[str, Any]) -> SOFConfig:
    """``base`` with keyword settings: SOF's names, or SAM's for shared settings (as
    ``load_config`` takes them). A SAM key SOF does not use is a ``ConfigError``; an
    unknown name or a bad value a ``ConfigValidationError`` naming it (with "did you mean"
    for a near miss)."""
    from sof_core.config.sources import config_error, interpret_arguments

    values, _names, problems = interpret_arguments(settings)
    if problems:
        raise config_error(problems)
    return as_config({**base.model_dump(), **values}, "CoordinatorEngine(...)")


def _check_plugin_name(plugin_name: object) -> None:
    """A plugin name given in code is a string: it is shown in every error and report
    ("already registered by plugin 5" helps nobody)."""
    if plugin_name is not None and not isinstance(plugin_name, str):
        raise PluginHookError(
            safe_repr(plugin_name),
            f"plugin_name must be a non-empty string, got {safe_repr(plugin_name)}",
        )


def goal_plan(engine: CoordinatorEngine, goal: Sequence[str], *, include_optional: bool = False,
              prefer: Mapping[str, str] | None = None) -> list[str]:
    """The plan a run asks for with ``goal`` (``resolve_goal``), never empty: an empty plan
    would be read as "no plan given" and the planner's plan would answer another question,
    so a goal the UIF already holds is a ``GoalResolutionError`` (``run_query``,
    ``run_batch`` and the CLI's ``--goal`` all resolve it here)."""
    plan = engine.resolve_goal(goal, include_optional=include_optional, prefer=prefer)
    if not plan:
        raise goal_needs_no_skill(goal)
    return plan


def _check_executor(name: str, executor: Any, plugin: str) -> None:
    """A ``PluginHookError`` naming the plugin when its executor lacks what a run uses
    (``concurrent``, a bool; ``run_stage(run, steps)``), instead of an ``AttributeError``
    out of the first run."""
    missing = []
    if not isinstance(getattr(executor, "concurrent", None), bool):
        missing.append("'concurrent' (True or False)")
    if not callable(getattr(executor, "run_stage", None)):
        missing.append("'run_stage(run, steps)'")
    if missing:
        raise PluginHookError(
            plugin, f"executor {name!r} lacks {' and '.join(missing)} (docs/api.md, "
            "'Writing an executor'); fix or remove the plugin, or choose another executor "
            "(setting 'executor')")
