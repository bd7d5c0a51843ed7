"""Hostile import input: one bad line never loses the others, and nothing stored breaks search.

Found by the fault matrix of issue 8: a JSONL line nested 5,000 deep raised RecursionError and
nothing at all was stored; ``NaN`` metadata was stored and then broke every filtered search.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import pytest
import sof_memory.plugin as memory_plugin
from sof_memory import MemoryDocument, MemoryFilters, SQLiteMemoryBackend
from sof_memory.importer import parse_file
from sof_memory.metadata import MAX_METADATA_DEPTH

#: Nested past what json.loads parses on every Python (1,000 levels on 3.11, ~10,000 on 3.13).
DEEP = "[" * 50_000 + "]" * 50_000


def run_inline(*argv: str) -> int:
    root = argparse.ArgumentParser(prog="sof")
    memory_plugin.sof_register_commands(root.add_subparsers())
    args = root.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def memory_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "inline.db"
    monkeypatch.setenv("SOF_MEMORY_PATH", str(path))
    return path


def stored_texts(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return sorted(row[0] for row in conn.execute("SELECT text FROM documents"))


def test_a_line_nested_past_the_parser_is_skipped_and_the_other_lines_and_files_are_stored(
    memory_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "first.jsonl"
    first.write_text(f'{{"text": "alpha memory"}}\n{{"text": "deep", "metadata": {{"x": {DEEP}}}}}'
                     f'\n{DEEP}\n{{"text": "beta memory"}}\n')
    second = tmp_path / "second.md"
    second.write_text("# Notes\n\ngamma memory\n")
    code = run_inline("memory", "import", str(first), str(second), "--json")
    captured = capsys.readouterr()
    assert code == 0  # bad lines are skipped with a warning; only an unreadable path is fatal
    summary = json.loads(captured.out)
    assert summary["documents"] == 3 and summary["skipped_lines"] == 2
    assert summary["skipped_files"] == 0
    assert f"warning: {first}:2: invalid JSON (nested too deeply to parse)" in captured.err
    assert f"warning: {first}:3: invalid JSON (nested too deeply to parse)" in captured.err
    assert "Traceback" not in captured.err
    assert stored_texts(memory_path) == ["# Notes\n\ngamma memory", "alpha memory", "beta memory"]


def test_the_summary_line_says_how_many_lines_were_skipped(
    memory_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(f'{{"text": "one"}}\n{DEEP}\n{{oops\n')
    assert run_inline("memory", "import", str(data)) == 0
    out = capsys.readouterr().out
    assert "imported 1 document(s)" in out and "skipped 2 bad line(s) and 0 path(s)" in out


@pytest.mark.parametrize(
    ("value", "shown"),
    [("NaN", "nan"), ("Infinity", "inf"), ("-Infinity", "-inf"), ("1e999", "inf"),
     ('{"a": [1, NaN]}', "nan")],
)
def test_non_finite_metadata_lines_are_skipped_naming_the_key(
    tmp_path: Path, value: str, shown: str
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(f'{{"text": "ok"}}\n{{"text": "bad", "metadata": {{"score": {value}}}}}\n')
    parsed = parse_file(data)
    assert [d.text for d in parsed.documents] == ["ok"]
    (issue,) = parsed.issues
    assert issue.line == 2 and not issue.skipped_file
    assert str(issue).startswith(f"{data}:2: metadata['score']")
    assert f"is {shown}: JSON has no NaN or infinity" in str(issue)


def test_a_jsonl_line_that_is_not_utf8_is_skipped_alone(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_bytes(b'{"text": "before"}\n{"text": "caf\xe9"}\n{"text": "after \\ud800"}\n'
                     b'{"text": "last"}\r\n')
    parsed = parse_file(data)
    assert [d.text for d in parsed.documents] == ["before", "last"]
    assert [str(i) for i in parsed.issues] == [
        f"{data}:2: not UTF-8 text (byte 0xe9 at column 14)",
        f"{data}:3: 'text' is not valid UTF-8 text (lone surrogate U+D800 at position 6)",
    ]


def test_a_text_file_that_is_not_utf8_names_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"fine\nstill fine\nbad \xff here\n")
    (issue,) = parse_file(notes).issues
    assert issue.skipped_file
    assert str(issue) == f"{notes}: not UTF-8 text (byte 0xff on line 3)"


def test_metadata_nested_deeper_than_the_limit_is_skipped(tmp_path: Path) -> None:
    ok = "[" * (MAX_METADATA_DEPTH - 1) + "]" * (MAX_METADATA_DEPTH - 1)
    too_deep = "[" * MAX_METADATA_DEPTH + "]" * MAX_METADATA_DEPTH
    data = tmp_path / "data.jsonl"
    data.write_text(f'{{"text": "ok", "metadata": {{"x": {ok}}}}}\n'
                    f'{{"text": "deep", "metadata": {{"x": {too_deep}}}}}\n')
    parsed = parse_file(data)
    assert [d.text for d in parsed.documents] == ["ok"]
    assert f"nested more than {MAX_METADATA_DEPTH} levels deep" in str(parsed.issues[0])


def test_non_finite_metadata_is_refused_by_the_backend_and_filtered_search_keeps_working(
    backend: SQLiteMemoryBackend,
) -> None:
    backend.add("finite sqlite note", metadata={"profile": "p", "score": 1.5})
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match=r"metadata\['score'\] is .*JSON has no NaN"):
            backend.add("sqlite note", metadata={"score": bad})
        with pytest.raises(ValueError, match=r"metadata\['a'\]\[0\]\['b'\] is"):
            backend.add_many([MemoryDocument("sqlite note", metadata={"a": [{"b": bad}]})])
    assert backend.stats()["documents"] == 1
    hits = backend.search("sqlite", filters=MemoryFilters(profile="p", tags=("x",)))
    assert hits == []
    assert len(backend.search("sqlite", filters=MemoryFilters(profile="p"))) == 1


def test_a_row_with_nan_written_by_an_older_version_does_not_break_filtered_search(
    backend: SQLiteMemoryBackend, db_path: Path
) -> None:
    backend.add("good sqlite note", metadata={"profile": "p"})
    with sqlite3.connect(db_path) as conn:  # what the old version stored for --meta x=NaN
        conn.execute(
            "INSERT INTO documents (id, text, source, created_at, metadata) "
            "VALUES ('old', 'old sqlite note', 'cli', '2025-01-01', '{\"x\": NaN}')"
        )
    hits = backend.search("sqlite", filters=MemoryFilters(profile="p"))
    assert sorted(h.text for h in hits) == ["good sqlite note", "old sqlite note"]
    assert backend.search("sqlite", filters=MemoryFilters(tags=("t",))) == []
    assert backend.search("sqlite", filters=MemoryFilters(metadata={"x": 1})) == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"text": "caf\udce9"}, "text is not valid UTF-8 text (undecodable byte 0xe9"),
        ({"text": "ok", "source": "\ud800"}, "source is not valid UTF-8 text (lone surrogate"),
        ({"text": "ok", "metadata": {"a": {1: "x"}}}, "metadata['a'] has the key 1 (int)"),
        ({"text": "ok", "metadata": {"a": {"\udcff": 1}}}, "metadata['a'] has a key that is not"),
        ({"text": "ok", "metadata": {"when": b"x"}}, "metadata['when'] is a bytes, which is not"),
    ],
)
def test_the_backend_refuses_what_sqlite_cannot_store_naming_the_field(
    backend: SQLiteMemoryBackend, kwargs: dict[str, object], expected: str
) -> None:
    text = kwargs.pop("text")
    with pytest.raises(ValueError) as info:
        backend.add(str(text), **kwargs)  # type: ignore[arg-type]
    assert expected in str(info.value)
    assert backend.stats()["documents"] == 0
