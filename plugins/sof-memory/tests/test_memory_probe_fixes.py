"""Fixes for a black-box probe: ``sof memory search --profile general`` searches like the skill."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import sof_memory.plugin as memory_plugin
from sof_memory import MemoryFilters, MemoryRetrievalSkill, SQLiteMemoryBackend
from sof_memory.backend import profile_filter

from sof_core.testing import make_engine

QUERY = "business profile answers briefly and leads with the decision"


def run_inline(*argv: str) -> int:
    root = argparse.ArgumentParser(prog="sof")
    memory_plugin.sof_register_commands(root.add_subparsers())
    args = root.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def sample_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "probe.db"
    monkeypatch.setenv("SOF_MEMORY_PATH", str(path))
    assert run_inline("memory", "import", "--sample", "--json") == 0
    return path


def cli_ids(capsys: pytest.CaptureFixture[str], *options: str) -> list[str]:
    capsys.readouterr()
    assert run_inline("memory", "search", QUERY, *options, "--json") == 0
    return [hit["id"] for hit in json.loads(capsys.readouterr().out)]


def skill_results(path: Path, active_profile: str) -> list[dict[str, Any]]:
    store = SQLiteMemoryBackend(path)
    try:
        engine = make_engine([MemoryRetrievalSkill(backend=store)])
        report = engine.run_query(QUERY, ["MemoryRetrievalSkill"], active_profile=active_profile)
        assert report.status == "success", report.errors
        return list(report.uif.intermediate_data["memory_results"])
    finally:
        store.close()


def test_profile_general_searches_like_the_skill(
    sample_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    skill = skill_results(sample_db, "general")
    assert {r["metadata"].get("profile") for r in skill} >= {"business"}  # profiles found
    expected = [r["id"] for r in skill]
    assert cli_ids(capsys, "--profile", "general") == expected
    assert cli_ids(capsys) == expected
    assert cli_ids(capsys, "--profile", "") == expected


def test_another_profile_still_filters_like_the_skill(
    sample_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    skill = skill_results(sample_db, "business")
    assert {r["metadata"].get("profile") for r in skill} <= {"business", None}
    assert cli_ids(capsys, "--profile", "business") == [r["id"] for r in skill]


def test_profile_filter_is_shared() -> None:
    assert profile_filter("general") is None
    assert profile_filter(None) is None
    assert profile_filter("") is None
    assert profile_filter("business") == "business"
    assert MemoryFilters(profile=profile_filter("general")).is_empty()
