"""``sof memory``: in-process through argparse, and for real through the ``sof`` CLI."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sof_memory.plugin as memory_plugin
from sof_memory import cli

DEMO_QUERY = "When was the SAM memory system redesigned, and what does it store?"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="sof")
    memory_plugin.sof_register_commands(root.add_subparsers())
    return root


def run_inline(*argv: str) -> int:
    args = parser().parse_args(list(argv))
    return int(args.func(args))


def run_sof(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sof_core.cli", *argv],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture
def sof_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env["SOF_CONFIG"] = str(tmp_path / "config.json")
    env["SOF_MEMORY_PATH"] = str(tmp_path / "cli-memory.db")
    return env


@pytest.fixture
def memory_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "inline.db"
    monkeypatch.setenv("SOF_MEMORY_PATH", str(path))
    return path


# --- in process --------------------------------------------------------------------------


def test_add_then_search_finds_the_document_with_its_metadata(
    memory_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_inline("memory", "add", "Capsules are shared summaries", "--source", "wiki",
                      "--meta", "tags=[\"sam\"]", "--meta", "owner=ana") == 0
    assert "stored" in capsys.readouterr().out
    assert run_inline("memory", "search", "capsules", "--json") == 0
    (hit,) = json.loads(capsys.readouterr().out)
    assert hit["source"] == "wiki"
    assert hit["metadata"] == {"tags": ["sam"], "owner": "ana"}
    assert run_inline("memory", "search", "capsules", "--tag", "other") == 0
    assert capsys.readouterr().out.strip() == "no matching memories"


def test_import_reports_bad_lines_and_missing_files_but_imports_the_rest(
    memory_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "alpha memory"}\n{oops\n{"text": "beta memory"}\n')
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\ngamma memory\n")
    code = run_inline("memory", "import", str(data), str(notes), str(tmp_path / "gone.txt"),
                      "--json")
    captured = capsys.readouterr()
    assert code == 1  # a path was missing
    summary = json.loads(captured.out)
    assert summary["documents"] == 3 and summary["new"] == 3 and summary["files"] == 2
    assert f"warning: {data}:2: invalid JSON" in captured.err
    assert f"warning: {tmp_path / 'gone.txt'}: no such file or directory" in captured.err


def test_import_of_only_bad_lines_is_not_fatal(
    memory_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "fine"}\n[1, 2]\n')
    assert run_inline("memory", "import", str(data)) == 0
    captured = capsys.readouterr()
    assert "imported 1 document(s) (1 new, 0 already present)" in captured.out
    assert f"{data}:2: expected a JSON object" in captured.err


def test_import_counts_as_new_only_what_it_added_while_another_process_writes(
    memory_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "new" was the store's growth during the import: documents another writer added
    # meanwhile counted too ("105 new" of 100, "-5 already present").
    from sof_memory import SQLiteMemoryBackend

    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "already there"}\n')
    assert run_inline("memory", "import", str(data)) == 0
    capsys.readouterr()
    data.write_text('{"text": "already there"}\n{"text": "first"}\n{"text": "second"}\n')
    counted = SQLiteMemoryBackend.add_many_counted

    def with_another_writer(self: Any, documents: Any) -> Any:
        other = SQLiteMemoryBackend(memory_path)  # another process's connection
        counted(other, [__import__("sof_memory").MemoryDocument(f"other {i}")
                                for i in range(5)])
        other.close()
        return counted(self, documents)

    monkeypatch.setattr(SQLiteMemoryBackend, "add_many_counted", with_another_writer)
    assert run_inline("memory", "import", str(data)) == 0
    assert "imported 3 document(s) (2 new, 1 already present)" in capsys.readouterr().out


def test_import_needs_paths_or_sample(memory_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_inline("memory", "import") == 2
    assert "give PATH... or --sample" in capsys.readouterr().err


def test_import_by_section_and_stats(
    memory_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.md"
    page.write_text("# One\n\nfirst\n\n# Two\n\nsecond\n")
    assert run_inline("memory", "import", str(page), "--split", "section") == 0
    capsys.readouterr()
    assert run_inline("memory", "stats", "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["documents"] == 2 and stats["path"] == str(memory_path)


def test_bad_meta_and_limit_are_usage_errors(
    memory_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_inline("memory", "add", "x", "--meta", "novalue") == 2
    assert capsys.readouterr().err == (
        "sof memory add: error: --meta expects KEY=VALUE, got 'novalue'\n"
    )
    with pytest.raises(SystemExit):
        parser().parse_args(["memory", "search", "x", "--limit", "0"])


def test_many_files_show_a_progress_bar_on_a_terminal(
    memory_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    for i in range(cli.PROGRESS_MIN_FILES):
        (tmp_path / f"n{i}.txt").write_text(f"note {i} about memory")
    loads: list[Any] = [lambda i=i: cli.parse_file(tmp_path / f"n{i}.txt")
                        for i in range(cli.PROGRESS_MIN_FILES)]
    parsed = list(cli._with_progress(loads))
    assert len(parsed) == cli.PROGRESS_MIN_FILES
    assert "importing" in terminal.getvalue()


# --- the real `sof` command --------------------------------------------------------------


def test_sample_import_is_idempotent_and_answers_the_demo_query(sof_env: dict[str, str]) -> None:
    first = run_sof("memory", "import", "--sample", "--json", env=sof_env)
    assert first.returncode == 0, first.stderr
    imported = json.loads(first.stdout)
    assert imported["new"] == imported["documents"] >= 10
    again = run_sof("memory", "import", "--sample", "--json", env=sof_env)
    assert json.loads(again.stdout)["new"] == 0

    stats = run_sof("memory", "stats", "--json", env=sof_env)
    facts = json.loads(stats.stdout)
    assert facts["documents"] == imported["documents"]
    assert facts["path"] == sof_env["SOF_MEMORY_PATH"]
    assert facts["journal_mode"] == "wal"

    found = run_sof("memory", "search", DEMO_QUERY, "--limit", "3", "--json", env=sof_env)
    hits = json.loads(found.stdout)
    assert len(hits) == 3
    assert {h["source"] for h in hits[:2]} == {"sam-wiki/memory-history.md",
                                              "release-notes/sam-2.0.md"}
    text = run_sof("memory", "search", DEMO_QUERY, "--limit", "1", env=sof_env)
    assert text.stdout.startswith("1. [")


def test_sof_run_on_an_empty_memory_says_how_to_fill_it(sof_env: dict[str, str]) -> None:
    result = run_sof("run", DEMO_QUERY, env=sof_env)
    assert result.returncode == 0, result.stderr
    assert "found nothing in memory" in result.stdout
    assert "holds no documents" in result.stderr
    assert "sof memory import --sample" in result.stderr
    seeded = run_sof("memory", "import", "--sample", env=sof_env)
    assert seeded.returncode == 0, seeded.stderr
    answered = run_sof("run", DEMO_QUERY, env=sof_env)
    assert "holds no documents" not in answered.stderr


def test_the_path_can_come_from_the_config_file(sof_env: dict[str, str], tmp_path: Path) -> None:
    del sof_env["SOF_MEMORY_PATH"]
    db = tmp_path / "from-config.db"
    Path(sof_env["SOF_CONFIG"]).write_text(
        json.dumps({"plugin_settings": {"memory": {"path": str(db)}}})
    )
    added = run_sof("memory", "add", "configured place", "--json", env=sof_env)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["backend"] == "sqlite"
    assert db.exists()


def test_an_unknown_backend_in_config_is_a_clear_cli_error(
    sof_env: dict[str, str],
) -> None:
    Path(sof_env["SOF_CONFIG"]).write_text(
        json.dumps({"plugin_settings": {"memory": {"backend": "pinecone"}}})
    )
    result = run_sof("memory", "stats", env=sof_env)
    assert result.returncode == 2
    assert "memory backend 'pinecone'" in result.stderr
    assert "'sqlite'" in result.stderr


def test_sof_memory_without_a_command_prints_help(sof_env: dict[str, str]) -> None:
    result = run_sof("memory", env=sof_env)
    assert result.returncode == 0
    for command in ("add", "import", "search", "stats"):
        assert command in result.stdout
