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
    # Runs once per compile over every key of every skill (10,000 skills: ~25,000 keys):
    # plain loops, no list made per lookup, required and optional inputs walked apart.
    producers: dict[str, list[str]] = {}
    for spec in specs:
        name = spec.name
        for key in spec.output_keys:
            found = producers.get(key)
            if found is None:
                producers[key] = [name]
            else:
                found.append(name)
    position = {spec.name: index for index, spec in enumerate(specs)} if written_order else {}
    edges: dict[tuple[str, str], list[str]] = {}
    get_producers = producers.get
    get_edge = edges.get
    for spec in specs:
        name = spec.name
        for key in spec.required_inputs:
            for producer in get_producers(key, ()):
                if producer == name:
                    continue  # a skill that updates a key it reads is not its own dependency
                keys = get_edge((producer, name))
                if keys is None:
                    edges[(producer, name)] = [key]
                else:
                    keys.append(key)
        for key in spec.optional_inputs:
            for producer in get_producers(key, ()):
                if producer == name:
                    continue
                if position and position[producer] > position[name]:
                    continue  # an optional input listed later: not waited for
                keys = get_edge((producer, name))
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
