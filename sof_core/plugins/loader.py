"""Finding, loading and isolating plugins: what pluggy does not do for us.

Entry points of group ``sof.plugins`` are loaded one at a time, sorted by name, each in its
own try: allow/deny lists and the declared ``sof-core`` requirement are checked from metadata
before importing; then import, register, check every ``sof_*`` name against the specs, and
collect what each hook implementation contributes, one implementation at a time. Any failure
unregisters that plugin, is recorded on its ``PluginRecord``, and loading goes on.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from sof_core._version import API_VERSION, __version__
from sof_core.config import SOFConfig, load_host_config
from sof_core.errors import (
    PluginCompatibilityError,
    PluginConflictError,
    PluginError,
    PluginHookError,
    PluginLoadError,
    SOFError,
)
from sof_core.plugins import hookspecs
from sof_core.plugins.markers import PROJECT_NAME
from sof_core.plugins.registry import COMPONENT_HOOKS, Registry

ENTRY_POINT_GROUP = "sof.plugins"
#: SOF's own executors and planners, registered through the same hooks as third parties'.
#: Named, not imported, here: they sit in higher layers that import this one (as pytest
#: lists its ``default_plugins``).
BUILTIN_PLUGINS: dict[str, str] = {
    "sof-executors": "sof_core.execution.builtin",
    "sof-planners": "sof_core.planning.builtin",
}
log = logging.getLogger("sof.plugins")

PluginStatus = Literal["discovered", "loaded", "failed", "disabled"]
_SPEC_NAMES = frozenset(n for n in dir(hookspecs) if n.startswith("sof_"))


@dataclass
class PluginRecord:
    """One plugin as ``sof plugins`` shows it, whether or not it could be loaded."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    source: Literal["entry-point", "code", "builtin"] = "entry-point"
    status: PluginStatus = "discovered"
    error: str | None = None
    error_type: str | None = None
    import_time_ms: float | None = None
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    requires: str | None = None

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
        }


class PluginManager:
    """SOF's plugin manager: a pluggy manager plus discovery, isolation and a registry."""

    def __init__(
        self,
        config: SOFConfig | None = None,
        *,
        entry_point_group: str = ENTRY_POINT_GROUP,
        builtins: bool = True,
    ) -> None:
        self.config = config if config is not None else load_host_config()
        self.entry_point_group = entry_point_group
        self.hook_manager = pluggy.PluginManager(PROJECT_NAME)
        self.hook_manager.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.records: dict[str, PluginRecord] = {}
        self.observer_errors = 0
        self._builtins = builtins
        self._loaded = False
        self._configured = False
        self._load_lock = threading.RLock()
        self._observer_cache: tuple[int, dict[str, list[Any]]] = (-1, {})

    # --- discovery (metadata only, never imports a plugin) -------------------------------

    def discover(self) -> list[PluginRecord]:
        """Records of every installed entry-point plugin, from metadata alone."""
        records: list[PluginRecord] = []
        seen: dict[str, PluginRecord] = {}
        for ep in _sorted_entry_points(self.entry_point_group):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            record = PluginRecord(
                name=ep.name,
                distribution=dist_name,
                version=dist.version if dist is not None else None,
                module=ep.value,
                requires=_core_requirement(dist),
            )
            first = seen.get(ep.name)
            if first is not None:
                record.status = "failed"
                _fail(
                    record,
                    PluginConflictError(
                        ep.name,
                        f"entry-point name is also used by distribution {first.distribution!r}; "
                        f"distribution {dist_name!r} was skipped. Uninstall one of them or rename "
                        "its entry point",
                    ),
                )
                record.name = f"{ep.name} ({dist_name})"
            else:
                seen[ep.name] = record
            records.append(record)
        return records

    # --- loading -------------------------------------------------------------------------

    def load(self) -> PluginManager:
        """Register built-ins and (unless autoload is off) every allowed entry-point plugin.

        Idempotent and thread-safe. In strict mode the first plugin problem raises.
        """
        with self._load_lock:
            if self._loaded:
                return self
            self._loaded = True
            if self._builtins:
                for name, module_name in BUILTIN_PLUGINS.items():
                    module = importlib.import_module(module_name)
                    self.register(module, name=name, source="builtin")
            if self.config.plugins_autoload:
                for record in self.discover():
                    self._load_entry_point(record)
            self._call_configure()
            self._configured = True
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

    def register(
        self,
        plugin: object,
        name: str | None = None,
        *,
        source: Literal["entry-point", "code", "builtin"] = "code",
        record: PluginRecord | None = None,
    ) -> PluginRecord:
        """Register a plugin object (module, class or instance) in code, with full checks.

        Failures are recorded and returned, not raised (unless strict mode is on), so a host
        that registers its own plugins gets the same isolation as for installed ones.
        """
        plugin_name = name or getattr(plugin, "__name__", None) or repr(plugin)
        record = record or PluginRecord(name=plugin_name, source=source)
        record.module = record.module or getattr(plugin, "__name__", None)
        self.records[record.name] = record
        try:
            self._check_api_version(record.name, plugin)
            self._register_hooks(record, plugin)
            record.provides = self._collect(record.name)
            record.status = "loaded"
            if self._configured:  # registered after start-up: configure it like the others
                self._call_configure(record.name)
        except SOFError as exc:
            self._unregister_quietly(record.name, plugin)
            _fail(record, exc)
            self._alert("plugin_failed", str(exc), {"plugin": record.name})
            log.warning("plugin %s skipped: %s", record.name, exc)
            if self._loaded and self.config.strict_plugins and source != "entry-point":
                raise
        return record

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it contributed."""
        plugin = self.hook_manager.get_plugin(name)
        if plugin is not None:
            self.hook_manager.unregister(plugin, name=name)
        self.registry.remove_plugin(name)
        self.records.pop(name, None)

    def _load_entry_point(self, record: PluginRecord) -> None:
        self.records[record.name] = record
        if record.status == "failed":
            return
        if not self._allowed(record):
            record.status = "disabled"
            return
        try:
            _check_requirement(record)
            started = time.perf_counter()
            try:
                module = _import_entry_point(record.module or "")
            except Exception as exc:
                raise PluginLoadError(
                    record.name,
                    f"importing {record.module!r} raised {type(exc).__name__}: {exc}",
                ) from exc
            finally:
                record.import_time_ms = round((time.perf_counter() - started) * 1000, 3)
        except SOFError as exc:
            _fail(record, exc)
            self._alert("plugin_failed", str(exc), {"plugin": record.name})
            log.warning("plugin %s skipped: %s", record.name, exc)
            return
        self.register(module, record.name, source="entry-point", record=record)

    def _allowed(self, record: PluginRecord) -> bool:
        names = {record.name, record.distribution or ""}
        if self.config.plugins_only is not None and not names & set(self.config.plugins_only):
            record.error = "not in plugins_only (SOF_PLUGINS_ONLY)"
            return False
        if names & set(self.config.plugins_disable):
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

    def _check_hook_names(self, name: str, plugin: object) -> None:
        """Reject misspelt or unmarked ``sof_*`` functions, which pluggy silently accepts."""
        for attr in _public_names(plugin):
            if not attr.startswith("sof_"):
                continue
            function = getattr(plugin, attr, None)
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

    def _collect(self, name: str) -> dict[str, list[str]]:
        """Call this plugin's registration hooks one by one and add the results atomically."""
        contributions: dict[str, list[Any]] = {}
        for kind, hook_name in COMPONENT_HOOKS.items():
            caller = getattr(self.hook_manager.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin_name != name or impl.hookwrapper or impl.wrapper:
                    continue
                try:
                    result = impl.function()
                except Exception as exc:
                    raise PluginHookError(
                        name, f"{hook_name}() raised {type(exc).__name__}: {exc}"
                    ) from exc
                if result is None:
                    continue
                if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
                    raise PluginHookError(
                        name, f"{hook_name}() must return a list, got {type(result).__name__}"
                    )
                contributions.setdefault(kind, []).extend(result)
        try:
            self.registry.add_contributions(name, contributions)
        except PluginError:
            raise
        except SOFError as exc:
            raise PluginHookError(name, str(exc)) from exc
        provided: dict[str, list[str]] = {}
        for kind, items in contributions.items():
            provided[kind] = [
                getattr(i, "skill_name", None) or getattr(i, "name", None) or repr(i) for i in items
            ]
        return provided

    def _unregister_quietly(self, name: str, plugin: object) -> None:
        """Undo a partial registration (pluggy leaves rejected plugins half-registered)."""
        for candidate in (plugin, self.hook_manager.get_plugin(name)):
            if candidate is None:
                continue
            try:
                if self.hook_manager.is_registered(candidate):
                    self.hook_manager.unregister(candidate)
            except Exception:  # pragma: no cover - best effort clean-up
                log.debug("could not unregister %s", name, exc_info=True)
        try:
            if self.hook_manager.has_plugin(name):
                self.hook_manager.unregister(name=name)
        except Exception:  # pragma: no cover
            log.debug("could not unregister %s by name", name, exc_info=True)
        self.registry.remove_plugin(name)

    def _call_configure(self, only: str | None = None) -> None:
        for impl in self.hook_manager.hook.sof_configure.get_hookimpls():
            if only is not None and impl.plugin_name != only:
                continue
            try:
                available = {"config": self.config, "registry": self.registry}
                impl.function(*[available[arg] for arg in impl.argnames])
            except Exception as exc:
                record = self.records.get(impl.plugin_name)
                error = PluginHookError(impl.plugin_name, f"sof_configure() raised {exc!r}")
                if record is not None:
                    self._unregister_quietly(impl.plugin_name, impl.plugin)
                    _fail(record, error)
                log.warning("%s", error)

    # --- observers -----------------------------------------------------------------------

    def observers(self, hook_name: str) -> list[Any]:
        """Implementations of an observer hook; cached per registry version (hot path)."""
        version, cache = self._observer_cache
        if version != self.registry.version:
            cache = {}
            self._observer_cache = (self.registry.version, cache)
        impls = cache.get(hook_name)
        if impls is None:
            impls = list(getattr(self.hook_manager.hook, hook_name).get_hookimpls())
            cache[hook_name] = impls
        return impls

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook; an exception in one observer is logged and counted only."""
        for impl in self.observers(hook_name):
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception:
                self.observer_errors += 1
                log.exception("observer %s.%s raised; ignored", impl.plugin_name, hook_name)

    def _alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        if self.observers("sof_alert"):
            self.notify("sof_alert", kind=kind, message=message, details=details)

    def failed(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.status == "failed"]


# --- helpers -------------------------------------------------------------------------------


def _fail(record: PluginRecord, exc: BaseException) -> None:
    record.status = "failed"
    record.error = str(exc)
    record.error_type = type(exc).__name__


def _public_names(plugin: object) -> Iterable[str]:
    if inspect.ismodule(plugin):
        return list(vars(plugin))
    return dir(plugin)


def _sorted_entry_points(group: str) -> list[Any]:
    import importlib_metadata

    eps = importlib_metadata.entry_points(group=group)
    return sorted(eps, key=lambda ep: (ep.name, _dist_name(ep)))


def _dist_name(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return str(dist.metadata["Name"]) if dist is not None else ""


def _core_requirement(dist: Any) -> str | None:
    if dist is None:
        return None
    from packaging.requirements import InvalidRequirement, Requirement

    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.name.replace("_", "-").lower() == "sof-core" and (
            req.marker is None or req.marker.evaluate({"extra": ""})
        ):
            return str(req.specifier) or None
    return None


def _check_requirement(record: PluginRecord) -> None:
    if not record.requires:
        return
    from packaging.specifiers import SpecifierSet

    if not SpecifierSet(record.requires).contains(__version__, prereleases=True):
        raise PluginCompatibilityError(
            record.name,
            f"distribution {record.distribution!r} requires sof-core{record.requires} but "
            f"sof-core {__version__} is installed; upgrade one of them",
        )


def _import_entry_point(value: str) -> Any:
    module_name, _, attr = value.partition(":")
    module = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        module = getattr(module, part)
    return module


_default_manager: PluginManager | None = None
_default_lock = threading.Lock()


def get_plugin_manager(factory: Callable[[], PluginManager] | None = None) -> PluginManager:
    """The process-wide manager, loaded on first use (what the CLI and a simple host use)."""
    global _default_manager
    with _default_lock:
        if _default_manager is None:
            _default_manager = (factory or PluginManager)()
    return _default_manager.load()


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests, or a host reloading after an install)."""
    global _default_manager
    with _default_lock:
        _default_manager = None
