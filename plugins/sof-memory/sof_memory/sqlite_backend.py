"""The embedded memory store: one SQLite file, full-text ranked with FTS5/bm25.

Needs nothing but the standard library. The database runs in WAL mode so readers never
block each other or the writer; each thread gets its own connection (SQLite connections
must not be shared across threads mid-statement), and writes are serialised by a lock
inside the process and by SQLite's busy timeout across processes. ``":memory:"`` keeps a
single shared connection behind a lock, since every new connection would be a new database.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sof_memory.backend import MemoryDocument, MemoryFilters, MemoryHit, utc_now
from sof_memory.errors import MemoryBackendError
from sof_memory.fts import bm25_to_score, fts5_match
from sof_memory.paths import MEMORY_IN_RAM, resolve_db_path

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0

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

# Same id: keep the original row and creation time; refresh only what changed.
_UPSERT = """
INSERT INTO documents (id, text, source, created_at, metadata) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
    text = excluded.text, source = excluded.source, metadata = excluded.metadata
WHERE documents.text IS NOT excluded.text
   OR documents.source IS NOT excluded.source
   OR documents.metadata IS NOT excluded.metadata
"""


class SQLiteMemoryBackend:
    """The default ``MemoryBackend`` (name ``"sqlite"``).

    ``path`` given here wins over configuration; without it the path comes from
    ``configure(settings)`` / ``$SOF_MEMORY_PATH`` / the user data dir, resolved on first use,
    so creating the object (as plugin registration does) never touches the disk.
    """

    name = "sqlite"

    def __init__(self, path: str | Path | None = None) -> None:
        self._explicit_path = None if path is None else str(path)
        self._settings: dict[str, Any] = {}
        self._path: str | None = None
        self._lock = threading.RLock()  # guards setup, writes and the :memory: connection
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._generation = 0
        self._shared: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SQLiteMemoryBackend(path={self.path!r})"

    # --- configuration ---------------------------------------------------------------------

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Take ``plugin_settings.memory``; a changed path closes connections to the old one."""
        with self._lock:
            self._settings = dict(settings)
            moved = self._path is not None and resolve_db_path(self._settings) != self._path
            if self._explicit_path is None and moved:
                self.close()

    @property
    def path(self) -> str:
        """The database file in use (or that will be used), or ``":memory:"``."""
        if self._path is not None:
            return self._path
        return self._explicit_path or resolve_db_path(self._settings)

    # --- connections -----------------------------------------------------------------------

    def _open(self, path: str) -> sqlite3.Connection:
        try:
            if path != MEMORY_IN_RAM:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise MemoryBackendError(
                self.name,
                f"cannot open database {path!r}: {exc}; set SOF_MEMORY_PATH or "
                "plugin_settings.memory.path to a writable location",
            ) from exc
        conn.row_factory = sqlite3.Row
        return conn

    def _setup(self, conn: sqlite3.Connection, path: str) -> None:
        try:
            if path != MEMORY_IN_RAM:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise MemoryBackendError(
                        self.name, f"could not switch {path!r} to WAL mode (got {mode!r})"
                    )
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise MemoryBackendError(
                self.name,
                f"{path!r} is not a usable memory database ({exc}); move it away or point "
                "SOF_MEMORY_PATH elsewhere",
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (or the shared in-RAM one), opened and set up on demand."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and getattr(local, "generation", -1) == self._generation:
            return conn
        with self._lock:
            if self._path is None:
                self._path = self.path
            path = self._path
            if path == MEMORY_IN_RAM:
                if self._shared is None:
                    self._shared = self._open(path)
                    self._setup(self._shared, path)
                    self._connections.append(self._shared)
                conn = self._shared
            else:
                conn = self._open(path)
                if not self._connections:
                    self._setup(conn, path)
                else:
                    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                self._connections.append(conn)
            local.conn = conn
            local.generation = self._generation
            return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        if conn is self._shared:
            with self._lock:
                yield conn
        else:
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection; the next call reopens (possibly at a new path)."""
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):  # closing is best effort
                    conn.close()
            self._connections.clear()
            self._shared = None
            self._path = None
            self._generation += 1

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
        rows = [_row(doc) for doc in documents]
        if not rows:
            return []
        with self._writing() as conn:
            conn.executemany(_UPSERT, rows)
        return [row[0] for row in rows]

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
        with self._reading() as conn:
            rows = conn.execute(sql, [match, *params, limit]).fetchall()
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
        with self._reading() as conn:
            count, sources, oldest, newest = conn.execute(
                "SELECT count(*), count(DISTINCT source), min(created_at), max(created_at) "
                "FROM documents"
            ).fetchone()
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
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
        with self._writing() as conn:
            # executemany's rowcount sums direct changes only (not the FTS trigger's).
            return conn.executemany("DELETE FROM documents WHERE id = ?", wanted).rowcount

    def clear(self) -> None:
        """Remove every document."""
        with self._writing() as conn:
            conn.execute("DELETE FROM documents")


def _row(doc: MemoryDocument) -> tuple[str, str, str, str, str]:
    if not isinstance(doc.text, str) or not doc.text.strip():
        raise ValueError("a memory document needs non-empty text")
    try:
        metadata = json.dumps(dict(doc.metadata), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata of document {doc.resolved_id()!r} is not JSON: {exc}") from exc
    return (doc.resolved_id(), doc.text, doc.source or "", doc.created_at or utc_now(), metadata)


def _filter_sql(filters: MemoryFilters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.sources:
        clauses.append(f"d.source IN ({', '.join('?' * len(filters.sources))})")
        params.extend(filters.sources)
    if filters.tags:
        marks = ", ".join("?" * len(filters.tags))
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(d.metadata, '$.tags') AS t "
            f"WHERE t.value IN ({marks}))"
        )
        params.extend(filters.tags)
    if filters.profile:
        clauses.append(
            "(json_extract(d.metadata, '$.profile') IS NULL "
            "OR json_extract(d.metadata, '$.profile') = ?)"
        )
        params.append(filters.profile)
    for key, value in filters.metadata.items():
        clauses.append("json_extract(d.metadata, ?) IS json_extract(?, '$')")
        params.extend([_json_path(key), json.dumps(value)])
    where = "".join(f" AND {c}" for c in clauses)
    return where, params


def _json_path(key: str) -> str:
    return '$."' + str(key).replace("\\", "\\\\").replace('"', '\\"') + '"'
