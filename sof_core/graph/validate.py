"""Plan validation: every problem of a plan at once, each naming its skills and key.

Validation happens before any skill runs, so a cycle or a missing producer costs the user a
message, not a half-finished run.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from sof_core.skills.spec import SkillSpec, type_name
from sof_core.uif import HOST_FIELDS, UIF_FIELD_TYPES

if TYPE_CHECKING:
    from sof_core.plugins.registry import FailedPlugin

ProblemCode = Literal[
    "plan_type",
    "available_type",
    "empty_plan",
    "plan_too_long",
    "unknown_skill",
    "duplicate_skill",
    "missing_producer",
    "duplicate_producer",
    "cycle",
    "type_mismatch",
    "untrusted_output",
    "contested_skill",
    "tool_denied",
]


@dataclass(frozen=True)
class ValidationProblem:
    """One thing wrong with a plan; ``str()`` is a complete sentence for the user."""

    code: ProblemCode
    message: str
    skills: tuple[str, ...] = ()
    key: str | None = None
    path: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "skills": list(self.skills),
            "key": self.key,
            "path": list(self.path),
        }


def check_plan_type(plan: object) -> None:
    """Raise ``PlanValidationError`` (code ``plan_type``) unless ``plan`` is a sequence of
    skill-name strings; otherwise a string would be validated letter by letter and other
    values would fail deep inside with a bare ``TypeError``.

    Called on every run, so a list or tuple of plain strings costs one pass and nothing else.
    """
    if type(plan) is list or type(plan) is tuple:
        for name in plan:
            if type(name) is not str:
                break
        else:
            return
    problems = plan_type_problems(plan)
    if problems:
        from sof_core.errors import PlanValidationError

        raise PlanValidationError(problems)


def plan_type_problems(plan: object) -> list[ValidationProblem]:
    """What is wrong with the type of ``plan`` or of its items (empty when nothing is)."""
    if isinstance(plan, (str, bytes, bytearray)):
        text = plan if isinstance(plan, str) else bytes(plan).decode("utf-8", "replace")
        names = [part for part in text.replace(",", " ").split() if part]
        return [
            ValidationProblem(
                "plan_type",
                f"plan is {_described(plan)}, not a list of skill names; pass a list such as "
                f"{names or ['MemoryRetrievalSkill']!r}",
            )
        ]
    if not isinstance(plan, Sequence):
        return [
            ValidationProblem(
                "plan_type",
                f"plan is {_described(plan)}, not a list of skill names; pass a list of "
                "strings such as ['MemoryRetrievalSkill']",
            )
        ]
    return [
        ValidationProblem(
            "plan_type",
            f"plan item {index} is {_described(name)}, not a skill name; a plan is a list of "
            "skill-name strings",
        )
        for index, name in enumerate(plan)
        if not isinstance(name, str)
    ]


def available_keys(available: object, error: Callable[[str], Exception]) -> frozenset[str]:
    """``available`` (the keys a caller supplies) as a set of keys. One key may be a plain
    string, as a goal may: ``"docs"`` is that key, not its letters (read letter by letter it
    gave a wrong plan silently). Anything else that is not keys (``None``, a number, bytes,
    a list holding a list or a number) raises ``error(message)`` naming what was given,
    instead of a bare ``TypeError`` from inside the planner."""
    if isinstance(available, str):
        return frozenset((available,))
    if isinstance(available, Iterable) and not isinstance(available, (bytes, bytearray)):
        try:
            keys = frozenset(available)
        except TypeError:  # an unhashable item: named below
            keys = None
        if keys is not None and all(isinstance(key, str) for key in keys):
            return keys
    raise error(f"available must be a key or a list of keys (e.g. ['docs']), got "
                f"{_described(available)}")


def available_problem(message: str) -> Exception:
    """The error for an ``available`` that is not keys, from ``compile``/``validate_plan``:
    a ``PlanValidationError`` with one ``available_type`` problem, as a plan that is not
    a list of names gets a ``plan_type`` one."""
    from sof_core.errors import PlanValidationError

    return PlanValidationError([ValidationProblem("available_type", message)])


def _described(value: object, limit: int = 60) -> str:
    """``None``, or ``a list (['a'])``: the type with a short repr that never raises."""
    if value is None:
        return "None"
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    try:
        text = repr(value)
    except Exception:  # a broken or too deep __repr__
        return f"{article} {kind}"
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{article} {kind} ({text})"


def check_plan_shape(
    plan: Sequence[str],
    known: Collection[str],
    max_length: int,
    *,
    contested: Mapping[str, Sequence[str]] | None = None,
    skill_providers: Mapping[str, str] | None = None,
    failures: Sequence[FailedPlugin] = (),
) -> list[ValidationProblem]:
    """Problems visible from the names alone: empty, too long, unknown or repeated skills.

    ``contested`` (skill -> candidate plugins) turns an unknown name into a
    ``contested_skill`` problem naming the plugins and the ``skill_providers`` setting that
    settles it (``skill_providers`` is what that setting says now). ``failures`` lets an
    unknown name be blamed on the plugin that offered it and failed to load, or, when the
    failed plugins' skills cannot be known (an import error), mentioned as possible causes.
    """
    contested = contested or {}
    problems: list[ValidationProblem] = []
    if not plan:
        problems.append(
            ValidationProblem("empty_plan", "plan is empty; list at least one skill name")
        )
    if len(plan) > max_length:
        problems.append(
            ValidationProblem(
                "plan_too_long",
                f"plan has {len(plan)} skills but max_plan_length is {max_length}; "
                "shorten the plan or raise max_plan_length",
            )
        )
    seen: set[str] = set()
    for name in plan:
        if name in seen:
            problems.append(
                ValidationProblem(
                    "duplicate_skill",
                    f"skill {name!r} appears more than once in the plan; list it once",
                    (name,),
                )
            )
            continue
        seen.add(name)
        if name in known:
            continue
        candidates = contested.get(name)
        if candidates:
            problems.append(
                _contested(name, candidates, (skill_providers or {}).get(name))
            )
        else:
            problems.append(_unknown(name, known, contested, failures))
    return problems


def _contested(name: str, candidates: Sequence[str], setting: str | None) -> ValidationProblem:
    from sof_core.plugins.registry import provider_hint

    listed = ", ".join(repr(c) for c in candidates[:-1]) + f" and {candidates[-1]!r}"
    stale = (
        f" (skill_providers names {setting!r}, which does not provide it)"
        if setting is not None
        else ""
    )
    return ValidationProblem(
        "contested_skill",
        f"skill {name!r} is provided by plugins {listed}{stale}, so it is unavailable until "
        + provider_hint(name, candidates),
        (name,),
    )


def _unknown(
    name: str,
    known: Collection[str],
    contested: Mapping[str, Sequence[str]],
    failures: Sequence[FailedPlugin],
) -> ValidationProblem:
    tied = [f for f in failures if f.skills is not None and name in f.skills]
    if tied:
        causes = "; ".join(
            f"plugin {f.plugin!r}, which failed to load: {f.error}" for f in tied
        )
        return ValidationProblem(
            "unknown_skill",
            f"skill {name!r} is provided by {causes}; see `sof plugins`",
            (name,),
        )
    message = f"unknown skill {name!r}: no loaded plugin registers it" + _suggest(
        name, [*known, *contested]
    )
    return ValidationProblem("unknown_skill", message + may_provide(failures), (name,))


def may_provide(failures: Iterable[FailedPlugin]) -> str:
    """``"; plugin(s) ... may provide it"`` for the plugins that failed before declaring
    their skills (any of them may have offered a missing name), else ``""``."""
    untied = [f.plugin for f in failures if f.skills is None]
    if not untied:
        return ""
    return (f"; plugin(s) {', '.join(repr(p) for p in untied)} failed to load before "
            "declaring their skills and may provide it (see `sof plugins`)")


def _suggest(name: str, known: Collection[str]) -> str:
    """A close registered name, compared without the ``Skill``/``Tool`` suffix.

    Skill names share that suffix, which alone makes ``TwoSkill`` look like ``OneSkill`` to
    difflib; a suggestion must be a likely typo, never just another skill.
    """
    import difflib

    stems: dict[str, str] = {}
    for candidate in sorted(known):
        stems.setdefault(_stem(candidate), candidate)
    close = difflib.get_close_matches(_stem(name), list(stems), n=1, cutoff=0.75)
    if close:
        return f"; did you mean {stems[close[0]]!r}?"
    return "; run `sof skills` to list registered skills"


def _stem(name: str) -> str:
    lowered = name.lower()
    for suffix in ("skill", "tool"):
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return lowered[: -len(suffix)]
    return lowered


def check_keys(
    specs: Sequence[SkillSpec],
    producers: Mapping[str, list[str]],
    available: Collection[str],
) -> list[ValidationProblem]:
    """Missing and duplicate producers, and producer/consumer type disagreements."""
    problems: list[ValidationProblem] = []
    by_name = {spec.name: spec for spec in specs}
    for key, names in producers.items():
        if len(names) > 1:
            problems.append(
                ValidationProblem(
                    "duplicate_producer",
                    f"key {key!r} is written by {len(names)} skills ({', '.join(names)}); "
                    "only one skill in a plan may produce a key",
                    tuple(names),
                    key,
                )
            )
    for spec in specs:
        for key in spec.required_inputs:
            found = producers.get(key)
            if found is not None and (len(found) > 1 or found[0] != spec.name):
                continue  # produced by another skill of the plan (not only its own)
            if key in HOST_FIELDS or key in available:
                continue
            problems.append(
                ValidationProblem(
                    "missing_producer",
                    f"skill {spec.name!r} requires {key!r} but no skill in the plan produces "
                    "it; add a producer of it to the plan (or use goal-driven planning)",
                    (spec.name,),
                    key,
                )
            )
        for key, wanted in spec.key_types.items():
            for producer in producers.get(key, ()):
                if producer == spec.name:
                    continue
                produced = by_name[producer].output_types.get(key)
                if produced is not None and not types_compatible(produced, wanted):
                    problems.append(
                        ValidationProblem(
                            "type_mismatch",
                            f"key {key!r}: {producer!r} produces {type_name(produced)} but "
                            f"{spec.name!r} expects {type_name(wanted)}",
                            (producer, spec.name),
                            key,
                        )
                    )
            field_type = UIF_FIELD_TYPES.get(key)
            if field_type is not None and not types_compatible(field_type, wanted):
                problems.append(_field_mismatch(spec.name, key, field_type, wanted, "expects"))
        for key, produced in spec.output_types.items():
            field_type = UIF_FIELD_TYPES.get(key)
            if field_type is not None and not types_compatible(produced, field_type):
                problems.append(_field_mismatch(spec.name, key, field_type, produced, "produces"))
    return problems


def _field_mismatch(
    skill: str, key: str, field_type: Any, declared: Any, verb: str
) -> ValidationProblem:
    return ValidationProblem(
        "type_mismatch",
        f"key {key!r} is a UIF field of type {type_name(field_type)} but {skill!r} {verb} "
        f"{type_name(declared)}",
        (skill,),
        key,
    )


def check_vetting(
    ordered: Sequence[SkillSpec], producers: Mapping[str, list[str]]
) -> list[ValidationProblem]:
    """Untrusted output (from skills with external access) must pass a vetting skill.

    Taint flows along keys in topological order; a skill with ``vets_content`` cleans what
    it writes. Reaching ``final_response`` (what the response skill writes) or
    ``vetted_content`` still tainted is a problem naming the whole path, key by key.
    """
    # key -> the hops that carried taint to it: ((skill, key it wrote), ...)
    tainted: dict[str, tuple[tuple[str, str], ...]] = {}
    problems: list[ValidationProblem] = []
    for spec in ordered:
        if spec.vets_content:
            continue
        if spec.requires_external_access:
            carried: tuple[tuple[str, str], ...] = ()
        elif not tainted:
            continue  # nothing is tainted yet (a plan without external access: always)
        else:
            incoming = [tainted[k] for k in spec.inputs if k in tainted]
            if not incoming:
                continue
            carried = incoming[0]
        for key in spec.output_keys:
            tainted[key] = (*carried, (spec.name, key))
    for key in ("final_response", "vetted_content"):
        if key in tainted:
            hops = tainted[key]
            path = tuple(skill for skill, _ in hops)
            route = " ".join(f"{skill} -[{written}]->" for skill, written in hops)
            problems.append(
                ValidationProblem(
                    "untrusted_output",
                    f"untrusted output of {path[0]!r} (requires_external_access) reaches "
                    f"{key!r} without passing a vetting skill: {route.removesuffix('->')}; "
                    "add a skill with vets_content = True (ContentVettingSkill) between "
                    "them and let the response read what it writes",
                    path,
                    key,
                    path,
                )
            )
    return problems


def types_compatible(produced: Any, consumed: Any) -> bool:
    """Whether a value of the produced type may flow into the consumed type."""
    if produced is None or consumed is None:
        return True
    if consumed in (Any, object) or produced is Any:
        return True
    if produced == consumed:
        return True
    if _is_union(consumed):
        return any(types_compatible(produced, arm) for arm in get_args(consumed))
    if _is_union(produced):
        return all(types_compatible(arm, consumed) for arm in get_args(produced))
    p_origin = get_origin(produced) or produced
    c_origin = get_origin(consumed) or consumed
    if not (isinstance(p_origin, type) and isinstance(c_origin, type)):
        return False
    if not issubclass(p_origin, c_origin):
        return False
    p_args, c_args = get_args(produced), get_args(consumed)
    if not p_args or not c_args or len(p_args) != len(c_args):
        return True
    return all(types_compatible(p, c) for p, c in zip(p_args, c_args, strict=True))


def _is_union(tp: Any) -> bool:
    origin = get_origin(tp)
    return origin is typing.Union or origin is types.UnionType
