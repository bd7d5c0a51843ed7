"""The bundled skills give the same report run isolated (``isolate_skills``) as run in-thread:
the real installed MemoryRetrievalSkill and ResponseGenerationSkill on a seeded store."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, CoordinatorEngine, PluginManager, SOFConfig

pytest.importorskip("sof_memory")
pytest.importorskip("sof_response")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="isolation needs fork (POSIX)")

QUERY = "When was the SAM memory system redesigned, and what does it store?"
PLAN = ["MemoryRetrievalSkill", "ResponseGenerationSkill"]


@pytest.fixture
def store(tmp_path: Path, sof_cli: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("SOF_"):
            monkeypatch.delenv(name)
    path = tmp_path / "memory.db"
    env = {**os.environ, "SOF_MEMORY_PATH": str(path), "SOF_CONFIG": str(tmp_path / "c.json")}
    seeded = sof_cli("memory", "import", "--sample", env=env)
    assert seeded.returncode == 0, seeded.stderr
    return path


def _engine(path: Path, **config: Any) -> CoordinatorEngine:
    cfg = SOFConfig(
        plugins_only=["memory", "response"],
        plugin_settings={"memory": {"path": str(path)}},
        **config,
    )
    return CoordinatorEngine(PluginManager(cfg), cfg)


def _comparable(report: Any) -> dict[str, Any]:
    """The run's JSON minus what differs between any two runs (times, the task id, the
    generation's measured latency)."""
    data = report.to_dict()
    for name in ("task_id", "duration_ms", "timings_ms"):
        data.pop(name)
    for result in data["skills"]:
        result.pop("duration_ms")
    for name in ("task_id", "start_time", "end_time", "skill_timings"):
        data["uif"].pop(name)
    data["uif"]["intermediate_data"]["response_context"]["generation"].pop("latency_ms")
    return data


def test_bundled_skills_report_the_same_isolated_and_in_thread(store: Path) -> None:
    local = _engine(store)
    # one by distribution name, one by skill name
    isolated = _engine(store, isolate_skills=["sof-memory", "ResponseGenerationSkill"])
    compiled = isolated.compile(PLAN)
    assert {s.isolation for s in compiled.steps.values()} == {"process"}
    assert {s.isolation for s in local.compile(PLAN).steps.values()} == {"thread"}

    here = local.execute_plan(PLAN, UIF(input_query=QUERY))
    there = isolated.execute_plan(PLAN, UIF(input_query=QUERY))
    assert here.status == "success", here.errors
    assert there.status == "success", there.errors
    assert "redesigned" in (there.uif.final_response or "")
    assert there.uif.intermediate_data["memory_results"]
    assert _comparable(there) == _comparable(here)
