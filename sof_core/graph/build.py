"""The execution graph: built from declarations alone, as Hamilton does.

An edge ``producer → consumer`` exists for every key the consumer reads (required or
optional) that the producer writes. networkx is imported here and nowhere on the CLI's
start-up path, because importing it costs ~150-200 ms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sof_core._networkx_guard import networkx as nx
from sof_core._repr import safe_repr
from sof_core.errors import GoalResolutionError
from sof_core.graph.edges import dependency_edges, describe_cycle
from sof_core.graph.validate import available_keys
from sof_core.skills.spec import SkillSpec
from sof_core.uif import HOST_FIELDS

#: What ``parallel_stages`` raises for a graph with a cycle (networkx's own error).
Unfeasible = nx.NetworkXUnfeasible


@dataclass
class SkillGraph:
    """The DAG of one plan, with who produces each key (several producers is a problem).

    ``edges`` holds each edge's keys and ``parallel`` each skill's ``can_run_parallel``;
    the networkx graph holds the skills and edges alone (an attribute dict per node and
    edge was a fifth of a 10,000-skill compile), and every reader takes them from here.
    """

    graph: nx.DiGraph
    producers: dict[str, list[str]] = field(default_factory=dict)
    order_hint: dict[str, int] = field(default_factory=dict)
    edges: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    parallel: dict[str, bool] = field(default_factory=dict)

    def edge_keys(self, producer: str, consumer: str) -> list[str]:
        return list(self.edges[(producer, consumer)])


def build_graph(
    specs: Sequence[SkillSpec],
    dependencies: tuple[dict[str, list[str]], dict[tuple[str, str], list[str]]] | None = None,
) -> SkillGraph:
    """One node per skill, one edge per (producer, consumer) pair (its keys: ``edge_keys``).

    ``dependencies`` is ``dependency_edges(specs)`` when the caller has it already (the
    plan store computes it first; a 10,000-skill plan should not pay for it twice).
    """
    order_hint: dict[str, int] = {}
    parallel: dict[str, bool] = {}
    for index, spec in enumerate(specs):
        order_hint.setdefault(spec.name, index)
        parallel.setdefault(spec.name, spec.can_run_parallel)
    # Edges are collected in plain dicts and handed to networkx in bulk (a 10,000-skill
    # plan would otherwise spend most of its compile time in add_edge/has_edge).
    producers, edges = dependency_edges(specs) if dependencies is None else dependencies
    graph = nx.DiGraph()
    graph.add_nodes_from(order_hint)
    graph.add_edges_from(edges)
    return SkillGraph(graph=graph, producers=producers, order_hint=order_hint, edges=edges,
                      parallel=parallel)


def find_cycles(skill_graph: SkillGraph) -> list[list[str]]:
    """One cycle path per strongly connected group, e.g. ``[A, B, A]``, deterministic."""
    graph = skill_graph.graph
    cycles: list[list[str]] = []
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue
        start = min(component, key=lambda n: skill_graph.order_hint.get(n, 0))
        sub = graph.subgraph(component)
        edges = nx.find_cycle(sub, source=start)
        path = [edges[0][0]] + [edge[1] for edge in edges]
        cycles.append(path)
    cycles.sort(key=lambda path: skill_graph.order_hint.get(path[0], 0))
    return cycles


def parallel_stages(skill_graph: SkillGraph) -> list[list[str]]:
    """Groups of skills that may run together, in dependency order.

    Each topological generation is ordered by plan position (so merges are deterministic);
    skills with ``can_run_parallel = False`` get a stage of their own after their generation.
    Raises ``networkx.NetworkXUnfeasible`` for a graph with a cycle (``find_cycles`` says
    which).
    """
    hint = skill_graph.order_hint
    stages: list[list[str]] = []
    parallel = skill_graph.parallel
    for generation in nx.topological_generations(skill_graph.graph):
        ordered = sorted(generation, key=lambda n: hint.get(n, 0))
        together = [n for n in ordered if parallel[n]]
        alone = [n for n in ordered if not parallel[n]]
        if together:
            stages.append(together)
        stages.extend([n] for n in alone)
    return stages


def plan_order(skill_graph: SkillGraph) -> list[str]:
    """The skills in plan order wherever their dependencies allow (a stable topological sort).

    At each step the runnable skill listed first in the plan comes next, so a plan whose
    producers already precede their consumers runs exactly as written, and any other plan
    moves only what its dependencies force. Sequential executors run this order.
    """
    hint = skill_graph.order_hint
    graph = skill_graph.graph
    # The graph's edges are the keys of ``skill_graph.edges`` (a plain dict walks them
    # several times faster than networkx's edge view).
    if all(hint[producer] < hint[consumer] for producer, consumer in skill_graph.edges):
        # Every producer already precedes its consumers (plans are usually written so): the
        # plan's own order is the answer, without networkx's per-node heap and key calls.
        return list(hint)
    return list(nx.lexicographical_topological_sort(graph, key=hint.__getitem__))


def _goal_keys(goals: object) -> list[str]:
    """``goals`` as a list of keys (one key may be a plain string, not its letters); a
    ``GoalResolutionError`` naming what was given when it is not keys."""
    if isinstance(goals, str):
        return [goals]
    if isinstance(goals, Iterable) and not isinstance(goals, (bytes, Mapping)):
        keys = list(goals)
        if all(isinstance(key, str) and key for key in keys):
            return keys
    raise GoalResolutionError(
        f"goal must be an output key or a list of them (e.g. 'final_response'), got "
        f"{safe_repr(goals)}")


def _preferences(prefer: object) -> dict[str, str]:
    """``prefer`` as {key: skill}; a ``GoalResolutionError`` when it is anything else."""
    if prefer is None:
        return {}
    if isinstance(prefer, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in prefer.items()):
        return dict(prefer)
    raise GoalResolutionError(
        f"prefer must map output keys to skill names (e.g. {{'final_response': "
        f"'ResponseGenerationSkill'}}), got {safe_repr(prefer)}")


def resolve_goal(
    goals: Iterable[str],
    specs: Mapping[str, SkillSpec],
    *,
    available: Iterable[str] = (),
    include_optional: bool = False,
    prefer: Mapping[str, str] | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> list[str]:
    """The minimal set of registered skills that produce ``goals``, in a runnable order.

    ``unavailable`` says, per key, why skills that would produce it cannot be used (several
    plugins offer them and no setting chose one): the error for that key says so.

    Required inputs pull in their producers recursively (optional ones too with
    ``include_optional``). A key with several producers needs ``prefer={key: skill}``.
    One key may be given as a plain string (``"final_response"``), in ``goals`` and in
    ``available`` alike.
    """
    goals = _goal_keys(goals)
    prefer = _preferences(prefer)
    producers: dict[str, list[str]] = {}
    for name in sorted(specs):
        for key in specs[name].output_keys:
            producers.setdefault(key, []).append(name)
    have = set(available_keys(available, GoalResolutionError)) | HOST_FIELDS
    chosen: dict[str, None] = {}
    wanted: list[tuple[str, str | None]] = [(key, None) for key in goals]
    if not wanted:
        raise GoalResolutionError("no goal keys were given; ask for e.g. 'final_response'")
    while wanted:
        key, needed_by = wanted.pop(0)
        if key in have:
            continue
        candidates = producers.get(key, [])
        if key in prefer:
            if prefer[key] not in candidates:
                raise GoalResolutionError(
                    f"preferred producer {prefer[key]!r} for key {key!r} is not a registered "
                    f"skill that outputs it; producers are {candidates}"
                )
            candidates = [prefer[key]]
        if not candidates:
            why = f" (required by {needed_by})" if needed_by else ""
            optional = needed_by is not None and key in specs[needed_by].optional_inputs
            if optional:
                continue
            if unavailable and key in unavailable:
                raise GoalResolutionError(
                    f"no available skill produces {key!r}{why}: {unavailable[key]}")
            raise GoalResolutionError(
                f"no registered skill produces {key!r}{why}; install a plugin that outputs it"
            )
        if len(candidates) > 1:
            raise GoalResolutionError(
                f"key {key!r} is produced by several skills {candidates}; choose one with "
                f"prefer={{{key!r}: ...}} (or --prefer {key}=SKILL)"
            )
        skill = candidates[0]
        have.add(key)
        if skill in chosen:
            continue
        chosen[skill] = None
        have.update(specs[skill].output_keys)
        inputs = list(specs[skill].required_inputs)
        if include_optional:
            inputs += list(specs[skill].optional_inputs)
        wanted.extend((k, skill) for k in inputs)
    ordered = build_graph([specs[name] for name in sorted(chosen)])
    cycles = find_cycles(ordered)
    if cycles:  # each producer needs what the other makes: no order can run them
        raise GoalResolutionError(
            f"the skills that produce {', '.join(map(repr, goals))} depend on each other in "
            f"a cycle: {describe_cycle(cycles[0], ordered.edge_keys)}; break it by removing "
            "one of these inputs, or supply one of these keys yourself (available=[...])"
        )
    return list(nx.lexicographical_topological_sort(ordered.graph))


def to_mermaid(skill_graph: SkillGraph, stages: Sequence[Sequence[str]]) -> str:
    """Mermaid flowchart with one subgraph per parallel stage and keys on the edges.

    Node and edge labels are quoted strings with Mermaid's entity codes for the characters
    that would end or change them (``"`` as ``#quot;``, ``#``, ``|``, ``<``, ``>``, ``&``,
    a backquote), and ``<br>`` for a line break: any skill name or key draws as written.
    """
    ids = {name: f"s{i}" for i, name in enumerate(skill_graph.graph.nodes)}
    lines = ["flowchart LR"]
    for number, stage in enumerate(stages, 1):
        lines.append(f'  subgraph stage{number}["stage {number}"]')
        lines.extend(f'    {ids[name]}["{mermaid_text(name)}"]' for name in stage)
        lines.append("  end")
    for producer, consumer in skill_graph.graph.edges:
        label = mermaid_text(", ".join(skill_graph.edges[(producer, consumer)]))
        lines.append(f'  {ids[producer]} -->|"{label}"| {ids[consumer]}')
    return "\n".join(lines) + "\n"


#: Characters a Mermaid label shows through an entity code (``#`` first: the codes use it).
_MERMAID_CODES = (
    ("#", "#35;"), ('"', "#quot;"), ("|", "#124;"), ("<", "#lt;"), (">", "#gt;"),
    ("&", "#amp;"), ("`", "#96;"),
)


def mermaid_text(text: str) -> str:
    """``text`` for a quoted Mermaid label: entity codes for what would end or change the
    label, ``<br>`` for line breaks."""
    for char, code in _MERMAID_CODES:
        text = text.replace(char, code)
    return text.replace("\r\n", "<br>").replace("\r", "<br>").replace("\n", "<br>")


def to_dot(skill_graph: SkillGraph, stages: Sequence[Sequence[str]]) -> str:
    """Graphviz DOT with one cluster per parallel stage and keys on the edges.

    Node names and edge labels are DOT strings: ``"`` and ``\\`` escaped, a line break as
    ``\\n``, so any skill name or key gives a graph that parses and draws as written.
    """
    lines = ["digraph sof_plan {", "  rankdir=LR;", "  node [shape=box];"]
    for number, stage in enumerate(stages, 1):
        lines.append(f"  subgraph cluster_stage{number} {{")
        lines.append(f'    label="stage {number}";')
        lines.extend(f"    {_dot_id(name)};" for name in stage)
        lines.append("  }")
    for producer, consumer in skill_graph.graph.edges:
        label = _dot_id(", ".join(skill_graph.edges[(producer, consumer)]))
        lines.append(f"  {_dot_id(producer)} -> {_dot_id(consumer)} [label={label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_id(name: str) -> str:
    """``name`` as a quoted DOT string (a node name or a label)."""
    text = name.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")
    return '"' + text + '"'
