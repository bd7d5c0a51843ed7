"""Who depends on whom in a plan, from declared keys alone: shared by ``build_graph`` (the
networkx DAG) and the plan store (which must not import networkx on a warm start)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from sof_core.skills.spec import SkillSpec


def dependency_edges(
    specs: Sequence[SkillSpec], written_order: bool = False,
) -> tuple[dict[str, list[str]], dict[tuple[str, str], list[str]]]:
    """Producers per key, and the keys of each (producer, consumer) edge in plan order.

    ``written_order`` (``plan_order = "written"``): an optional input whose producer is
    listed after its reader is no edge, so the reader runs where it is written, without it
    (SAM's sequential plans); required inputs keep their edges either way.
    """
    producers: dict[str, list[str]] = {}
    for spec in specs:
        for key in spec.output_keys:
            producers.setdefault(key, []).append(spec.name)
    position = {spec.name: index for index, spec in enumerate(specs)} if written_order else {}
    edges: dict[tuple[str, str], list[str]] = {}
    for spec in specs:
        name = spec.name
        required = len(spec.required_inputs)
        for index, key in enumerate(spec.required_inputs + spec.optional_inputs):
            for producer in producers.get(key, ()):
                if producer == name:
                    continue  # a skill that updates a key it reads is not its own dependency
                if index >= required and position and position[producer] > position[name]:
                    continue  # an optional input listed later: not waited for
                keys = edges.get((producer, name))
                if keys is None:
                    edges[(producer, name)] = [key]
                else:
                    keys.append(key)
    return producers, edges


def describe_cycle(path: Sequence[str], edge_keys: Callable[[str, str], list[str]]) -> str:
    """A cycle as the keys each hop passes, then the path: ``A -[a]-> B; B -[b]-> A
    (A -> B -> A)``; one wording for plan validation and goal resolution."""
    hops = "; ".join(f"{producer} -[{', '.join(edge_keys(producer, consumer))}]-> {consumer}"
                     for producer, consumer in itertools.pairwise(path))
    return f"{hops} ({' -> '.join(path)})"
