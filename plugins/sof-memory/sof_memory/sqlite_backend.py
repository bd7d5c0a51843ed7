"""The embedded memory store: one SQLite file, full-text ranked with FTS5/bm25.

Needs nothing but the standard library. The database runs in WAL mode so readers never
block each other or the writer. Connections come from a small pool (``max_connections``,
default 8): a call borrows one and gives it back, so hundreds of runner threads share a
few connections (a connection per thread, kept for good, cost about two file descriptors
per thread ever seen). Writes are serialised by a lock inside the process and by SQLite's
busy timeout across processes. ``":memory:"`` keeps a single shared connection behind a
lock, since every new connection would be a new database.

Every ``sqlite3`` error of an operation (a damaged file, a locked or read-only one) becomes a
``MemoryBackendError`` naming the database file and what to do about it. Only creating the
schema writes to the file: opening it for a search leaves it as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sof_core import ConfigError
from sof_memory.backend import MemoryDocument, MemoryFilters, MemoryHit, utc_now
from sof_memory.errors import MemoryBackendError
from sof_memory.fts import bm25_to_score, fts5_match
from sof_memory.metadata import metadata_problem, text_problem, value_problem
from sof_memory.paths import ENV_PATH, MEMORY_IN_RAM, resolve_db_path

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
DEFAULT_MAX_CONNECTIONS = 8
MAX_CONNECTIONS_SETTING = "plugin_settings.memory.max_connections"
_SQLITE_MAX_INT = 2**63 - 1
_MISUSE = (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.NotSupportedError)

#: SQLite result codes (``sqlite3.Error.sqlite_errorname``, Python 3.11+) that say the file
#: is fine but cannot be used right now, or by this user; anything else means it is damaged
#: or is not a memory database.
_CONDITIONS = {
    "SQLITE_BUSY": "another process holds it locked; try again when it is done",
    "SQLITE_LOCKED": "another process holds it locked; try again when it is done",
    "SQLITE_READONLY": "it cannot be written; check its permissions and those of its "
    "folder (SQLite needs to create -wal and -shm files next to it)",
    "SQLITE_PERM": "access was denied; check the permissions of the file and its folder",
    "SQLITE_CANTOPEN": "it cannot be opened; check that its folder exists and is writable",
    "SQLITE_FULL": "the disk is full; free some space",
    "SQLITE_IOERR": "reading or writing the file failed; check the disk",
    "SQLITE_NOMEM": "SQLite ran out of memory",
    "SQLITE_INTERRUPT": "the operation was interrupted",
}
#: The same, from the message, where Python does not give the code (3.10).
_CONDITION_MESSAGES = {
    "database is locked": "SQLITE_BUSY",
    "database table is locked": "SQLITE_LOCKED",
    "readonly database": "SQLITE_READONLY",
    "unable to open database": "SQLITE_CANTOPEN",
    "database or disk is full": "SQLITE_FULL",
    "disk i/o error": "SQLITE_IOERR",
    "interrupted": "SQLITE_INTERRUPT",
    "out of memory": "SQLITE_NOMEM",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    rowid      INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    text       TEXT    NOT NULL,
    source     TEXT    NOT NULL DEFAULT '',
    created_at TEXT    NOT NULL,
    metadata   TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    text, content='documents', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS documents_ai AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE OF text ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO documents_fts(rowid, text) VALUES (new.rowid, new.text);
END;
"""

# Metadata as the filters read it. Rows stored by older versions may hold text SQLite cannot
# parse (``NaN``); they count as having no metadata rather than failing the whole search.
_METADATA = "(CASE WHEN json_valid(d.metadata) THEN d.metadata ELSE '{}' END)"

# Same id: keep the original row and creation time; refresh only what changed.
_UPSERT = """
INSERT INTO documents (id, text, source, created_at, metadata) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
    text = excluded.text, source = excluded.source, metadata = excluded.metadata
WHERE documents.text IS NOT excluded.text
   OR documents.source IS NOT excluded.source
   OR documents.metadata IS NOT excluded.metadata
"""


def _placing_env() -> tuple[str | None, ...]:
    """What decides where the default database is: the variables, and the working
    directory a relative path is taken from (cheap enough for every call)."""
    environ = os.environ
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # the working directory was deleted
        cwd = None
    return environ.get(ENV_PATH), environ.get("XDG_DATA_HOME"), environ.get("HOME"), cwd


#: Ids looked up per query (below SQLite's smallest default limit of 999 bound variables).
_IDS_PER_QUERY = 500


class SQLiteMemoryBackend:
    """The default ``MemoryBackend`` (name ``"sqlite"``).

    ``path`` given here wins over configuration; without it the path comes from
    ``configure(settings)`` / ``$SOF_MEMORY_PATH`` / the user data dir, resolved on first use,
    so creating the object (as plugin registration does) never touches the disk.
    """

    name = "sqlite"

    def __init__(
        self, path: str | Path | None = None, *, max_connections: int | None = None
    ) -> None:
        if max_connections is not None:
            _check_max_connections(max_connections, "max_connections")
        self._explicit_path = None if path is None else str(path)
        self._explicit_max = max_connections
        self._settings: dict[str, Any] = {}
        self._path: str | None = None
        self._lock = threading.RLock()  # guards setup, writes and the :memory: connection
        self._pool = threading.Condition(threading.Lock())  # guards the fields below
        self._idle: list[sqlite3.Connection] = []
        self._opened = 0  # connections open now, idle or borrowed (at most max_connections)
        self._generation = 0  # bumped by close(): borrowed connections of older ones close
        self._ready_for: str | None = None  # the path whose schema and WAL are set up
        self._shared: sqlite3.Connection | None = None
        #: The placing variables ``_path`` was resolved under (``_placing_env``).
        self._env: tuple[str | None, ...] = ()

    def __repr__(self) -> str:
        return f"SQLiteMemoryBackend(path={self.path!r})"

    # --- configuration ---------------------------------------------------------------------

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Take ``plugin_settings.memory``; a changed path closes connections to the old one."""
        with self._lock:
            self._settings = dict(settings)
            if self._explicit_path is None and self._path is not None:
                try:
                    moved = resolve_db_path(self._settings) != self._path
                except ConfigError:  # a bad path: reported by the next call, not here
                    moved = True
                if moved:
                    self.close()

    @property
    def path(self) -> str:
        """The database file in use (or that will be used), or ``":memory:"``: the one the
        placing variables give now, even before the next call moves the store there."""
        path = self._path
        if path is not None and (self._explicit_path is not None
                                 or _placing_env() == self._env):
            return path
        return self._explicit_path or resolve_db_path(self._settings)

    # --- connections -----------------------------------------------------------------------

    def _open(self, path: str) -> sqlite3.Connection:
        try:
            if path != MEMORY_IN_RAM:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (OSError, ValueError, sqlite3.Error) as exc:  # ValueError: a NUL, a surrogate
            raise MemoryBackendError(
                self.name,
                f"cannot open database {path!r}: {exc}; set SOF_MEMORY_PATH or "
                "plugin_settings.memory.path to a writable location",
            ) from exc
        conn.row_factory = sqlite3.Row
        return conn

    def _setup(self, conn: sqlite3.Connection, path: str) -> None:
        """WAL mode and the schema. Writes only what must change: the schema and its
        ``user_version`` when they are missing or older (a database already set up is only
        read, so a search never changes the file)."""
        try:
            if path != MEMORY_IN_RAM:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise MemoryBackendError(
                        self.name, f"could not switch {path!r} to WAL mode (got {mode!r})"
                    )
                conn.execute("PRAGMA synchronous=NORMAL")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version < SCHEMA_VERSION:
                conn.executescript(
                    f"BEGIN IMMEDIATE;\n{_SCHEMA}\nPRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;"
                )
            else:  # set up already: IF NOT EXISTS only reads, and never lowers the version
                conn.executescript(_SCHEMA)
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._failure(path, exc, "open") from exc
            raise

    def _failure(self, path: str, exc: sqlite3.Error, action: str) -> MemoryBackendError:
        """``exc``, met while trying to ``action`` the database at ``path``, as the error
        the caller gets: it names the file and says what to do."""
        return MemoryBackendError(self.name, database_problem(path, exc, action))

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Turn a ``sqlite3`` error raised inside into a ``MemoryBackendError``."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._failure(self.path, exc, action) from exc

    @property
    def max_connections(self) -> int:
        """How many connections the pool may hold open at once."""
        if self._explicit_max is not None:
            return self._explicit_max
        value = self._settings.get("max_connections", DEFAULT_MAX_CONNECTIONS)
        return _check_max_connections(value, MAX_CONNECTIONS_SETTING)

    @property
    def open_connections(self) -> int:
        """Connections open now (idle in the pool or borrowed by a call)."""
        with self._pool:
            return self._opened + (self._shared is not None)

    def _resolved_path(self) -> str:
        """The database in use. Without a path of its own, the one the variables that place
        it (``SOF_MEMORY_PATH``, ``XDG_DATA_HOME``, ``HOME``, and the working directory for
        a relative path) give now: one set afresh in a running process (a test's
        ``monkeypatch.setenv``, a host switching users) moves the store there, with the
        connections to the old file closed, as a changed ``plugin_settings.memory.path``
        does (``configure``)."""
        path = self._path
        if path is not None and self._explicit_path is None and _placing_env() != self._env:
            with self._lock:
                if self._path is not None and _placing_env() != self._env:
                    # Moved only if they now name another database: ":memory:" or an
                    # absolute path stays open (and its documents kept) across a chdir.
                    if resolve_db_path(self._settings) == self._path:
                        self._env = _placing_env()
                    else:
                        self.close()
            path = self._path
        if path is None:
            with self._lock:
                if self._path is None:
                    self._env = _placing_env()
                    self._path = self.path
                path = self._path
        return path

    def _shared_connection(self) -> sqlite3.Connection:
        """The one in-RAM connection; the caller holds ``self._lock``."""
        if self._shared is None:
            conn = self._open(MEMORY_IN_RAM)
            self._setup(conn, MEMORY_IN_RAM)
            self._shared = conn
        return self._shared

    def _new_connection(self, path: str) -> sqlite3.Connection:
        conn = self._open(path)
        with self._lock:
            if self._ready_for != path:
                self._setup(conn, path)  # closes conn if it fails
                self._ready_for = path
        return conn

    def _borrow(self) -> tuple[sqlite3.Connection, int]:
        """An idle connection, a new one while under the bound, else wait for one."""
        limit = self.max_connections
        with self._pool:
            if not self._idle and self._opened >= limit:
                waited = self._pool.wait_for(
                    lambda: bool(self._idle) or self._opened < limit, timeout=BUSY_TIMEOUT_S
                )
                if not waited:
                    raise MemoryBackendError(
                        self.name,
                        f"all {limit} connections stayed busy for {BUSY_TIMEOUT_S:.0f} s; "
                        f"raise {MAX_CONNECTIONS_SETTING} if many threads search at once",
                    )
            generation = self._generation
            if self._idle:
                return self._idle.pop(), generation
            self._opened += 1
        try:
            path = self._resolved_path()
            if path == MEMORY_IN_RAM:  # configure() moved the store into RAM meanwhile
                raise MemoryBackendError(self.name, "the in-RAM store has no connection pool")
            return self._new_connection(path), generation
        except BaseException:
            with self._pool:
                self._opened -= 1
                self._pool.notify()
            raise

    def _give_back(self, conn: sqlite3.Connection, generation: int) -> None:
        with self._pool:
            if generation == self._generation:
                self._idle.append(conn)
                self._pool.notify()
                return
            self._opened -= 1  # close() ran meanwhile: this one belongs to the old store
            self._pool.notify()
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    @contextmanager
    def _borrowed(self) -> Iterator[sqlite3.Connection]:
        conn, generation = self._borrow()
        try:
            yield conn
        finally:
            self._give_back(conn, generation)

    @contextmanager
    def _reading(self, action: str = "read") -> Iterator[sqlite3.Connection]:
        if self._resolved_path() == MEMORY_IN_RAM:
            with self._lock, self._translated(action):
                yield self._shared_connection()
            return
        with self._borrowed() as conn, self._translated(action):
            yield conn

    @contextmanager
    def _writing(self, action: str = "write to") -> Iterator[sqlite3.Connection]:
        with contextlib.ExitStack() as stack:
            if self._resolved_path() == MEMORY_IN_RAM:
                stack.enter_context(self._lock)
                conn = self._shared_connection()
            else:
                conn = stack.enter_context(self._borrowed())
                stack.enter_context(self._lock)
            stack.enter_context(self._translated(action))
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT may have ended it already
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close every connection; the next call reopens (possibly at a new path).

        Connections borrowed by calls still running are closed when those calls end.
        """
        with self._lock:
            with self._pool:
                idle, self._idle = self._idle, []
                self._opened -= len(idle)
                self._generation += 1
                self._ready_for = None
                self._pool.notify_all()
            if self._shared is not None:
                idle.append(self._shared)
                self._shared = None
            for conn in idle:
                with contextlib.suppress(sqlite3.Error):  # closing is best effort
                    conn.close()
            self._path = None

    # --- MemoryBackend ---------------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        source: str = "",
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> str:
        """Store one document; returns its id (a content hash unless ``id`` is given)."""
        doc = MemoryDocument(text=text, source=source, metadata=dict(metadata or {}), id=id)
        return self.add_many([doc])[0]

    def add_many(self, documents: Iterable[MemoryDocument]) -> list[str]:
        """Store documents in one transaction; re-adding an equal document changes nothing."""
        return self.add_many_counted(documents)[0]

    def add_many_counted(self, documents: Iterable[MemoryDocument]) -> tuple[list[str], int]:
        """``add_many``, and how many of the documents were not in the store before: counted
        in the same transaction, so another process writing meanwhile never changes it
        (``sof memory import`` reports it as "new")."""
        rows = [_row(doc) for doc in documents]
        if not rows:
            return [], 0
        ids = list(dict.fromkeys(row[0] for row in rows))
        with self._writing("store documents in") as conn:
            present = 0
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start:start + _IDS_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                present += conn.execute(
                    f"SELECT count(*) FROM documents WHERE id IN ({marks})", chunk
                ).fetchone()[0]
            conn.executemany(_UPSERT, rows)
        return [row[0] for row in rows], len(ids) - present

    def search(
        self, query: str, limit: int = 5, filters: MemoryFilters | None = None
    ) -> Sequence[MemoryHit]:
        """Up to ``limit`` documents matching ``query`` under ``filters``, best first."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        match = fts5_match(query)
        if match is None:
            return []
        where, params = _filter_sql(filters or MemoryFilters())
        sql = (
            "SELECT d.id, d.text, d.source, d.created_at, d.metadata, "
            "bm25(documents_fts) AS rank "
            "FROM documents_fts JOIN documents AS d ON d.rowid = documents_fts.rowid "
            f"WHERE documents_fts MATCH ?{where} "
            "ORDER BY rank, d.created_at DESC, d.rowid LIMIT ?"
        )
        with self._reading("search") as conn:
            # SQLite's LIMIT is a 64-bit integer; more than that is "all", as it would be.
            rows = conn.execute(sql, [match, *params, min(limit, _SQLITE_MAX_INT)]).fetchall()
        return [
            MemoryHit(
                id=row["id"],
                text=row["text"],
                source=row["source"],
                score=bm25_to_score(row["rank"], rows[0]["rank"]),
                created_at=row["created_at"],
                metadata=json.loads(row["metadata"]),
            )
            for row in rows
        ]

    def stats(self) -> dict[str, Any]:
        """Counts and storage facts for ``sof memory stats``."""
        with self._reading("read") as conn:
            count, sources, oldest, newest = conn.execute(
                "SELECT count(*), count(DISTINCT source), min(created_at), max(created_at) "
                "FROM documents"
            ).fetchone()
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            # Opens the full-text index (one row lookup): a broken index fails stats as it
            # fails search, so the command users check the store with never says "healthy".
            conn.execute("SELECT rowid FROM documents_fts WHERE rowid = 0").fetchall()
        path = self.path
        size = None
        if path != MEMORY_IN_RAM:
            size = sum(
                p.stat().st_size
                for p in (Path(path), Path(path + "-wal"))
                if p.exists()
            )
        return {
            "backend": self.name,
            "path": path,
            "documents": count,
            "sources": sources,
            "oldest": oldest,
            "newest": newest,
            "journal_mode": mode,
            "size_bytes": size,
        }

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id; returns how many existed."""
        wanted = [(i,) for i in ids]
        if not wanted:
            return 0
        with self._writing("delete from") as conn:
            # executemany's rowcount sums direct changes only (not the FTS trigger's).
            return conn.executemany("DELETE FROM documents WHERE id = ?", wanted).rowcount

    def clear(self) -> None:
        """Remove every document."""
        with self._writing("clear") as conn:
            conn.execute("DELETE FROM documents")


def _row(doc: MemoryDocument) -> tuple[str, str, str, str, str]:
    if not isinstance(doc.text, str) or not doc.text.strip():
        raise ValueError("a memory document needs non-empty text")
    for name in ("text", "source", "id", "created_at"):
        value = getattr(doc, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"a memory document's {name} must be a string, got {value!r}")
        problem = None if value is None else text_problem(value)
        if problem:
            raise ValueError(f"a memory document's {name} {problem}")
    doc_id = doc.resolved_id()
    problem = metadata_problem(doc.metadata)
    if problem:
        raise ValueError(f"metadata of document {doc_id!r} is not JSON: {problem}")
    metadata = json.dumps(dict(doc.metadata), sort_keys=True, ensure_ascii=False, allow_nan=False)
    return (doc.resolved_id(), doc.text, doc.source or "", doc.created_at or utc_now(), metadata)


def database_problem(path: str, exc: sqlite3.Error, action: str) -> str:
    """What went wrong with the database at ``path`` and what to do about it.

    A busy, read-only or unreachable file gets the remedy for that; any other error (a
    malformed page, a broken full-text index, a file that is not a memory database) means
    the file cannot be trusted, and the remedies are to restore a backup, to re-import into
    a fresh file, or to salvage what SQLite can still read.
    """
    detail = f"{type(exc).__name__}: {exc}"
    condition = _condition(exc)
    if condition is not None:
        return (
            f"cannot {action} the database {path!r} ({detail}): {_CONDITIONS[condition]}; "
            "or point SOF_MEMORY_PATH or plugin_settings.memory.path elsewhere"
        )
    if path == MEMORY_IN_RAM or isinstance(exc, _MISUSE):
        # In RAM there is no file to restore; a misuse of the sqlite3 module is this
        # plugin's bug, not the file's fault.
        where = "the in-RAM database" if path == MEMORY_IN_RAM else f"the database {path!r}"
        return f"cannot {action} {where} ({detail})"
    return (
        f"{path!r} is damaged or is not a usable memory database ({detail}). Restore it "
        "from a backup; or move it away (SOF_MEMORY_PATH or plugin_settings.memory.path "
        "can also point elsewhere) and re-import your documents with `sof memory import`; "
        f"or salvage what is readable with `sqlite3 {shlex.quote(path)} .recover | sqlite3 "
        "recovered.db` "
        "and use the recovered file"
    )


def _condition(exc: sqlite3.Error) -> str | None:
    """The key of ``_CONDITIONS`` that ``exc`` stands for, if any."""
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):
        for condition in _CONDITIONS:
            if name == condition or name.startswith(condition + "_"):
                return condition
        return None
    text = str(exc).lower()
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    return next((code for words, code in _CONDITION_MESSAGES.items() if words in text), None)


def _check_max_connections(value: Any, setting: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{setting} must be a positive integer (default {DEFAULT_MAX_CONNECTIONS}), "
            f"got {value!r}",
            key=setting,
        )
    return value


def _filter_sql(filters: MemoryFilters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.sources:
        clauses.append(f"d.source IN ({', '.join('?' * len(filters.sources))})")
        params.extend(filters.sources)
    if filters.tags:
        marks = ", ".join("?" * len(filters.tags))
        clauses.append(
            f"EXISTS (SELECT 1 FROM json_each({_METADATA}, '$.tags') AS t "
            f"WHERE t.value IN ({marks}))"
        )
        params.extend(filters.tags)
    if filters.profile:
        clauses.append(
            f"(json_extract({_METADATA}, '$.profile') IS NULL "
            f"OR json_extract({_METADATA}, '$.profile') = ?)"
        )
        params.append(filters.profile)
    for key, value in filters.metadata.items():
        problem = value_problem(value, f"metadata filter {key!r}")
        if problem:
            raise ValueError(problem)
        clauses.append(f"json_extract({_METADATA}, ?) IS json_extract(?, '$')")
        params.extend([_json_path(key), json.dumps(value)])
    where = "".join(f" AND {c}" for c in clauses)
    return where, params


def _json_path(key: str) -> str:
    return '$."' + str(key).replace("\\", "\\\\").replace('"', '\\"') + '"'
