"""Two plugins, one skill name: neither is unloaded, the name waits for ``skill_providers``.

Also: one entry-point name in two distributions is reported for both, and a skill that is
missing because its plugin failed to load is reported as exactly that, without suggesting a
different skill.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sof_core import (
    UIF,
    ConfigError,
    PlanValidationError,
    PluginError,
    PluginManager,
    SOFConfig,
)

SKILL = """
class {name}(BaseSkillModule):
    skill_name = "{name}"
    skill_description = "{name} from {dist}"
    required_inputs = ["input_query"]
    output_keys = ["{key}"]
    def execute(self, uif):
        uif.intermediate_data["{key}"] = "{dist}"
        return uif
"""


def plugin(dist: str, *skills: str) -> str:
    """Source of a plugin module registering ``skills``; each writes its distribution name."""
    body = "from sof_core import BaseSkillModule, hookimpl\n"
    for name in skills:
        body += SKILL.format(name=name, dist=dist, key=f"{name.lower()}_out")
    body += f"\n@hookimpl\ndef sof_register_skills():\n    return [{', '.join(skills)}]\n"
    return body


def two_memory_plugins(dists: Any) -> None:
    dists.add("sam-skills", plugin("sam-skills", "MemoryRetrievalSkill", "PlannerSkill"),
              entry_name="sam")
    dists.add("acme-memory", plugin("acme-memory", "MemoryRetrievalSkill", "AcmeSkill"),
              entry_name="acme")


#: The bundled plugins are installed too; they are kept out so only the test's plugins compete.
BUNDLED = ["sof-memory", "sof-response", "sof-conflict", "sof-dask"]


@pytest.fixture(autouse=True)
def _only_test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOF_PLUGINS_DISABLE", ",".join(BUNDLED))


def manager(**config: Any) -> PluginManager:
    config["plugins_disable"] = BUNDLED + config.get("plugins_disable", [])
    return PluginManager(SOFConfig(**config)).load()


def test_a_shared_skill_name_unloads_neither_plugin(dists: Any) -> None:
    two_memory_plugins(dists)
    pm = manager()
    assert pm.records["sam"].status == "loaded" and pm.records["acme"].status == "loaded"
    assert {"PlannerSkill", "AcmeSkill"} <= set(pm.registry.skill_names())
    assert "MemoryRetrievalSkill" not in pm.registry
    assert pm.registry.contested() == {"MemoryRetrievalSkill": ["acme", "sam"]}
    assert pm.registry.providers("MemoryRetrievalSkill") == ["acme", "sam"]
    assert pm.registry.providers("AcmeSkill") == ["acme"]
    for name, other in (("sam", "acme"), ("acme", "sam")):
        (conflict,) = pm.records[name].conflicts
        assert f"'MemoryRetrievalSkill' is also provided by plugin(s) '{other}'" in conflict
        assert "skill_providers" in conflict
        assert pm.records[name].to_dict()["conflicts"] == [conflict]


def test_validation_names_both_plugins_and_the_setting_that_settles_it(dists: Any) -> None:
    from sof_core import CoordinatorEngine

    two_memory_plugins(dists)
    engine = CoordinatorEngine(manager())
    (problem,) = engine.validate_plan(["MemoryRetrievalSkill"])
    assert problem.code == "contested_skill"
    assert problem.skills == ("MemoryRetrievalSkill",)
    message = str(problem)
    assert "'acme' and 'sam'" in message
    assert 'skill_providers = {"MemoryRetrievalSkill": "acme"}' in message
    assert "SOF_SKILL_PROVIDERS=" in message
    assert "did you mean" not in message
    with pytest.raises(PlanValidationError, match="provided by plugins 'acme' and 'sam'"):
        engine.execute_plan(["MemoryRetrievalSkill"], UIF(input_query="q"))
    assert engine.execute_plan(["AcmeSkill"], UIF(input_query="q")).status == "success"


@pytest.mark.parametrize("provider", ["sam", "sam-skills", "SAM_Skills"])
def test_skill_providers_names_the_provider_by_plugin_or_distribution(
    dists: Any, provider: str
) -> None:
    from sof_core import CoordinatorEngine

    two_memory_plugins(dists)
    pm = manager(skill_providers={"MemoryRetrievalSkill": provider})
    entry = pm.registry.skill("MemoryRetrievalSkill")
    assert entry is not None and entry.plugin == "sam"
    assert pm.registry.contested() == {}
    assert "this plugin provides it (chosen by skill_providers)" in pm.records["sam"].conflicts[0]
    assert "'sam', which provides it" in pm.records["acme"].conflicts[0]
    report = CoordinatorEngine(pm).run_query("q", ["MemoryRetrievalSkill"])
    assert report.uif.intermediate_data == {"memoryretrievalskill_out": "sam-skills"}


def test_skill_providers_from_the_config_file_and_the_environment(
    dists: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_memory_plugins(dists)
    config_file = tmp_path / "config.toml"
    config_file.write_text('[skill_providers]\nMemoryRetrievalSkill = "acme-memory"\n')
    monkeypatch.setenv("SOF_CONFIG", str(config_file))
    assert PluginManager().load().registry.skill("MemoryRetrievalSkill").plugin == "acme"
    json_file = tmp_path / "config.json"
    json_file.write_text(json.dumps({"skill_providers": {"MemoryRetrievalSkill": "sam"}}))
    monkeypatch.setenv("SOF_CONFIG", str(json_file))
    assert PluginManager().load().registry.skill("MemoryRetrievalSkill").plugin == "sam"
    monkeypatch.setenv("SOF_SKILL_PROVIDERS", json.dumps({"MemoryRetrievalSkill": "acme"}))
    assert PluginManager().load().registry.skill("MemoryRetrievalSkill").plugin == "acme"


def test_a_malformed_skill_providers_variable_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOF_SKILL_PROVIDERS", "MemoryRetrievalSkill=sam")
    with pytest.raises(ConfigError, match=r"SOF_SKILL_PROVIDERS.*not a JSON object") as info:
        PluginManager()
    assert info.value.key == "skill_providers"


def test_skill_providers_naming_a_plugin_that_does_not_offer_the_skill(dists: Any) -> None:
    from sof_core import CoordinatorEngine

    two_memory_plugins(dists)
    engine = CoordinatorEngine(manager(skill_providers={"MemoryRetrievalSkill": "gone"}))
    (problem,) = engine.validate_plan(["MemoryRetrievalSkill"])
    assert problem.code == "contested_skill"
    assert "skill_providers names 'gone', which does not provide it" in str(problem)


def test_removing_one_contender_makes_the_name_available(dists: Any) -> None:
    two_memory_plugins(dists)
    pm = manager()
    pm.unregister("acme")
    entry = pm.registry.skill("MemoryRetrievalSkill")
    assert entry is not None and entry.plugin == "sam"
    assert pm.registry.contested() == {} and pm.records["sam"].conflicts == []


def test_an_in_code_skill_settles_a_contested_name_on_its_engine(
    dists: Any, make_skill: Any
) -> None:
    from sof_core import CoordinatorEngine

    two_memory_plugins(dists)
    pm = manager()
    engine = CoordinatorEngine(pm.overlay())
    engine.register_skill(make_skill("MemoryRetrievalSkill", ["input_query"], ["mine"]))
    assert engine.registry.skill("MemoryRetrievalSkill").plugin == "code:MemoryRetrievalSkill"
    assert engine.registry.contested() == {}
    assert pm.registry.contested() == {"MemoryRetrievalSkill": ["acme", "sam"]}


def test_sof_run_names_both_plugins_and_the_setting(dists: Any, sof_cli: Any) -> None:
    two_memory_plugins(dists)
    env = dists.env()
    run = sof_cli("run", "q", "--plan", "MemoryRetrievalSkill", env=env)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "'acme' and 'sam'" in run.stderr and "skill_providers" in run.stderr
    env["SOF_SKILL_PROVIDERS"] = '{"MemoryRetrievalSkill": "acme-memory"}'
    settled = sof_cli("run", "q", "--plan", "MemoryRetrievalSkill", "--json", env=env)
    assert settled.returncode == 0, settled.stderr


def test_goal_planning_names_the_contested_producer_and_the_setting(dists: Any) -> None:
    # Before: "no registered skill produces 'memoryretrievalskill_out'; install a plugin that
    # outputs it", though two installed plugins do.
    from sof_core import CoordinatorEngine, GoalResolutionError

    two_memory_plugins(dists)
    engine = CoordinatorEngine(manager())
    with pytest.raises(GoalResolutionError) as info:
        engine.resolve_goal("memoryretrievalskill_out")
    message = str(info.value)
    assert "no available skill produces 'memoryretrievalskill_out'" in message
    assert "'acme', 'sam'" in message and "skill_providers" in message
    assert "install a plugin" not in message
    settled = CoordinatorEngine(manager(skill_providers={"MemoryRetrievalSkill": "sam"}))
    assert settled.resolve_goal("memoryretrievalskill_out") == ["MemoryRetrievalSkill"]


def test_the_default_planner_says_why_a_contested_default_plan_skill_is_left_out(
    dists: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: the plan silently lacked it (planning.skipped empty, nothing logged).
    from sof_core import CoordinatorEngine

    two_memory_plugins(dists)
    engine = CoordinatorEngine(manager(default_plan=["MemoryRetrievalSkill", "AcmeSkill"],
                                       planner_options={"rules": {"goals": ["acmeskill_out"]}}))
    with caplog.at_level("WARNING", logger="sof.planning"):
        planned = engine.planning.plan("q", use_cache=False)
    assert "MemoryRetrievalSkill" not in planned.plan
    why = planned.skipped["MemoryRetrievalSkill"]
    assert "left out of default_plan" in why and "skill_providers" in why
    assert "'acme', 'sam'" in why
    assert any("planning without MemoryRetrievalSkill" in r.getMessage() for r in caplog.records)


def test_strict_mode_counts_an_unsettled_skill_name_as_a_plugin_problem(
    dists: Any, sof_cli: Any
) -> None:
    """Issue 2: strict mode turns any plugin problem into a non-zero exit, and a duplicate
    skill name is one; settled by ``skill_providers``, it is not."""
    two_memory_plugins(dists)
    with pytest.raises(PluginError, match=r"strict mode: skill 'MemoryRetrievalSkill' is "
                                          r"provided by plugins 'acme', 'sam'.*skill_providers"):
        manager(strict_plugins=True)
    env = dists.env()
    env["SOF_STRICT_PLUGINS"] = "1"
    listed = sof_cli("plugins", env=env)
    assert listed.returncode == 1 and "Traceback" not in listed.stderr
    assert "acme" in listed.stdout and "sam" in listed.stdout  # the table is still printed
    assert "strict mode: skill 'MemoryRetrievalSkill'" in listed.stderr
    assert "SOF_SKILL_PROVIDERS" in listed.stderr
    env["SOF_SKILL_PROVIDERS"] = '{"MemoryRetrievalSkill": "acme-memory"}'
    settled = sof_cli("plugins", env=env)
    assert settled.returncode == 0, settled.stderr
    manager(strict_plugins=True, skill_providers={"MemoryRetrievalSkill": "sam"})


# --- one entry-point name, two distributions --------------------------------------------------


def test_one_entry_point_name_in_two_distributions_loads_neither(dists: Any) -> None:
    dists.add("sof-one", plugin("sof-one", "OneSkill"), entry_name="same")
    dists.add("sof-two", plugin("sof-two", "TwoSkill"), entry_name="same")
    pm = manager()
    one, two = pm.records["same (sof-one)"], pm.records["same (sof-two)"]
    for record, other in ((one, "sof-two"), (two, "sof-one")):
        assert record.status == "failed" and record.error_type == "PluginConflictError"
        assert "'sof-one', 'sof-two'" in (record.error or "")
        assert f'plugins_disable = ["{other}"]' in (record.error or "")
    assert "OneSkill" not in pm.registry and "TwoSkill" not in pm.registry
    # Looked up by the plain name the distributions declare, the first record answers;
    # membership stays exact (no plugin is called just "same").
    assert pm.records["same"] is one
    assert "same" not in pm.records and pm.records.get("same") is None
    assert pm.overlay().records["same"] is one  # an engine's overlay reads through
    with pytest.raises(KeyError):
        pm.records["sam"]


def test_sof_plugins_name_shows_every_distribution_of_a_shared_entry_point_name(
    dists: Any, sof_cli: Any
) -> None:
    # Before: `sof plugins same` was "no plugin named 'same'" (exit 2).
    dists.add("sof-one", plugin("sof-one", "OneSkill"), entry_name="same")
    dists.add("sof-two", plugin("sof-two", "TwoSkill"), entry_name="same")
    shown = sof_cli("plugins", "same", env=dists.env())
    assert shown.returncode == 1, shown.stderr  # both failed to load
    assert "plugin same (sof-one)" in shown.stdout and "plugin same (sof-two)" in shown.stdout
    assert shown.stdout.count("PluginConflictError") == 2
    listed = json.loads(sof_cli("plugins", "same", "--json", env=dists.env()).stdout)
    assert sorted(r["distribution"] for r in listed) == ["sof-one", "sof-two"]


def test_disabling_one_distribution_loads_the_other_under_the_plain_name(dists: Any) -> None:
    dists.add("sof-one", plugin("sof-one", "OneSkill"), entry_name="same")
    dists.add("sof-two", plugin("sof-two", "TwoSkill"), entry_name="same")
    pm = manager(plugins_disable=["sof-one"])
    assert pm.records["same"].status == "loaded" and pm.records["same"].distribution == "sof-two"
    assert pm.records["same (sof-one)"].status == "disabled"
    assert "TwoSkill" in pm.registry and "OneSkill" not in pm.registry


def test_sof_run_never_suggests_another_plugins_skill(dists: Any, sof_cli: Any) -> None:
    dists.add("sof-one", plugin("sof-one", "OneSkill"), entry_name="one")
    dists.add("sof-two", "raise RuntimeError('broken build')", entry_name="two")
    result = sof_cli("run", "q", "--plan", "TwoSkill", env=dists.env())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "unknown skill 'TwoSkill'" in result.stderr
    assert "OneSkill" not in result.stderr
    assert "plugin(s) 'two' failed to load" in result.stderr and "may provide it" in result.stderr


# --- skills of plugins that failed to load ------------------------------------------------


def test_a_skill_of_a_plugin_that_failed_to_register_is_reported_as_such(dists: Any) -> None:
    from sof_core import CoordinatorEngine

    source = plugin("sof-half", "GoodSkill") + (
        "\nclass Broken:\n    skill_name = 'BrokenSkill'\n    def execute(self, uif):\n"
        "        return uif\n"
        "\n@hookimpl\ndef sof_register_tools():\n    return [Broken]\n"
    )
    dists.add("sof-half", source, entry_name="half")
    engine = CoordinatorEngine(manager())
    record = engine.plugins.records["half"]
    assert record.status == "failed" and record.offered == ["GoodSkill", "BrokenSkill"]
    (problem,) = engine.validate_plan(["GoodSkill"])
    assert problem.code == "unknown_skill"
    assert str(problem).startswith(
        "skill 'GoodSkill' is provided by plugin 'half', which failed to load: skill "
        "'BrokenSkill': has no 'skill_version'"
    )
    assert str(problem).endswith("; see `sof plugins`")


def test_a_plugin_that_failed_to_import_is_named_as_a_possible_provider(dists: Any) -> None:
    from sof_core import CoordinatorEngine

    dists.add("sof-gone", "import not_installed_anywhere", entry_name="gone")
    engine = CoordinatorEngine(manager())
    (failure,) = engine.registry.failures()
    assert (failure.plugin, failure.skills) == ("gone", None)
    assert "ModuleNotFoundError" in failure.error
    (problem,) = engine.validate_plan(["GoneSkill"])
    assert str(problem) == (
        "unknown skill 'GoneSkill': no loaded plugin registers it; run `sof skills` to list "
        "registered skills; plugin(s) 'gone' failed to load before declaring their skills "
        "and may provide it (see `sof plugins`)"
    )


def test_sof_skills_name_names_a_plugin_that_failed_before_declaring_its_skills(
    dists: Any, sof_cli: Any
) -> None:
    # Before: "no skill named 'GoneSkill'", as if nothing could provide it.
    dists.add("sof-gone", "import not_installed_anywhere", entry_name="gone")
    shown = sof_cli("skills", "GoneSkill", env=dists.env())
    assert shown.returncode == 2
    assert "no skill named 'GoneSkill'" in shown.stderr
    assert "plugin(s) 'gone' failed to load before declaring their skills" in shown.stderr
    assert "did you mean" not in shown.stderr  # not another plugin's skill


def test_typos_are_still_suggested_but_other_skills_are_not(make_skill: Any) -> None:
    from sof_core.testing import make_engine

    engine = make_engine([
        make_skill("OneSkill", ["input_query"], ["one"]),
        make_skill("MemoryRetrievalSkill", ["input_query"], ["m"]),
    ])
    (other,) = engine.validate_plan(["TwoSkill"])
    assert "did you mean" not in str(other)
    (typo,) = engine.validate_plan(["MemoryRetreivalSkill"])
    assert "did you mean 'MemoryRetrievalSkill'?" in str(typo)
    (no_suffix,) = engine.validate_plan(["MemoryRetrieval"])
    assert "did you mean 'MemoryRetrievalSkill'?" in str(no_suffix)


def test_sof_skills_json_lists_a_contested_name_as_unavailable(dists: Any, sof_cli: Any) -> None:
    two_memory_plugins(dists)
    env = dists.env()
    listed = json.loads(sof_cli("skills", "--json", env=env).stdout)
    by_name = {item["name"]: item for item in listed}
    assert by_name["AcmeSkill"]["available"] is True
    assert by_name["AcmeSkill"]["plugin"] == "acme"
    assert by_name["AcmeSkill"]["inputs"] == ["input_query"]
    assert by_name["AcmeSkill"]["outputs"] == ["acmeskill_out"]
    contested = by_name["MemoryRetrievalSkill"]
    assert contested["available"] is False
    assert "'acme'" in contested["unavailable_reason"]
    assert "'sam'" in contested["unavailable_reason"]
    assert "skill_providers" in contested["unavailable_reason"]
    env["SOF_SKILL_PROVIDERS"] = '{"MemoryRetrievalSkill": "acme-memory"}'
    settled = {item["name"]: item
               for item in json.loads(sof_cli("skills", "--json", env=env).stdout)}
    assert settled["MemoryRetrievalSkill"]["available"] is True
    assert settled["MemoryRetrievalSkill"]["plugin"] == "acme"
