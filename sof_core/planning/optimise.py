"""Completing and optimising a plan from declarations alone (no networkx: planning must stay
cheap at 1,000 registered skills).

``complete`` adds what chosen skills need: the producers of their required inputs, the
producer of each goal key (``final_response``), and a vetting skill for every skill whose
output is untrusted (the taint rule). ``optimise`` then drops duplicates, prunes skills whose
outputs feed nothing on the way to the goals, orders by dependencies and groups the plan
into parallel stages; every change is recorded with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sof_core.errors import GoalResolutionError
from sof_core.planning.result import Change
from sof_core.uif import HOST_FIELDS

DEFAULT_GOALS: tuple[str, ...] = ("final_response",)


def producers_of(specs: Mapping[str, Any]) -> dict[str, list[str]]:
    """Key -> the skills that output it, sorted by name."""
    producers: dict[str, list[str]] = {}
    for name in sorted(specs):
        for key in specs[name].output_keys:
            producers.setdefault(key, []).append(name)
    return producers


def complete(
    seed: Mapping[str, str],
    specs: Mapping[str, Any],
    *,
    goals: Sequence[str] = DEFAULT_GOALS,
    preferred: Sequence[str] = (),
    require_vetting: bool = True,
    producers: Mapping[str, list[str]] | None = None,
) -> tuple[list[str], dict[str, str], list[Change]]:
    """The seed skills plus everything they and the goals need, each with its reason.

    Between several producers of one key, a producer already in the plan wins; else one
    that reads what a seed skill writes (a plugin's answer skill that reads its own triggered
    tool's output, which would otherwise feed nothing and be pruned); else ``preferred``
    (the configured ``default_plan``); else the first by name. A seed skill whose required
    input nothing can produce is dropped (a ``Change`` says so); a goal nothing produces
    raises ``GoalResolutionError``.
    """
    producers = producers if producers is not None else producers_of(specs)
    reasons: dict[str, str] = {}
    changes: list[Change] = []
    rank = {name: i for i, name in enumerate(preferred)}
    seeded = {key: name for name in seed if name in specs for key in specs[name].output_keys}

    def pick(key: str) -> tuple[str | None, str]:
        candidates = producers.get(key, [])
        if not candidates:
            return None, ""
        for name in candidates:
            if name in reasons:
                return name, ""
        if len(candidates) == 1:
            return candidates[0], ""
        ranked = sorted(candidates, key=lambda n: (rank.get(n, len(rank)), n))
        feeding = [n for n in ranked if n not in seed
                   and any(k in seeded and seeded[k] != n for k in specs[n].inputs)]
        if feeding and len(feeding) < len(ranked):
            chosen = feeding[0]
            read = next(k for k in specs[chosen].inputs if k in seeded)
            others = ", ".join(c for c in ranked if c != chosen)
            return chosen, (f" (also produced by {others}; chosen as it reads {read}, which "
                            f"{seeded[read]} writes)")
        others = ", ".join(c for c in ranked[1:])
        how = "listed in default_plan" if ranked[0] in rank else "first by name"
        return ranked[0], f" (also produced by {others}; chosen as {how})"

    def needs(name: str) -> list[str] | None:
        """Producers to add for ``name``'s required inputs, or None if one cannot be had."""
        missing = []
        for key in specs[name].required_inputs:
            if key in HOST_FIELDS:
                continue
            producer, _ = pick(key)
            if producer is None:
                return None
            missing.append(key)
        return missing

    queue: list[tuple[str, str]] = []
    for name, why in seed.items():
        if name not in specs:
            continue
        if needs(name) is None:
            lacking = [k for k in specs[name].required_inputs
                       if k not in HOST_FIELDS and not producers.get(k)]
            changes.append(Change("dropped", name, f"nothing registered produces its "
                                  f"required input {', '.join(lacking)}"))
            continue
        reasons[name] = why
        queue.append((name, why))
    for key in goals:
        producer, tie = pick(key)
        if producer is None:
            raise GoalResolutionError(
                f"no registered skill produces {key!r}, the plan's goal; install a plugin "
                "that outputs it (for final_response: sof-response)"
            )
        if producer not in reasons:
            reasons[producer] = f"produces {key}, the goal{tie}"
            queue.append((producer, reasons[producer]))
    while queue:
        name, _ = queue.pop(0)
        for key in specs[name].required_inputs:
            if key in HOST_FIELDS:
                continue
            producer, tie = pick(key)
            if producer is None or producer in reasons:
                continue
            reasons[producer] = f"produces {key}, required by {name}{tie}"
            queue.append((producer, reasons[producer]))
        if require_vetting and specs[name].requires_external_access:
            vetter = _vetting_for(name, specs, reasons)
            if vetter is not None and vetter not in reasons:
                keys = [k for k in specs[name].output_keys if k in specs[vetter].inputs]
                reasons[vetter] = (
                    f"taint rule: {name}'s {', '.join(keys)} is untrusted and must pass a "
                    "vetting skill before the response"
                )
                queue.append((vetter, reasons[vetter]))
    return list(reasons), reasons, changes


def _vetting_for(name: str, specs: Mapping[str, Any], chosen: Mapping[str, str]) -> str | None:
    """A skill that vets ``name``'s outputs: one already chosen, else the first by name."""
    outputs = set(specs[name].output_keys)
    candidates = [
        other for other in sorted(specs)
        if other != name and getattr(specs[other], "vets_content", False)
        and outputs & set(specs[other].inputs)
    ]
    for other in candidates:
        if other in chosen:
            return other
    return candidates[0] if candidates else None


def optimise(
    plan: Sequence[str],
    specs: Mapping[str, Any],
    *,
    goals: Sequence[str] = DEFAULT_GOALS,
    prune: bool = True,
    report_order: bool = True,
) -> tuple[list[str], list[list[str]], list[Change]]:
    """``plan`` without duplicates or useless skills, in dependency order, and its stages.

    Pruning needs a goal producer in the plan (otherwise nothing says what is wanted) and
    leaves unknown names alone (the validator names them). Skills on a cycle keep their
    place; the validator reports the cycle. ``report_order=False`` leaves a reorder out of
    the changes (for planners whose list order never meant anything).
    """
    changes: list[Change] = []
    unique: list[str] = []
    for name in plan:
        if name in unique:
            changes.append(Change("deduplicated", name, "listed more than once; runs once"))
        else:
            unique.append(name)
    known = [n for n in unique if n in specs]
    if prune:
        kept = _useful(known, specs, goals)
        if kept is not None:
            for name in known:
                if name not in kept:
                    outputs = ", ".join(specs[name].output_keys) or "nothing"
                    changes.append(Change(
                        "pruned", name,
                        f"its outputs ({outputs}) feed nothing on the way to "
                        f"{', '.join(goals)}",
                    ))
            unique = [n for n in unique if n not in specs or n in kept]
    ordered, stages = order_and_stage(unique, specs)
    if report_order and ordered != unique:
        for index, name in enumerate(ordered):
            if unique.index(name) != index:
                changes.append(Change("reordered", name, f"moved to position {index + 1}: "
                                      "it runs after the skills whose outputs it reads"))
                break
    return ordered, stages, changes


def _useful(plan: Sequence[str], specs: Mapping[str, Any], goals: Sequence[str]) -> set[str] | None:
    """Skills whose outputs reach a goal (through inputs, required or optional), or None
    when no skill in ``plan`` produces a goal."""
    wanted = set(goals)
    useful = {n for n in plan if wanted & set(specs[n].output_keys)}
    if not useful:
        return None
    needed: set[str] = set()
    for name in useful:
        needed.update(specs[name].inputs)
    changed = True
    while changed:
        changed = False
        for name in plan:
            if name in useful:
                continue
            if needed & set(specs[name].output_keys):
                useful.add(name)
                needed.update(specs[name].inputs)
                changed = True
    return useful


def order_and_stage(
    plan: Sequence[str], specs: Mapping[str, Any]
) -> tuple[list[str], list[list[str]]]:
    """A stable topological order (plan order wherever dependencies allow) and the parallel
    stages (skills with ``can_run_parallel = False`` get a stage of their own)."""
    position = {name: i for i, name in enumerate(plan)}
    nodes = [n for n in plan if n in specs]
    makers: dict[str, list[str]] = {}
    for name in nodes:
        for key in specs[name].output_keys:
            makers.setdefault(key, []).append(name)
    parents: dict[str, set[str]] = {n: set() for n in nodes}
    for name in nodes:
        for key in specs[name].inputs:
            for producer in makers.get(key, ()):
                if producer != name:
                    parents[name].add(producer)
    level: dict[str, int] = {}
    ordered: list[str] = []
    done: set[str] = set()
    remaining = list(nodes)
    while remaining:
        ready = [n for n in remaining if parents[n] <= done]
        if not ready:  # a cycle: keep the rest in plan order
            for name in remaining:
                level[name] = max([level.get(p, -1) for p in parents[name]
                                   if p in level] + [-1]) + 1
            ordered.extend(remaining)
            break
        name = min(ready, key=position.__getitem__)
        level[name] = max([level[p] for p in parents[name]] + [-1]) + 1
        ordered.append(name)
        done.add(name)
        remaining.remove(name)
    ordered.extend(n for n in plan if n not in specs)  # unknown names: the validator's job
    stages: list[list[str]] = []
    for depth in range(max(level.values(), default=-1) + 1):
        members = [n for n in ordered if level.get(n) == depth]
        together = [n for n in members if specs[n].can_run_parallel]
        if together:
            stages.append(together)
        stages.extend([n] for n in members if not specs[n].can_run_parallel)
    return ordered, stages


def stages_text(stages: Iterable[Sequence[str]]) -> str:
    return " -> ".join(" | ".join(stage) for stage in stages)
