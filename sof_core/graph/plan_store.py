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
  stored cycle must follow real edges, and stages and order must contain each skill once,
  put every producer before its consumers and run a ``can_run_parallel = False`` skill
  alone. A corrupt, stale or wrong entry is ignored and rebuilt. Everything else the
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

from sof_core._paths import cache_dir
from sof_core._version import __version__
from sof_core.config import SOFConfig
from sof_core.graph.edges import dependency_edges
from sof_core.skills.spec import SkillSpec

log = logging.getLogger("sof.plan_store")

#: Bump when the entry layout or the meaning of a stored answer changes.
FORMAT = 1
#: Larger plans are compiled in memory only.
MAX_SKILLS = 512
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
    producers, edges = dependency_edges(specs)
    if not specs:
        return PlanGraph(producers, edges, (), (), ())
    use_store = (
        len(specs) <= MAX_SKILLS
        and config.plan_store
        and config.enable_plan_cache
    )
    if not use_store:
        return _compute(specs, producers, edges)
    material = _material(specs)
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


def _material(specs: Sequence[SkillSpec]) -> str:
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
    return json.dumps([FORMAT, __version__, _code(), skills], separators=(",", ":"))


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
    try:
        raw = path.read_bytes()
    except OSError:
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
    """Raise ``ValueError`` unless the answers are true of this graph."""
    names = [spec.name for spec in specs]
    for path in cycles:
        if len(path) < 3 or path[0] != path[-1]:
            raise ValueError("a stored cycle is not closed")
        if any(pair not in edges for pair in itertools.pairwise(path)):
            raise ValueError("a stored cycle follows an edge the graph does not have")
    if cycles:
        if stages or order:
            raise ValueError("a cyclic plan has no stages")
        return
    if sorted(order) != sorted(names):
        raise ValueError("the stored order is not the plan's skills")
    position = {name: i for i, name in enumerate(order)}
    stage_of: dict[str, int] = {}
    parallel = {spec.name: spec.can_run_parallel for spec in specs}
    for index, stage in enumerate(stages):
        if len(stage) > 1 and not all(parallel[name] for name in stage):
            raise ValueError("a skill that may not run in parallel shares a stage")
        for name in stage:
            if name in stage_of:
                raise ValueError("a skill is in two stages")
            stage_of[name] = index
    if stage_of.keys() != set(names):
        raise ValueError("the stored stages are not the plan's skills")
    for producer, consumer in edges:
        if stage_of[producer] >= stage_of[consumer] or position[producer] > position[consumer]:
            raise ValueError("a stored answer runs a consumer before its producer")


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
