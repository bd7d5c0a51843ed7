"""``Planning``: one engine's planners, plan cache and planning metrics.

``Planning.plan(query, config=..., profile=...)`` is what ``sof run`` without ``--plan``,
``sof plan``, ``CoordinatorEngine.run_query`` and the ``QueryRouter`` call. Per request it
reads the settings it is given (the live configuration, so a change of ``planner``,
``default_plan`` or ``planner_options`` applies to the next query), looks the plan up in the
cache, otherwise asks the configured planner, checks the plan and, when the planner fails or
its plan is not runnable, falls back to the rules planner. Each fallback is recorded in the
``PlanResult`` (so in the report and ``sof plan``), in the UIF's trace
(``record_planning``) and in ``stats()``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sof_core._bounded import call_bounded
from sof_core.errors import ConfigError, SOFError
from sof_core.planning.cache import PlanCache, cache_key, skills_fingerprint, store_for
from sof_core.planning.planners import planner_options
from sof_core.planning.result import Fallback, PlanResult, as_plan_result

log = logging.getLogger("sof.planning")

#: The planner every other one falls back to.
FALLBACK_PLANNER = "rules"


class _Context:
    """What a planner sees: the live config, the engine's registry, the profile."""

    def __init__(self, engine: Any, config: Any, profile: str | None) -> None:
        self._engine = engine
        self.config = config
        self.profile = profile

    @property
    def registry(self) -> Any:
        return self._engine.registry

    def resolve_goal(self, goals: Iterable[str], *, available: Iterable[str] = (),
                     include_optional: bool = False,
                     prefer: Mapping[str, str] | None = None) -> list[str]:
        return list(self._engine.resolve_goal(goals, available=available,
                                              include_optional=include_optional,
                                              prefer=prefer))

    def validate_plan(self, plan: Sequence[str], available: Iterable[str] = ()) -> list[Any]:
        return list(self._engine.validate_plan(plan, available))


class Planning:
    """Chooses plans for one engine (``engine.planning``); safe to share between threads."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        config = engine.config
        self._store_config: tuple[bool, str | None] = (
            bool(getattr(config, "plan_cache_persist", False)),
            getattr(config, "plan_cache_path", None),
        )
        self.cache = PlanCache(config.plan_cache_size, config.plan_cache_ttl,
                               store_for(config))
        self._lock = threading.Lock()
        self._fingerprint: tuple[int, int, str] | None = None
        self._instances: dict[tuple[str, int], Any] = {}
        self.planned: dict[str, int] = {}
        self.fallbacks: dict[str, int] = {}
        self.last_fallback: str | None = None

    # --- the one call --------------------------------------------------------------------

    def plan(self, query: str, *, config: Any = None, profile: str | None = None,
             planner: str | None = None, use_cache: bool = True) -> PlanResult:
        """The plan for ``query``: cached, planned, or planned by the fallback planner.

        ``planner`` overrides the ``planner`` setting for this call. An unknown planner name
        is a ``ConfigError``; a planner that raises or returns an unusable plan falls back to
        the rules planner (recorded); the rules planner's own failure is raised.
        """
        started = time.perf_counter()
        config = config if config is not None else self._engine.config
        name = planner or config.planner
        self._configure_cache(config)
        caching = use_cache and bool(config.enable_plan_cache)
        key = ""
        if caching:
            key = cache_key(query, profile, name, _settings(config, name), self.fingerprint())
            cached = self.cache.get(key, self._unusable)
            if cached is not None:
                cached.duration = time.perf_counter() - started
                self._count(cached)
                return cached
        context = _Context(self._engine, config, profile)
        result = self._ask(name, query, context)
        if not result.stages:
            result.stages = self._stages(result.plan)
        result.duration = time.perf_counter() - started
        if caching and not result.fallbacks and result.cacheable:
            self.cache.put(key, result)
        self._count(result)
        return result

    def _ask(self, name: str, query: str, context: _Context) -> PlanResult:
        entry = self._entry(name)  # ConfigError for an unknown name: nothing to fall back on
        in_place = _in_place(entry.obj)
        try:
            result = as_plan_result(
                _call(name, lambda: self._instance(name, entry), query, context,
                      in_place=in_place,
                      grace=OWN_DEADLINE_GRACE if _own(entry.obj) and not in_place else 0.0),
                name)
        except KeyboardInterrupt:  # the user's: it stops the host
            raise
        except BaseException as exc:  # sys.exit() in a plugin's planner too
            if name == FALLBACK_PLANNER:
                raise
            if isinstance(exc, _NotConstructed):  # a missing API key, say: tried again later
                cause = exc.__cause__
                why = (f"planner could not be constructed: {type(cause).__name__}: {cause}")
            else:
                why = str(exc) if isinstance(exc, SOFError) else f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, PlannerTimeoutError):
                    why = f"planner raised {why}"
            return self._fall_back(name, query, context, why, [])
        for fallback in result.fallbacks:  # the LLM planner records its own, unnamed
            if fallback.plugin is None and fallback.planner == name:
                fallback.plugin = entry.plugin
        # A planner may have fallen back inside (the LLM planner after its repair round).
        if name != FALLBACK_PLANNER and name != "static":
            problems = context.validate_plan(result.plan)
            if problems:
                listed = "; ".join(str(p) for p in problems[:5])
                return self._fall_back(name, query, context,
                                       f"its plan {result.plan} is invalid: {listed}",
                                       result.fallbacks)
        return result

    def _fall_back(self, name: str, query: str, context: _Context, reason: str,
                   earlier: list[Fallback]) -> PlanResult:
        entry = self._engine.registry.component("planners", name)
        plugin = entry.plugin if entry is not None else None
        log.warning("planner %r (plugin %r) failed (%s); using the %s planner", name, plugin,
                    reason, FALLBACK_PLANNER)
        result = as_plan_result(self.planner(FALLBACK_PLANNER).plan(query, context),
                                FALLBACK_PLANNER)
        result.fallbacks = [*earlier, Fallback(name, FALLBACK_PLANNER, reason, plugin),
                            *result.fallbacks]
        return result

    def _unusable(self, stored: PlanResult) -> str | None:
        """Why a plan from the persistent store cannot be served now (it names a skill that
        is not registered), or None."""
        registry = self._engine.registry
        names = [*stored.plan, *(n for stage in stored.stages for n in stage)]
        unknown = sorted({n for n in names if registry.skill(n) is None})
        if unknown:
            return f"it names skill(s) not registered now: {unknown[:5]}"
        return None

    def _stages(self, plan: Sequence[str]) -> list[list[str]]:
        """The parallel stages of a plan its planner did not stage (registered skills only)."""
        from sof_core.planning.optimise import order_and_stage

        registry = self._engine.registry
        specs = {}
        for name in plan:
            entry = registry.skill(name)
            if entry is not None:
                specs[name] = entry.spec
        return order_and_stage(plan, specs)[1]

    # --- planners ------------------------------------------------------------------------

    def planner(self, name: str) -> Any:
        """The registered planner called ``name`` (a class is instantiated once)."""
        try:
            return self._instance(name, self._entry(name))
        except _NotConstructed as exc:
            cause = exc.__cause__
            assert cause is not None  # (always raised from the constructor's exception)
            raise cause from None

    def asks_in_place(self, name: str) -> bool:
        """Whether planner ``name`` is asked in the calling thread: SOF's own planners that
        do no I/O. The others (plugins', the LLM planner) are asked in a bounded thread of
        their own, and an async caller does not ask them on its loop (``arun_batch``)."""
        entry = self._engine.registry.component("planners", name)
        return entry is not None and _in_place(entry.obj)

    def _entry(self, name: str) -> Any:
        entry = self._engine.registry.component("planners", name)
        if entry is None:
            known = sorted(self._engine.registry.components("planners"))
            raise ConfigError(
                f"unknown planner {name!r} (setting 'planner'); installed planners are "
                f"{known}", key="planner",
            )
        return entry

    def _instance(self, name: str, entry: Any) -> Any:
        """``entry``'s planner; a class is instantiated once, outside the lock (a constructor
        that hangs holds only the query that called it; one that raises is tried again at
        the next query)."""
        if not isinstance(entry.obj, type):
            return entry.obj
        key = (name, id(entry.obj))
        with self._lock:
            instance = self._instances.get(key)
        if instance is None:
            try:
                made = entry.obj()
            except KeyboardInterrupt:  # the user's: it stops the host
                raise
            except BaseException as exc:
                raise _NotConstructed() from exc
            with self._lock:
                instance = self._instances.setdefault(key, made)
        return instance

    # --- cache and stats -----------------------------------------------------------------

    def fingerprint(self) -> str:
        """The registered skills' fingerprint, recomputed only when the registry changes."""
        registry = self._engine.registry
        memo = self._fingerprint
        version = registry.version
        if memo is not None and memo[0] == id(registry) and memo[1] == version:
            return memo[2]
        entries = list(registry.skills())
        value = skills_fingerprint((entry.spec for entry in entries),
                                   self._origins(entries))
        self._fingerprint = (id(registry), version, value)
        return value

    def _origins(self, entries: Sequence[Any]) -> dict[str, list[Any]]:
        """Each skill's plugin, with its distribution name and version from the plugin
        records (an upgrade that changes only a skill's code changes the version)."""
        try:
            records = getattr(getattr(self._engine, "plugins", None), "records", None) or {}
        except Exception:  # an engine without plugin records: the skills alone
            records = {}
        out: dict[str, list[Any]] = {}
        for entry in entries:
            plugin = getattr(entry, "plugin", None)
            record = records.get(plugin) if plugin is not None else None
            out[entry.spec.name] = [
                plugin, getattr(record, "distribution", None) or getattr(
                    entry, "distribution", None), getattr(record, "version", None)]
        return out

    def _configure_cache(self, config: Any) -> None:
        self.cache.configure(config.plan_cache_size, config.plan_cache_ttl)
        wanted = (bool(getattr(config, "plan_cache_persist", False)),
                  getattr(config, "plan_cache_path", None))
        if wanted != self._store_config:
            with self._lock:
                if wanted != self._store_config:
                    old, self.cache.store = self.cache.store, store_for(config)
                    self._store_config = wanted
                    if old is not None:
                        old.close()

    def _count(self, result: PlanResult) -> None:
        with self._lock:
            self.planned[result.planner] = self.planned.get(result.planner, 0) + 1
            for fallback in result.fallbacks:
                label = f"{fallback.planner}->{fallback.to}"
                self.fallbacks[label] = self.fallbacks.get(label, 0) + 1
                self.last_fallback = fallback.reason

    def stats(self) -> dict[str, Any]:
        """``plans`` (per planner that made them), ``fallbacks`` (per ``from->to``),
        ``last_fallback`` (its reason) and ``cache`` (hits, misses, evictions, size)."""
        with self._lock:
            return {"plans": dict(self.planned), "fallbacks": dict(self.fallbacks),
                    "fallbacks_total": sum(self.fallbacks.values()),
                    "last_fallback": self.last_fallback, "cache": self.cache.stats()}

    def close(self) -> None:
        if self.cache.store is not None:
            self.cache.store.close()


#: Seconds a planner from a plugin may take before the rules planner plans instead
#: (``planner_options.<name>.timeout`` changes it). SOF's own planners that do no I/O are
#: asked in place; the LLM planner (``calls_out``) bounds its own calls with that timeout,
#: and is given this much more before its thread is given up on (a backend from a plugin
#: that ignores the deadline cannot hold the query).
PLUGIN_PLANNER_TIMEOUT = 30.0
OWN_DEADLINE_GRACE = 1.0


class PlannerTimeoutError(SOFError):
    """A planner from a plugin did not answer in time (the rules planner then plans)."""


class _NotConstructed(Exception):
    """A planner class's constructor raised (the cause)."""


def _own(planner: Any) -> bool:
    """A planner (class or instance) of SOF's own."""
    cls = planner if isinstance(planner, type) else type(planner)
    return str(cls.__module__).startswith("sof_core.planning.")


def _in_place(planner: Any) -> bool:
    """Asked in the calling thread: SOF's own, unless it calls out (the LLM planner)."""
    return _own(planner) and not getattr(planner, "calls_out", False)


def _call(name: str, planner: Callable[[], Any], query: str, context: _Context,
          in_place: bool, grace: float = 0.0) -> Any:
    """``planner().plan(query, context)``; unless ``in_place``, the planner is made (the
    first time) and asked in a daemon thread, given up on at its timeout (plus ``grace``),
    so a hung planner (or planner constructor) never hangs the query or the process."""
    if in_place:
        return planner().plan(query, context)
    timeout = planner_options(context.config, name).get("timeout", PLUGIN_PLANNER_TIMEOUT)
    limit = timeout + grace
    outcome = call_bounded(lambda: planner().plan(query, context), limit,
                           f"sof-planner-{name}", main_thread_retry=True)
    if outcome is None:
        raise PlannerTimeoutError(
            f"planner {name!r} did not answer within {limit:g}s "
            f"(planner_options.{name}.timeout)")
    ok, value = outcome
    if not ok:
        raise value
    return value


def _settings(config: Any, name: str) -> str:
    """The settings a plan of planner ``name`` depends on, for the cache key."""
    import os

    material: dict[str, Any] = {
        "default_plan": list(config.default_plan),
        "options": planner_options(config, name),
        "require_vetting": bool(getattr(config, "require_vetting", True)),
        "tool_policy": getattr(config, "tool_policy", None),
    }
    if name == "llm":
        material["llm"] = [os.environ.get(v, "") for v in ("SOF_LLM_BASE_URL", "SOF_LLM_MODEL")]
        material["response"] = getattr(config, "plugin_settings", {}).get("response", {})
    return json.dumps(material, sort_keys=True, default=str)


def record_planning(uif: Any, result: PlanResult) -> None:
    """Write how the plan was made into the UIF's trace, and each fallback as a warning."""
    where = "cache hit" if result.cache_hit else "planned"
    uif.add_log_entry(f"planner {result.planner} ({where}): {result.plan}")
    for fallback in result.fallbacks:
        origin = f" (planner of plugin {fallback.plugin!r})" if fallback.plugin else ""
        uif.add_warning(f"planner {fallback.planner} fell back to {fallback.to}: "
                        f"{fallback.reason}{origin}")
    for change in result.changes:
        uif.add_log_entry(f"plan optimised: {change.action} {change.skill} ({change.why})")
