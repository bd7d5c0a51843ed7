"""``SkillSpec``: a skill's declarations, checked once and normalised for the graph.

A key may carry a type (``{"passages": list}`` or ``[("passages", list)]``); the validator
then checks producers and consumers agree. Checking happens when a skill class is defined
(for classes that name a skill) or registered, so authors get errors at import time.
"""

from __future__ import annotations

import copyreg
import inspect
import numbers
import sys
import types
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import (
    Annotated,
    Any,
    ForwardRef,
    Literal,
    NewType,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from sof_core._reply_trust import package_problem
from sof_core._timeouts import MAX_TIMEOUT, shown, timeout_problem
from sof_core.errors import SkillDefinitionError
from sof_core.uif import UIF_FIELD_TYPES

#: What a declaration may be: names, (name, type) pairs, or a name→type mapping.
KeyDeclaration = Union[Iterable[str | tuple[str, Any]], Mapping[str, Any]]  # noqa: UP007
#: Where a skill runs: in the run's threads, or in an isolation worker process.
Isolation = Literal["thread", "process"]
#: The resource limits an isolated skill may set for itself (``isolation_limits``).
ISOLATION_LIMITS = ("cpu_seconds", "memory_mb", "open_files", "output_mb")
#: What a skill may declare in ``permissions`` (docs/security.md): open network sockets,
#: change files, start processes. Reading files needs no permission.
PERMISSIONS = frozenset({"network", "filesystem", "subprocess"})


def parse_keys(owner: str, attribute: str, declared: Any) -> dict[str, Any]:
    """Normalise one declaration to ``{key: type or None}``, rejecting malformed entries."""
    if declared is None:
        return {}
    if isinstance(declared, str):
        raise SkillDefinitionError(
            owner, f"{attribute} must be a list of key names, not the string {declared!r}"
        )
    items: Iterable[Any] = declared.items() if isinstance(declared, Mapping) else declared
    keys: dict[str, Any] = {}
    try:
        entries = list(items)
    except TypeError:
        raise SkillDefinitionError(
            owner, f"{attribute} must be a list or mapping of keys, got {type(declared).__name__}"
        ) from None
    for entry in entries:
        if isinstance(entry, str):
            name, key_type = entry, None
        elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            name, key_type = entry
        else:
            raise SkillDefinitionError(
                owner, f"{attribute} entry {shown(entry)} must be a key name or a (name, type) "
                "pair"
            )
        if not name.strip():
            raise SkillDefinitionError(owner, f"{attribute} contains an empty key name")
        if name in keys:
            raise SkillDefinitionError(owner, f"{attribute} lists {name!r} twice")
        keys[name] = None if key_type is None else key_type_of(owner, attribute, name, key_type)
    return keys


#: What a key type may be, for messages.
KEY_TYPES_HELP = (
    "a key type is a class (int, list, a pydantic model), a parameterised collection "
    "(list[str], dict[str, Any]), typing.Any or object (any value), or a union of these "
    "(int | None, Optional[int])"
)
_UNIONS: tuple[Any, ...] = (Union, types.UnionType)


def key_type_of(owner: str, attribute: str, key: str, declared: Any) -> Any:
    """``declared`` as a key type the validator compares and the executor checks, or raise
    ``SkillDefinitionError`` naming the skill and the key.

    Accepted: ``typing.Any`` and ``object`` (any value); a class that ``isinstance`` can
    check; a parameterised class (``list[str]``, ``typing.Dict[str, Any]``: its values are
    checked as the class, the parameters only compared between producer and consumer); a
    union of these (``int | None``, ``Optional[int]``). ``Annotated[T, ...]`` and a
    ``NewType`` are normalised to ``T`` and the new type's base. Everything else (a string or
    forward reference, a value, ``Literal``, a ``TypeVar``, a protocol that is not
    ``@runtime_checkable``, a ``TypedDict``) is refused: it could not be checked.
    """
    if declared is Any or declared is object:
        return declared
    if type(declared) is type:  # a plain class: isinstance always works on it
        return declared
    problem = _key_type_problem(declared)
    if problem is None:
        origin = get_origin(declared)
        if origin is Annotated:
            return key_type_of(owner, attribute, key, get_args(declared)[0])
        if isinstance(declared, NewType):
            return key_type_of(owner, attribute, key, declared.__supertype__)
        if origin in _UNIONS:
            arms = [key_type_of(owner, attribute, key, arm) for arm in get_args(declared)]
            if arms == list(get_args(declared)):
                return declared
            return Union[tuple(arms)]  # noqa: UP007
        return declared
    raise SkillDefinitionError(
        owner, f"{attribute} key {key!r} has type {_shown(declared)}, which {problem}; "
        f"{KEY_TYPES_HELP}"
    )


def _key_type_problem(declared: Any) -> str | None:
    """Why ``declared`` cannot be a key type (None: it can; unions and ``Annotated`` are
    checked arm by arm by the caller)."""
    origin = get_origin(declared)
    if origin in _UNIONS or origin is Annotated or isinstance(declared, NewType):
        return None
    if origin is Literal:
        kinds = sorted({type(value).__name__ for value in get_args(declared)})
        return (f"SOF cannot check value by value: declare the type of its values "
                f"({' | '.join(kinds)})")
    if isinstance(declared, (str, ForwardRef)):
        return "is a name, not a type: use the class itself (import it)"
    if isinstance(declared, TypeVar):
        return "is a type variable: declare the type its values have"
    checked = origin if origin is not None else declared
    if not isinstance(checked, type):
        return "is not a type"
    try:
        isinstance(None, checked)
        issubclass(type(None), checked)
    except Exception as exc:  # a non-runtime protocol, a TypedDict, ...
        return (f"isinstance cannot check values against ({type(exc).__name__}: {exc}); "
                "declare the class its values are (dict for a TypedDict) or typing.Any")
    return None


def _shown(declared: Any) -> str:
    if isinstance(declared, str):
        return repr(declared)
    try:
        if isinstance(declared, type) or get_origin(declared) is not None:
            return type_name(declared)
        kind = type(declared).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        return f"{type_name(declared)} ({article} {kind})"
    except Exception:  # a broken __repr__
        return f"a {type(declared).__name__}"


class _AnyOf(type):
    """The class of a union's runtime check: ``isinstance`` is true for a value of any arm."""

    _sof_arms: tuple[type, ...]

    def __instancecheck__(cls, value: Any) -> bool:
        return isinstance(value, cls._sof_arms)


def _any_of(name: str, arms: tuple[type, ...]) -> _AnyOf:
    return _AnyOf(name, (), {"_sof_arms": arms})


# Pickled as what makes it (a compiled spec may travel with a skill sent by value).
copyreg.pickle(_AnyOf, lambda check: (_any_of, (check.__name__, check._sof_arms)))


def output_check(key_type: Any) -> type | None:
    """The class a written value must be an instance of for a key of ``key_type`` (as
    ``key_type_of`` returned it), or None when any value will do.

    A class is itself; a parameterised class its origin (``list[str]``: a list; the items
    are not checked); a union a class whose ``isinstance`` accepts any arm's values, named
    like the union (``int | None``). ``typing.Any`` and ``object``, alone or in a union,
    accept everything: no check. Computed when a plan is compiled, never per run.
    """
    if key_type is None or key_type is Any or key_type is object:
        return None
    origin = get_origin(key_type)
    if origin in _UNIONS:
        arms: list[type] = []
        for arm in get_args(key_type):
            check = output_check(arm)
            if check is None:
                return None
            arms.extend(check._sof_arms if isinstance(check, _AnyOf) else (check,))
        return _any_of(type_name(key_type), tuple(dict.fromkeys(arms)))
    if origin is not None:
        return origin if isinstance(origin, type) else None
    return key_type if isinstance(key_type, type) else None


def sample_classes(key_type: Any) -> tuple[type, ...]:
    """The classes a value of ``key_type`` may be made of (``list[str]``: ``list``;
    ``int | None``: ``int`` and ``NoneType``), for tools that make a sample input; empty
    when any value will do (untyped, ``Any``, ``object``)."""
    check = output_check(key_type)
    if check is None:
        return ()
    return tuple(check._sof_arms) if isinstance(check, _AnyOf) else (check,)


def _unprintable(name: str) -> str | None:
    """What in ``name`` cannot be shown on one line (a control character, a line break, a
    lone surrogate), or None. ``str.isprintable`` is the fast common answer."""
    if name.isprintable():
        return None
    for char in name:
        if not char.isprintable():
            if "\ud800" <= char <= "\udfff":
                return f"a lone surrogate ({char!r})"
            return f"the unprintable character {char!r}"
    return None


@dataclass(frozen=True)
class SkillSpec:
    """A skill's declarations, checked and normalised once, for the graph and the executor."""

    name: str
    version: str
    description: str
    category: str
    required_inputs: tuple[str, ...]
    optional_inputs: tuple[str, ...]
    output_keys: tuple[str, ...]
    key_types: Mapping[str, Any]
    output_types: Mapping[str, Any]
    requires_external_access: bool
    requires_vetting: bool
    vets_content: bool
    can_run_parallel: bool
    estimated_execution_time: float
    max_execution_time: float | None
    max_retries: int | None
    is_async: bool
    skill_class: type[Any] = field(compare=False)
    #: "process": the skill runs in an isolation worker (its class's ``isolation``, else
    #: ``SOF_ISOLATION`` in its module or top-level package, else "thread").
    isolation: Isolation = "thread"
    #: The skill's own resource limits when isolated, over ``SOFConfig.isolation_limits``.
    isolation_limits: Mapping[str, float | None] = field(default_factory=dict)
    #: Packages trusted whole in what the skill sends back when isolated
    #: (``sof_core.security.unpickling``).
    isolation_reply_packages: tuple[str, ...] = ()
    #: Tool security (docs/security.md): what the skill may do besides computing, and the
    #: caps on one call's output and on calls per minute (None: the policy's default, or
    #: no cap).
    permissions: frozenset[str] = frozenset()
    max_output_bytes: int | None = None
    calls_per_minute: int | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.required_inputs + self.optional_inputs

    @classmethod
    def from_skill_class(cls, skill_class: type[Any]) -> SkillSpec:
        """Check a skill class against the contract; raise ``SkillDefinitionError`` if broken."""
        cached = cached_spec(skill_class)
        if cached is not None:
            return cached
        name = getattr(skill_class, "skill_name", "")
        label = name if isinstance(name, str) and name else skill_class.__qualname__
        if not isinstance(name, str) or not name.strip():
            raise SkillDefinitionError(label, "skill_name must be a non-empty string")
        bad = _unprintable(name)
        if bad is not None:
            raise SkillDefinitionError(
                name, f"skill_name holds {bad}; a name is printed on one line in "
                "reports, logs and the CLI: use letters, digits and punctuation")
        if name != name.strip() or "," in name:
            # `--plan A,B` splits at commas and the CLI strips words: such a name could be
            # listed by `sof skills` and never be given back
            raise SkillDefinitionError(
                name, "skill_name starts or ends with a space or holds a comma, so a plan "
                "on the command line (`--plan A,B`) cannot name it; use letters, digits "
                "and other punctuation")
        description = getattr(skill_class, "skill_description", "")
        if not isinstance(description, str) or not description.strip():
            raise SkillDefinitionError(
                name, "skill_description must say in one line what the skill does"
            )
        execute = getattr(skill_class, "execute", None)
        if execute is None or getattr(execute, "__isabstractmethod__", False):
            raise SkillDefinitionError(name, "execute(uif) must be implemented")
        required = parse_keys(name, "required_inputs", skill_class.required_inputs)
        optional = parse_keys(name, "optional_inputs", skill_class.optional_inputs)
        outputs = parse_keys(name, "output_keys", skill_class.output_keys)
        both = sorted(set(required) & set(optional))
        if both:
            raise SkillDefinitionError(
                name, f"keys {both} are both required and optional; keep each in one list"
            )
        bookkeeping = sorted(
            k for k in outputs if k in UIF_FIELD_TYPES and k in {"status", "task_id"}
        )
        if bookkeeping:
            raise SkillDefinitionError(
                name, f"output_keys {bookkeeping} are managed by the coordinator"
            )
        timeout = skill_class.max_execution_time
        problem = timeout_problem(timeout, "the skill_timeout setting")
        if problem is not None:  # inf, nan or 1e300 too: a deadline must be reachable
            raise SkillDefinitionError(name, f"max_execution_time {problem}")
        retries = getattr(skill_class, "max_retries", None)
        if retries is not None and (not isinstance(retries, int) or retries < 0):
            raise SkillDefinitionError(
                name, f"max_retries must be an int >= 0, got {shown(retries)}")
        input_types = {**required, **optional}
        estimate = _estimate(name, planning_estimate(skill_class))
        isolation = _isolation(name, skill_class)
        limits = _isolation_limits(name, getattr(skill_class, "isolation_limits", None))
        spec = cls(
            name=name,
            version=_text(name, skill_class, "skill_version"),
            description=description.strip(),
            category=_text(name, skill_class, "skill_category"),
            required_inputs=tuple(required),
            optional_inputs=tuple(optional),
            output_keys=tuple(outputs),
            key_types={k: t for k, t in input_types.items() if t is not None},
            output_types={k: t for k, t in outputs.items() if t is not None},
            requires_external_access=_flag(name, skill_class, "requires_external_access"),
            requires_vetting=_flag(name, skill_class, "requires_vetting"),
            vets_content=_flag(name, skill_class, "vets_content"),
            can_run_parallel=_flag(name, skill_class, "can_run_parallel"),
            estimated_execution_time=estimate,
            max_execution_time=None if timeout is None else float(timeout),
            max_retries=retries,
            is_async=inspect.iscoroutinefunction(execute),
            skill_class=skill_class,
            isolation=isolation,
            isolation_limits=limits,
            isolation_reply_packages=_packages(
                name, getattr(skill_class, "isolation_reply_packages", ())),
            permissions=_permissions(name, getattr(skill_class, "permissions", ())),
            max_output_bytes=_count(name, skill_class, "max_output_bytes"),
            calls_per_minute=_count(name, skill_class, "calls_per_minute"),
        )
        # Cache on the class itself (not inherited: looked up through __dict__ above), with
        # the declarations it was made from (``cached_spec``).
        type.__setattr__(skill_class, "_sof_spec", spec)
        type.__setattr__(skill_class, "_sof_spec_sources", _sources(skill_class))
        return spec

    def describe(self) -> dict[str, Any]:
        """JSON-ready description used by ``sof skills --json`` and planners."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "category": self.category,
            "required_inputs": list(self.required_inputs),
            "optional_inputs": list(self.optional_inputs),
            "output_keys": list(self.output_keys),
            "types": {k: type_name(t) for k, t in {**self.key_types, **self.output_types}.items()},
            "requires_external_access": self.requires_external_access,
            "requires_vetting": self.requires_vetting,
            "vets_content": self.vets_content,
            "can_run_parallel": self.can_run_parallel,
            "is_async": self.is_async,
            "max_execution_time": self.max_execution_time,
            "isolation": self.isolation,
            "permissions": sorted(self.permissions),
            "max_output_bytes": self.max_output_bytes,
            "calls_per_minute": self.calls_per_minute,
        }


def _estimate(name: str, estimate: Any) -> float:
    """``estimated_execution_time`` as seconds: a finite number >= 0 (planners add and
    compare them; NaN, a negative or infinite one, or an int too large for a float would
    order plans wrongly or raise ``OverflowError`` while planning)."""
    seconds: float | None = None
    if not isinstance(estimate, bool) and isinstance(estimate, numbers.Real):
        try:
            seconds = float(estimate)
        except (OverflowError, ValueError):  # 10**400
            seconds = None
    if seconds is None or not 0 <= seconds <= MAX_TIMEOUT:  # NaN fails both comparisons
        raise SkillDefinitionError(
            name, f"estimated_execution_time must be a number of seconds from 0 to "
            f"{MAX_TIMEOUT:,.0f}, got {shown(estimate)}")
    return seconds


def _text(name: str, skill_class: type[Any], attribute: str) -> str:
    """``skill_version`` or ``skill_category`` as the text reports show (SAM's classes set
    numbers too: ``str()`` of them), refusing what has no short text (an int of more than
    4300 digits, whose ``str()`` is a ``ValueError``, or a broken ``__str__``)."""
    value = getattr(skill_class, attribute)
    try:
        return str(value)
    except Exception as exc:
        raise SkillDefinitionError(
            name, f"{attribute} must be a short text such as '1.0.0', got "
            f"{shown(value)} (str() raised {type(exc).__name__})") from None


def _isolation(name: str, skill_class: type[Any]) -> Isolation:
    """The class's ``isolation``; unset (None), its plugin's ``SOF_ISOLATION`` module or
    top-level package attribute decides; else "thread"."""
    value = getattr(skill_class, "isolation", None)
    where = "isolation"
    if value is None:
        module_name = getattr(skill_class, "__module__", "") or ""
        for owner in (module_name, module_name.partition(".")[0]):
            value = getattr(sys.modules.get(owner), "SOF_ISOLATION", None)
            if value is not None:
                where = f"{owner}.SOF_ISOLATION"
                break
        else:
            return "thread"
    if value not in ("thread", "process"):
        raise SkillDefinitionError(
            name, f'{where} must be "thread" or "process", got {shown(value)}'
        )
    return value  # type: ignore[no-any-return]


def _packages(name: str, declared: Any) -> tuple[str, ...]:
    if isinstance(declared, str) or not isinstance(declared, Collection):
        raise SkillDefinitionError(
            name, "isolation_reply_packages must be a list of top-level package names like "
            f"['numpy'], got {shown(declared)}"
        )
    for package in declared:
        problem = package_problem(package)
        if problem is not None:
            raise SkillDefinitionError(name, f"isolation_reply_packages: {problem}")
    return tuple(sorted(set(declared)))


def _isolation_limits(name: str, declared: Any) -> dict[str, float | None]:
    if declared is None:
        return {}
    if not isinstance(declared, Mapping):
        raise SkillDefinitionError(
            name, f"isolation_limits must be a mapping like {{'memory_mb': 4096}}, "
            f"got {type(declared).__name__}"
        )
    limits: dict[str, float | None] = {}
    for key, value in declared.items():
        if key not in ISOLATION_LIMITS:
            raise SkillDefinitionError(
                name, f"isolation_limits has unknown limit {shown(key)}; known: "
                + ", ".join(ISOLATION_LIMITS)
            )
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            or value == float("inf")
        ):
            raise SkillDefinitionError(
                name, f"isolation_limits[{key!r}] must be a positive number or None "
                f"(no limit), got {shown(value)}"
            )
        limits[key] = value
    return limits


def _permissions(name: str, declared: Any) -> frozenset[str]:
    """``permissions`` as a frozenset, refusing a string or an unknown permission."""
    if declared is None:
        return frozenset()
    if isinstance(declared, str):
        raise SkillDefinitionError(
            name, f"permissions must be a collection such as {{{declared!r}}}, not the "
            f"string {declared!r}"
        )
    try:
        permissions = frozenset(declared)
    except TypeError:
        raise SkillDefinitionError(
            name, f"permissions must be a collection of names, got {type(declared).__name__}"
        ) from None
    unknown = sorted(shown(p) for p in permissions if p not in PERMISSIONS)
    if unknown:
        raise SkillDefinitionError(
            name, f"permissions has unknown {', '.join(unknown)}; known: "
            + ", ".join(sorted(PERMISSIONS))
        )
    return permissions


def _flag(name: str, skill_class: type[Any], attribute: str) -> bool:
    """A boolean declaration, refusing anything but True or False: ``can_run_parallel =
    "no"`` would otherwise count as true, as any non-empty string does."""
    value = (getattr(skill_class, attribute, False) if attribute == "vets_content"
             else getattr(skill_class, attribute))
    if value is True or value is False:
        return value
    raise SkillDefinitionError(
        name, f"{attribute} must be True or False, got {shown(value)} (a string or a number is "
        f"not read as a flag: \"no\" would count as true); write {attribute} = True or "
        f"{attribute} = False"
    )


def _count(name: str, skill_class: type[Any], attribute: str) -> int | None:
    """A positive int limit (``max_output_bytes``, ``calls_per_minute``) or None."""
    value = getattr(skill_class, attribute, None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SkillDefinitionError(
            name, f"{attribute} must be a positive int or None, got {shown(value)}"
        )
    return value


def tool_isolation_problem(skill_class: type[Any]) -> str | None:
    """Why ``skill_class`` cannot be registered as a tool, or None.

    Tools run in isolation worker processes so their limits and permissions are enforced
    (docs/security.md); a class that insists on ``isolation = "thread"`` would escape both.
    """
    if getattr(skill_class, "isolation", None) == "thread":
        return (
            'sets isolation = "thread", but tools run isolated (isolation = "process") so '
            "their timeout and permissions are enforced; drop the setting, or register it "
            "with sof_register_skills if it must run in the host process"
        )
    return None


def planning_estimate(skill_class: type[Any]) -> Any:
    """The skill's ``estimated_execution_time`` as planners use it (unchecked).

    ``None`` ("unknown", SAM's default) is only accepted from classes that say what to plan
    with instead (``_sof_estimate_if_unknown``, set by ``sof_sam.BaseSkillModule``); for any
    other skill it stays ``None`` and the registry refuses it.
    """
    estimate = skill_class.estimated_execution_time
    if estimate is None:
        return getattr(skill_class, "_sof_estimate_if_unknown", None)
    return estimate


def type_name(key_type: Any) -> str:
    """Readable name of a declared key type, for messages and listings."""
    if isinstance(key_type, type) and not getattr(key_type, "__args__", None):
        return key_type.__qualname__
    return repr(key_type).replace("typing.", "")


#: What ``SkillSpec`` reads from a skill class and every skill must declare: a duck-typed
#: skill (not a ``BaseSkillModule`` subclass) lacking one is refused at registration,
#: naming it (``plugins.registry``).
DECLARED_ATTRIBUTES = (
    "skill_name",
    "skill_version",
    "skill_description",
    "skill_category",
    "required_inputs",
    "optional_inputs",
    "output_keys",
    "requires_external_access",
    "requires_vetting",
    "can_run_parallel",
    "estimated_execution_time",
    "max_execution_time",
)
#: Everything a spec is made from (the declarations above, and what it reads when present):
#: a cached spec stands only while each is what it was (``cached_spec``).
_SOURCES = (
    *DECLARED_ATTRIBUTES, "execute", "max_retries", "vets_content", "isolation",
    "isolation_limits", "isolation_reply_packages", "permissions", "max_output_bytes",
    "calls_per_minute", "_sof_estimate_if_unknown",
)


def _sources(skill_class: type[Any]) -> tuple[Any, ...]:
    return tuple(getattr(skill_class, name, None) for name in _SOURCES)


def cached_spec(skill_class: type[Any]) -> SkillSpec | None:
    """The spec built for ``skill_class`` when it was defined or first registered, if its
    declarations still are what they were then; None otherwise. A declaration assigned
    since (``MySkill.output_keys = [...]``, a test or a generator adjusting a class) made
    the cached spec stale: it was used anyway, and the class ran under declarations it no
    longer had. (A list changed in place is the same object: assign a new one.)"""
    cached = skill_class.__dict__.get("_sof_spec")
    if cached is None:
        return None
    try:
        same = skill_class.__dict__.get("_sof_spec_sources") == _sources(skill_class)
    except Exception:  # a declaration that cannot even be compared: build the spec again
        return None
    return cached if same is True else None
