"""An engine made from the host's configuration runs with it as it is now.

Issue 4: "Config changes take effect for the next query without restarting the host";
docs/operations.md: a new engine applies changed execution settings, and a router applies
them to its engine's next query. Before, every ``CoordinatorEngine()`` of a process took the
settings the process-wide plugin manager loaded with, whatever had changed since.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sof_core import (
    UIF,
    BaseSkillModule,
    BaseToolModule,
    CoordinatorEngine,
    QueryRouter,
    SOFConfig,
    hookimpl,
)
from sof_core.config import get_sof_config_manager, reset_sof_config_managers


class SlowAnswer(BaseSkillModule):
    skill_name = "SlowAnswer"
    skill_description = "answers after half a second"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        time.sleep(0.5)
        uif.final_response = "slow answer"
        return uif


def legacy(query: str, **context: object) -> str:
    return f"legacy: {query}"


@pytest.fixture
def host_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A config file of this test's own, read by the process-wide config manager."""
    path = tmp_path / "sof.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    for name in ("SOF_SKILL_TIMEOUT", "SOF_EXECUTOR", "SOF_PLANNER"):
        monkeypatch.delenv(name, raising=False)
    reset_sof_config_managers()
    yield path
    reset_sof_config_managers()


def test_a_new_engine_takes_the_settings_changed_since_an_earlier_one(
    host_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = CoordinatorEngine()
    get_sof_config_manager().update_config(executor="sequential", skill_timeout=5)

    engine = CoordinatorEngine()

    assert (engine.config.executor, engine.config.skill_timeout) == ("sequential", 5.0)
    assert first.config.executor == "threads"  # an engine made earlier keeps its own
    monkeypatch.setenv("SOF_SKILL_TIMEOUT", "7")
    assert CoordinatorEngine().config.skill_timeout == 7.0
    assert engine.follows_host_config and first.follows_host_config


def test_a_routed_query_runs_with_a_timeout_changed_while_the_host_runs(
    host_file: Path,
) -> None:
    manager = get_sof_config_manager()
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          planner="static", default_plan=["SlowAnswer"])
    engine = CoordinatorEngine()
    engine.register_skill(SlowAnswer)
    router = QueryRouter(engine, legacy)
    assert router.route("first", user_id="u").response == "slow answer"

    manager.update_config(skill_timeout=0.1)
    second = router.route("second", user_id="u")

    assert (second.response, second.fallback_reason) == ("legacy: second", "timeout")
    assert engine.config.skill_timeout == 0.1
    manager.update_config(skill_timeout=30)
    assert router.route("third", user_id="u").response == "slow answer"


def test_an_engine_given_its_own_settings_keeps_them_under_a_router(host_file: Path) -> None:
    manager = get_sof_config_manager()
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          planner="static", default_plan=["SlowAnswer"])
    engine = CoordinatorEngine(config=SOFConfig(skill_timeout=5))
    engine.register_skill(SlowAnswer)
    router = QueryRouter(engine, legacy)

    manager.update_config(skill_timeout=0.1)

    assert not engine.follows_host_config
    assert router.route("q", user_id="u").response == "slow answer"
    assert engine.refresh_config() is engine.config and engine.config.skill_timeout == 5


def test_settings_assigned_after_a_run_apply_to_the_next_run(host_file: Path) -> None:
    """The compiled plan carries each step's timeout: new settings must not reuse it."""
    engine = CoordinatorEngine(config=SOFConfig(skill_timeout=5))
    engine.register_skill(SlowAnswer)
    assert engine.execute_plan(["SlowAnswer"], UIF(input_query="q")).status == "success"

    engine.config = engine.config.model_copy(update={"skill_timeout": 0.1})

    report = engine.execute_plan(["SlowAnswer"], UIF(input_query="q"))
    assert report.status == "timeout", report.errors
    assert engine.stats()["plan_cache"]["misses"] == 2  # counts go on across the change


def test_a_setting_assigned_on_the_engines_config_applies_to_the_next_run(
        host_file: Path) -> None:
    """``engine.config.skill_timeout = 0.1`` is accepted and validated: before, a plan
    compiled earlier kept the old timeout (the cache knew the config object, not its
    changes), so whether the setting applied depended on what had run before."""
    engine = CoordinatorEngine(config=SOFConfig(skill_timeout=5))
    engine.register_skill(SlowAnswer)
    assert engine.execute_plan(["SlowAnswer"], UIF(input_query="q")).status == "success"

    engine.config.skill_timeout = 0.1

    report = engine.execute_plan(["SlowAnswer"], UIF(input_query="q"))
    assert report.status == "timeout", report.errors
    assert report.results[0].error_type == "SkillTimeoutError"
    # Nothing assigned since: the plan compiled with the new timeout is reused.
    engine.execute_plan(["SlowAnswer"], UIF(input_query="q"))
    assert engine.stats()["plan_cache"]["misses"] == 2


def test_an_engine_refuses_settings_that_are_not_a_sofconfig() -> None:
    engine = CoordinatorEngine(config=SOFConfig())
    with pytest.raises(Exception, match="must be a SOFConfig") as caught:
        engine.config = "skill_timeout=1"  # type: ignore[assignment]
    assert type(caught.value).__name__ == "ConfigError"


def test_a_change_to_which_plugins_load_gives_a_new_engine_its_own_plugins(
    host_file: Path, dists: Any
) -> None:
    dists.add("follow-demo", """
        from sof_core import BaseSkillModule, hookimpl

        class FollowDemoSkill(BaseSkillModule):
            skill_name = "FollowDemoSkill"
            skill_description = "from an installed plugin"
            required_inputs = ["input_query"]
            output_keys = ["follow_demo"]

            def execute(self, uif):
                uif.intermediate_data["follow_demo"] = 1
                return uif

        @hookimpl
        def sof_register_skills():
            return [FollowDemoSkill]
    """)
    from sof_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    try:
        before = CoordinatorEngine()
        assert before.registry.skill("FollowDemoSkill") is not None

        get_sof_config_manager().update_config(plugins_disable=["follow-demo"])
        after = CoordinatorEngine()

        assert after.registry.skill("FollowDemoSkill") is None
        assert before.registry.skill("FollowDemoSkill") is not None
        # Loaded once for those settings: the next engine made with them shares the load.
        again = CoordinatorEngine()
        assert again.plugins.parent is after.plugins.parent is not before.plugins.parent
        assert again.registry.skill("FollowDemoSkill") is None
    finally:
        reset_plugin_manager()


class QuickAnswer(BaseSkillModule):
    skill_name = "QuickAnswer"
    skill_description = "answers at once"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "quick answer"
        return uif


def test_run_query_on_the_same_engine_plans_with_the_settings_changed_meanwhile(
    host_file: Path,
) -> None:
    """Issue 12: planner settings are live, like the routing flags."""
    manager = get_sof_config_manager()
    manager.update_config(planner="static", default_plan=["QuickAnswer"])
    engine = CoordinatorEngine()
    engine.register_skills([QuickAnswer, SlowAnswer], plugin_name="answers")
    first = engine.run_query("anything")
    assert first.plan == ["QuickAnswer"] and first.final_response == "quick answer"

    manager.update_config(default_plan=["SlowAnswer"], skill_timeout=0.1)
    second = engine.run_query("anything")

    assert second.plan == ["SlowAnswer"]
    assert second.status == "timeout", second.errors
    assert second.planning is not None and second.planning["planner"] == "static"


class ClockTool(BaseToolModule):
    skill_name = "ClockTool"
    skill_description = "tells the time (validated here, never run)"
    required_inputs = ["input_query"]
    output_keys = ["clock"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["clock"] = time.time()
        return uif


class ClockPlugin:
    @hookimpl
    def sof_register_tools(self) -> list[type]:
        return [ClockTool]


def test_a_tool_policy_changed_meanwhile_applies_to_the_engines_next_plan(
    host_file: Path,
) -> None:
    engine = CoordinatorEngine()
    engine.plugins.register(ClockPlugin(), name="clock", raise_errors=True)
    assert engine.validate_plan(["ClockTool"]) == []

    get_sof_config_manager().update_config(tool_policy={"deny_tools": ["ClockTool"]})
    engine.refresh_config()

    (problem,) = engine.validate_plan(["ClockTool"])
    assert problem.code == "tool_denied"
    assert "tool_policy.deny_tools entry 'ClockTool'" in problem.message


def test_a_config_file_broken_meanwhile_leaves_the_settings_in_use(
    host_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refreshing never raises or repeats itself: an unusable configuration (logged once by
    the config manager) leaves the engine with the settings it had."""
    manager = get_sof_config_manager()
    manager.update_config(planner="static", default_plan=["QuickAnswer"], skill_timeout=5)
    engine = CoordinatorEngine()
    engine.register_skills([QuickAnswer], plugin_name="answers")
    assert engine.run_query("anything").final_response == "quick answer"

    host_file.write_text("{broken")
    with caplog.at_level(logging.WARNING, logger="sof"):
        reports = [engine.run_query("anything") for _ in range(3)]

    assert [r.final_response for r in reports] == ["quick answer"] * 3
    assert engine.config.skill_timeout == 5
    complaints = [r for r in caplog.records if "unusable" in r.getMessage()]
    assert len(complaints) == 1, [r.getMessage() for r in caplog.records]


# --- settings given as a mapping -------------------------------------------------------------


def test_an_engine_takes_its_settings_as_a_mapping_too() -> None:
    """``CoordinatorEngine(config={...})`` is what a host writes first; it used to fail with
    ``AttributeError: 'dict' object has no attribute 'skill_providers'``."""
    engine = CoordinatorEngine(config={"skill_timeout": 5, "executor": "sequential"})
    assert engine.config.skill_timeout == 5.0
    assert engine.config.executor == "sequential"
    assert not engine.follows_host_config

    class Echo(BaseSkillModule):
        skill_name = "MappingEcho"
        skill_description = "echoes the query"
        required_inputs = ["input_query"]
        output_keys = ["echo"]

        def execute(self, uif: Any) -> Any:
            uif.intermediate_data["echo"] = uif.input_query
            return uif

    engine.register_skill(Echo)
    report = engine.execute_plan(["MappingEcho"], UIF(input_query="hi"))
    assert report.status == "success" and report.uif.intermediate_data["echo"] == "hi"

    engine.config = {"skill_timeout": 7}
    assert engine.config.skill_timeout == 7.0


@pytest.mark.parametrize(("settings", "key"), [
    ({"skill_timeout": float("inf")}, "skill_timeout"),
    ({"skill_timout": 5}, "skill_timout"),
])
def test_a_bad_mapping_is_a_config_error_naming_the_setting(settings: dict[str, Any],
                                                            key: str) -> None:
    from sof_core.config import ConfigValidationError
    from sof_core.errors import ConfigError

    with pytest.raises(ConfigValidationError) as caught:
        CoordinatorEngine(config=settings)
    assert isinstance(caught.value, ConfigError) and caught.value.key == key
    assert key in str(caught.value)
    engine = CoordinatorEngine(config=SOFConfig())
    with pytest.raises(ConfigError):
        engine.config = settings


def test_settings_of_another_type_are_refused_with_what_to_pass() -> None:
    from sof_core.errors import ConfigError
    from sof_core.plugins import PluginManager

    with pytest.raises(ConfigError, match=r"must be a SOFConfig or a mapping of settings"):
        CoordinatorEngine(config=["skill_timeout", 5])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"PluginManager\(config=\.\.\.\)"):
        PluginManager("skill_timeout=5")  # type: ignore[arg-type]
    assert PluginManager({"plugins_autoload": False}).config.plugins_autoload is False


class _Settled:
    """An in-code plugin that keeps the settings ``sof_configure`` hands it, as the bundled
    plugins do (sof-memory's ``limit``, sof-response's backend)."""

    def __init__(self, fail_on: object = None) -> None:
        self.seen: list[dict[str, Any]] = []
        self.fail_on = fail_on

    @hookimpl
    def sof_configure(self, config: SOFConfig) -> None:
        settings = config.settings_for("settled")
        if settings.get("limit") == self.fail_on:
            raise ValueError(f"limit {self.fail_on!r} is not allowed")
        self.seen.append(settings)


def test_a_plugin_setting_changed_while_the_host_runs_reaches_the_plugin(
    host_file: Path,
) -> None:
    """Issue 4: "Config changes take effect for the next query without restarting the
    host": plugin_settings too, not only SOF's own settings."""
    manager = get_sof_config_manager()
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          planner="static", default_plan=["SlowAnswer"],
                          plugin_settings={"settled": {"limit": 5}})
    engine = CoordinatorEngine()
    plugin = _Settled()
    engine.plugins.register(plugin, name="settled")
    engine.register_skills([SlowAnswer], plugin_name="answers")
    router = QueryRouter(engine, legacy)
    assert plugin.seen[-1] == {"limit": 5}

    manager.update_config(plugin_settings={"settled": {"limit": 1}})
    assert router.route("q", user_id="u").path == "sof"

    assert plugin.seen[-1] == {"limit": 1}
    calls = len(plugin.seen)
    router.route("q", user_id="u")  # unchanged settings: not configured again
    assert len(plugin.seen) == calls


def test_a_plugin_that_refuses_changed_settings_stays_loaded_and_is_named(
    host_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manager = get_sof_config_manager()
    manager.update_config(plugin_settings={"settled": {"limit": 5}})
    engine = CoordinatorEngine()
    plugin = _Settled(fail_on=0)
    engine.plugins.register(plugin, name="settled")
    engine.register_skills([SlowAnswer], plugin_name="answers")

    manager.update_config(plugin_settings={"settled": {"limit": 0}})
    with caplog.at_level(logging.WARNING, logger="sof"):
        report = engine.run_query("q", ["SlowAnswer"])

    assert report.status == "success"
    assert engine.plugins.records["settled"].status == "loaded"
    assert any("plugin 'settled': sof_configure() raised" in r.getMessage()
               and "limit 0 is not allowed" in r.getMessage() for r in caplog.records)
