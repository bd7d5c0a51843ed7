"""The embedded SQLite backend: ranking, query safety, filters, WAL, threads, paths."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sof_memory import (
    MemoryBackend,
    MemoryBackendError,
    MemoryDocument,
    MemoryFilters,
    SQLiteMemoryBackend,
)
from sof_memory.fts import bm25_to_score, fts5_match, query_terms
from sof_memory.paths import resolve_db_path


def test_the_sqlite_backend_implements_the_backend_protocol(backend: SQLiteMemoryBackend) -> None:
    assert isinstance(backend, MemoryBackend)
    assert backend.name == "sqlite"


def test_an_empty_database_returns_no_results_not_an_error(backend: SQLiteMemoryBackend) -> None:
    assert list(backend.search("anything at all")) == []
    assert backend.stats()["documents"] == 0


def test_a_query_without_matches_returns_no_results(filled: SQLiteMemoryBackend) -> None:
    assert list(filled.search("quantum chromodynamics")) == []


def test_results_are_ranked_best_first_with_scores_between_0_and_1(
    filled: SQLiteMemoryBackend,
) -> None:
    hits = filled.search("sqlite memory", limit=10)
    texts = [h.text for h in hits]
    # Both words, repeated, beat one word; gardening matches neither word.
    assert texts[0] == "SQLite memory store: the memory lives in SQLite."
    assert set(texts[1:]) == {"The memory of the team is long.", "SQLite is a small database."}
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s < 1.0 for s in scores)
    assert scores[0] > scores[1]


def test_limit_caps_the_number_of_hits(filled: SQLiteMemoryBackend) -> None:
    assert len(filled.search("sqlite memory", limit=1)) == 1
    with pytest.raises(ValueError, match="limit"):
        filled.search("sqlite", limit=0)


def test_hits_carry_the_stored_fields(filled: SQLiteMemoryBackend) -> None:
    hit = filled.search("gardening")[0]
    assert hit.to_dict().keys() == {"id", "text", "source", "score", "created_at", "metadata"}
    assert hit.source == "c"
    assert hit.metadata == {"tags": "garden"}
    assert hit.created_at.endswith("+00:00")


def test_stemming_matches_word_forms(backend: SQLiteMemoryBackend) -> None:
    backend.add("The memory system was redesigned last year.")
    assert backend.search("redesign")[0].text.startswith("The memory system")


@pytest.mark.parametrize(
    "query",
    [
        'what\'s "SAM"?',
        "AND OR (",
        "NOT",
        '"unbalanced',
        "col:umn * ^ NEAR(a b)",
        "sqlite) OR (memory",
        "-- ; DROP TABLE documents",
        "",
        "   ",
        "?!…",
        "SQLite*",
    ],
)
def test_user_text_is_never_parsed_as_fts5_syntax(filled: SQLiteMemoryBackend, query: str) -> None:
    hits = filled.search(query)  # must not raise
    assert isinstance(list(hits), list)
    assert filled.stats()["documents"] == 4


def test_quoted_and_punctuated_words_still_match(filled: SQLiteMemoryBackend) -> None:
    assert filled.search('"SQLite"?')[0].source in {"a", "b"}
    assert filled.search("what's gardening?")[0].source == "c"


def test_query_terms_drop_stopwords_unless_nothing_else_is_left() -> None:
    assert query_terms("When was the SAM memory system redesigned?") == [
        "sam", "memory", "system", "redesigned",
    ]
    assert query_terms("who are you") == ["who", "are", "you"]
    assert fts5_match("?!") is None
    assert fts5_match('say "hi"') == '"say" OR "hi"'


def test_bm25_maps_to_a_0_to_1_score_that_keeps_the_order() -> None:
    best = -5.0
    ranks = [-5.0, -2.0, -1.0, -0.01]
    scores = [bm25_to_score(r, best) for r in ranks]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < s <= 1.0 for s in scores)
    assert bm25_to_score(-5.0, -5.0) > 0.5  # the best hit, and strong in absolute terms
    assert bm25_to_score(3.0, -1.0) == 0.0  # never negative


def test_source_filter_keeps_only_those_sources(filled: SQLiteMemoryBackend) -> None:
    hits = filled.search("sqlite memory", filters=MemoryFilters(sources=("b",)))
    assert {h.source for h in hits} == {"b"}
    assert len(hits) == 2


def test_tag_filter_matches_list_and_string_tags(filled: SQLiteMemoryBackend) -> None:
    hits = filled.search("memory", filters=MemoryFilters(tags=("team", "db")))
    assert {h.source for h in hits} == {"a", "b"}
    assert [h.source for h in filled.search("gardening", filters=MemoryFilters(tags=("garden",)))] == ["c"]
    assert list(filled.search("memory", filters=MemoryFilters(tags=("nope",)))) == []


def test_profile_filter_keeps_that_profile_and_documents_without_one(
    filled: SQLiteMemoryBackend,
) -> None:
    hits = filled.search("sqlite memory", limit=10, filters=MemoryFilters(profile="business"))
    texts = {h.text for h in hits}
    assert "SQLite is a small database." in texts  # profile business
    assert "The memory of the team is long." in texts  # no profile
    assert "SQLite memory store: the memory lives in SQLite." not in texts  # researcher


def test_metadata_filter_compares_json_values(filled: SQLiteMemoryBackend) -> None:
    hits = filled.search("sqlite", filters=MemoryFilters(metadata={"lang": "en"}))
    assert [h.text for h in hits] == ["SQLite is a small database."]


def test_adding_the_same_document_twice_stores_it_once(backend: SQLiteMemoryBackend) -> None:
    first = backend.add("Same text", source="s")
    second = backend.add("Same text", source="s")
    assert first == second
    assert backend.stats()["documents"] == 1


def test_an_explicit_id_updates_the_document_and_its_index(backend: SQLiteMemoryBackend) -> None:
    backend.add("old words here", id="doc-1")
    backend.add("new phrasing entirely", id="doc-1")
    assert backend.stats()["documents"] == 1
    assert list(backend.search("old")) == []
    assert backend.search("phrasing")[0].id == "doc-1"


def test_delete_and_clear_remove_documents_from_search(filled: SQLiteMemoryBackend) -> None:
    gardening = filled.search("gardening")[0].id
    assert filled.delete([gardening, "missing-id"]) == 1
    assert list(filled.search("gardening")) == []
    filled.clear()
    assert filled.stats()["documents"] == 0
    assert list(filled.search("sqlite")) == []


def test_empty_text_and_unserialisable_metadata_are_rejected(backend: SQLiteMemoryBackend) -> None:
    with pytest.raises(ValueError, match="non-empty text"):
        backend.add("   ")
    with pytest.raises(ValueError, match="not JSON"):
        backend.add("x", metadata={"when": object()})
    assert backend.stats()["documents"] == 0


def test_the_database_file_is_in_wal_mode(filled: SQLiteMemoryBackend, db_path: Path) -> None:
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert filled.stats()["journal_mode"] == "wal"


def test_documents_persist_across_backend_instances(filled: SQLiteMemoryBackend, db_path: Path) -> None:
    filled.close()
    reopened = SQLiteMemoryBackend(db_path)
    try:
        assert reopened.stats()["documents"] == 4
        assert reopened.search("gardening")[0].source == "c"
    finally:
        reopened.close()


def test_concurrent_readers_in_threads_search_at_once_on_pooled_connections(
    filled: SQLiteMemoryBackend,
) -> None:
    readers = 8
    barrier = threading.Barrier(readers)
    results: dict[int, list[list[str]]] = {}
    errors: list[BaseException] = []

    def read(index: int) -> None:
        try:
            barrier.wait(timeout=10)  # all threads search at the same moment
            results[index] = [
                [h.source for h in filled.search("sqlite memory", limit=10)] for _ in range(25)
            ]
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    expected = [h.source for h in filled.search("sqlite memory", limit=10)]
    assert len(results) == readers
    assert all(run == expected for runs in results.values() for run in runs)
    assert filled.open_connections <= filled.max_connections  # shared, and bounded


def test_readers_keep_working_while_a_thread_writes(backend: SQLiteMemoryBackend) -> None:
    backend.add("seed document about sqlite")
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}

    def write() -> None:
        try:
            for i in range(60):
                backend.add(f"sqlite note number {i}", source="writer")
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def read(index: int) -> None:
        try:
            while not stop.is_set():
                seen[index].append(len(backend.search("sqlite", limit=100)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write)]
    threads += [threading.Thread(target=read, args=(i,)) for i in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert backend.stats()["documents"] == 61
    for counts in seen.values():
        # Each reader sees whole commits only, so what it sees never shrinks.
        assert counts == sorted(counts)
        assert all(1 <= c <= 61 for c in counts)


def test_in_memory_database_is_shared_by_threads() -> None:
    store = SQLiteMemoryBackend(":memory:")
    store.add("shared in RAM")
    found: list[int] = []
    t = threading.Thread(target=lambda: found.append(len(store.search("shared"))))
    t.start()
    t.join()
    assert found == [1]
    assert store.stats()["path"] == ":memory:"
    store.close()


def test_parent_directories_are_created(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "memory.db"
    store = SQLiteMemoryBackend(target)
    store.add("hello")
    store.close()
    assert target.exists()


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    store = SQLiteMemoryBackend(junk)
    with pytest.raises(MemoryBackendError, match=r"junk\.db") as info:
        store.search("x")
    assert "SOF_MEMORY_PATH" in str(info.value)


def test_path_comes_from_env_then_settings_then_user_data_dir(tmp_path: Path) -> None:
    env = {"SOF_MEMORY_PATH": str(tmp_path / "env.db")}
    settings = {"path": str(tmp_path / "settings.db")}
    assert resolve_db_path(settings, env) == str(tmp_path / "env.db")
    assert resolve_db_path(settings, {}) == str(tmp_path / "settings.db")
    assert resolve_db_path({}, {"SOF_MEMORY_PATH": ":memory:"}) == ":memory:"
    assert resolve_db_path({}, {}).endswith(str(Path("sof") / "memory.db"))


def test_default_path_is_in_the_user_data_dir(tmp_path: Path) -> None:
    store = SQLiteMemoryBackend()
    store.add("goes to the default place")
    store.close()
    assert (tmp_path / "xdg-data" / "sof" / "memory.db").exists()  # XDG_DATA_HOME, see conftest


def test_a_relative_xdg_data_home_is_ignored(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The XDG spec: a relative value is invalid and ignored; it put the database wherever
    # the process happened to be started.
    import sys

    from sof_memory.paths import user_data_dir

    if sys.platform in ("win32", "darwin"):
        pytest.skip("XDG base dirs: Linux")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", "relative-data")
    assert user_data_dir() == tmp_path / "home" / ".local" / "share" / "sof"


def test_configure_moves_an_unpinned_store_to_the_new_path(tmp_path: Path) -> None:
    store = SQLiteMemoryBackend()
    store.configure({"path": str(tmp_path / "one.db")})
    store.add("first")
    store.configure({"path": str(tmp_path / "two.db")})
    assert store.stats()["documents"] == 0
    assert store.path == str(tmp_path / "two.db")
    store.close()


def test_documents_can_be_added_in_bulk_with_explicit_ids(backend: SQLiteMemoryBackend) -> None:
    ids = backend.add_many([MemoryDocument("one", id="x1"), MemoryDocument("two")])
    assert ids[0] == "x1" and len(ids[1]) == 24
    assert backend.add_many([]) == []
