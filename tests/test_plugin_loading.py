"""Plugins are discovered from real installed metadata; one broken plugin never stops the rest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sof_core import PluginError, PluginManager, SOFConfig

GOOD = """
    from sof_core import BaseSkillModule, hookimpl

    class {name}(BaseSkillModule):
        skill_name = "{name}"
        skill_description = "a working skill"
        required_inputs = ["input_query"]
        output_keys = ["{key}"]
        def execute(self, uif):
            uif.intermediate_data["{key}"] = uif.input_query.upper()
            return uif

    @hookimpl
    def sof_register_skills():
        return [{name}]
"""


def good(name: str, key: str = "") -> str:
    return GOOD.format(name=name, key=key or f"{name.lower()}_out")


def manager(**config: Any) -> PluginManager:
    return PluginManager(SOFConfig(**config)).load()


def records_by_dist(pm: PluginManager) -> dict[str, Any]:
    return {r.distribution: r for r in pm.records.values() if r.distribution}


def test_discovers_and_loads_an_installed_plugin(dists: Any) -> None:
    dists.add("sof-alpha", good("AlphaSkill"), entry_name="alpha", version="2.3")
    pm = manager()
    record = pm.records["alpha"]
    assert record.status == "loaded", record.error
    assert (record.distribution, record.version) == ("sof-alpha", "2.3")
    assert record.hooks == ["sof_register_skills"]
    assert record.import_time_ms is not None and record.import_time_ms >= 0
    assert record.provides == {"skills": ["AlphaSkill"]}
    assert "AlphaSkill" in pm.registry


BROKEN = {
    "import": ("raise RuntimeError('no GPU here')", "PluginLoadError", "no GPU here"),
    "signature": (
        "from sof_core import hookimpl\n@hookimpl\ndef sof_register_skills(unexpected):\n    return []",
        "PluginHookError",
        "unexpected",
    ),
    "misspelt": (
        "from sof_core import hookimpl\n@hookimpl\ndef sof_register_skill():\n    return []",
        "PluginHookError",
        "did you mean 'sof_register_skills'",
    ),
    "unmarked": (
        "def sof_register_skills():\n    return []",
        "PluginHookError",
        "@sof_core.hookimpl",
    ),
    "hook-raises": (
        "from sof_core import hookimpl\n@hookimpl\ndef sof_register_skills():\n    raise ValueError('db down')",
        "PluginHookError",
        "sof_register_skills() raised ValueError: db down",
    ),
    "returns-junk": (
        "from sof_core import hookimpl\n@hookimpl\ndef sof_register_skills():\n    return 42",
        "PluginHookError",
        "must return a list",
    ),
    "not-a-skill": (
        "from sof_core import hookimpl\n@hookimpl\ndef sof_register_skills():\n    return [object()]",
        "PluginHookError",
        "not a skill",
    ),
    # SOF's own errors keep their type, raised by the plugin itself (docs/errors.md)
    "own-compat-error-at-import": (
        "from sof_core import PluginCompatibilityError\n"
        "raise PluginCompatibilityError('x', 'needs the GPU extra')",
        "PluginCompatibilityError",
        "needs the GPU extra",
    ),
    "own-definition-error-in-hook": (
        "from sof_core import hookimpl, SkillDefinitionError\n@hookimpl\n"
        "def sof_register_skills():\n    raise SkillDefinitionError('Broken', 'declares nothing')",
        "SkillDefinitionError",
        "declares nothing",
    ),
    "api-version": (
        "SOF_API_VERSION = 99\n" + "from sof_core import hookimpl",
        "PluginCompatibilityError",
        "SOF_API_VERSION=99",
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_plugin_is_reported_and_skipped_while_others_load(dists: Any, kind: str) -> None:
    source, error_type, message = BROKEN[kind]
    dists.add("sof-aaa-broken", source, entry_name="aaa-broken")
    dists.add("sof-zzz-good", good("ZedSkill"), entry_name="zzz-good")
    pm = manager()
    broken = pm.records["aaa-broken"]
    assert broken.status == "failed"
    assert broken.error_type == error_type
    assert message in (broken.error or "")
    assert "aaa-broken" in (broken.error or "")
    assert pm.records["zzz-good"].status == "loaded"
    assert "ZedSkill" in pm.registry
    # A rejected plugin is fully unregistered: none of its hooks stay behind in pluggy.
    assert pm.hook_manager.get_plugin("aaa-broken") is None
    assert pm.hook_manager.hook.sof_register_skills.get_hookimpls()[0].plugin_name != "aaa-broken"


def test_one_failing_hook_implementation_does_not_hide_the_others(dists: Any) -> None:
    dists.add("sof-a", good("FirstSkill"), entry_name="a")
    dists.add("sof-b", BROKEN["hook-raises"][0], entry_name="b")
    dists.add("sof-c", good("ThirdSkill"), entry_name="c")
    pm = manager()
    assert {"FirstSkill", "ThirdSkill"} <= set(pm.registry.skill_names())
    assert pm.records["b"].status == "failed" and "'b'" in (pm.records["b"].error or "")


def test_duplicate_skill_name_keeps_both_plugins_and_contests_the_name(dists: Any) -> None:
    # More cases in tests/test_skill_conflicts.py.
    dists.add("sof-first", good("SharedSkill", "first_out"), entry_name="first")
    source = good("SharedSkill", "second_out") + "\n" + good("ExtraSkill").split("@hookimpl")[0]
    dists.add("sof-second", source, entry_name="second")
    pm = manager()
    assert pm.records["first"].status == "loaded"
    assert pm.records["second"].status == "loaded"
    assert pm.registry.contested() == {"SharedSkill": ["first", "second"]}
    assert pm.registry.skill("SharedSkill") is None


def test_same_entry_point_name_in_two_distributions_is_reported(dists: Any) -> None:
    # More cases in tests/test_skill_conflicts.py.
    dists.add("sof-one", good("OneSkill"), entry_name="same")
    dists.add("sof-two", good("TwoSkill"), entry_name="same")
    pm = manager()
    by_dist = records_by_dist(pm)
    for dist, other in (("sof-one", "sof-two"), ("sof-two", "sof-one")):
        assert by_dist[dist].status == "failed"
        assert by_dist[dist].error_type == "PluginConflictError"
        assert f"plugins_disable = [\"{other}\"]" in (by_dist[dist].error or "")
    assert "OneSkill" not in pm.registry and "TwoSkill" not in pm.registry


def test_incompatible_core_requirement_is_checked_before_import(dists: Any) -> None:
    module = dists.add(
        "sof-future", "raise SystemExit('must not be imported')", entry_name="future",
        requires=["sof-core>=9.0", "httpx; extra == 'web'"],
    )
    pm = manager()
    record = pm.records["future"]
    assert record.status == "failed" and record.error_type == "PluginCompatibilityError"
    assert "requires sof-core>=9.0" in (record.error or "")
    import sys

    assert module not in sys.modules


def test_allow_and_deny_lists_from_environment(dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dists.add("sof-keep", good("KeepSkill"), entry_name="keep")
    dists.add("sof-drop", good("DropSkill"), entry_name="drop")
    monkeypatch.setenv("SOF_PLUGINS_DISABLE", "drop")
    pm = PluginManager().load()
    assert pm.records["drop"].status == "disabled" and "DropSkill" not in pm.registry
    assert "KeepSkill" in pm.registry
    monkeypatch.delenv("SOF_PLUGINS_DISABLE")
    monkeypatch.setenv("SOF_PLUGINS_ONLY", "sof-drop")  # distribution names work too
    pm = PluginManager().load()
    assert pm.records["keep"].status == "disabled" and "DropSkill" in pm.registry


def test_autoload_can_be_switched_off(dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dists.add("sof-auto", good("AutoSkill"), entry_name="auto")
    monkeypatch.setenv("SOF_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = PluginManager().load()
    assert "auto" not in pm.records and "AutoSkill" not in pm.registry
    # Built-ins still load: they are plugins registered in code, not entry points.
    assert "threads" in pm.registry.components("executors")


def test_a_disable_or_only_list_naming_no_installed_plugin_is_warned_about(
    dists: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: a typo ("memroy") left the plugin it meant loaded, without a word.
    dists.add("sof-auto", good("AutoSkill"), entry_name="auto")
    monkeypatch.setenv("SOF_PLUGINS_DISABLE", "atuo,sof-auto-typo")
    with caplog.at_level("WARNING", logger="sof.plugins"):
        pm = PluginManager().load()
    assert pm.records["auto"].status == "loaded"
    messages = [r.getMessage() for r in caplog.records]
    assert any("names 'atuo'" in m and "did you mean 'auto'?" in m for m in messages), messages
    assert any("'sof-auto-typo'" in m for m in messages)
    assert len(pm.discovery_warnings) == 2
    caplog.clear()
    monkeypatch.setenv("SOF_PLUGINS_DISABLE", "Auto")  # matched exactly, as it is applied
    with caplog.at_level("WARNING", logger="sof.plugins"):
        assert PluginManager().load().records["auto"].status == "loaded"
    assert any("names 'Auto'" in r.getMessage() for r in caplog.records)
    monkeypatch.setenv("SOF_PLUGINS_DISABLE", "auto")  # a real name: no warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="sof.plugins"):
        PluginManager().load()
    assert not [r for r in caplog.records if "no installed plugin" in r.getMessage()]


def test_sof_plugins_lists_the_installed_ones_as_disabled_when_autoload_is_off(
    dists: Any, sof_cli: Any
) -> None:
    # Before: "no SOF plugins installed", though they were.
    dists.add("sof-auto", good("AutoSkill"), entry_name="auto")
    env = dists.env()
    env["SOF_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    table = sof_cli("plugins", env=env)
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("auto "))
    assert "sof-auto" in row and "disabled" in row and "autoload is off" in row
    listed = {r["name"]: r for r in json.loads(sof_cli("plugins", "--json", env=env).stdout)}
    assert listed["auto"]["status"] == "disabled"
    assert "SOF_DISABLE_PLUGIN_AUTOLOAD" in listed["auto"]["error"]


def test_strict_mode_turns_any_plugin_problem_into_an_error(
    dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dists.add("sof-bad", BROKEN["import"][0], entry_name="bad")
    monkeypatch.setenv("SOF_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="strict mode: 1 plugin"):
        PluginManager().load()


def test_plugins_registered_in_code_get_the_same_checks() -> None:
    class Misspelt:
        from sof_core import hookimpl

        @hookimpl
        def sof_regster_skills(self) -> list[Any]:
            return []

    pm = manager(plugins_autoload=False)
    record = pm.register(Misspelt(), name="host-plugin")
    assert record.status == "failed" and "sof_regster_skills" in (record.error or "")
    assert pm.hook_manager.get_plugin("host-plugin") is None


def test_observer_exceptions_are_counted_not_raised() -> None:
    from sof_core import hookimpl

    seen: list[str] = []

    class Observers:
        @hookimpl
        def sof_alert(self, kind: str) -> None:
            raise RuntimeError("observer bug")

        @hookimpl
        def sof_after_plan(self, report: Any) -> None:
            seen.append(report.status)

    pm = manager(plugins_autoload=False)
    pm.register(Observers(), name="obs")
    pm.notify("sof_alert", kind="x", message="m", details={})
    assert pm.observer_errors == 1


def test_sof_plugins_lists_every_plugin_with_its_error(dists: Any, sof_cli: Any) -> None:
    dists.add("sof-good", good("GoodSkill"), entry_name="good", version="1.2.3")
    dists.add("sof-broken", BROKEN["import"][0], entry_name="broken")
    result = sof_cli("plugins", "--json", env=dists.env())
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["good"]["status"] == "loaded" and rows["good"]["version"] == "1.2.3"
    assert rows["good"]["hooks"] == ["sof_register_skills"]
    assert isinstance(rows["good"]["import_time_ms"], float)
    assert rows["broken"]["status"] == "failed"
    assert "no GPU here" in rows["broken"]["error"]
    table = sof_cli("plugins", env=dists.env())
    assert "broken" in table.stdout and "PluginLoadError" not in table.stderr
    assert "Traceback" not in table.stdout + table.stderr


def test_sof_plugins_works_when_every_plugin_is_broken(dists: Any, sof_cli: Any) -> None:
    dists.add("sof-b1", BROKEN["import"][0], entry_name="b1")
    dists.add("sof-b2", BROKEN["signature"][0], entry_name="b2")
    env = dists.env()
    result = sof_cli("plugins", env=env)
    assert result.returncode == 0
    assert "b1" in result.stdout and "b2" in result.stdout and "failed" in result.stdout
    env["SOF_STRICT_PLUGINS"] = "1"
    strict = sof_cli("plugins", env=env)
    assert strict.returncode == 1 and "strict mode" in strict.stderr
    assert "Traceback" not in strict.stderr


def test_discovery_reads_metadata_without_importing(dists: Any) -> None:
    module = dists.add("sof-lazy", "raise SystemExit('imported!')", entry_name="lazy")
    pm = PluginManager(SOFConfig())
    records = {r.name: r for r in pm.discover()}
    assert records["lazy"].status == "discovered" and records["lazy"].module == module
    import sys

    assert module not in sys.modules


def test_configure_hook_reaches_plugins_loaded_at_start_and_registered_later(dists: Any) -> None:
    dists.add("sof-conf", """
        from sof_core import hookimpl
        SEEN = []
        @hookimpl
        def sof_configure(config, registry):
            SEEN.append((config.executor, "threads" in registry.components("executors")))
    """, entry_name="conf", module="sof_conf_probe")
    pm = manager(executor="asyncio")
    import sof_conf_probe  # type: ignore[import-not-found]

    assert sof_conf_probe.SEEN == [("asyncio", True)]

    class Late:
        configured: list[str] = []

        from sof_core import hookimpl

        @hookimpl
        def sof_configure(self, registry: Any) -> None:
            Late.configured.append("yes")

    class Broken:
        from sof_core import hookimpl

        @hookimpl
        def sof_configure(self) -> None:
            raise RuntimeError("bad settings")

    assert pm.register(Late(), name="late").status == "loaded"
    assert Late.configured == ["yes"]
    broken = pm.register(Broken(), name="broken-conf")
    assert broken.status == "failed" and "bad settings" in (broken.error or "")
    assert pm.hook_manager.get_plugin("broken-conf") is None


def test_a_broken_config_file_never_stops_a_host_from_starting(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sof_core import ConfigError

    broken = tmp_path / "config.json"
    broken.write_text('{"executor": "threads", ')
    monkeypatch.setenv("SOF_CONFIG", str(broken))
    monkeypatch.setenv("SOF_MAX_PLAN_LENGTH", "7")
    with caplog.at_level("WARNING", logger="sof.config"):
        pm = PluginManager().load()
    assert pm.config.max_plan_length == 7  # the environment still applies
    assert "ignoring the config file" in caplog.text and str(broken) in caplog.text
    monkeypatch.setenv("SOF_MAX_PLAN_LENGTH", "many")
    with pytest.raises(ConfigError, match="max_plan_length"):
        PluginManager()  # explicit bad environment is still an error


def test_a_registration_hook_returning_none_adds_nothing_and_fails_nothing(dists: Any) -> None:
    # docs/hooks.md: "`None` adds nothing" (a plugin providing skills only when, say, an
    # optional dependency is there returns None otherwise).
    dists.add("sof-maybe", "from sof_core import hookimpl\n@hookimpl\n"
              "def sof_register_skills():\n    return None", entry_name="maybe")
    pm = manager()
    record = pm.records["maybe"]
    assert (record.status, record.error) == ("loaded", None)
    assert record.provides in ({}, {"skills": []})


def test_the_registry_says_which_skills_cannot_run_and_describes_the_others(
    dists: Any
) -> None:
    dists.add("sof-one", good("SameSkill", "one_out"), entry_name="one")
    dists.add("sof-two", good("SameSkill", "two_out"), entry_name="two")
    dists.add("sof-alpha", good("AlphaSkill"), entry_name="alpha")
    registry = manager().registry
    assert list(registry.unavailable()) == ["SameSkill"]
    assert registry.unavailable()["SameSkill"].startswith(
        "offered by plugins 'one', 'two'; unavailable until ")
    described = registry.skill("AlphaSkill").describe()  # type: ignore[union-attr]
    assert (described["name"], described["inputs"], described["outputs"],
            described["plugin"], described["kind"]) == (
        "AlphaSkill", ["input_query"], ["alphaskill_out"], "alpha", "skills")
