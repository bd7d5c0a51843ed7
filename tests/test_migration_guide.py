"""docs/migration-from-sam.md works as written.

The guide's SAM-style skills become a real entry-point distribution next to the bundled
plugins; its MemoryRetrievalSkill clashes with sof-memory's, and the guide's one setting
chooses it. The guide's rewrite command and both rollback snippets run as printed, on a
config file SAM wrote.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "migration-from-sam.md"

#: The 31 keys SAM writes to config/sof_config.json, with SAM's defaults.
SAM_CONFIG: dict[str, Any] = {
    "use_sof_framework": True,
    "sof_version": "2.0.0",
    "max_execution_time": 60.0,
    "skill_timeout": 30.0,
    "enable_parallel_execution": False,
    "enable_plan_validation": True,
    "max_plan_length": 10,
    "allow_circular_dependencies": False,
    "enable_fallback_plans": True,
    "max_retry_attempts": 2,
    "continue_on_skill_failure": False,
    "enable_skill_sandboxing": True,
    "require_vetting_for_external": True,
    "max_intermediate_data_size": 10485760,
    "enable_plan_caching": True,
    "plan_cache_ttl": 3600,
    "enable_execution_metrics": True,
    "integrate_with_tpv": True,
    "integrate_with_memory": True,
    "integrate_with_vetting": True,
    "log_level": "INFO",
    "enable_execution_tracing": True,
    "save_execution_logs": True,
    "fallback_to_legacy": True,
    "legacy_timeout": 30.0,
    "enable_self_reflect": True,
    "self_reflect_confidence_threshold": 0.7,
    "self_reflect_profiles": ["researcher", "legal", "academic"],
    "self_reflect_query_keywords": ["what is", "who was", "when did", "define", "explain",
                                    "describe"],
    "enable_memoir_auto_correction": True,
    "self_reflect_max_revisions": 1,
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)


def python_block(marker: str) -> str:
    found = [b for b in blocks("python") if marker in b]
    assert len(found) == 1, f"expected one python block containing {marker!r}"
    return found[0]


def install_guide_plugin(dists: Any) -> None:
    package = dists.root / "sam_skills"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "skills.py").write_text(python_block("class MemoryRetrievalSkill"))
    (package / "plugin.py").write_text(python_block("@hookimpl"))
    pyproject = blocks("toml")[0]
    name = re.search(r'^name = "(.+)"', pyproject, re.M).group(1)  # type: ignore[union-attr]
    version = re.search(r'^version = "(.+)"', pyproject, re.M).group(1)  # type: ignore[union-attr]
    entry = pyproject.split('[project.entry-points."sof.plugins"]', 1)[1].strip().replace('"', "")
    info = dists.root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        "Requires-Dist: sof-core>=0.1,<0.2\nRequires-Dist: sof-sam>=0.1,<0.2\n"
    )
    (info / "entry_points.txt").write_text(f"[sof.plugins]\n{entry}\n")


def test_the_rewrite_command_turns_sam_imports_into_the_guides_skill(tmp_path: Path) -> None:
    guide_skill = python_block("class MemoryRetrievalSkill")
    sam_package = tmp_path / "sam" / "skills"
    sam_package.mkdir(parents=True)
    (sam_package / "memory.py").write_text(guide_skill.replace("sof_sam", "sam.orchestration"))
    command = next(b for b in blocks("bash") if "sed" in b)
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    assert (sam_package / "memory.py").read_text() == guide_skill


def test_a_sam_skill_package_chosen_over_the_bundled_memory_skill(
    dists: Any, sof_cli: Any, tmp_path: Path
) -> None:
    install_guide_plugin(dists)
    env = dists.env()
    env["SOF_CONFIG"] = str(tmp_path / "config.json")
    env.pop("SOF_SKILL_PROVIDERS", None)
    plan = ["--plan", "MemoryRetrievalSkill", "CitedAnswerSkill"]

    listing = sof_cli("plugins", env=env)
    assert re.search(r"sam-skills\s+1\.0\.0\s+sam-skills\s+loaded", listing.stdout), listing.stdout
    contested = sof_cli("run", "Where is SAM's memory store?", *plan, env=env)
    assert contested.returncode == 1
    message = contested.stdout + contested.stderr
    for needed in ("MemoryRetrievalSkill", "sam-skills", "memory", "skill_providers"):
        assert needed in message, message

    setting = next(b for b in blocks("bash") if "skill_providers" in b).strip()
    subprocess.run(["bash", "-c", setting.replace("sof ", f"{sys.executable} -m sof_core.cli ", 1)],
                   env=env, check=True, capture_output=True)
    answer = sof_cli("run", "Where is SAM's memory store?", *plan, env=env)
    assert answer.returncode == 0, answer.stderr
    assert "SAM's memory store moved to SQLite in 2024. [sam]" in answer.stdout


def test_the_guides_mapping_table_is_sof_core_config_sam_keys() -> None:
    from sof_core.config import SAM_KEYS

    rows = re.findall(r"^\| `(\w+)` \| `(\w+)`", GUIDE.read_text(encoding="utf-8"), re.M)
    shared = {name: key.setting for name, key in SAM_KEYS.items() if key.setting is not None}
    assert dict(rows) == shared
    unused = sum(1 for key in SAM_KEYS.values() if key.setting is None)
    assert f"SAM's other {unused} keys" in GUIDE.read_text(encoding="utf-8")


@pytest.mark.parametrize("marker", ["sof_core.config import", "sof_sam.config import"])
def test_rollback_snippets_work_on_sams_own_file_and_keep_every_key(
    marker: str, tmp_path: Path
) -> None:
    config = tmp_path / "sof_config.json"
    config.write_text(json.dumps({**SAM_CONFIG, "sof_rollout_percentage": 50}, indent=2))
    env = {"SOF_CONFIG": str(config), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", python_block(marker)], env=env,
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    after = json.loads(config.read_text())
    if "disable_sof_framework" in python_block(marker):
        assert after["use_sof_framework"] is False
    else:
        assert after["sof_rollout_percentage"] == 0
    changed = {"use_sof_framework", "sof_rollout_percentage"}
    for key, value in SAM_CONFIG.items():
        if key not in changed:
            assert after[key] == value, key


def test_a_sam_file_without_a_rollout_sends_queries_to_legacy_until_it_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sof_sam.config import get_sof_config_manager
    from sof_sam.sof_integration import SOFIntegration

    config = tmp_path / "sof_config.json"
    config.write_text(json.dumps(SAM_CONFIG))  # SAM's file: use_sof_framework on, no rollout key
    monkeypatch.setenv("SOF_CONFIG", str(config))
    integration = SOFIntegration(fallback_generator=lambda query: "legacy answer")
    integration.initialize()
    try:
        before = integration.process_query("What is SOF?")
        assert before["metadata"]["route"]["path"] == "legacy"
        assert before["response"] == "legacy answer"
        get_sof_config_manager(str(config)).update_config(sof_rollout_percentage=100)
        after = integration.process_query("What is SOF?")
        assert after["metadata"]["route"]["path"] == "sof"
    finally:
        integration.shutdown()
