"""End to end with the bundled plugins installed: the README's demo, conflicts, uninstalling.

These run only where the bundled plugin distributions are installed (as `nox -s tests` does).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sof_memory")
pytest.importorskip("sof_response")
pytest.importorskip("sof_conflict")

QUERY = "When was the SAM memory system redesigned, and what does it store?"
WITH_CONFLICTS = ["--plan", "MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"]


@pytest.fixture
def env(tmp_path: Path, sof_cli: Any) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    environment["SOF_CONFIG"] = str(tmp_path / "config.json")
    environment["SOF_MEMORY_PATH"] = str(tmp_path / "memory.db")
    environment["SOF_PLUGINS_ONLY"] = "memory,response,conflict"
    seeded = sof_cli("memory", "import", "--sample", env=environment)
    assert seeded.returncode == 0, seeded.stderr
    return environment


def test_demo_query_is_answered_from_memory_with_sources_and_trace(sof_cli: Any, env: dict[str, str]) -> None:
    result = sof_cli("run", QUERY, "--trace", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "redesigned" in out and "extractive answer" in out
    assert "release-notes/sam-2.0.md" in out and "sam-wiki/memory-history.md" in out
    # passages from two sources: conflict detection joins the run (docs/planning.md)
    assert "stage 1: MemoryRetrievalSkill" in out and "stage 2: ConflictDetectorSkill" in out
    assert "stage 3: ResponseGenerationSkill" in out
    assert "MemoryRetrievalSkill     success" in out


def test_conflict_planted_in_the_sample_corpus_is_reported(sof_cli: Any, env: dict[str, str]) -> None:
    report = json.loads(sof_cli("run", QUERY, *WITH_CONFLICTS, "--json", "--trace", env=env).stdout)
    assert report["status"] == "success"
    assert report["stages"] == [["MemoryRetrievalSkill"], ["ConflictDetectorSkill"], ["ResponseGenerationSkill"]]
    conflicts = report["uif"]["intermediate_data"]["conflicts"]
    assert any({"2023", "2024"} <= {str(v) for v in c["values"]} for c in conflicts)
    assert "disagree" in report["final_response"]


def test_uninstalled_plugin_fails_validation_clearly_and_the_rest_work(sof_cli: Any, env: dict[str, str]) -> None:
    env["SOF_PLUGINS_ONLY"] = "memory,response"
    missing = sof_cli("run", QUERY, *WITH_CONFLICTS, env=env)
    assert missing.returncode == 1
    assert "unknown skill 'ConflictDetectorSkill'" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert sof_cli("run", QUERY, env=env).returncode == 0
    env["SOF_PLUGINS_ONLY"] = "response,conflict"
    no_memory = sof_cli("validate", "MemoryRetrievalSkill", "ResponseGenerationSkill", env=env)
    assert no_memory.returncode == 1 and "unknown skill 'MemoryRetrievalSkill'" in no_memory.stdout


def test_every_bundled_skill_keeps_the_contract() -> None:
    from sof_conflict.skill import ConflictDetectorSkill
    from sof_memory.skill import MemoryRetrievalSkill
    from sof_response.skill import ResponseGenerationSkill

    from sof_core.testing import check_skill_contract

    passages = [
        {"id": "a", "text": "SOF was released in 2025.", "source": "a.md", "score": 0.9,
         "created_at": 0.0, "metadata": {}},
        {"id": "b", "text": "SOF was released in 2026.", "source": "b.md", "score": 0.8,
         "created_at": 0.0, "metadata": {}},
    ]
    report = check_skill_contract(ConflictDetectorSkill, inputs={"memory_results": passages})
    assert report.uif.intermediate_data["conflicts"]
    report = check_skill_contract(ResponseGenerationSkill, inputs={"memory_results": passages})
    assert report.uif.final_response
    from sof_memory.sqlite_backend import SQLiteMemoryBackend

    backend = SQLiteMemoryBackend(":memory:")
    backend.add("SOF runs skills as a graph.", source="doc.md")
    report = check_skill_contract(MemoryRetrievalSkill(backend=backend), query="How does SOF run skills?")
    assert report.uif.intermediate_data["memory_results"][0]["source"] == "doc.md"


def test_the_contract_check_runs_a_skill_whose_typed_inputs_are_not_given() -> None:
    # Before: PlanValidationError ("no skill in the plan produces 'memory_results'").
    from sof_conflict.skill import ConflictDetectorSkill

    from sof_core import BaseSkillModule
    from sof_core.testing import ContractViolation, check_skill_contract

    report = check_skill_contract(ConflictDetectorSkill())  # memory_results is a list: []
    assert report.uif.intermediate_data["conflicts"] == []

    class NeedsUntyped(BaseSkillModule):
        skill_name = "NeedsUntyped"
        skill_description = "reads an untyped key"
        required_inputs = ["notes"]
        output_keys = ["summary"]

        def execute(self, uif: Any) -> Any:
            uif.intermediate_data["summary"] = str(uif.intermediate_data["notes"])
            return uif

    with pytest.raises(ContractViolation, match=r"inputs=\{'notes': <a sample value>\}"):
        check_skill_contract(NeedsUntyped)
    assert check_skill_contract(NeedsUntyped, inputs={"notes": "n"}).status == "success"


def test_the_demo_runs_on_a_real_dask_cluster(sof_cli: Any, env: dict[str, str]) -> None:
    pytest.importorskip("sof_dask")
    env["SOF_PLUGINS_ONLY"] = "memory,response,conflict,dask"
    result = sof_cli("run", QUERY, *WITH_CONFLICTS, "--executor", "dask", "--json", env=env, timeout=120)
    report = json.loads(result.stdout)
    assert report["status"] == "success", report["errors"]
    assert report["executor"] == "dask"
    assert "disagree" in report["final_response"]


def test_the_readmes_validate_examples_exit_as_it_says(sof_cli: Any, env: dict[str, str]) -> None:
    good = sof_cli("validate", "MemoryRetrievalSkill", "ConflictDetectorSkill",
                   "ResponseGenerationSkill", env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = sof_cli("validate", "ResponseGenerationSkill", "ConflictDetectorSkill", env=env)
    assert bad.returncode == 1
    assert "[missing_producer]" in bad.stdout and "'memory_results'" in bad.stdout
