"""What the loaded plugins contributed: skills, tools, backends, planners and executors.

The registry is the coordinator's only view of plugins. Its ``version`` changes whenever
anything is added or removed, which is what compiled-plan caches key on.

Registries layer: an engine's registry holds what was registered in code on that engine and
reads through to the process-wide registry of installed plugins (its ``parent``), so one
engine's in-code skills are never seen by another. A layer's ``version`` moves when it or any
layer below it changes.

Who provides a skill name, within one layer:

* a plugin registered in code wins over installed (entry-point) plugins, and a second in-code
  plugin offering the same name is refused with ``PluginConflictError`` (nothing changes);
* one installed plugin offering the name provides it;
* two or more installed plugins offering it make it *contested*: every other skill of those
  plugins stays available, and the name is unavailable until the ``skill_providers`` setting
  names one of them (by plugin or distribution name).

Across layers, a name registered on an engine hides the same name below it, on that engine.
"""

from __future__ import annotations

import numbers
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sof_core._repr import safe_repr
from sof_core.errors import (
    DuplicateSkillError,
    PluginConflictError,
    PluginHookError,
    SkillDefinitionError,
    SOFError,
)
from sof_core.skills.spec import (
    DECLARED_ATTRIBUTES,
    SkillSpec,
    cached_spec,
    tool_isolation_problem,
)

#: Registration hooks whose items are named components, by registry kind.
COMPONENT_HOOKS: dict[str, str] = {
    "skills": "sof_register_skills",
    "tools": "sof_register_tools",
    "llm_backends": "sof_register_llm_backends",
    "memory_backends": "sof_register_memory_backends",
    "planners": "sof_register_planners",
    "executors": "sof_register_executors",
    "generation_controllers": "sof_register_generation_controllers",
    "vetting_detectors": "sof_register_vetting_detectors",
}
SKILL_KINDS = ("skills", "tools")


@dataclass(frozen=True)
class SkillEntry:
    """A registered skill: its checked declarations, the instance that runs, and its origin."""

    spec: SkillSpec
    instance: Any
    plugin: str
    kind: str  # "skills" or "tools"
    distribution: str | None = None

    def describe(self) -> dict[str, Any]:
        """The skill as ``sof skills --json`` and sof-serve's ``/v1/skills`` list it: its
        declarations (``SkillSpec.describe``), ``inputs`` (required, then optional),
        ``outputs``, ``plugin`` and ``kind``."""
        spec = self.spec
        return {**spec.describe(), "inputs": [*spec.required_inputs, *spec.optional_inputs],
                "outputs": list(spec.output_keys), "plugin": self.plugin, "kind": self.kind}


@dataclass(frozen=True)
class ComponentEntry:
    """A registered backend, planner or executor."""

    name: str
    obj: Any
    plugin: str


@dataclass(frozen=True)
class FailedPlugin:
    """A plugin that failed to load, kept so validation can say why a skill is missing.

    ``skills`` are the skill and tool names its hooks returned before it failed, or ``None``
    when it failed before its hooks ran (an import error, say), when they cannot be known.
    """

    plugin: str
    error: str
    skills: tuple[str, ...] | None = None


class Registry:
    """Skills and components by name, plus a version that moves on every change."""

    def __init__(
        self,
        parent: Registry | None = None,
        *,
        skill_providers: Mapping[str, str] | None = None,
    ) -> None:
        self.parent = parent
        self._providers = dict(skill_providers or {})
        self._offers: dict[str, tuple[SkillEntry, ...]] = {}  # every offer, in load order
        self._skills: dict[str, SkillEntry] = {}  # the offer that provides each name
        self._contested: dict[str, tuple[SkillEntry, ...]] = {}
        self._contestable: set[str] = set()  # plugins whose offers contest (entry points)
        self._components: dict[str, dict[str, ComponentEntry]] = {
            kind: {} for kind in COMPONENT_HOOKS if kind not in SKILL_KINDS
        }
        self._failures: dict[str, FailedPlugin] = {}
        #: The skill names each plugin offers in this layer, so removing or replacing one
        #: plugin touches its own names only (not every offer).
        self._names_by_plugin: dict[str, tuple[str, ...]] = {}
        self._lock = threading.RLock()
        self._own_version = 0

    @property
    def version(self) -> int:
        """Moves whenever this layer or a layer below it changes (both only ever grow)."""
        if self.parent is None:
            return self._own_version
        return self._own_version + self.parent.version

    # --- reading -------------------------------------------------------------------------

    def skill(self, name: str) -> SkillEntry | None:
        entry = self._skills.get(name)
        if entry is None and self.parent is not None and name not in self._offers:
            return self.parent.skill(name)
        return entry

    def skills(self) -> Iterator[SkillEntry]:
        """Every available skill, sorted by name so listings are stable."""
        merged = self._merged_skills()
        for name in sorted(merged):
            yield merged[name]

    def skill_names(self) -> list[str]:
        return sorted(self._merged_skills())

    def components(self, kind: str) -> dict[str, ComponentEntry]:
        merged = self.parent.components(kind) if self.parent is not None else {}
        merged.update(self._components[kind])
        return merged

    def component(self, kind: str, name: str) -> ComponentEntry | None:
        entry = self._components[kind].get(name)
        if entry is None and self.parent is not None:
            return self.parent.component(kind, name)
        return entry

    def contested(self) -> dict[str, list[str]]:
        """Skill names offered by several installed plugins and not settled by
        ``skill_providers``, each with its candidate plugins (in load order)."""
        result: dict[str, list[str]] = {}
        if self.parent is not None:
            result = {n: c for n, c in self.parent.contested().items() if n not in self._offers}
        for name, offers in self._contested.items():
            result[name] = [entry.plugin for entry in offers]
        return dict(sorted(result.items()))

    def unavailable(self) -> dict[str, str]:
        """Skill names that cannot run, by name, with why: offered by several plugins
        (contested), or offered by a plugin that then failed to load."""
        reasons = {name: f"offered by plugins {', '.join(repr(p) for p in plugins)}; "
                         f"unavailable until {provider_hint(name, plugins)}"
                   for name, plugins in self.contested().items()}
        for failure in self.failures():
            for name in failure.skills or ():
                if name not in reasons and self.skill(name) is None:
                    reasons[name] = (f"its plugin {failure.plugin!r} failed to load "
                                     f"(see `sof plugins {failure.plugin}`)")
        return dict(sorted(reasons.items()))

    def clashes(self) -> dict[str, tuple[list[str], str | None]]:
        """This layer's skill names offered by several plugins: ``{name: (offering plugins,
        the plugin that provides it or None while contested)}``."""
        result: dict[str, tuple[list[str], str | None]] = {}
        for name, offers in sorted(self._offers.items()):
            if len(offers) > 1:
                chosen = self._skills.get(name)
                result[name] = ([e.plugin for e in offers], chosen.plugin if chosen else None)
        return result

    def offers(self, name: str) -> tuple[SkillEntry, ...]:
        """Every plugin's offer of ``name`` in the layer that decides it (chosen or not):
        what a contested name's plugins would provide."""
        offers = self._offers.get(name)
        if offers is None and self.parent is not None:
            return self.parent.offers(name)
        return tuple(offers or ())

    def providers(self, name: str) -> list[str]:
        """Every plugin offering ``name`` in the layer that decides it (chosen or not)."""
        offers = self._offers.get(name)
        if offers is None and self.parent is not None:
            return self.parent.providers(name)
        return [entry.plugin for entry in offers or ()]

    def skill_provider_setting(self, name: str) -> str | None:
        """What ``skill_providers`` says for ``name`` in the layer that decides it."""
        if name not in self._offers and self.parent is not None:
            return self.parent.skill_provider_setting(name)
        return self._providers.get(name)

    def failures(self) -> list[FailedPlugin]:
        """Plugins that failed to load, in this layer and below."""
        below = self.parent.failures() if self.parent is not None else []
        return below + list(self._failures.values())

    def __contains__(self, skill_name: object) -> bool:
        return isinstance(skill_name, str) and self.skill(skill_name) is not None

    def __len__(self) -> int:
        return len(self._merged_skills())

    def _merged_skills(self) -> dict[str, SkillEntry]:
        if self.parent is None:
            return dict(self._skills)
        merged = {n: e for n, e in self.parent._merged_skills().items() if n not in self._offers}
        merged.update(self._skills)
        return merged

    # --- writing -------------------------------------------------------------------------

    def add_contributions(
        self,
        plugin: str,
        contributions: Mapping[str, Iterable[Any]],
        *,
        distribution: str | None = None,
        contest: bool = False,
        made: Made | None = None,
    ) -> list[str]:
        """Check and add everything one plugin contributed, all or nothing.

        ``contest`` marks an installed (entry-point) plugin: a skill name it shares with
        other installed plugins becomes contested instead of failing the plugin. ``made``:
        its skill classes' instances, made beforehand (``construct_skills``). Returns the
        names added. Raises ``PluginConflictError``, ``SkillDefinitionError`` or
        ``PluginHookError`` without changing the registry when any item is unusable, so a
        plugin is never half in.
        """
        with self._lock:
            new_skills: dict[str, SkillEntry] = {}
            new_components: dict[str, dict[str, ComponentEntry]] = {}
            for kind, items in contributions.items():
                if kind in SKILL_KINDS:
                    self._check_skills(plugin, kind, items, distribution, contest, new_skills,
                                       made=made)
                    continue
                for item in items:
                    name = _component_name(plugin, kind, item)
                    existing = self._components[kind].get(name) or new_components.get(
                        kind, {}
                    ).get(name)
                    if existing is not None:
                        raise PluginConflictError(
                            plugin,
                            f"{kind[:-1].replace('_', ' ')} {name!r} is already registered "
                            f"by plugin {existing.plugin!r}",
                        )
                    new_components.setdefault(kind, {})[name] = ComponentEntry(name, item, plugin)
            offers = dict(self._offers)
            for name, entry in new_skills.items():
                offers[name] = (*offers.get(name, ()), entry)
            if contest:
                self._contestable.add(plugin)
            self._offers = offers
            if new_skills:
                self._names_by_plugin[plugin] = (
                    *self._names_by_plugin.get(plugin, ()),
                    *new_skills,
                )
            self._resolve(new_skills)
            for kind, entries in new_components.items():
                self._components[kind] = {**self._components[kind], **entries}
            self._failures.pop(plugin, None)
            self._own_version += 1
            added = list(new_skills)
            for entries in new_components.values():
                added.extend(entries)
            return added

    def add_code_skills(
        self, plugin: str, items: Iterable[Any], *, replace: bool = False
    ) -> tuple[list[str], bool]:
        """Check and add skills registered in code as ``plugin``, all or nothing.

        The same checks and errors as ``add_contributions`` for an in-code plugin, without
        a pluggy plugin per call and without copying the registry: a registration costs a
        few dictionary writes however many skills are registered already. With ``replace``,
        what ``plugin`` offered before is swapped for ``items`` only once every item has
        passed. Returns the names added and whether any of the names touched is offered by
        another plugin of this layer too (then the caller refreshes its conflict notes).
        A non-skill's error names ``register_skills`` (``register_skill`` refuses one
        itself, before it names the plugin after the item).
        """
        with self._lock:
            ignore = plugin if replace else None
            new_skills: dict[str, SkillEntry] = {}
            self._check_skills(plugin, "skills", items, None, False, new_skills, ignore,
                               api="register_skills")
            # Every check passed: from here on nothing can fail, so nothing needs undoing.
            offers, skills = self._offers, self._skills
            old = self._names_by_plugin.pop(plugin, ()) if replace else ()
            for name in old:
                remaining = tuple(e for e in offers.get(name, ()) if e.plugin != plugin)
                if remaining:
                    offers[name] = remaining
                else:
                    offers.pop(name, None)
            settle = list(old)  # names whose provider must be chosen again
            for name, entry in new_skills.items():
                current = offers.get(name)
                if current:
                    offers[name] = (*current, entry)
                    settle.append(name)
                else:  # the only offer of its name: it provides it (the common case)
                    offers[name] = (entry,)
                    skills[name] = entry
            if new_skills:
                self._names_by_plugin[plugin] = (
                    *self._names_by_plugin.get(plugin, ()),
                    *new_skills,
                )
            if settle:
                self._resolve_in_place(settle)
            self._failures.pop(plugin, None)
            self._own_version += 1
            shared = bool(settle) and any(len(offers.get(n, ())) > 1 for n in settle)
            return list(new_skills), shared

    def remove_plugin(self, plugin: str) -> None:
        """Drop everything a plugin contributed (used when it is unregistered)."""
        with self._lock:
            touched = list(self._names_by_plugin.pop(plugin, ()))
            offers = dict(self._offers)
            for name in touched:
                remaining = tuple(e for e in offers[name] if e.plugin != plugin)
                if remaining:
                    offers[name] = remaining
                else:
                    del offers[name]
            self._offers = offers
            self._resolve(touched)
            self._contestable.discard(plugin)
            for kind, entries in self._components.items():
                self._components[kind] = {n: e for n, e in entries.items() if e.plugin != plugin}
            self._failures.pop(plugin, None)
            self._own_version += 1

    def note_failure(self, plugin: str, error: str, skills: Iterable[str] | None = None) -> None:
        """Remember that ``plugin`` failed, and which skills it offered if that is known."""
        with self._lock:
            known = None if skills is None else tuple(dict.fromkeys(skills))
            self._failures[plugin] = FailedPlugin(plugin, error, known)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Undo every change made inside the block if it raises (the version still moves,
        so nothing cached against the aborted state is reused)."""
        with self._lock:
            saved = (
                dict(self._offers),
                dict(self._skills),
                dict(self._contested),
                set(self._contestable),
                {kind: entries for kind, entries in self._components.items()},
                dict(self._failures),
                dict(self._names_by_plugin),
            )
            try:
                yield
            except BaseException:
                (
                    self._offers,
                    self._skills,
                    self._contested,
                    self._contestable,
                    self._components,
                    self._failures,
                    self._names_by_plugin,
                ) = saved
                self._own_version += 1
                raise

    # --- internals -----------------------------------------------------------------------

    def _check_skills(
        self,
        plugin: str,
        kind: str,
        items: Iterable[Any],
        distribution: str | None,
        contest: bool,
        new_skills: dict[str, SkillEntry],
        ignore: str | None = None,
        made: Made | None = None,
        api: str | None = None,
    ) -> None:
        """Check each offered skill and add it to ``new_skills``; raise on the first bad one.

        Offers by ``ignore`` (the plugin being replaced) do not clash. Items that are no
        skill at all (a string, a number) are named together first, as what they are.
        """
        items = items if type(items) is list else list(items)
        if api is None:
            junk = [item for item in items if not is_skill_like(item)]
            if junk:
                raise not_a_skill(plugin, junk, kind=kind)
        for item in items:
            try:
                entry = _skill_entry(plugin, kind, item, distribution, made, api)
            except SkillDefinitionError as exc:
                raise _naming_plugin(exc, plugin) from exc
            name = entry.spec.name
            if name in new_skills:
                raise DuplicateSkillError(
                    plugin, name, f"returns two skills named {name!r}; keep one of them"
                )
            if name in self._offers:
                self._check_skill_clash(plugin, name, contest, ignore)
            new_skills[name] = entry

    def _check_skill_clash(
        self, plugin: str, name: str, contest: bool, ignore: str | None = None
    ) -> None:
        """In-code offers may not clash with each other; installed ones may (contested)."""
        for owner in self._offers.get(name, ()):
            if owner.plugin == ignore:
                continue
            in_code_owner = owner.plugin not in self._contestable
            if in_code_owner and not contest:
                where = " on this engine" if self.parent is not None else ""
                raise DuplicateSkillError(
                    plugin, name,
                    f"skill {name!r} is already registered by plugin {owner.plugin!r}{where}; "
                    "register it under that plugin name to replace it, unregister that "
                    "plugin first, or rename one of the skills",
                )

    def _resolve(self, names: Iterable[str]) -> None:
        """Decide, for each name, which offer provides it (copy-on-write for readers)."""
        skills = dict(self._skills)
        contested = dict(self._contested)
        for name in names:
            skills.pop(name, None)
            contested.pop(name, None)
            offers = self._offers.get(name, ())
            chosen = self._choose(name, offers)
            if chosen is not None:
                skills[name] = chosen
            elif offers:
                contested[name] = offers
        self._skills = skills
        self._contested = contested

    def _resolve_in_place(self, names: Iterable[str]) -> None:
        """``_resolve`` for a registration in code: dictionary writes, no copies.

        Readers that look a name up while it is written see the old or the new entry; a
        contested set that changes is still replaced whole (it is iterated unlocked).
        """
        skills = self._skills
        contested = self._contested
        changed_contested = False
        for name in names:
            offers = self._offers.get(name, ())
            chosen = self._choose(name, offers)
            if chosen is not None:
                skills[name] = chosen
            else:
                skills.pop(name, None)
            if name in contested:
                if not changed_contested:
                    contested = dict(contested)
                    changed_contested = True
                del contested[name]
            if chosen is None and offers:
                if not changed_contested:
                    contested = dict(contested)
                    changed_contested = True
                contested[name] = offers
        if changed_contested:
            self._contested = contested

    def _choose(self, name: str, offers: tuple[SkillEntry, ...]) -> SkillEntry | None:
        in_code = [e for e in offers if e.plugin not in self._contestable]
        if in_code:
            return in_code[0]
        if len(offers) == 1:
            return offers[0]
        wanted = self._providers.get(name)
        if wanted is None:
            return None
        matches = [e for e in offers if _names_plugin(e, wanted)]
        return matches[0] if len(matches) == 1 else None


# --- helpers -------------------------------------------------------------------------------


def provider_hint(skill: str, candidates: Iterable[str]) -> str:
    """How to settle a contested skill name, with a ready-to-paste example."""
    first = next(iter(candidates), "PLUGIN")
    example = f'{{"{skill}": "{first}"}}'
    return (
        f"skill_providers names one, e.g. skill_providers = {example} in the config file "
        f"or SOF_SKILL_PROVIDERS='{example}'"
    )


def _normalise(name: str) -> str:
    """PEP 503 normalisation, so ``sam_skills`` names the distribution ``SAM-Skills``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names_plugin(entry: SkillEntry, wanted: str) -> bool:
    if entry.plugin == wanted:
        return True
    return entry.distribution is not None and _normalise(entry.distribution) == _normalise(
        wanted
    )


def item_label(item: Any) -> str:
    """A name for something a hook returned: its skill or component name, else its class."""
    for attribute in ("skill_name", "name"):
        try:
            value = getattr(item, attribute, None)
        except Exception:
            continue
        if isinstance(value, str) and value:
            return value
    if isinstance(item, type):
        return item.__qualname__
    return f"{type(item).__qualname__} instance"


def _naming_plugin(exc: SkillDefinitionError, plugin: str) -> SkillDefinitionError:
    """The same error, saying which plugin registered the broken skill."""
    text = str(exc)
    prefix = f"skill {exc.skill!r}: "
    reason = text[len(prefix) :] if text.startswith(prefix) else text
    return SkillDefinitionError(exc.skill, f"{reason} (registered by plugin {plugin!r})")


#: Skill classes' instances made ahead of their checks (``construct_skills``), by ``id`` of
#: the class: the instance, or the exception its constructor raised.
Made = dict[int, tuple[Any, "Exception | None"]]


def construct_skills(contributions: Mapping[str, Iterable[Any]]) -> Made:
    """Make an instance of every skill class a plugin contributed, now.

    The loader calls this where the plugin's registration hooks ran: for an installed
    plugin, in its import thread within ``plugin_import_timeout``, so a skill whose
    constructor hangs (a connection made at construction to a server that does not answer)
    fails its plugin at the deadline instead of holding the host's start-up. What each
    constructor raised is kept and reported by the checks (``_skill_entry``), in order.
    """
    made: Made = {}
    for kind in SKILL_KINDS:
        for item in contributions.get(kind, ()):
            if not isinstance(item, type) or id(item) in made:
                continue
            try:
                is_skill = callable(getattr(item, "execute", None))
            except Exception:
                is_skill = False
            if not is_skill:  # not constructed: its check says why it is not a skill
                continue
            try:
                made[id(item)] = (item(), None)
            except Exception as exc:
                made[id(item)] = (None, exc)
    return made


def is_skill_like(item: Any) -> bool:
    """Whether ``item`` is a class, or an instance of one, with a callable ``execute``: the
    first check every registration makes (the rest are ``SkillSpec``'s)."""
    skill_class = item if isinstance(item, type) else type(item)
    try:
        execute = getattr(skill_class, "execute", None)
    except Exception:  # a hostile metaclass: not a skill either
        return False
    return callable(execute)


def not_a_skill(plugin: str, item: Any, api: str | None = None, kind: str = "skills"
                ) -> PluginHookError:
    """The error for an offered item that is no skill, worded for where it came from: a
    plugin's hook (``kind``), or ``api``, the in-code call that was given it. For a hook,
    ``item`` may be a list of every such item it returned: each is named with its type
    (``'oops' (a str)``), none is taken for a skill."""
    if api is not None:
        return PluginHookError(
            plugin,
            f"{api} got {safe_repr(item)}, which is not a skill; pass BaseSkillModule "
            "subclasses or instances",
        )
    junk = item if type(item) is list else [item]
    named = [f"{safe_repr(i)} ({_a_type(i)})" for i in junk[:5]]
    if len(junk) > 5:
        named.append(f"{len(junk) - 5} more")
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    which = "which is not a skill class or instance" if len(junk) == 1 else (
        "which are not skill classes or instances")
    return PluginHookError(
        plugin,
        f"the plugin's {COMPONENT_HOOKS[kind]} returned {listed}, {which}; return "
        "BaseSkillModule subclasses or instances",
    )


def _a_type(item: Any) -> str:
    """``a str``, ``an int``, ``a class without execute()``."""
    if isinstance(item, type):
        return "a class without execute()"
    name = type(item).__qualname__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _skill_entry(plugin: str, kind: str, item: Any, distribution: str | None,
                 made: Made | None = None, api: str | None = None) -> SkillEntry:
    skill_class = item if isinstance(item, type) else type(item)
    label = item_label(item)
    if not is_skill_like(item):
        raise not_a_skill(plugin, item if api is not None else [item], api, kind)
    spec = _spec_of(skill_class, label)
    if kind == "tools":  # tool security (docs/security.md): tools run isolated
        problem = tool_isolation_problem(skill_class)
        if problem is not None:
            raise SkillDefinitionError(spec.name, problem)
    if isinstance(item, type):
        done = made.get(id(item)) if made else None
        try:
            if done is None:
                instance = item()
            elif done[1] is not None:
                raise done[1]
            else:
                instance = done[0]
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: the class's fault, not the host's end
            raise SkillDefinitionError(
                spec.name, f"could not be instantiated with no arguments: {exc!r}"
            ) from exc
    else:
        instance = item
    return SkillEntry(
        spec=spec, instance=instance, plugin=plugin, kind=kind, distribution=distribution
    )


def _spec_of(skill_class: type[Any], label: str) -> SkillSpec:
    """``SkillSpec.from_skill_class`` that turns any failure into ``SkillDefinitionError``.

    Duck-typed skills (not ``BaseSkillModule`` subclasses) reach here unchecked, so a missing
    declaration or a wrongly typed one must be named here rather than escape as an
    ``AttributeError`` or ``ValueError`` that stops the host. A class whose spec is cached
    (built when it was defined, or at an earlier registration) had every declaration then.
    """
    cached = cached_spec(skill_class)
    for attribute in () if cached is not None else DECLARED_ATTRIBUTES:
        try:
            present = hasattr(skill_class, attribute)
        except Exception:
            present = False
        if not present:
            raise SkillDefinitionError(
                label,
                f"has no {attribute!r}; subclass sof_core.BaseSkillModule (which supplies the "
                f"defaults) or declare {attribute}",
            )
    estimate = _read(skill_class, "estimated_execution_time", label)
    if estimate is None:  # SAM's "unknown": accepted only where the class says what to plan
        estimate = getattr(skill_class, "_sof_estimate_if_unknown", None)
    kind = type(estimate)
    if kind is not float and kind is not int and (
        kind is bool or not isinstance(estimate, numbers.Real)
    ):
        raise SkillDefinitionError(
            label, f"estimated_execution_time must be a number of seconds, got {estimate!r}"
        )
    if cached is not None:
        return cached
    try:
        return SkillSpec.from_skill_class(skill_class)
    except SOFError:
        raise
    except Exception as exc:
        raise SkillDefinitionError(
            label, f"its declarations could not be read: {type(exc).__name__}: {exc}"
        ) from exc


def _read(owner: Any, attribute: str, label: str) -> Any:
    try:
        return getattr(owner, attribute)
    except Exception as exc:
        raise SkillDefinitionError(
            label, f"reading {attribute!r} raised {type(exc).__name__}: {exc}"
        ) from exc


def _component_name(plugin: str, kind: str, item: Any) -> str:
    try:
        name = getattr(item, "name", None)
    except Exception as exc:
        raise PluginHookError(
            plugin,
            f"{COMPONENT_HOOKS[kind]} returned {safe_repr(item)}, whose 'name' raised "
            f"{type(exc).__name__}: {exc}",
        ) from exc
    if not isinstance(name, str) or not name:
        raise PluginHookError(
            plugin,
            f"{COMPONENT_HOOKS[kind]} returned {safe_repr(item)}, which has no string 'name'",
        )
    return name
