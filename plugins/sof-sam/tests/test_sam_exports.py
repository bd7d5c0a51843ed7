"""``import sof_sam`` gives what ``import sam.orchestration`` gives, each name on first use.

SAM's three core skills come from SOF's plugins; a missing plugin or module fails only the
names that need it, with an ``ImportError`` saying what to install. SAM's other skills are
SAM's own code: importing one says so.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import sof_sam

import sof_core

# What SAM's sam/orchestration/__init__.py exports and sof_sam provides.
SAM_NAMES = {
    "SAM_UIF": "sof_sam.uif", "UIFStatus": "sof_sam.uif",
    "BaseSkillModule": "sof_sam.skills.base", "SkillExecutionError": "sof_sam.skills.base",
    "SkillDependencyError": "sof_sam.skills.base",
    "MemoryRetrievalSkill": "sof_sam", "ResponseGenerationSkill": "sof_sam",
    "ConflictDetectorSkill": "sof_sam",
}


@pytest.mark.parametrize("name,module", sorted(SAM_NAMES.items()))
def test_sams_names_resolve(name: str, module: str) -> None:
    value = getattr(sof_sam, name)
    assert value.__module__ == module
    assert name in sof_sam.__all__


def test_the_core_skills_are_the_plugins_classes_with_sams_helpers() -> None:
    from sof_conflict import ConflictDetectorSkill
    from sof_memory import MemoryRetrievalSkill
    from sof_response import ResponseGenerationSkill
    from sof_sam import skills
    from sof_sam.skills.base import SAMSkillAPI

    assert issubclass(sof_sam.MemoryRetrievalSkill, MemoryRetrievalSkill)
    assert issubclass(sof_sam.ResponseGenerationSkill, ResponseGenerationSkill)
    assert skills.ConflictDetectorSkill is sof_sam.ConflictDetectorSkill
    assert issubclass(sof_sam.ConflictDetectorSkill, ConflictDetectorSkill)
    assert issubclass(sof_sam.ConflictDetectorSkill, SAMSkillAPI)
    # As in SAM, they are its BaseSkillModule's skills (isinstance was False).
    for name in ("MemoryRetrievalSkill", "ResponseGenerationSkill", "ConflictDetectorSkill"):
        assert issubclass(getattr(sof_sam, name), sof_sam.BaseSkillModule)
    assert isinstance(sof_sam.ConflictDetectorSkill(), sof_sam.BaseSkillModule)
    assert not issubclass(ConflictDetectorSkill, sof_sam.BaseSkillModule)  # the plugin's own
    assert sof_sam.ConflictDetectorSkill.skill_name == "ConflictDetectorSkill"


def test_sams_helpers_work_on_the_plugins_skills() -> None:
    skill = sof_sam.ConflictDetectorSkill()
    metadata = skill.get_metadata()
    assert isinstance(metadata, sof_sam.SkillMetadata)
    assert (metadata.name, metadata.category) == ("ConflictDetectorSkill", "analysis")
    info = skill.get_dependency_info()
    assert info["required_inputs"] == ["memory_results"] and len(info) == 8
    assert str(skill).startswith("ConflictDetectorSkill v")
    uif = sof_sam.SAM_UIF(input_query="q")
    assert not skill.can_execute(uif)
    uif.intermediate_data["memory_results"] = []
    assert skill.can_execute(uif)
    assert sof_sam.MemoryRetrievalSkill().can_execute(sof_sam.SAM_UIF(input_query="q"))
    again = pickle.loads(pickle.dumps(skill))
    assert type(again) is sof_sam.ConflictDetectorSkill


def test_a_plugin_skill_through_sof_sam_runs_on_an_engine() -> None:
    engine = sof_core.CoordinatorEngine(config=sof_core.SOFConfig(
        skill_timeout=None, total_timeout=None))
    engine.register_skill(sof_sam.ConflictDetectorSkill)  # over the installed plugin's
    entry = engine.registry.skill("ConflictDetectorSkill")
    assert entry is not None and type(entry.instance) is sof_sam.ConflictDetectorSkill
    uif = sof_sam.SAM_UIF(input_query="q", intermediate_data={"memory_results": []})
    report = engine.execute_plan(["ConflictDetectorSkill"], uif)
    assert report.status == "success", report.errors


def test_importing_sof_sam_loads_nothing_else() -> None:
    code = ("import sys, sof_sam; print(sorted(m for m in sys.modules "
            "if m.startswith(('sof', 'pydantic'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['sof_sam']"


def test_a_missing_plugin_names_the_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sof_sam.PLUGIN_SKILLS, "GhostSkill", ("sof_ghost", "sof-ghost"))
    with pytest.raises(ImportError, match=r"GhostSkill comes from SOF's sof-ghost plugin.*"
                                          r"pip install sof-ghost"):
        sof_sam.GhostSkill  # noqa: B018


def test_a_missing_module_fails_only_its_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sof_sam._LAZY, "GhostEngine", "ghost")
    with pytest.raises(ImportError, match=r"sof_sam\.GhostEngine needs the module sof_sam\.ghost"):
        from sof_sam import GhostEngine  # noqa: F401
    assert sof_sam._installed("GhostEngine") is False
    assert sof_sam.SAM_UIF is not None


@pytest.mark.parametrize("name", ["CalculatorTool", "AgentZeroWebBrowserTool"])
def test_sams_own_skills_say_they_are_sams(name: str) -> None:
    with pytest.raises(ImportError, match=f"{name} is one of SAM's own modules"):
        getattr(sof_sam, name)


@pytest.mark.parametrize("name", ["get_discovery_orchestrator", "DiscoveryCycleOrchestrator",
                                  "DiscoveryStage", "DiscoveryProgress", "DiscoveryResult"])
def test_sams_discovery_cycle_says_to_keep_importing_it_from_sam(name: str) -> None:
    """SAM's discovery cycle is not a skill, so no graft onto sof_sam.skills provides it
    here: the error says what works (SAM's own module, imported beside sof_sam)."""
    with pytest.raises(ImportError) as caught:
        exec(f"from sof_sam import {name}", {})
    message = str(caught.value)
    assert "sam.orchestration.discovery_cycle, which is not part of sof_sam" in message
    assert f"from sam.orchestration.discovery_cycle import {name}" in message
    assert "grafts" not in message and "docs/migration-from-sam.md" in message


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        sof_sam.NoSuchThing  # noqa: B018


def test_star_import_gives_every_listed_name() -> None:
    namespace: dict[str, object] = {}
    exec("from sof_sam import *", namespace)
    assert {"SAM_UIF", "BaseSkillModule", "MemoryRetrievalSkill"} <= set(namespace)


def test_conflict_detector_keeps_sof_declarations_not_sams() -> None:
    """A documented difference (docs/migration-from-sam.md, section 5): SOF's conflict skill
    with SAM's helpers, not SAM's skill with SAM's keys."""
    skill = sof_sam.ConflictDetectorSkill()
    required = [k if isinstance(k, str) else k[0] for k in skill.required_inputs]
    assert "memory_results" in required and "input_query" not in required
    assert "conflicts" in skill.output_keys and "conflict_analysis" not in skill.output_keys
    assert skill.can_execute(sof_sam.SAM_UIF(input_query="q")) is False


@pytest.mark.parametrize("name", ["MemoryRetrievalSkill", "ResponseGenerationSkill",
                                  "ConflictDetectorSkill"])
def test_the_core_skills_declare_lists_of_names_to_sam_code(name: str) -> None:
    # SAM_API.md: required_inputs, optional_inputs, output_keys are lists of str. Through
    # sof_sam they were SOF's typed forms: ("memory_results", list) and a dict of outputs,
    # so `"memory_results" in skill.optional_inputs` was False.
    cls = getattr(sof_sam, name)
    skill = cls()
    for attr in ("required_inputs", "optional_inputs", "output_keys"):
        names = getattr(skill, attr)
        assert isinstance(names, list) and all(isinstance(k, str) for k in names), (attr, names)
        assert names == skill.get_dependency_info()[attr]
    assert "memory_results" in sof_sam.ResponseGenerationSkill().optional_inputs
    assert sof_sam.ConflictDetectorSkill().required_inputs == ["memory_results"]
    # SOF still reads the declared types on the class: a wrong type is refused as before.
    spec = sof_core.SkillSpec.from_skill_class(sof_sam.ConflictDetectorSkill)
    assert spec.key_types["memory_results"] is list


def test_the_documented_rewrite_leaves_sams_unmirrored_modules_alone(tmp_path: Path) -> None:
    """docs/migration-from-sam.md, section 1: the second rewrite command keeps the imports of
    SAM's modules that sof_sam does not mirror pointing at SAM's package."""
    import re
    import shutil

    doc = Path(__file__).resolve().parents[3] / "docs" / "migration-from-sam.md"
    if not doc.exists() or shutil.which("sed") is None:
        pytest.skip("needs the repository's docs and sed")
    blocks = re.findall(r"```bash\n(.*?)```", doc.read_text(), re.S)
    command = next(b for b in blocks if "discovery_cycle" in b)
    code = tmp_path / "sam" / "ui.py"
    code.parent.mkdir()
    code.write_text(
        "from sam.orchestration.uif import SAM_UIF\n"
        "from sam.orchestration.discovery_cycle import get_discovery_orchestrator\n"
        "from sam.orchestration.loss_balancer import LossBalancer\n"
        "from sam.orchestration import CoordinatorEngine\n"
    )
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    assert code.read_text() == (
        "from sof_sam.uif import SAM_UIF\n"
        "from sam.orchestration.discovery_cycle import get_discovery_orchestrator\n"
        "from sam.orchestration.loss_balancer import LossBalancer\n"
        "from sof_sam import CoordinatorEngine\n"
    )


def test_sams_own_discovery_module_imports_beside_sof_sam(tmp_path: Path) -> None:
    """What the ImportError advises works: SAM's package (here a stand-in with SAM's layout)
    and sof_sam import side by side; sof_sam shadows nothing of ``sam.orchestration``."""
    package = tmp_path / "sam" / "orchestration"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "discovery_cycle.py").write_text(
        "class DiscoveryCycleOrchestrator:\n    pass\n\n"
        "def get_discovery_orchestrator():\n    return DiscoveryCycleOrchestrator()\n"
    )
    code = (
        "import sof_sam\n"
        "from sof_sam.coordinator import CoordinatorEngine\n"
        "from sam.orchestration.discovery_cycle import get_discovery_orchestrator\n"
        "print(type(get_discovery_orchestrator()).__name__, CoordinatorEngine.__module__)\n"
    )
    source = str(Path(sof_sam.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, str(tmp_path)])}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["DiscoveryCycleOrchestrator", "sof_sam.coordinator"]
