"""Who depends on whom in a plan, from declared keys alone: shared by ``build_graph`` (the
networkx DAG) and the plan store (which must not import networkx on a warm start)."""

from __future__ import annotations

from collections.abc import Sequence

from sof_core.skills.spec import SkillSpec


def dependency_edges(
    specs: Sequence[SkillSpec],
) -> tuple[dict[str, list[str]], dict[tuple[str, str], list[str]]]:
    """Producers per key, and the keys of each (producer, consumer) edge in plan order."""
    producers: dict[str, list[str]] = {}
    for spec in specs:
        for key in spec.output_keys:
            producers.setdefault(key, []).append(spec.name)
    edges: dict[tuple[str, str], list[str]] = {}
    for spec in specs:
        name = spec.name
        for key in spec.required_inputs + spec.optional_inputs:
            for producer in producers.get(key, ()):
                if producer == name:
                    continue  # a skill that updates a key it reads is not its own dependency
                keys = edges.get((producer, name))
                if keys is None:
                    edges[(producer, name)] = [key]
                else:
                    keys.append(key)
    return producers, edges
