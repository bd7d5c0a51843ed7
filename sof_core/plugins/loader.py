"""Finding, loading and isolating plugins: what pluggy does not do for us.

Entry points of group ``sof.plugins`` are loaded one at a time, sorted by name, each in its
own try: allow/deny lists and the declared ``sof-core`` requirement are checked from metadata
before importing; then import, register, check every ``sof_*`` name against the specs, and
collect what each hook implementation contributes, one implementation at a time. Any failure
(whatever it raises, ``sys.exit()`` included) unregisters that plugin, is recorded on its
``PluginRecord``, and loading goes on. A distribution whose metadata cannot be read is skipped
with a warning naming it.

Installed plugins are loaded once per process by the shared manager
(``get_plugin_manager()``). Each default ``CoordinatorEngine`` gets an *overlay* of it
(``PluginManager.overlay()``): what is registered in code on the overlay belongs to that
engine alone, and it reads through to the shared plugins.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import inspect
import json
import logging
import re
import threading
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from sof_core._bounded import call_bounded, needs_main_thread
from sof_core._installed import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from sof_core._repr import safe_repr
from sof_core._version import API_VERSION, __version__
from sof_core.config import SOFConfig, as_config, load_host_config
from sof_core.errors import (
    PluginCompatibilityError,
    PluginConflictError,
    PluginError,
    PluginHookError,
    PluginLoadError,
    SOFError,
)
from sof_core.plugins import hookspecs
from sof_core.plugins.importer import DeadlineImporter, ImportHung, importing_for
from sof_core.plugins.markers import PROJECT_NAME, hookimpl, is_inline_observer
from sof_core.plugins.registry import (
    COMPONENT_HOOKS,
    SKILL_KINDS,
    Made,
    Registry,
    construct_skills,
    is_skill_like,
    item_label,
    provider_hint,
)

#: SOF's own executors and planners, registered through the same hooks as third parties'.
#: Named, not imported, here: they sit in higher layers that import this one (as pytest
#: lists its ``default_plugins``).
BUILTIN_PLUGINS: dict[str, str] = {
    "sof-executors": "sof_core.execution.builtin",
    "sof-planners": "sof_core.planning.builtin",
}
log = logging.getLogger("sof.plugins")

#: The plugin name of skills registered in code without one (``register_skills``).
CODE_PLUGIN = "code"

PluginStatus = Literal["discovered", "loaded", "failed", "disabled"]
PluginSource = Literal["entry-point", "code", "builtin"]
#: The observer hooks every run calls (``PluginManager.run_observers``).
RUN_HOOKS = ("sof_before_plan", "sof_after_plan", "sof_before_skill", "sof_after_skill",
             "sof_alert")
_SPEC_NAMES = frozenset(n for n in dir(hookspecs) if n.startswith("sof_"))


@dataclass
class PluginRecord:
    """One plugin as ``sof plugins`` shows it, whether or not it could be loaded.

    ``offered`` lists the skill and tool names its hooks returned, also when registration then
    failed, so validation can blame a missing skill on it (``None`` while its hooks have not
    run, e.g. when its import failed). ``conflicts`` says, one sentence each, which of its
    skill names another plugin also provides and who provides them now; ``warnings`` holds
    problems that did not stop it (a slow import).
    """

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    source: PluginSource = "entry-point"
    status: PluginStatus = "discovered"
    error: str | None = None
    error_type: str | None = None
    import_time_ms: float | None = None
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    requires: str | None = None
    offered: list[str] | None = None
    conflicts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "error_type": self.error_type,
            "import_time_ms": self.import_time_ms,
            "hooks": list(self.hooks),
            "provides": {k: list(v) for k, v in self.provides.items()},
            "requires": self.requires,
            "offered": None if self.offered is None else list(self.offered),
            "conflicts": list(self.conflicts),
            "warnings": list(self.warnings),
        }


def entry_point_name(record_name: str) -> str:
    """The entry-point name a record's name stands for: one that several distributions
    declare is recorded once per distribution, as ``name (distribution)``."""
    return record_name.partition(" (")[0]


def shared_records(records: Iterable[PluginRecord], name: str) -> list[PluginRecord]:
    """The records of entry-point name ``name`` when several distributions declare it
    (each recorded as ``name (distribution)``); empty otherwise."""
    return [r for r in records if r.name != name and entry_point_name(r.name) == name]


def records_named(name: str, records: Iterable[PluginRecord]) -> list[PluginRecord]:
    """The records ``name`` names, as the CLI reads a plugin name: the plugin of that
    entry-point name, every plugin the distribution of that name declares (sof-serve:
    ``monitor`` and ``serve``), every record of an entry-point name several distributions
    declare (each ``name (distribution)``); exact spellings first, then any case and
    ``-``/``_`` spelling. Empty when none."""
    records = list(records)
    for record in records:
        if name == record.name:
            return [record]
    declared = [r for r in records if r.distribution and name == r.distribution]
    if declared:
        return declared
    shared = shared_records(records, name)
    if shared:
        return shared
    folded = name.lower().replace("_", "-")
    for record in records:
        if folded == record.name.lower():
            return [record]
    declared = [r for r in records if folded == (r.distribution or "").lower().replace("_", "-")]
    if declared:
        return declared
    return [r for r in records if r.name != name
            and entry_point_name(r.name).lower().replace("_", "-") == folded]


class _Records(dict[str, "PluginRecord"]):
    """Plugin records by name. ``records["name"]`` also finds the first record of an
    entry-point name several distributions declare (each one's error names them all),
    where a plain dict would raise ``KeyError`` for a plugin that is installed. ``in`` and
    ``get`` stay exact."""

    def __missing__(self, name: str) -> PluginRecord:
        shared = shared_records(self.values(), name)
        if not shared:
            raise KeyError(name)
        return min(shared, key=lambda record: record.name)


class PluginManager:
    """SOF's plugin manager: a pluggy manager plus discovery, isolation and a registry.

    With ``parent`` it is an overlay: it loads nothing itself, holds only what is registered
    on it in code, and reads through to the parent's plugins, records, registry and
    observers (see ``overlay()``).
    """

    def __init__(
        self,
        config: SOFConfig | Mapping[str, Any] | None = None,
        *,
        entry_point_group: str = ENTRY_POINT_GROUP,
        builtins: bool = True,
        parent: PluginManager | None = None,
    ) -> None:
        if config is None:
            config = parent.config if parent is not None else load_host_config()
        self.config: SOFConfig = as_config(config, "PluginManager(config=...)")
        self.parent = parent
        self.entry_point_group = entry_point_group
        self.hook_manager = pluggy.PluginManager(PROJECT_NAME)
        self.hook_manager.add_hookspecs(hookspecs)
        self.registry: Registry = (
            Registry(parent.registry)
            if parent is not None
            else Registry(skill_providers=self.config.skill_providers)
        )
        self._records: dict[str, PluginRecord] = _Records()
        #: Plugins registered by ``register_skills``: in the registry and the records, not in
        #: pluggy (they implement no hook).
        self._direct: set[str] = set()
        #: Installed distributions skipped because their metadata could not be read.
        self.discovery_warnings: list[str] = []
        self.observer_errors = 0
        #: While ``load()`` imports installed plugins: their registration hooks run in its
        #: thread, within ``plugin_import_timeout``, as their imports do.
        self._importer: DeadlineImporter | None = None
        #: Observer calls given up on at ``observer_timeout`` (``execution/observers.py``).
        self.observer_timeouts = 0
        #: ``sof_alert`` observers with a load-time call still hung (``_alert``).
        self._hung_alerts: set[int] = set()
        self._builtins = builtins and parent is None
        self._loaded = False
        self._configured = False
        self._load_lock = threading.RLock()
        #: The settings the plugins' ``sof_configure`` last got (``reconfigure``).
        self._configured_with: SOFConfig = self.config
        self._observer_cache: tuple[int, dict[str, list[Any]]] = (-1, {})
        self._run_observers: tuple[int, dict[str, list[Any]]] = (-1, {})

    @property
    def records(self) -> MutableMapping[str, PluginRecord]:
        """Every plugin by name; an overlay's own first, then its parent's."""
        if self.parent is None:
            return self._records
        return ChainMap(self._records, self.parent.records)

    def overlay(self, config: SOFConfig | None = None) -> PluginManager:
        """A loaded manager layered over this one, for one engine.

        Plugins and skills registered on the overlay are its own: this manager and its other
        overlays never see them. The overlay sees everything registered here.
        """
        return PluginManager(config if config is not None else self.config, parent=self).load()

    # --- discovery (metadata only, never imports a plugin) -------------------------------

    def discover(self) -> list[PluginRecord]:
        """Records of every installed entry-point plugin, from metadata alone.

        Allow/deny lists are applied here (status ``disabled``). When two distributions
        declare one entry-point name and both are allowed, *neither* is loaded: both records
        fail with a ``PluginConflictError`` saying how to keep one (``plugins_disable`` with
        the other's distribution name). Picking one silently could run the wrong code under
        the settings (``plugin_settings``) meant for the other.
        """
        entry_points, problems = read_entry_points(self.entry_point_group)
        for problem in problems:
            if problem not in self.discovery_warnings:
                self.discovery_warnings.append(problem)
                log.warning("%s", problem)
        records: list[PluginRecord] = []
        for ep in entry_points:
            dist = getattr(ep, "dist", None)
            record = PluginRecord(
                name=ep.name,
                distribution=_metadata_name(dist),
                version=_dist_version(dist),
                module=_entry_point_target(ep),
                requires=_core_requirement(dist),
            )
            if not self._allowed(record):
                record.status = "disabled"
            elif self._builtins and record.name in BUILTIN_PLUGINS:
                _fail(record, _builtin_name_error(record))
            records.append(record)
        by_name: dict[str, list[PluginRecord]] = {}
        for record in records:
            by_name.setdefault(record.name, []).append(record)
        for name, same in by_name.items():
            if self._builtins and name in BUILTIN_PLUGINS:
                for record in same:  # the built-in keeps its name (and record)
                    record.name = f"{name} ({record.distribution})"
                continue
            if len(same) < 2:
                continue
            enabled = [r for r in same if r.status == "discovered"]
            if len(enabled) > 1:
                dists = [r.distribution or "?" for r in enabled]
                for record in enabled:
                    others = [d for d in dists if d != record.distribution]
                    _fail(
                        record,
                        PluginConflictError(
                            name,
                            f"entry-point name is declared by distributions {_quoted(dists)}, so "
                            f"none of them is loaded; keep one by disabling the other(s), e.g. "
                            f"plugins_disable = {_json_list(others)} "
                            f"(SOF_PLUGINS_DISABLE={','.join(others)}), or uninstall one",
                        ),
                    )
            for record in same:
                if len(enabled) != 1 or record is not enabled[0]:
                    record.name = f"{name} ({record.distribution})"
        self._warn_unmatched_lists(records)
        return records

    def _warn_unmatched_lists(self, records: list[PluginRecord]) -> None:
        """A name in ``plugins_disable`` / ``plugins_only`` that no installed plugin has (a
        typo would otherwise leave the plugin it meant loaded, or every plugin off): one
        warning each, with the closest name."""
        # Matched as ``_allowed`` matches them: an entry-point name exactly (``Memory`` is
        # not ``memory``), before a shared one became ``name (distribution)``; a
        # distribution name as pip compares it (``SOF_Memory`` is ``sof-memory``).
        names = {n for r in records for n in (entry_point_name(r.name), r.distribution) if n}
        distributions = {_normalized(r.distribution) for r in records if r.distribution}
        for setting, variable, listed in (
            ("plugins_disable", "SOF_PLUGINS_DISABLE", self.config.plugins_disable),
            ("plugins_only", "SOF_PLUGINS_ONLY", self.config.plugins_only or ()),
        ):
            for name in listed:
                if name in names or _normalized(name) in distributions:
                    continue
                near = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
                problem = (f"{setting} ({variable}) names {name!r}, which no installed plugin "
                           f"or distribution is called"
                           + (f"; did you mean {near[0]!r}?" if near else
                              "; `sof plugins` lists them"))
                if problem not in self.discovery_warnings:
                    self.discovery_warnings.append(problem)
                    log.warning("%s", problem)

    # --- loading -------------------------------------------------------------------------

    def load(self) -> PluginManager:
        """Register built-ins and (unless autoload is off) every allowed entry-point plugin.

        Idempotent and thread-safe. In strict mode the first plugin problem raises. An
        overlay loads its parent and nothing else.
        """
        if importing_for() is self:  # a plugin loading plugins at import, as one thread would
            return self
        with self._load_lock:
            if self._loaded:
                return self
            if self.parent is not None:
                self.parent.load()
                self._loaded = self._configured = True
                return self
            self._loaded = True
            if self._builtins:
                for name, module_name in BUILTIN_PLUGINS.items():
                    module = importlib.import_module(module_name)
                    self.register(module, name=name, source="builtin")
            if self.config.plugins_autoload:
                with DeadlineImporter(self.config.plugin_import_timeout, self) as importer:
                    self._importer = importer
                    try:
                        for record in self.discover():
                            self._load_entry_point(record, importer)
                        self._call_configure()
                    finally:
                        self._importer = None
            else:
                self._call_configure()
            self._configured = True
            self._refresh_conflicts()
            self.raise_if_strict()
            return self

    def raise_if_strict(self) -> None:
        """In strict mode (``SOF_STRICT_PLUGINS=1``), turn any plugin problem into an error."""
        if not self.config.strict_plugins:
            return
        failed = [r for r in self.records.values() if r.status == "failed"]
        if failed:
            detail = "; ".join(f"{r.name}: {r.error}" for r in failed)
            raise PluginError(
                failed[0].name, f"strict mode: {len(failed)} plugin(s) failed: {detail}"
            )
        contested = self.registry.contested()
        if contested:  # both plugins loaded, but a skill name is unavailable: a problem too
            first = next(iter(contested.values()))[0]
            raise PluginError(first, "strict mode: " + contested_message(contested))

    def register(
        self,
        plugin: object,
        name: str | None = None,
        *,
        source: PluginSource = "code",
        record: PluginRecord | None = None,
        replace: bool = False,
        raise_errors: bool = False,
    ) -> PluginRecord:
        """Register a plugin object (module, class or instance) in code, with full checks.

        Failures are recorded and returned, not raised (unless ``raise_errors`` or strict mode
        is on), so a host that registers its own plugins gets the same isolation as for
        installed ones. A failure never changes what was registered before: a name already in
        use is refused with ``PluginConflictError`` (unless ``replace``, which swaps the old
        plugin for the new one only if the new one registers cleanly).
        """
        plugin_name = name or _plugin_label(plugin)
        record = record or PluginRecord(name=plugin_name, source=source)
        record.module = record.module or _module_name(plugin)
        with self._load_lock:
            clash = self._name_clash(plugin, record.name, replace)
            if clash is not None:  # an installed plugin's record stays listed, as failed
                return self._registration_failed(record, clash,
                                                 store=source == "entry-point",
                                                 raise_it=raise_errors)
            previous = self.hook_manager.get_plugin(record.name) if replace else None
            replaced_direct = replace and record.name in self._direct
            previous_record = self._records.get(record.name)
            try:
                with self.registry.transaction():
                    if previous is not None or replaced_direct:
                        if previous is not None:
                            self.hook_manager.unregister(previous, name=record.name)
                        self.registry.remove_plugin(record.name)
                    try:
                        self._check_api_version(record.name, plugin)
                        self._register_hooks(record, plugin)
                        record.provides = self._collect(record, contest=source == "entry-point")
                        if self._configured:  # registered after start-up: configure it now
                            self._configure_plugin(record.name)
                    except BaseException:
                        self._unregister_quietly(record.name, plugin)
                        if previous is not None:
                            self.hook_manager.register(previous, name=record.name)
                        raise
            except KeyboardInterrupt:  # the user's: it stops the host
                raise
            except BaseException as exc:  # the plugin's fault, whatever its class
                error = _as_plugin_error(record.name, exc)
                if (previous is not None or replaced_direct) and previous_record is not None:
                    self._records[record.name] = previous_record  # the old one still serves
                    return self._registration_failed(record, error, store=False,
                                                     raise_it=raise_errors)
                return self._registration_failed(record, error, store=not raise_errors,
                                                 raise_it=raise_errors)
            record.status = "loaded"
            record.error = record.error_type = None
            self._records[record.name] = record
            self._direct.discard(record.name)
            self._refresh_conflicts()
            return record

    def register_skills(
        self, skills: Iterable[Any], name: str | None, *, replace: bool = False
    ) -> PluginRecord:
        """Register skills written in code as the plugin ``name``; raise if any is unusable.

        The checks, errors and record of ``register`` for a plugin whose
        ``sof_register_skills`` returns ``skills``, without making a pluggy plugin (skills
        implement no hook): they go straight into the registry, so a registration costs a
        few microseconds however many are registered already. With ``replace``, what is
        registered under ``name`` is swapped for ``skills`` only once they all pass. A
        failure raises its specific error (``PluginConflictError``, ``SkillDefinitionError``,
        ``PluginHookError``) and changes nothing. ``name=None``: ``code``, or ``code-2``,
        ``code-3``... when that is taken (chosen under the lock: concurrent calls never
        pick the same one).
        """
        items = skills if type(skills) is list else list(skills)
        with self._load_lock:
            if name is None:
                name = self.unused_name(CODE_PLUGIN)
            if replace and self.hook_manager.has_plugin(name):
                # A hook-implementing plugin holds the name: swap it out the general way.
                return self.register(
                    _CodeSkills(items), name=name, replace=True, raise_errors=True
                )
            clash = self._name_clash(None, name, replace)
            if clash is not None:
                record = PluginRecord(name=name, source="code")
                return self._registration_failed(record, clash, store=False, raise_it=True)
            try:
                added, shared = self.registry.add_code_skills(name, items, replace=replace)
            except Exception as exc:
                record = PluginRecord(name=name, source="code")
                error = _as_plugin_error(name, exc)
                return self._registration_failed(record, error, store=False, raise_it=True)
            record = PluginRecord(
                name=name, source="code", status="loaded", hooks=["sof_register_skills"],
                provides={"skills": list(added)}, offered=added,
            )
            previous = self._records.get(name)
            self._records[name] = record
            self._direct.add(name)
            if shared or (previous is not None and previous.conflicts):
                self._refresh_conflicts()
            return record

    def unused_name(self, base: str) -> str:
        """``base``, or ``base-2``, ``base-3``... the first no plugin holds now (a name is
        only sure to stay free to a caller holding the registration lock across the choice
        and the registration, as ``register_skills`` does)."""
        with self._load_lock:
            records = self.records
            name, number = base, 1
            while name in records or self.hook_manager.has_plugin(name):
                number += 1
                name = f"{base}-{number}"
            return name

    def unregister(self, name: str) -> None:
        """Remove a plugin registered on this manager and everything it contributed."""
        with self._load_lock:
            if name not in self._records and self.parent is not None and name in self.records:
                raise PluginError(
                    name,
                    "is loaded for the whole process, not on this engine; an engine can only "
                    "unregister what was registered on it",
                )
            plugin = self.hook_manager.get_plugin(name)
            if plugin is not None:
                self.hook_manager.unregister(plugin, name=name)
            self.registry.remove_plugin(name)
            self._records.pop(name, None)
            self._direct.discard(name)
            self._refresh_conflicts()

    def _name_clash(self, plugin: object, name: str, replace: bool) -> PluginError | None:
        """Why ``plugin`` cannot be registered as ``name`` without disturbing another one
        (``plugin`` None: skills registered in code, which pluggy never sees)."""
        if plugin is not None and self.hook_manager.is_registered(plugin):
            other = self.hook_manager.get_name(plugin)
            return PluginConflictError(
                name, f"this object is already registered as plugin {other!r}"
            )
        taken = name in self._direct or self.hook_manager.has_plugin(name)
        holder = self._records.get(name)
        if taken and holder is not None and holder.source == "builtin":
            return PluginConflictError(
                name,
                "is the name of one of SOF's built-in plugins, which cannot be replaced or "
                "unregistered; choose another name",
            )
        if taken and not replace:
            return PluginConflictError(
                name,
                "a plugin of this name is already registered; choose another name, or "
                "unregister it first",
            )
        if self.parent is not None and name not in self._records:
            inherited = self.parent.records.get(name)
            if inherited is not None and inherited.status == "loaded":
                return PluginConflictError(
                    name,
                    "a plugin of this name is already loaded for the whole process; choose "
                    "another name",
                )
        return None

    def _registration_failed(
        self, record: PluginRecord, error: SOFError, *, store: bool, raise_it: bool = False
    ) -> PluginRecord:
        _fail(record, error)
        if store:
            self._records[record.name] = record
            self.registry.note_failure(record.name, _reason(record.name, error), record.offered)
        self._alert("plugin_failed", str(error), {"plugin": record.name})
        if not raise_it:  # raised to the code that registered it: said once, there
            log.warning("plugin %s skipped: %s", record.name, error)
        strict = self._loaded and self.config.strict_plugins and record.source != "entry-point"
        if raise_it or strict:
            raise error
        return record

    def _load_entry_point(self, record: PluginRecord, importer: DeadlineImporter) -> None:
        self._records[record.name] = record
        if record.status == "failed":
            self.registry.note_failure(record.name, _reason(record.name, record.error or ""))
        if record.status != "discovered":
            return
        try:
            _check_requirement(record)
            started = time.perf_counter()
            try:
                module = importer.import_entry_point(record.module or "")
            except ImportHung as exc:
                raise PluginLoadError(record.name, str(exc)) from None
            except (KeyboardInterrupt, SOFError):  # the user's Ctrl-C; a SOF error keeps
                raise  # its type (a plugin checking its own requirements at import)
            except BaseException as exc:
                raise PluginLoadError(record.name, _import_failure(record, exc)) from exc
            finally:
                record.import_time_ms = round((time.perf_counter() - started) * 1000, 3)
            self._check_import_time(record)
        except SOFError as exc:
            _fail(record, exc)
            self.registry.note_failure(record.name, _reason(record.name, exc))
            self._alert("plugin_failed", str(exc), {"plugin": record.name})
            log.warning("plugin %s skipped: %s", record.name, exc)
            return
        self.register(module, record.name, source="entry-point", record=record)

    def _check_import_time(self, record: PluginRecord) -> None:
        budget = self.config.plugin_import_budget_ms
        took = record.import_time_ms or 0.0
        if took <= budget:
            return
        message = (
            f"importing {record.module!r} took {took:.0f} ms, over plugin_import_budget_ms = "
            f"{budget:g} (SOF_PLUGIN_IMPORT_BUDGET_MS); import heavy dependencies inside the "
            "functions that use them"
        )
        if self.config.strict_plugins:
            raise PluginLoadError(record.name, message + " (strict mode)")
        record.warnings.append(message)
        log.warning("plugin %s: %s", record.name, message)

    def _allowed(self, record: PluginRecord) -> bool:
        only = self.config.plugins_only
        if only is not None and not _listed(record, only):
            record.error = "not in plugins_only (SOF_PLUGINS_ONLY)"
            return False
        if _listed(record, self.config.plugins_disable):
            record.error = "listed in plugins_disable (SOF_PLUGINS_DISABLE)"
            return False
        return True

    def _check_api_version(self, name: str, plugin: object) -> None:
        declared = getattr(plugin, "SOF_API_VERSION", None)
        if declared is not None and declared != API_VERSION:
            raise PluginCompatibilityError(
                name,
                f"declares SOF_API_VERSION={declared!r} but this sof-core {__version__} "
                f"provides API version {API_VERSION}; install a matching plugin release",
            )

    def _register_hooks(self, record: PluginRecord, plugin: object) -> None:
        self._check_hook_names(record.name, plugin)
        try:
            self.hook_manager.register(plugin, name=record.name)
        except ValueError as exc:  # pluggy: "Plugin name already registered"
            raise PluginConflictError(record.name, str(exc)) from exc
        except pluggy.PluginValidationError as exc:
            raise PluginHookError(record.name, str(exc)) from exc
        callers = self.hook_manager.get_hookcallers(plugin) or []
        record.hooks = sorted(c.name for c in callers)
        from sof_core.plugins import tracing

        if tracing.enabled():  # SOF_TRACE_PLUGINS=1: wrap its hooks (nothing when off)
            tracing.trace_hooks(self.hook_manager, plugin, record.name)

    def _check_hook_names(self, name: str, plugin: object) -> None:
        """Reject misspelt or unmarked ``sof_*`` functions, which pluggy silently accepts."""
        for attr in _public_names(plugin):
            if not attr.startswith("sof_"):
                continue
            try:
                function = getattr(plugin, attr, None)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                raise PluginHookError(
                    name, f"reading {attr!r} raised {type(exc).__name__}: {exc}"
                ) from exc
            if not callable(function):
                continue
            marked = hasattr(function, f"{PROJECT_NAME}_impl")
            if attr not in _SPEC_NAMES:
                close = difflib.get_close_matches(attr, sorted(_SPEC_NAMES), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise PluginHookError(name, f"{attr!r} is not a SOF hook{hint}")
            if not marked:
                raise PluginHookError(
                    name,
                    f"{attr!r} is not marked as a hook implementation; "
                    "decorate it with @sof_core.hookimpl",
                )
            if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
                # pluggy would call it and drop the coroutine: it would never run.
                raise PluginHookError(
                    name,
                    f"{attr!r} is defined with 'async def', but SOF calls hooks synchronously "
                    "(the coroutine would never run); define it with 'def' (an observer "
                    "with async work can hand it to its own loop or thread)",
                )

    def _collect(self, record: PluginRecord, *, contest: bool) -> dict[str, list[str]]:
        """Call this plugin's registration hooks one by one and add the results atomically.

        Results are read item by item, so a generator that raises midway is reported as
        this plugin's failure, with the skill names it had offered until then.
        """
        name = record.name
        contributions: dict[str, list[Any]] = {}
        offered: list[str] = []
        record.offered = offered
        impls = [(kind, hook_name, impl)
                 for kind, hook_name in COMPONENT_HOOKS.items()
                 for impl in getattr(self.hook_manager.hook, hook_name).get_hookimpls()
                 if impl.plugin_name == name and not (impl.hookwrapper or impl.wrapper)]

        made: Made = {}

        def gather() -> None:
            for kind, hook_name, impl in impls:
                _gather(name, kind, hook_name, impl, contributions, offered)
            made.update(construct_skills(contributions))
            for _, error in made.values():  # a constructor that calls signal.signal, say:
                if error is not None and needs_main_thread(error):  # all of it again on
                    raise error  # the main thread (``DeadlineImporter.call``)

        def again() -> None:  # on this thread, from scratch
            contributions.clear()
            offered.clear()
            made.clear()
            gather()

        importer = self._importer
        if importer is not None and impls and contest:  # an installed plugin, being loaded
            try:
                importer.call(gather, record.module or name,
                              f"its registration hooks ({_hook_names(impls)}) and its "
                              "skills' constructors", again)
            except ImportHung as exc:
                record.offered = list(offered)  # the hung call may still add to its own
                raise PluginLoadError(name, str(exc)) from None
        else:
            gather()
        self.registry.add_contributions(
            name, contributions, distribution=record.distribution, contest=contest, made=made
        )
        return {kind: [item_label(i) for i in items] for kind, items in contributions.items()}

    def _unregister_quietly(self, name: str, plugin: object) -> None:
        """Undo a partial registration (pluggy leaves rejected plugins half-registered).

        Only ``plugin`` itself is removed: another plugin holding the name is never touched.
        """
        try:
            if self.hook_manager.is_registered(plugin):
                self.hook_manager.unregister(plugin)
        except Exception:  # pragma: no cover - best effort clean-up
            log.debug("could not unregister %s", name, exc_info=True)
        try:
            if self.hook_manager.get_plugin(name) is plugin:
                self.hook_manager.unregister(name=name)
        except Exception:  # pragma: no cover
            log.debug("could not unregister %s by name", name, exc_info=True)
        self.registry.remove_plugin(name)

    def _configure_plugin(self, name: str) -> None:
        """Call one plugin's ``sof_configure``; raise ``PluginHookError`` if it fails."""
        for impl in self.hook_manager.hook.sof_configure.get_hookimpls():
            if impl.plugin_name == name:
                self._configure_impl(impl)

    def _configure_call(self, impl: Any) -> Callable[[], object]:
        """``impl`` (a ``sof_configure``) bound to the settings the plugins get now."""
        available = {"config": self._configured_with, "registry": self.registry}
        return functools.partial(impl.function, *[available[arg] for arg in impl.argnames])

    def _configure_impl(self, impl: Any) -> None:
        call = self._configure_call(impl)
        importer = self._importer
        record = self._records.get(impl.plugin_name)
        try:
            if importer is not None and record is not None and record.source == "entry-point":
                # While loading installed plugins: in the import thread, within its deadline.
                importer.call(call, record.module or record.name, "its sof_configure()")
            else:
                call()
        except ImportHung as exc:
            raise PluginHookError(impl.plugin_name, str(exc)) from None
        except KeyboardInterrupt:  # the user's: it stops the host
            raise
        except BaseException as exc:
            raise PluginHookError(impl.plugin_name, f"sof_configure() raised {exc!r}") from exc

    def reconfigure(self, config: SOFConfig) -> None:
        """Hand the loaded plugins' ``sof_configure`` the host's changed settings (this
        manager's plugins and its parents'): a plugin's settings (``plugin_settings``, say)
        changed in a running host apply to the next query, as SOF's own do. Nothing is
        called when the settings are those the plugins already have.

        Unlike at load, a plugin whose ``sof_configure`` now raises is not unloaded (runs in
        flight use it): it is logged, naming the plugin, and keeps what it applied. Each call
        is bounded by ``plugin_import_timeout``, the bound it had at load; a hung one is
        left running (daemon) and logged."""
        managers: list[PluginManager] = []
        manager: PluginManager | None = self
        while manager is not None:
            managers.append(manager)
            manager = manager.parent
        for manager in reversed(managers):  # the shared plugins first, as at load
            with manager._load_lock:
                if not manager._loaded or manager._configured_with == config:
                    continue
                manager._configured_with = config
                manager._reconfigure_loaded()

    def _reconfigure_loaded(self) -> None:
        limit = self._configured_with.plugin_import_timeout
        for impl in self.hook_manager.hook.sof_configure.get_hookimpls():
            record = self._records.get(impl.plugin_name)
            if record is None or record.status != "loaded":
                continue
            outcome = call_bounded(self._configure_call(impl), limit,
                                   f"sof-configure-{impl.plugin_name}")
            if outcome is None:
                log.warning("plugin %r: sof_configure() with the changed settings did not "
                            "return within %s s (plugin_import_timeout); it may keep some of "
                            "its earlier settings", impl.plugin_name, limit)
            elif not outcome[0]:
                if isinstance(outcome[1], KeyboardInterrupt):
                    raise outcome[1]
                log.warning("plugin %r: sof_configure() raised %s with the changed settings; "
                            "the plugin stays loaded with the settings it applied: fix the "
                            "setting", impl.plugin_name, safe_repr(outcome[1]))

    def _call_configure(self) -> None:
        """Configure every plugin once loading is done; one that fails is unloaded."""
        for impl in self.hook_manager.hook.sof_configure.get_hookimpls():
            try:
                self._configure_impl(impl)
            except PluginHookError as error:
                record = self._records.get(impl.plugin_name)
                if record is not None:
                    self._unregister_quietly(impl.plugin_name, impl.plugin)
                    _fail(record, error)
                    self.registry.note_failure(
                        record.name, _reason(record.name, error), record.offered
                    )
                log.warning("%s", error)

    def _refresh_conflicts(self) -> None:
        """Record on each plugin which of its skill names another plugin also provides."""
        notes: dict[str, list[str]] = {}
        for skill, (offering, chosen) in self.registry.clashes().items():
            for plugin in offering:
                others = [p for p in offering if p != plugin]
                also = f"skill {skill!r} is also provided by plugin(s) {_quoted(others)}"
                if chosen is None:
                    sentence = f"{also}; it is unavailable until {provider_hint(skill, offering)}"
                elif chosen == plugin:
                    sentence = f"{also}; this plugin provides it ({_chosen_by(self, chosen)})"
                else:
                    sentence = f"{also}, which provides it ({_chosen_by(self, chosen)})"
                notes.setdefault(plugin, []).append(sentence)
        for name, record in self._records.items():
            record.conflicts = notes.get(name, [])

    # --- observers -----------------------------------------------------------------------

    def observers(self, hook_name: str) -> list[Any]:
        """Implementations of an observer hook; cached per registry version (hot path).

        An overlay's list starts with its parent's observers.
        """
        version, cache = self._observer_cache
        current = self.registry.version
        if version != current:
            cache = {}
            self._observer_cache = (current, cache)
        impls = cache.get(hook_name)
        if impls is None:
            impls = list(getattr(self.hook_manager.hook, hook_name).get_hookimpls())
            if self.parent is not None:
                impls = self.parent.observers(hook_name) + impls
            cache[hook_name] = impls
        return impls

    def run_observers(self) -> dict[str, list[Any]]:
        """``observers`` of every hook a run calls (``RUN_HOOKS``), looked up together:
        a run asks once instead of once per hook. The dict is shared: do not change it."""
        version, found = self._run_observers
        current = self.registry.version
        if version != current:
            found = {name: self.observers(name) for name in RUN_HOOKS}
            self._run_observers = (current, found)
        return found

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook; an exception in one observer is logged and counted only."""
        for impl in self.observers(hook_name):
            self.call_observer(impl, hook_name, kwargs)

    def call_observer(self, impl: Any, hook_name: str, kwargs: dict[str, Any]) -> None:
        """``notify`` for one of the hook's implementations (``observers(hook_name)``)."""
        try:
            impl.function(*[kwargs[arg] for arg in impl.argnames])
        except KeyboardInterrupt:  # the user's Ctrl-C stops the host, observed or not
            raise
        except BaseException:  # SystemExit, GeneratorExit...: an observer never ends a run
            self.observer_errors += 1
            log.exception("observer %s.%s raised; ignored", impl.plugin_name, hook_name)

    def _alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        """``sof_alert`` from loading (``plugin_failed``), before any engine and its
        observer pool may exist: each handed-off call gets a daemon thread of its own and at
        most ``observer_timeout``, so an observer stuck on a dead server cannot hold the
        host's start-up (a failed load is rare: a thread per call costs nothing that
        matters). One still hung is skipped, as in ``execution/observers.py``."""
        impls = self.observers("sof_alert")
        if not impls:
            return
        kwargs = {"kind": kind, "message": message, "details": details}
        timeout = self.config.observer_timeout
        for impl in impls:
            if timeout is None or is_inline_observer(impl.function):
                self.call_observer(impl, "sof_alert", kwargs)
            elif id(impl) not in self._hung_alerts:
                self._bounded_alert(impl, kwargs, timeout)

    def _bounded_alert(self, impl: Any, kwargs: dict[str, Any], timeout: float) -> None:
        key = id(impl)
        outcome = call_bounded(
            lambda: self.call_observer(impl, "sof_alert", kwargs), timeout,
            "sof-observer-alert", given_up=lambda: self._hung_alerts.add(key),
            late=lambda: self._hung_alerts.discard(key))
        if outcome is None:
            self.observer_timeouts += 1
            log.warning("observer %s.sof_alert did not return within %ss (observer_timeout); "
                        "SOF stopped waiting for it, and skips it until that call returns",
                        impl.plugin_name, timeout)
        elif not outcome[0]:  # KeyboardInterrupt: call_observer lets it by
            self.observer_errors += 1
            log.error("observer %s.sof_alert raised %r; ignored", impl.plugin_name, outcome[1])

    def failed(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.status == "failed"]


class _CodeSkills:
    """Skills registered in code, as a pluggy plugin (only when one must replace a plugin
    that implements hooks; ``register_skills`` needs none otherwise)."""

    def __init__(self, skills: list[Any]) -> None:
        self._skills = skills

    @hookimpl
    def sof_register_skills(self) -> list[Any]:
        return list(self._skills)


# --- helpers -------------------------------------------------------------------------------


def _gather(name: str, kind: str, hook_name: str, impl: Any,
            contributions: dict[str, list[Any]], offered: list[str]) -> None:
    """Call one registration hook implementation and read its items into
    ``contributions`` (and their labels into ``offered``, for skills)."""
    try:
        result = impl.function()
    except (KeyboardInterrupt, SOFError):  # the user's Ctrl-C; a SOF error keeps its type
        raise
    except BaseException as exc:
        raise PluginHookError(
            name, f"{hook_name}() raised {type(exc).__name__}: {exc}"
        ) from exc
    if result is None:
        return
    if not _is_item_list(result):
        raise PluginHookError(
            name, f"{hook_name}() must return a list, got {type(result).__name__}"
        )
    items = contributions.setdefault(kind, [])
    try:
        for item in result:
            items.append(item)
            if kind in SKILL_KINDS and is_skill_like(item):  # junk is named by its check,
                offered.append(item_label(item))  # never listed as a skill
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise PluginHookError(
            name,
            f"{hook_name}() result raised {type(exc).__name__} while it was read "
            f"(after {len(items)} item(s)): {exc}",
        ) from exc


def _is_item_list(result: object) -> bool:
    """Whether a registration hook's result is a list of items: a list, a tuple, another
    sequence, or an iterator (a generator, read item by item). A string, bytes, a mapping
    (whose keys iterating it would give), a set (no order) or any other object is not."""
    if isinstance(result, (str, bytes, bytearray, Mapping, AbstractSet)):
        return False
    return isinstance(result, (Sequence, Iterator))


def _listed(record: PluginRecord, names: Iterable[str]) -> bool:
    """Whether ``names`` (``plugins_only`` / ``plugins_disable``) names ``record``: its
    entry-point name exactly, or its distribution name as pip compares names (PEP 503:
    ``SOF_Memory`` and ``sof.memory`` name ``sof-memory``)."""
    names = list(names)
    if record.name in names:
        return True
    if not record.distribution:
        return False
    dist = _normalized(record.distribution)
    return any(_normalized(name) == dist for name in names)


def _entry_point_target(ep: Any) -> str:
    """``module`` or ``module:attr`` of an entry point, as importlib parses its value: an
    entry point may carry extras (``pkg.mod [extra]``), which name no module. A value
    importlib cannot parse is kept as written, so its import fails naming it."""
    try:
        module, attr = ep.module, ep.attr
    except Exception:
        module = attr = None
    if not isinstance(module, str) or not module:
        return str(getattr(ep, "value", "") or "").strip()
    return f"{module}:{attr}" if isinstance(attr, str) and attr else module


def _builtin_name_error(record: PluginRecord) -> PluginConflictError:
    return PluginConflictError(
        record.name,
        f"entry-point name is the name of one of SOF's built-in plugins, which cannot be "
        f"replaced or unregistered; rename the entry point in distribution "
        f"{record.distribution or '?'!r} (its [project.entry-points.\"sof.plugins\"] table)",
    )


def _hook_names(impls: list[tuple[str, str, Any]]) -> str:
    return ", ".join(dict.fromkeys(f"{hook_name}()" for _, hook_name, _ in impls))


def _fail(record: PluginRecord, exc: BaseException) -> None:
    """Mark ``record`` failed with ``exc``; its ``error`` names the plugin (a SOF error the
    plugin raised itself, kept with its type, may name only a skill or a key)."""
    text = str(exc)
    if repr(record.name) not in text:
        text = f"plugin {record.name!r}: {text}"
    record.status = "failed"
    record.error = text
    record.error_type = type(exc).__name__


def _reason(plugin: str, error: object) -> str:
    """The error without its ``plugin 'x': `` prefix (the message around it names the plugin)."""
    text = str(error)
    prefix = f"plugin {plugin!r}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _as_plugin_error(name: str, exc: BaseException) -> SOFError:
    """Keep SOF's own error types; anything else a plugin raised becomes ``PluginHookError``."""
    if isinstance(exc, SOFError):
        return exc
    error = PluginHookError(name, f"registering it raised {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _import_failure(record: PluginRecord, exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return (
            f"importing {record.module!r} called sys.exit({exc.code!r}); a plugin module must "
            "not exit the process"
        )
    return f"importing {record.module!r} raised {type(exc).__name__}: {exc}"


def _chosen_by(manager: PluginManager, chosen: str) -> str:
    record = manager.records.get(chosen)
    if record is not None and record.source != "entry-point":
        return "registered in code, it takes precedence over installed plugins"
    return "chosen by skill_providers"


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _json_list(names: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def _plugin_label(plugin: object) -> str:
    name = _module_name(plugin)
    return name or safe_repr(plugin)


def _module_name(plugin: object) -> str | None:
    try:
        name = getattr(plugin, "__name__", None)
    except Exception:
        return None
    return name if isinstance(name, str) else None


def _public_names(plugin: object) -> Iterable[str]:
    if inspect.ismodule(plugin):
        return list(vars(plugin))
    return dir(plugin)


def read_entry_points(group: str) -> tuple[list[Any], list[str]]:
    """Entry points of ``group``, sorted, skipping distributions whose metadata is unreadable.

    ``importlib.metadata.entry_points()`` parses every installed distribution's
    ``entry_points.txt`` and raises on the first malformed one (a group line without ``=``,
    binary content), which would stop every host. Here each distribution is read on its own;
    a broken one is skipped and named. As in importlib, the first distribution of a name on
    ``sys.path`` wins. The standard library's ``importlib.metadata`` is used: pydantic imports
    it at the first model anyway, so it costs nothing more (the backport would).
    """
    import importlib.metadata

    found: list[Any] = []
    problems: list[str] = []
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        key = _dedupe_key(dist)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        try:
            found.extend(_group_entry_points(dist, group))
        except Exception as exc:
            label = _metadata_name(dist) or str(getattr(dist, "_path", "?"))
            problems.append(
                f"skipped installed distribution {label!r}: its entry_points.txt cannot be read "
                f"({type(exc).__name__}: {exc}); reinstall or remove it"
            )
    found.sort(key=lambda ep: (ep.name, _metadata_name(getattr(ep, "dist", None)) or ""))
    return found, problems


def _group_entry_points(dist: Any, group: str) -> list[Any]:
    """``dist.entry_points.select(group=group)``, without building the entry points of a
    distribution whose ``entry_points.txt`` cannot hold ``group``.

    Most installed distributions declare no SOF plugin, and parsing every one of their files
    into ``EntryPoint`` objects was half the cost of discovery. A file that does not contain
    the group's name at all cannot have that section, so it is skipped, but only when
    importlib would also read it without error (every line of a section has an ``=``, as
    its parser requires): any other file goes through importlib as before, so a malformed
    one is still reported, with the same error. Distribution types that override
    ``entry_points`` are always asked.
    """
    import importlib.metadata

    if type(dist).entry_points is importlib.metadata.Distribution.entry_points:
        text = dist.read_text("entry_points.txt")
        if not text or (group not in text and _parses(text)):
            return []
    return list(dist.entry_points.select(group=group))


def _parses(text: str) -> bool:
    """Whether importlib's ``entry_points.txt`` parser reads ``text`` without an error: it
    strips each line, skips blank lines and ``#`` comments, takes ``[name]`` as a section and
    splits every other line of a section at its first ``=`` (lines before the first
    section are ignored)."""
    in_section = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            in_section = True
        elif in_section and "=" not in line:
            return False
    return True


def _dedupe_key(dist: Any) -> str | None:
    try:
        key = dist._normalized_name  # importlib_metadata's own key, read from the path
    except Exception:
        key = None
    if isinstance(key, str) and key:
        return key
    name = _metadata_name(dist)
    return name.lower().replace("-", "_") if name else None


_NO_HEADERS: dict[str, list[str]] = {}


def _headers(dist: Any) -> dict[str, list[str]]:
    """The header fields of a distribution's ``METADATA`` (or ``PKG-INFO``), by lower-case
    name, read once per distribution object.

    ``dist.metadata`` parses the whole file with the ``email`` package on every access
    (name, version and requirements were three parses per plugin, plus one per sort); the
    headers end at the first blank line and are all discovery needs. Empty when the file is
    missing or unreadable: the callers then ask ``dist`` itself.
    """
    cached = getattr(dist, "_sof_headers", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    try:
        text = dist.read_text("METADATA")
        if text is None:
            text = dist.read_text("PKG-INFO")
    except Exception:
        text = None
    headers = _parse_headers(text) if isinstance(text, str) else _NO_HEADERS
    with contextlib.suppress(Exception):  # a distribution type that refuses attributes
        dist._sof_headers = headers
    return headers


def _parse_headers(text: str) -> dict[str, list[str]]:
    """RFC 822 headers as core metadata writes them: ``Name: value`` lines, continuation
    lines starting with white space, ended by a blank line or the first non-header line."""
    headers: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            if last is not None:
                last[-1] = f"{last[-1]}\n{line}"
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            break
        last = headers.setdefault(name.lower(), [])
        last.append(value.strip())
    return headers


def _metadata_name(dist: Any) -> str | None:
    if dist is None:
        return None
    names = _headers(dist).get("name")
    if names:
        return names[0] or None
    try:
        name = dist.metadata["Name"]
    except Exception:
        return None
    return str(name) if name else None


def _dist_version(dist: Any) -> str | None:
    if dist is None:
        return None
    versions = _headers(dist).get("version")
    if versions:
        return versions[0]
    try:
        return str(dist.version)
    except Exception:
        return None


def _normalized(project: str) -> str:
    """A project name as pip compares it (PEP 503): ``sof.core``, ``Sof__Core`` and
    ``sof-core`` are one project."""
    return re.sub(r"[-_.]+", "-", project).lower()


#: ``name rest``: a requirement line's project name, so only the ``sof-core`` line is parsed.
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(.*)", re.DOTALL)
#: One clause of a plain specifier: an operator and a release number (``==``/``!=`` may end
#: in ``.*``). Anything else (extras, markers, a URL, pre-releases...) is left to packaging.
_CLAUSE = re.compile(r"\s*(~=|==|!=|<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)*(?:\.\*)?)\s*")
_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def _core_requirement(dist: Any) -> str | None:
    """The ``sof-core`` specifier a distribution declares (``None`` when it declares none).

    Only the ``sof-core`` line is parsed; a plain one (``sof-core>=0.1,<0.2``) without
    ``packaging``, anything else (extras, markers, a URL) with it, as before.
    """
    if dist is None:
        return None
    try:
        requires = _headers(dist).get("requires-dist") or list(dist.requires or [])
    except Exception:
        return None
    for line in requires:
        match = _REQUIREMENT_NAME.match(line)
        if match is None or _normalized(match.group(1)) != "sof-core":
            continue
        rest = match.group(2)
        plain = _plain_specifier(rest)
        if plain is not None:
            return plain or None
        found, specifier = _parsed_core_requirement(line)
        if found:
            return specifier
        if found is None:  # unparsable: kept as written, so the check refuses it by name
            return rest.strip() or line
    return None


def _plain_specifier(text: str) -> str | None:
    """``text`` (what follows the project name) as ``packaging`` prints its specifier set,
    or ``None`` when it is not a plain list of clauses (``packaging`` then decides)."""
    if not text.strip():
        return ""
    clauses = []
    seen = set()
    for part in text.split(","):
        match = _CLAUSE.fullmatch(part)
        if match is None:
            return None
        operator, version = match.groups()
        if version.endswith(".*") and operator not in ("==", "!="):
            return None  # packaging refuses it: let it say so
        if operator == "~=" and "." not in version:
            return None
        numbers = [int(n) for n in version.removesuffix(".*").split(".")]
        while len(numbers) > 1 and numbers[-1] == 0:
            numbers.pop()
        key = (operator, tuple(numbers), version.endswith(".*"))
        if key in seen:
            return None  # packaging keeps one of two equal clauses: let it pick
        seen.add(key)
        clauses.append(operator + version)
    return ",".join(sorted(clauses))


def _parsed_core_requirement(line: str) -> tuple[bool | None, str | None]:
    """``(applies, specifier)`` of a ``sof-core`` line that is not plain, by ``packaging``;
    ``applies`` is ``None`` when ``packaging`` cannot parse the line."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(line)
    except InvalidRequirement:
        return None, None
    if req.name.replace("_", "-").lower() != "sof-core":
        return False, None
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return False, None
    return True, str(req.specifier) or None


def _satisfies(version: str, specifier: str) -> bool | None:
    """Whether release ``version`` satisfies a plain ``specifier`` under PEP 440, or
    ``None`` when either is more than plain releases (``packaging`` then decides).

    For a release (no pre, post, dev or local part) against releases, PEP 440 reduces to
    comparing release numbers padded with zeros; ``==``/``!=`` may end in ``.*``.
    """
    if not _RELEASE.fullmatch(version):
        return None
    have = [int(part) for part in version.split(".")]
    for clause in specifier.split(","):
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            return None
        operator, wanted = match.groups()
        prefix = operator in ("==", "!=") and wanted.endswith(".*")
        number = wanted[:-2] if prefix else wanted
        if not _RELEASE.fullmatch(number):
            return None
        want = [int(part) for part in number.split(".")]
        if prefix:
            padded = have + [0] * max(0, len(want) - len(have))
            same = padded[: len(want)] == want
            ok = same if operator == "==" else not same
        elif operator == "~=":
            if len(want) < 2:
                return None
            width = max(len(have), len(want))
            mine, theirs = _pad(have, width), _pad(want, width)
            ok = mine >= theirs and mine[: len(want) - 1] == want[:-1]
        else:
            width = max(len(have), len(want))
            mine, theirs = _pad(have, width), _pad(want, width)
            ok = {
                "==": mine == theirs,
                "!=": mine != theirs,
                "<=": mine <= theirs,
                ">=": mine >= theirs,
                "<": mine < theirs,
                ">": mine > theirs,
            }[operator]
        if not ok:
            return False
    return True


def _pad(numbers: list[int], width: int) -> list[int]:
    return numbers + [0] * (width - len(numbers))


def _check_requirement(record: PluginRecord) -> None:
    if not record.requires:
        return
    fits = _satisfies(__version__, record.requires)
    if fits is None:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            fits = SpecifierSet(record.requires).contains(__version__, prereleases=True)
        except InvalidSpecifier as exc:  # a line pip would refuse: never a silent pass
            raise PluginCompatibilityError(
                record.name,
                f"distribution {record.distribution!r} declares a sof-core requirement SOF "
                f"cannot parse ('sof-core {record.requires}': {exc}), so its compatibility "
                "is unknown; fix its Requires-Dist line or install a fixed release",
            ) from exc
    if not fits:
        raise PluginCompatibilityError(
            record.name,
            f"distribution {record.distribution!r} requires sof-core{record.requires} but "
            f"sof-core {__version__} is installed; upgrade one of them",
        )


_default_manager: PluginManager | None = None
_default_lock = threading.Lock()
#: Root managers of the engines whose plugin settings differ from the process-wide
#: manager's, by those settings (``engine_plugin_manager``): each is loaded once.
_loaded_for: dict[str, PluginManager] = {}


def get_plugin_manager(factory: Callable[[], PluginManager] | None = None) -> PluginManager:
    """The process-wide manager, loaded on first use (what the CLI and a simple host use)."""
    global _default_manager
    with _default_lock:
        if _default_manager is None:
            _default_manager = (factory or PluginManager)()
    return _default_manager.load()


def contested_message(contested: Mapping[str, Sequence[str]]) -> str:
    """What strict mode says of skill names several plugins offer and no setting settles."""
    parts = [
        f"skill {name!r} is provided by plugins {', '.join(map(repr, plugins))}"
        for name, plugins in contested.items()
    ]
    return "; ".join(parts) + (
        "; name one provider per skill in skill_providers (SOF_SKILL_PROVIDERS takes a JSON "
        "object such as {\"SkillName\": \"plugin-or-distribution\"})"
    )


#: Settings that decide which plugins load and how they are set up (``sof_configure`` gets
#: them): an engine whose settings differ here needs a manager of its own.
LOADING_SETTINGS = ("plugins_autoload", "plugins_only", "plugins_disable", "strict_plugins",
                    "plugin_settings", "skill_providers", "plugin_import_budget_ms",
                    "plugin_import_timeout")


def host_config() -> SOFConfig:
    """The host's configuration as it is now (file, ``SOF_*`` variables), from the
    process-wide config manager, which re-reads the file only when it changed. A broken file
    is logged and left out; a bad variable raises ``ConfigError`` (``load_host_config``)."""
    from sof_core.config.manager import get_sof_config_manager

    state = get_sof_config_manager().state()
    return state.config if state.config is not None else load_host_config()


def engine_plugin_manager() -> PluginManager:
    """The plugins of an engine made without settings of its own (``CoordinatorEngine()``).

    The engine gets the host's configuration as it is when it is made, not as it was when
    the process-wide manager loaded: a change since then (by ``update_config``, another
    process or a ``SOF_*`` variable) applies to the new engine.
    The installed plugins are shared (an overlay of the process-wide manager) unless the
    change is to which plugins load or their settings (``LOADING_SETTINGS``); then they are
    loaded once more with those settings, and engines made with the same ones share that.
    """
    base = get_plugin_manager()
    config = host_config()
    if config == base.config:
        return base.overlay()
    if all(getattr(config, name) == getattr(base.config, name) for name in LOADING_SETTINGS):
        return base.overlay(config)
    key = json.dumps([getattr(config, name) for name in LOADING_SETTINGS], sort_keys=True,
                     default=repr)
    with _default_lock:
        shared = _loaded_for.get(key)
        if shared is None:
            shared = _loaded_for[key] = PluginManager(config)
    return shared.load().overlay(config)


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests, or a host reloading after an install)."""
    global _default_manager
    with _default_lock:
        _default_manager = None
        _loaded_for.clear()
