"""Reading files into documents, and the bundled sample corpus with its planted conflict."""

from __future__ import annotations

import re
from pathlib import Path

from sof_memory import SQLiteMemoryBackend
from sof_memory.importer import expand_paths, parse_file, parse_jsonl, sample_corpus

DEMO_QUERY = "When was the SAM memory system redesigned, and what does it store?"


def test_a_markdown_file_is_one_document_by_default(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Memory\n\nSAM stores memories.\n\n## Capsules\n\nCapsules are shared.\n")
    parsed = parse_file(page)
    assert len(parsed.documents) == 1
    doc = parsed.documents[0]
    assert doc.source == str(page)
    assert doc.metadata == {"title": "Memory"}
    assert "Capsules are shared." in doc.text


def test_markdown_splits_into_heading_sections(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro line.\n\n# Memory\n\nSAM stores memories.\n\n```\n# not a heading\n```\n"
        "## Capsules\n\nCapsules are shared.\n"
    )
    docs = parse_file(page, "section").documents
    assert [d.metadata.get("title") for d in docs] == [None, "Memory", "Capsules"]
    assert "# not a heading" in docs[1].text  # fenced code stays in its section
    assert [d.metadata["section"] for d in docs] == [1, 2, 3]


def test_text_splits_into_paragraphs(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("First paragraph\nstill first.\n\n\nSecond one.\n   \nThird.")
    docs = parse_file(notes, "section").documents
    assert [d.text for d in docs] == ["First paragraph\nstill first.", "Second one.", "Third."]


def test_jsonl_bad_lines_are_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(
        '{"text": "good one", "source": "s1", "metadata": {"tags": ["x"]}}\n'
        "\n"
        "{not json\n"
        '["a list"]\n'
        '{"text": ""}\n'
        '{"text": "bad meta", "metadata": [1]}\n'
        '{"text": "no source"}\n'
    )
    parsed = parse_file(data)
    assert [d.text for d in parsed.documents] == ["good one", "no source"]
    assert parsed.documents[0].source == "s1"
    assert parsed.documents[1].source == str(data)  # defaults to the file
    messages = [str(i) for i in parsed.issues]
    assert [i.line for i in parsed.issues] == [3, 4, 5, 6]
    assert messages[0].startswith(f"{data}:3: invalid JSON")
    assert "expected a JSON object" in messages[1]
    assert "'text' must be a non-empty string" in messages[2]
    assert "'metadata' must be a JSON object" in messages[3]
    assert not any(i.skipped_file for i in parsed.issues)


def test_folders_are_searched_and_missing_paths_reported(tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("a")
    (tmp_path / "docs" / "sub" / "b.jsonl").write_text('{"text": "b"}')
    (tmp_path / "docs" / "image.png").write_bytes(b"\x89PNG")
    files, issues = expand_paths([tmp_path / "docs", tmp_path / "nope.md"])
    assert [f.name for f in files] == ["a.md", "b.jsonl"]
    assert len(issues) == 1 and issues[0].skipped_file
    assert str(issues[0]) == f"{tmp_path / 'nope.md'}: no such file or directory"


def test_binary_and_empty_files_are_issues_not_crashes(tmp_path: Path) -> None:
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    assert parse_file(binary).issues[0].skipped_file
    assert parse_file(empty).documents == []
    assert "empty" in str(parse_file(empty).issues[0])


def test_the_sample_corpus_is_small_clean_and_about_sam_and_sof() -> None:
    parsed = sample_corpus()
    assert parsed.issues == []
    assert 10 <= len(parsed.documents) <= 20
    text = " ".join(d.text for d in parsed.documents)
    for topic in ("SAM Orchestration Framework", "Migration phase", "TPV", "UIF", "capsule"):
        assert topic in text


def test_the_sample_corpus_plants_one_date_conflict_both_found_by_the_demo_query(
    tmp_path: Path,
) -> None:
    store = SQLiteMemoryBackend(tmp_path / "m.db")
    store.add_many(sample_corpus().documents)
    hits = store.search(DEMO_QUERY, limit=5)
    redesign = [h for h in hits if re.search(r"memory system was redesigned in \d{4}", h.text)]
    assert len(redesign) == 2
    years = {re.search(r"redesigned in (\d{4})", h.text).group(1) for h in redesign}  # type: ignore[union-attr]
    assert years == {"2023", "2024"}
    assert len({h.source for h in redesign}) == 2
    assert {h.source for h in hits[:2]} == {h.source for h in redesign}  # they rank on top
    assert all("store" in h.text for h in redesign)
    store.close()


def test_importing_the_sample_twice_does_not_duplicate(tmp_path: Path) -> None:
    store = SQLiteMemoryBackend(tmp_path / "m.db")
    docs = sample_corpus().documents
    store.add_many(docs)
    store.add_many(sample_corpus().documents)
    assert store.stats()["documents"] == len(docs)
    store.close()


def test_parse_jsonl_accepts_explicit_ids() -> None:
    parsed = parse_jsonl(['{"text": "t", "id": "fixed"}', '{"text": "u", "id": 3}'], "x.jsonl")
    assert parsed.documents[0].id == "fixed"
    assert str(parsed.issues[0]) == "x.jsonl:2: 'id' must be a string"
