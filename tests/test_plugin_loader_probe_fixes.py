"""Plugin loading, as a black-box probe found it wanting.

* junk items from ``sof_register_skills`` (``"oops"``, ``3``) are named as what they are,
  never listed as skills called ``str instance``; a dict (or set) result is no list;
* ``sof_cli`` sets ``SOF_MEMORY_PATH`` only where the memory plugin would read it;
* an entry point carrying extras (``pkg.mod [extra]``) loads;
* ``plugins_disable`` / ``plugins_only`` match distribution names as pip does;
* an entry point named like a built-in plugin is refused with a fix that can be done, and
  validation names it as a plugin that may provide a missing skill.
"""

from __future__ import annotations

import json
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from sof_core import BaseSkillModule, CoordinatorEngine, PluginManager, SOFConfig, hookimpl
from sof_core.errors import PluginHookError

from .conftest import DistFactory, run_sof

SKILL = """
    from sof_core import BaseSkillModule, hookimpl

    class {name}(BaseSkillModule):
        skill_name = "{name}"
        skill_description = "d"
        required_inputs = ["input_query"]
        output_keys = ["{key}"]
        def execute(self, uif):
            uif.intermediate_data["{key}"] = 1
            return uif

    @hookimpl
    def sof_register_skills():
        return {result}
"""


def source(name: str, result: str | None = None) -> str:
    return SKILL.format(name=name, key=name.lower() + "_out", result=result or f"[{name}]")


def manager(**config: Any) -> PluginManager:
    return PluginManager(SOFConfig(**config)).load()


def by_dist(pm: PluginManager) -> dict[str, Any]:
    return {r.distribution: r for r in pm.records.values() if r.distribution}


class ProbeDictSkill(BaseSkillModule):
    skill_name = "ProbeDictSkill"
    skill_description = "d"
    required_inputs = ["input_query"]
    output_keys = ["probe_dict"]

    def execute(self, uif: Any) -> Any:
        uif.intermediate_data["probe_dict"] = 1
        return uif


# --- 1. junk items, and results that are not lists ----------------------------------------


def test_junk_items_are_named_as_what_they_are_not_offered_as_skills(dists: DistFactory) -> None:
    dists.add("probe-junk", source("ProbeJunkSkill", '[ProbeJunkSkill, "oops", 3]'),
              entry_name="probejunk")
    record = manager().records["probejunk"]
    assert record.status == "failed" and record.error_type == "PluginHookError"
    assert record.offered == ["ProbeJunkSkill"]
    assert "instance'" not in repr(record.offered)
    assert "returned 'oops' (a str) and 3 (an int), which are not skill classes" in (
        record.error or "")


def test_sof_skills_and_plugins_show_no_made_up_skill_names(dists: DistFactory) -> None:
    dists.add("probe-junk", source("ProbeJunkSkill", '[ProbeJunkSkill, "oops", 3]'),
              entry_name="probejunk")
    listed = run_sof("skills", "--json", env=dists.env())
    assert listed.returncode == 0, listed.stderr
    unavailable = [s["name"] for s in json.loads(listed.stdout) if not s.get("available", True)]
    assert "ProbeJunkSkill" in unavailable
    assert not [n for n in unavailable if n.endswith(" instance")], unavailable
    detail = run_sof("plugins", "probejunk", env=dists.env())
    offered = [line for line in detail.stdout.splitlines() if line.strip().startswith("offered")]
    assert offered and offered[0].split()[1:] == ["ProbeJunkSkill"], detail.stdout


def test_a_single_junk_item_says_which_type_it_is() -> None:
    engine = CoordinatorEngine()
    mod = types.SimpleNamespace(sof_register_skills=hookimpl(lambda: [ProbeDictSkill, 2.5]))
    record = engine.plugins.register(mod, name="probe-one-junk")
    assert record.status == "failed"
    assert "returned 2.5 (a float), which is not a skill class or instance" in (
        record.error or "")


@pytest.mark.parametrize("result", [
    {ProbeDictSkill: "described"},
    {ProbeDictSkill},
    "ProbeDictSkill",
    ProbeDictSkill,
])
def test_a_result_that_is_not_a_list_fails_the_plugin(result: Any) -> None:
    engine = CoordinatorEngine()
    mod = types.SimpleNamespace(sof_register_skills=hookimpl(lambda: result))
    record = engine.plugins.register(mod, name="probe-not-a-list")
    assert record.status == "failed"
    assert record.error_type == "PluginHookError"
    assert "must return a list, got" in (record.error or "")
    assert "ProbeDictSkill" not in engine.registry


@pytest.mark.parametrize("result", [
    lambda: (ProbeDictSkill,),
    lambda: (s for s in [ProbeDictSkill]),
])
def test_tuples_and_generators_still_register(result: Any) -> None:
    engine = CoordinatorEngine()
    mod = types.SimpleNamespace(sof_register_skills=hookimpl(result))
    record = engine.plugins.register(mod, name="probe-sequence")
    assert record.status == "loaded", record.error
    assert "ProbeDictSkill" in engine.registry


def test_register_skills_in_code_keeps_its_own_wording() -> None:
    engine = CoordinatorEngine()
    with pytest.raises(PluginHookError, match="register_skills got 'oops', which is not a skill"):
        engine.register_skills([ProbeDictSkill, "oops"])


# --- 2. SOF_MEMORY_PATH only where the memory plugin reads it ------------------------------


def test_sof_cli_sets_no_memory_path_without_the_memory_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sof_core import _installed
    from sof_core.testing.cli import SofCLI

    monkeypatch.setattr(_installed, "installed_plugins", lambda path=None: [])
    assert "SOF_MEMORY_PATH" not in SofCLI(tmp_path / "a").env
    monkeypatch.setattr(_installed, "installed_plugins",
                        lambda path=None: [("memory", "sof-memory", "0.1.0")])
    cli = SofCLI(tmp_path / "b")
    assert cli.env["SOF_MEMORY_PATH"] == str(cli.memory_path)
    # the caller's own value wins either way
    cli = SofCLI(tmp_path / "c", env={"SOF_MEMORY_PATH": "/x.db"})
    assert cli.env["SOF_MEMORY_PATH"] == "/x.db"


def test_child_import_path_sees_a_plugin_on_the_childs_pythonpath(dists: DistFactory) -> None:
    from sof_core._installed import child_import_path, installed_plugins

    dists.add("probe-memoryish", source("ProbeMemSkill"), entry_name="probememory")
    folder = str(dists.root)
    names = [n for n, _, _ in installed_plugins(child_import_path({"PYTHONPATH": folder}))]
    assert "probememory" in names
    assert "probememory" not in [n for n, _, _ in installed_plugins(["/nonexistent"])]


# --- 3. entry points with extras ------------------------------------------------------------


def test_an_entry_point_with_extras_loads(dists: DistFactory) -> None:
    module = dists.add("probe-extras", source("ProbeExtrasSkill"), entry_name="probeextras")
    info = dists.root / "probe_extras-1.0.dist-info" / "entry_points.txt"
    info.write_text(f"[sof.plugins]\nprobeextras = {module} [someextra]\n")
    record = manager().records["probeextras"]
    assert record.status == "loaded", record.error
    assert record.module == module


def test_an_entry_point_with_an_attribute_and_extras_loads(dists: DistFactory) -> None:
    module = dists.add("probe-attr", textwrap.dedent(source("ProbeAttrSkill"))
                       + "\nclass Holder:\n    sof_register_skills = staticmethod("
                         "sof_register_skills)\n",
                       entry_name="probeattr")
    info = dists.root / "probe_attr-1.0.dist-info" / "entry_points.txt"
    info.write_text(f"[sof.plugins]\nprobeattr = {module}:Holder [x, y]\n")
    record = manager().records["probeattr"]
    assert record.status == "loaded", record.error
    assert record.module == f"{module}:Holder"


# --- 4. pip's spelling of a distribution name -----------------------------------------------


@pytest.mark.parametrize("spelling", ["PROBE_NORM_A", "probe.norm.a", "Probe-Norm_A"])
def test_plugins_disable_matches_distribution_names_as_pip_does(
    dists: DistFactory, spelling: str, caplog: pytest.LogCaptureFixture
) -> None:
    dists.add("probe-norm-a", source("ProbeNormSkill"), entry_name="probenorma")
    pm = manager(plugins_disable=[spelling])
    assert pm.records["probenorma"].status == "disabled"
    assert not [w for w in pm.discovery_warnings if spelling in w], pm.discovery_warnings


def test_plugins_only_matches_distribution_names_as_pip_does(dists: DistFactory) -> None:
    dists.add("probe-norm-b", source("ProbeNormBSkill"), entry_name="probenormb")
    dists.add("probe-norm-c", source("ProbeNormCSkill"), entry_name="probenormc")
    pm = manager(plugins_only=["PROBE_NORM_B"])
    records = by_dist(pm)
    assert records["probe-norm-b"].status == "loaded"
    assert records["probe-norm-c"].status == "disabled"
    assert not [w for w in pm.discovery_warnings if "PROBE_NORM_B" in w]


def test_entry_point_names_still_match_exactly(dists: DistFactory) -> None:
    dists.add("probe-norm-d", source("ProbeNormDSkill"), entry_name="probenormd")
    pm = manager(plugins_disable=["PROBENORMD"])
    assert pm.records["probenormd"].status == "loaded"
    assert [w for w in pm.discovery_warnings if "'PROBENORMD'" in w]


def test_plugins_disable_by_pip_spelling_from_the_environment(dists: DistFactory) -> None:
    dists.add("probe-norm-e", source("ProbeNormESkill"), entry_name="probenorme")
    env = {**dists.env(), "SOF_PLUGINS_DISABLE": "PROBE_NORM_E"}
    done = run_sof("plugins", "--json", env=env)
    status = {p["name"]: p["status"] for p in json.loads(done.stdout)}
    assert status["probenorme"] == "disabled", done.stderr
    assert "no installed plugin" not in done.stderr


# --- 5. an entry point named like a built-in ------------------------------------------------


def test_an_entry_point_named_like_a_builtin_is_refused_with_a_doable_fix(
    dists: DistFactory,
) -> None:
    dists.add("probe-builtin", source("ProbeBuiltinSkill"), entry_name="sof-planners")
    pm = manager()
    record = by_dist(pm)["probe-builtin"]
    assert record.status == "failed" and record.error_type == "PluginConflictError"
    assert "rename the entry point" in (record.error or "")
    assert "unregister it first" not in (record.error or "")
    assert record.import_time_ms is None  # refused from metadata, never imported
    builtin = pm.records["sof-planners"]  # the built-in keeps its record
    assert builtin.source == "builtin" and builtin.status == "loaded"
    assert "static" in pm.registry.components("planners")


def test_validation_names_the_refused_plugin_as_one_that_may_provide_the_skill(
    dists: DistFactory,
) -> None:
    dists.add("probe-builtin", source("ProbeBuiltinSkill"), entry_name="sof-planners")
    done = run_sof("validate", "ProbeBuiltinSkill", "--json", env=dists.env())
    assert done.returncode == 1
    message = json.loads(done.stdout)["problems"][0]["message"]
    assert "sof-planners (probe-builtin)" in message and "may provide it" in message, message


def test_registering_in_code_under_a_builtin_name_says_it_is_builtin() -> None:
    pm = PluginManager(SOFConfig(plugins_autoload=False)).load()
    record = pm.register(types.SimpleNamespace(), name="sof-executors")
    assert record.status == "failed" and record.error_type == "PluginConflictError"
    assert "built-in" in (record.error or "") and "unregister it first" not in (
        record.error or "")
    assert pm.records["sof-executors"].source == "builtin"


def test_plugin_variable_follows_the_configurations_rule(dists: DistFactory) -> None:
    from sof_core._installed import plugin_variable

    dists.add("probe-vars", source("ProbeVarsSkill"), entry_name="probe-vars")
    path = [str(dists.root)]
    assert plugin_variable("SOF_PROBE_VARS_PATH", path)
    assert plugin_variable("SOF_PROBE_VARS", path)
    assert not plugin_variable("SOF_PROBE_VARSITY", path)
    assert not plugin_variable("SOF_MEMORY_PATH", path)
    assert not plugin_variable("PROBE_VARS_PATH", path)
