"""The plan store: a plan's graph facts kept on disk, so a new process needs no networkx.

Compiling a plan asks the graph three things: its cycles, its parallel stages and its run
order. Answering them needs networkx, whose import costs more than everything else a
``sof run`` does (~100-150 ms). The answers depend on nothing but the declarations of the
plan's skills, so they are stored per declaration set in the user cache dir and a later
process that compiles the same plan reads them back instead.

* **Key.** The graph's inputs (the entry's file is named by their checksum): for each
  skill of the plan, in plan order, its name, version, required and optional inputs,
  outputs and ``can_run_parallel``; plus the sof-core version and the size and
  modification time of the code that computes the answers (``graph/build.py``, this
  module, networkx). Any change to any of these is a different key, so an entry is never
  used for another graph or by other code.
* **Trust.** An entry holds its key material and is used only when that matches exactly.
  Before it is used it is checked against the graph, rebuilt here without networkx: every
  stored cycle must follow real edges, one per group of skills that reach each other (as
  compiling finds them), and stages and order must be exactly the ones
  compiling computes (recomputed in linear time, without networkx: ``_check``). A
  corrupt, stale or wrong entry is ignored and rebuilt; what is in the entry's place is
  read only if it is a regular file of at most ``MAX_ENTRY_BYTES``. Everything else the
  compiler checks (keys, types, vetting, plan shape) is checked in every process as before.
* **Writes** are atomic (a temporary file renamed over the entry), so readers never see
  half an entry. Any error reading or writing is ignored (the plan compiles as without a
  store), so a read-only or full disk costs nothing but the networkx import.
* **Where.** ``$XDG_CACHE_HOME/sof/plans`` (default ``~/.cache/sof/plans``) on Linux,
  ``~/Library/Caches/sof/plans`` on macOS, ``%LOCALAPPDATA%\\sof\\Cache\\plans`` on Windows.
  Turn it off with ``plan_store = false`` (``SOF_PLAN_STORE=0``); with
  ``enable_plan_cache = false`` nothing is cached, on disk or in memory. Plans of more than
  ``MAX_SKILLS`` skills are never stored (their compile time dwarfs the import).

If compiling starts to need another graph answer, compute it in ``_compute`` and store it
here, so the answers and their cache cannot disagree.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sof_core._paths import cache_dir, read_cache_file
from sof_core._version import __version__
from sof_core.config import SOFConfig
from sof_core.graph.edges import dependency_edges
from sof_core.skills.spec import SkillSpec

log = logging.getLogger("sof.plan_store")

#: Bump when the entry layout or the meaning of a stored answer changes.
FORMAT = 1
#: Larger plans are compiled in memory only.
MAX_SKILLS = 512
#: An entry longer than this is not read (the largest plan's is a few hundred kB).
MAX_ENTRY_BYTES = 16 << 20
#: Entries kept before the oldest are pruned.
MAX_ENTRIES = 2000
_PRUNE_EVERY = 64

_writes = itertools.count()
_code_signature: list[Any] | None = None


@dataclass(frozen=True)
class PlanGraph:
    """What compiling needs from a plan's graph: the ``SkillGraph`` attributes it reads
    (``producers``, ``edge_keys``) and the answers (``cycles``, ``stages``, ``order``)."""

    producers: dict[str, list[str]]
    edges: dict[tuple[str, str], list[str]]
    cycles: tuple[tuple[str, ...], ...]
    stages: tuple[tuple[str, ...], ...]
    order: tuple[str, ...]
    stored: bool = False  # the answers came from the store

    def edge_keys(self, producer: str, consumer: str) -> list[str]:
        return list(self.edges[(producer, consumer)])


def plan_graph(specs: Sequence[SkillSpec], config: SOFConfig) -> PlanGraph:
    """The graph answers for ``specs`` (unique, in plan order): from the store when it holds
    them for exactly these declarations, else computed (and stored)."""
    written = config.plan_order == "written"
    producers, edges = dependency_edges(specs, written)
    if not specs:
        return PlanGraph(producers, edges, (), (), ())
    use_store = (
        len(specs) <= MAX_SKILLS
        and config.plan_store
        and config.enable_plan_cache
    )
    if not use_store:
        return _compute(specs, producers, edges)
    material = _material(specs, written)
    try:
        path = store_dir() / f"{_digest(material)}.json"
    except (RuntimeError, KeyError, OSError):  # no home directory to find the cache dir in
        return _compute(specs, producers, edges)
    found = _load(path, material, specs, edges)
    if found is not None:
        cycles, stages, order = found
        return PlanGraph(producers, edges, cycles, stages, order, stored=True)
    computed = _compute(specs, producers, edges)
    _save(path, material, computed)
    return computed


def store_dir() -> Path:
    """The per-user cache folder of the plan store (see the module docstring)."""
    return cache_dir() / "plans"


# --- computing ---------------------------------------------------------------------------


def _compute(
    specs: Sequence[SkillSpec],
    producers: dict[str, list[str]],
    edges: dict[tuple[str, str], list[str]],
) -> PlanGraph:
    """The answers from networkx (imported here, on a store miss only).

    The stages come first: networkx's topological generations fail on a cycle, and only
    then are the cycles looked for (a strongly-connected-components pass an acyclic plan,
    the usual one, does not need).
    """
    from sof_core.graph.build import (
        Unfeasible,
        build_graph,
        find_cycles,
        parallel_stages,
        plan_order,
    )

    skill_graph = build_graph(specs, (producers, edges))
    try:
        stages = tuple(tuple(stage) for stage in parallel_stages(skill_graph))
    except Unfeasible:
        cycles = tuple(tuple(path) for path in find_cycles(skill_graph))
        return PlanGraph(producers, edges, cycles, (), ())
    return PlanGraph(producers, edges, (), stages, tuple(plan_order(skill_graph)))


# --- the key -----------------------------------------------------------------------------


def _material(specs: Sequence[SkillSpec], written: bool = False) -> str:
    """Everything the answers depend on, as one canonical string."""
    skills = [
        [
            spec.name,
            spec.version,
            list(spec.required_inputs),
            list(spec.optional_inputs),
            list(spec.output_keys),
            spec.can_run_parallel,
        ]
        for spec in specs
    ]
    order = ["written"] if written else []  # plan_order: which edges the graph has
    return json.dumps([FORMAT, __version__, _code(), skills, *order], separators=(",", ":"))


def _digest(material: str) -> str:
    """A short name for the entry of ``material``. Two materials sharing it only share a
    file (each ignores the other's entry, which holds its material): zlib's checksums
    suffice, and cost none of ``hashlib``'s import."""
    data = material.encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}{len(data):x}"


def _code() -> list[Any]:
    """Size and mtime of the code that computes the answers (found without importing it)."""
    global _code_signature
    if _code_signature is None:
        here = Path(__file__).resolve().parent
        files = [here / "build.py", here / "plan_store.py"]
        try:
            import importlib.util

            spec = importlib.util.find_spec("networkx")
            if spec is not None and spec.origin:
                files.append(Path(spec.origin))
        except (ImportError, ValueError):
            pass
        signature: list[Any] = []
        for file in files:
            try:
                st = file.stat()
                signature.append([str(file), st.st_size, st.st_mtime_ns])
            except OSError:
                signature.append([str(file), None, None])
        _code_signature = signature
    return _code_signature


# --- reading and checking ----------------------------------------------------------------


def _load(
    path: Path,
    material: str,
    specs: Sequence[SkillSpec],
    edges: dict[tuple[str, str], list[str]],
) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...], tuple[str, ...]] | None:
    raw = read_cache_file(path, MAX_ENTRY_BYTES)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not an entry of this format")
        if data.get("material") != material:
            raise ValueError("its key material differs")
        cycles = _names_lists(data.get("cycles"))
        stages = _names_lists(data.get("stages"))
        order = _names_list(data.get("order"))
        _check(specs, edges, cycles, stages, order)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        log.debug("plan store entry %s ignored (%s); rebuilding it", path, exc)
        return None
    return cycles, stages, order


def _names_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("a list of names was expected")
    return tuple(value)


def _names_lists(value: Any) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        raise ValueError("a list of lists of names was expected")
    return tuple(_names_list(item) for item in value)


def _check(
    specs: Sequence[SkillSpec],
    edges: dict[tuple[str, str], list[str]],
    cycles: tuple[tuple[str, ...], ...],
    stages: tuple[tuple[str, ...], ...],
    order: tuple[str, ...],
) -> None:
    """Raise ``ValueError`` unless the answers are the ones compiling gives for this graph.

    Stored cycles must follow the graph's edges. Stages and order must be exactly what
    ``graph.build`` computes (a topological order or stage split that merely respects the
    edges is not enough: a different one changes which skill runs first and the order of
    the report), so they are recomputed here, without networkx, in linear time: the
    stable topological sort (at each step the ready skill first in the plan) and the
    topological generations, each in plan order with its ``can_run_parallel = False``
    skills in stages of their own after it.
    """
    for path in cycles:
        if len(path) < 3 or path[0] != path[-1]:
            raise ValueError("a stored cycle is not closed")
        if any(pair not in edges for pair in itertools.pairwise(path)):
            raise ValueError("a stored cycle follows an edge the graph does not have")
    if cycles:
        if stages or order:
            raise ValueError("a cyclic plan has no stages")
        _check_one_cycle_per_group(specs, edges, cycles)
        return
    expected_order, expected_stages = _answers(specs, edges)
    if order != expected_order:
        raise ValueError("the stored order is not the plan's")
    if stages != expected_stages:
        raise ValueError("the stored stages are not the plan's")


def _check_one_cycle_per_group(
    specs: Sequence[SkillSpec],
    edges: dict[tuple[str, str], list[str]],
    cycles: tuple[tuple[str, ...], ...],
) -> None:
    """Raise ``ValueError`` unless ``cycles`` names what ``graph.build.find_cycles`` does: one
    cycle per group of skills that reach each other, starting at the group's first skill in
    the plan, the groups in plan order. (Real edges alone are not enough: an entry listing
    one of two cycles would make the plan's error name only one.)"""
    position = {spec.name: index for index, spec in enumerate(specs)}
    groups = _cyclic_groups(list(position), edges)
    group_of = {name: index for index, group in enumerate(groups) for name in group}
    used: set[int] = set()
    for path in cycles:
        index = group_of.get(path[0])
        if index is None or index in used or any(group_of.get(n) != index for n in path):
            raise ValueError("a stored cycle is not one of the graph's cyclic groups")
        if path[0] != min(groups[index], key=position.__getitem__):
            raise ValueError("a stored cycle does not start where compiling starts it")
        used.add(index)
    if len(used) != len(groups):
        raise ValueError("the stored cycles leave out a cyclic group of the graph")
    if [position[path[0]] for path in cycles] != sorted(position[path[0]] for path in cycles):
        raise ValueError("the stored cycles are not in plan order")


def _cyclic_groups(
    names: list[str], edges: dict[tuple[str, str], list[str]]
) -> list[set[str]]:
    """The graph's strongly connected components of two skills or more (Tarjan's
    algorithm, iterative so a long chain cannot exhaust the stack; linear time)."""
    successors: dict[str, list[str]] = {name: [] for name in names}
    for producer, consumer in edges:
        successors[producer].append(consumer)
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for root in names:
        if root in index_of:
            continue
        work = [(root, iter(successors[root]))]
        index_of[root] = low[root] = len(index_of)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, remaining = work[-1]
            step = next(remaining, None)
            if step is not None:
                if step not in index_of:
                    index_of[step] = low[step] = len(index_of)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(successors[step])))
                elif step in on_stack:
                    low[node] = min(low[node], index_of[step])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index_of[node]:
                group: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return groups


def _answers(
    specs: Sequence[SkillSpec], edges: dict[tuple[str, str], list[str]]
) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """``plan_order`` and ``parallel_stages`` of an acyclic graph (see ``_check``);
    ``ValueError`` if the graph has a cycle (the entry claimed it had none)."""
    import heapq

    position = {spec.name: index for index, spec in enumerate(specs)}
    consumers: dict[str, list[str]] = {name: [] for name in position}
    waiting = dict.fromkeys(position, 0)  # producers not yet placed
    for producer, consumer in edges:
        consumers[producer].append(consumer)
        waiting[consumer] += 1
    ready = [position[name] for name, count in waiting.items() if not count]
    heapq.heapify(ready)
    names = [spec.name for spec in specs]
    order: list[str] = []
    generation = dict.fromkeys(position, 0)
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for consumer in consumers[name]:
            generation[consumer] = max(generation[consumer], generation[name] + 1)
            waiting[consumer] -= 1
            if not waiting[consumer]:
                heapq.heappush(ready, position[consumer])
    if len(order) != len(names):
        raise ValueError("the stored answers say acyclic, the graph has a cycle")
    levels: list[list[str]] = [[] for _ in range(max(generation.values()) + 1)]
    for name in names:  # plan order within each generation
        levels[generation[name]].append(name)
    parallel = {spec.name: spec.can_run_parallel for spec in specs}
    stages: list[tuple[str, ...]] = []
    for level in levels:
        together = tuple(name for name in level if parallel[name])
        if together:
            stages.append(together)
        stages.extend((name,) for name in level if not parallel[name])
    return tuple(order), tuple(stages)


# --- writing -----------------------------------------------------------------------------


def _save(path: Path, material: str, graph: PlanGraph) -> None:
    entry = {
        "format": FORMAT,
        "material": material,
        "cycles": [list(path) for path in graph.cycles],
        "stages": [list(stage) for stage in graph.stages],
        "order": list(graph.order),
    }
    import tempfile  # only on a miss (it imports random, hashlib's friends...)

    try:
        folder = path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(entry, out, separators=(",", ":"))
            os.replace(temporary, path)
        except BaseException:
            _remove(Path(temporary))
            raise
        if next(_writes) % _PRUNE_EVERY == 0:
            _prune(folder)
    except OSError as exc:
        log.debug("plan store: could not write %s (%s); compiling without it", path, exc)


def _prune(folder: Path) -> None:
    """Keep the newest ``MAX_ENTRIES`` entries; drop temporary files a crash left behind."""
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(".json")]
    except OSError:
        return
    now = time.time()
    # A temporary file another process is still writing is young; one a crash left is old.
    stale = [e for e in entries if e.name.startswith(".tmp-") and now - _mtime(e) > 60]
    kept = [e for e in entries if not e.name.startswith(".tmp-")]
    if len(kept) > MAX_ENTRIES:
        kept.sort(key=_mtime)
        stale += kept[: len(kept) - MAX_ENTRIES // 2]
    for entry in stale:
        _remove(Path(entry.path))


def _mtime(entry: os.DirEntry[str]) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
