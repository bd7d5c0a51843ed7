"""The planners' plan cache: a query planned once is not planned again while nothing changed.

The key is a normalised signature of the query, the active profile, the planner with its
settings, and a fingerprint of the registered skills (name, version, declared keys,
triggers, and the distribution and version of the plugin providing each): installing,
removing or upgrading a plugin makes a new fingerprint, so its old
plans are never served. Entries live ``plan_cache_ttl`` seconds, at most ``plan_cache_size``
of them (least recently used first out), in a ``cachetools`` cache behind a lock; hits,
misses and evictions are counted for the engine's stats.

With ``plan_cache_persist`` the plans are also written to a SQLite file (``PlanStore``),
which survives restarts and is shared by the processes of one machine: a miss in memory
reads it before planning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cachetools

from sof_core.planning.result import PlanResult

log = logging.getLogger("sof.planning")

_SPACE = re.compile(r"\s+")
#: Punctuation at the ends of a query that never changes its plan.
_EDGES = " \t\n\"'`.,;:!?\u00bf\u00a1"


def query_signature(query: str) -> str:
    """The query as the cache sees it: Unicode-normalised (NFKC), case-folded, whitespace
    collapsed, trailing punctuation dropped, so "What is 2+2?" and "what is  2+2" share a
    plan. Digits and operators are kept: they change what a planner chooses; so is a "!"
    right after a digit or ")" ("what is 5!" is a factorial, "what is 5" is not)."""
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", query).casefold())
    end = len(text.rstrip(_EDGES))
    body = text[:end].lstrip(_EDGES)
    if body and (body[-1].isdigit() or body[-1] == ")"):
        rest = text[end:]
        body += "!" * (len(rest) - len(rest.lstrip("!")))
    return body


def skills_fingerprint(specs: Iterable[Any],
                       origins: Mapping[str, Sequence[Any]] | None = None) -> str:
    """A digest of every registered skill's name, version, declared keys and triggers, and
    of where it comes from (``origins``: by skill name, its plugin's distribution name and
    version), so upgrading a plugin whose skills keep their declarations but change their
    code (``planning_score``, ``can_handle_query``) still makes a new fingerprint."""
    origins = origins or {}
    material = [
        [spec.name, spec.version, list(spec.required_inputs), list(spec.optional_inputs),
         list(spec.output_keys), bool(spec.requires_external_access),
         bool(getattr(spec, "vets_content", False)),
         [repr(t) for t in _raw_triggers(spec.skill_class)],
         list(origins.get(spec.name, ()))]
        for spec in sorted(specs, key=lambda s: s.name)
    ]
    return hashlib.sha256(json.dumps(material, default=str).encode()).hexdigest()[:32]


def _raw_triggers(skill_class: Any) -> tuple[Any, ...]:
    """The skill's ``triggers`` as declared (non-strings too: they change what the planner
    reports about the skill)."""
    value = getattr(skill_class, "triggers", ())
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        return (value,)


def cache_key(query: str, profile: str | None, planner: str, settings: str,
              fingerprint: str) -> str:
    """The cache key of one planning request (a hex digest: safe in SQLite and logs);
    ``settings`` is the planner's settings as canonical JSON."""
    material = json.dumps([query_signature(query), profile or "", planner, settings,
                           fingerprint], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


class _Counting(cachetools.TTLCache):  # type: ignore[type-arg]
    """A TTL cache that counts what it had to drop to make room (not expiries)."""

    def __init__(self, maxsize: int, ttl: float, on_evict: Any) -> None:
        super().__init__(maxsize=maxsize, ttl=ttl)
        self._on_evict = on_evict

    def popitem(self) -> Any:
        item = super().popitem()
        self._on_evict()
        return item


class PlanCache:
    """Plans by key, for ``ttl`` seconds (None: no expiry), at most ``maxsize``."""

    def __init__(self, maxsize: int = 256, ttl: float | None = 3600.0,
                 store: PlanStore | None = None) -> None:
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.store = store
        self._shape: tuple[int, float | None] = (0, None)
        self._data: _Counting = self._make(maxsize, ttl)

    def _make(self, maxsize: int, ttl: float | None) -> _Counting:
        self._shape = (maxsize, ttl)
        return _Counting(maxsize, ttl if ttl is not None else float("inf"), self._evicted)

    def _evicted(self) -> None:
        self.evictions += 1  # called under self._lock (from inside a set)

    def configure(self, maxsize: int, ttl: float | None) -> None:
        """Apply new limits (a live config change); a different shape starts empty."""
        with self._lock:
            if (maxsize, ttl) != self._shape:
                self._data = self._make(maxsize, ttl)

    def get(self, key: str,
            usable: Callable[[PlanResult], str | None] | None = None) -> PlanResult | None:
        """A copy of the cached plan (hit), or None (miss); the store is asked on a miss in
        memory. ``usable`` says what is wrong with a stored plan (a skill that is not
        registered now, say), or None: such a plan is a miss, logged once."""
        with self._lock:
            found: PlanResult | None = self._data.get(key)
            if found is not None:
                self.hits += 1
                return found.copy(cache_hit=True)
        stored = self.store.get(key) if self.store is not None else None
        if stored is not None and usable is not None:
            problem = usable(stored)
            if problem is not None:
                assert self.store is not None
                self.store.unusable(key, problem)
                stored = None
        with self._lock:
            if stored is None:
                self.misses += 1
                return None
            self.hits += 1
            self._data[key] = stored
        return stored.copy(cache_hit=True)

    def put(self, key: str, result: PlanResult) -> None:
        kept = result.copy(cache_hit=False)
        with self._lock:
            self._data[key] = kept
        if self.store is not None:
            self.store.put(key, kept, self._shape[1], self._shape[0])

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
        if self.store is not None:
            self.store.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                    "size": len(self._data), "maxsize": self._shape[0],
                    "ttl": self._shape[1],
                    "store": str(self.store.path) if self.store is not None else None}


def default_store_path() -> Path:
    """``$XDG_CACHE_HOME/sof/planner-plans.sqlite`` (or the platform's user cache dir)."""
    from sof_core.graph.plan_store import store_dir

    return store_dir().parent / "planner-plans.sqlite"


class PlanStore:
    """Plans in a SQLite file, shared by every process that opens it.

    WAL mode lets readers and a writer work at once; a busy timeout makes concurrent
    writers wait instead of failing. A broken or unwritable file is logged and then
    ignored: the cache in memory still works.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._broken = False
        #: The keys of unusable entries already logged.
        self._logged: set[str] = set()

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is not None or self._broken:
            return self._db
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), timeout=5.0, check_same_thread=False,
                                 isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS plans (key TEXT PRIMARY KEY, plan TEXT "
                       "NOT NULL, stored REAL NOT NULL, expires REAL)")
        except (sqlite3.Error, OSError) as exc:
            log.warning("plan cache store %s is unusable (%s); plans are cached in memory "
                        "only", self.path, exc)
            self._broken = True
            return None
        self._db = db
        return db

    def get(self, key: str) -> PlanResult | None:
        with self._lock:
            db = self._connect()
            if db is None:
                return None
            try:
                row = db.execute("SELECT plan, expires FROM plans WHERE key = ?",
                                 (key,)).fetchone()
            except sqlite3.Error as exc:
                log.warning("reading the plan cache store %s failed: %s", self.path, exc)
                return None
        if row is None or (row[1] is not None and row[1] <= time.time()):
            return None
        try:
            data = json.loads(row[0])
            problem = _shape_problem(data)
            if problem is None:
                return PlanResult.from_dict(data)
        except Exception as exc:  # whatever is in the file: never an error out of planning
            problem = f"{type(exc).__name__}: {exc}"
        self.unusable(key, problem)
        return None

    def unusable(self, key: str, problem: str) -> None:
        """A stored plan that cannot be served: a miss, logged once per entry (the next
        plan of that query replaces it)."""
        with self._lock:
            if key in self._logged:
                return
            if len(self._logged) > 1024:
                self._logged.clear()
            self._logged.add(key)
        log.warning("plan cache store %s: ignoring an unusable entry (%s); planning again",
                    self.path, problem[:200])

    def put(self, key: str, result: PlanResult, ttl: float | None, maxsize: int) -> None:
        now = time.time()
        expires = None if ttl is None else now + ttl
        data = json.dumps(result.to_dict())
        with self._lock:
            db = self._connect()
            if db is None:
                return
            try:
                db.execute("INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?)",
                           (key, data, now, expires))
                db.execute("DELETE FROM plans WHERE expires IS NOT NULL AND expires <= ?",
                           (now,))
                db.execute("DELETE FROM plans WHERE key NOT IN (SELECT key FROM plans ORDER "
                           "BY stored DESC LIMIT ?)", (maxsize,))
            except sqlite3.Error as exc:
                log.warning("writing the plan cache store %s failed: %s", self.path, exc)

    def clear(self) -> None:
        with self._lock:
            db = self._connect()
            if db is not None:
                try:
                    db.execute("DELETE FROM plans")
                except sqlite3.Error as exc:
                    log.warning("clearing the plan cache store %s failed: %s", self.path, exc)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _shape_problem(data: Any) -> str | None:
    """What makes a decoded entry not a stored plan (``PlanResult.to_dict``), or None."""
    if not isinstance(data, dict):
        return f"a plan is a JSON object, not {type(data).__name__}"
    plan = data.get("plan")
    if not isinstance(plan, list) or not plan or not all(isinstance(n, str) for n in plan):
        return "its 'plan' is not a non-empty list of skill names"
    stages = data.get("stages", [])
    if not isinstance(stages, list) or not all(
            isinstance(st, list) and all(isinstance(n, str) for n in st) for st in stages):
        return "its 'stages' is not a list of lists of skill names"
    for field in ("reasons", "scores", "skipped"):
        if not isinstance(data.get(field, {}), dict):
            return f"its {field!r} is not an object"
    for field in ("fallbacks", "changes"):
        if not isinstance(data.get(field, []), list):
            return f"its {field!r} is not a list"
    return None


def store_for(config: Any) -> PlanStore | None:
    """The configured persistent store, or None when ``plan_cache_persist`` is off."""
    if not getattr(config, "plan_cache_persist", False):
        return None
    path = getattr(config, "plan_cache_path", None)
    return PlanStore(os.path.expanduser(path) if path else default_store_path())
