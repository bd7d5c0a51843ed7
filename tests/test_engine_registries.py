"""Each engine owns what is registered on it in code; installed plugins are loaded once and shared.

A failed registration never changes what was registered before, and raises its specific
error type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sof_core import (
    CoordinatorEngine,
    PluginConflictError,
    PluginError,
    PluginHookError,
    SkillDefinitionError,
    SOFConfig,
    hookimpl,
)
from sof_core.plugins import PluginManager, get_plugin_manager, reset_plugin_manager
from sof_core.testing import make_engine

SHARED = """
    from sof_core import BaseSkillModule, hookimpl

    IMPORTS = []
    IMPORTS.append(1)

    class SharedSkill(BaseSkillModule):
        skill_name = "SharedSkill"
        skill_description = "an installed skill"
        required_inputs = ["input_query"]
        output_keys = ["shared_out"]
        def execute(self, uif):
            uif.intermediate_data["shared_out"] = "installed"
            return uif

    @hookimpl
    def sof_register_skills():
        return [SharedSkill]
"""


@pytest.fixture
def shared_manager(dists: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A process-wide manager that loads one real installed plugin (and nothing else)."""
    module = dists.add("sof-shared", SHARED, entry_name="shared")
    monkeypatch.setenv("SOF_PLUGINS_ONLY", "shared")
    reset_plugin_manager()
    yield module
    reset_plugin_manager()


def names(engine: CoordinatorEngine) -> list[str]:
    return engine.registry.skill_names()


def test_two_default_engines_do_not_see_each_others_in_code_skills(
    shared_manager: str, make_skill: Any
) -> None:
    first, second = CoordinatorEngine(), CoordinatorEngine()
    first.register_skill(make_skill("OnlyOnFirst", ["input_query"], ["first_out"]))
    second.register_skills([make_skill("OnlyOnSecond", ["input_query"], ["second_out"])])

    assert names(first) == ["OnlyOnFirst", "SharedSkill"]
    assert names(second) == ["OnlyOnSecond", "SharedSkill"]
    assert names(CoordinatorEngine()) == ["SharedSkill"]  # a new engine starts clean
    assert get_plugin_manager().registry.skill_names() == ["SharedSkill"]
    assert "code:OnlyOnFirst" in first.plugins.records
    assert "code:OnlyOnFirst" not in second.plugins.records
    with pytest.raises(Exception, match="unknown skill 'OnlyOnFirst'"):
        second.execute_plan(["OnlyOnFirst"], _uif())
    report = first.execute_plan(["OnlyOnFirst", "SharedSkill"], _uif())
    assert report.status == "success", report.errors


def test_installed_plugins_are_loaded_once_and_shared(shared_manager: str) -> None:
    import sys

    first, second = CoordinatorEngine(), CoordinatorEngine()
    assert sys.modules[shared_manager].IMPORTS == [1]
    one, two = first.registry.skill("SharedSkill"), second.registry.skill("SharedSkill")
    assert one is not None and two is not None and one.instance is two.instance
    assert first.plugins.parent is second.plugins.parent is get_plugin_manager()
    assert first.plugins.records["shared"].status == "loaded"  # records read through


def test_the_same_skill_name_on_two_engines_is_two_skills(
    shared_manager: str, make_skill: Any
) -> None:
    first, second = CoordinatorEngine(), CoordinatorEngine()
    first.register_skill(make_skill("Answer", ["input_query"], ["first_answer"]))
    second.register_skill(make_skill("Answer", ["input_query"], ["second_answer"]))
    assert first.registry.skill("Answer").spec.output_keys == ("first_answer",)
    assert second.registry.skill("Answer").spec.output_keys == ("second_answer",)


def test_an_in_code_skill_overrides_an_installed_one_on_its_engine_only(
    shared_manager: str, make_skill: Any
) -> None:
    mine, other = CoordinatorEngine(), CoordinatorEngine()
    mine.register_skill(make_skill("SharedSkill", ["input_query"], ["shared_out"]))
    assert mine.registry.skill("SharedSkill").plugin == "code:SharedSkill"
    assert other.registry.skill("SharedSkill").plugin == "shared"
    report = mine.execute_plan(["SharedSkill"], _uif())
    assert report.uif.intermediate_data["shared_out"] == "SharedSkill:shared_out"
    assert other.execute_plan(["SharedSkill"], _uif()).uif.intermediate_data == {
        "shared_out": "installed"
    }


def test_plugins_registered_on_an_engines_manager_belong_to_that_engine(
    shared_manager: str, make_skill: Any
) -> None:
    seen: list[str] = []

    class Watcher:
        @hookimpl
        def sof_after_plan(self, report: Any) -> None:
            seen.append(report.status)

    watched, unwatched = CoordinatorEngine(), CoordinatorEngine()
    assert watched.plugins.register(Watcher(), name="watcher").status == "loaded"
    unwatched.execute_plan(["SharedSkill"], _uif())
    assert seen == []
    watched.execute_plan(["SharedSkill"], _uif())
    assert seen == ["success"]
    assert "watcher" not in unwatched.plugins.records
    assert "watcher" not in get_plugin_manager().records


def test_what_the_shared_manager_gains_every_engine_sees(
    shared_manager: str, make_skill: Any
) -> None:
    engine = CoordinatorEngine()
    compiled = engine.compile(["SharedSkill"])
    assert engine.compile(["SharedSkill"]) is compiled
    before = engine.registry.version

    class Late:
        @hookimpl
        def sof_register_skills(self) -> list[Any]:
            return [make_skill("LateSkill", ["input_query"], ["late_out"])]

    get_plugin_manager().register(Late(), name="late")
    assert engine.registry.version != before  # the engine's caches key on this
    assert engine.compile(["SharedSkill"]) is not compiled
    assert "LateSkill" in engine.registry


def test_an_observer_on_the_shared_manager_sees_every_default_engine(
    shared_manager: str,
) -> None:
    seen: list[int] = []

    class Watcher:
        @hookimpl
        def sof_after_plan(self, report: Any) -> None:
            seen.append(len(report.results))

    first, second = CoordinatorEngine(), CoordinatorEngine()
    first.execute_plan(["SharedSkill"], _uif())  # fills the engine's observer cache
    get_plugin_manager().register(Watcher(), name="watcher")
    first.execute_plan(["SharedSkill"], _uif())
    second.execute_plan(["SharedSkill"], _uif())
    assert seen == [1, 1]


def test_a_plugin_name_used_by_an_installed_plugin_is_refused(
    shared_manager: str, make_skill: Any
) -> None:
    engine = CoordinatorEngine()
    with pytest.raises(PluginConflictError, match="already loaded for the whole process"):
        engine.register_skills([make_skill("Mine", ["input_query"], ["m"])], plugin_name="shared")
    assert "Mine" not in engine.registry and engine.plugins.records["shared"].status == "loaded"


def test_an_engine_local_change_moves_only_that_engines_version(
    shared_manager: str, make_skill: Any
) -> None:
    first, second = CoordinatorEngine(), CoordinatorEngine()
    compiled = first.compile(["SharedSkill"])
    versions = (first.registry.version, second.registry.version)
    first.register_skill(make_skill("Extra", ["input_query"], ["extra"]))
    assert first.registry.version != versions[0]
    assert second.registry.version == versions[1]
    assert first.compile(["SharedSkill"]) is not compiled


def test_an_engine_cannot_unregister_a_plugin_it_shares(shared_manager: str) -> None:
    engine = CoordinatorEngine()
    with pytest.raises(PluginError, match=r"'shared'.*loaded for the whole process"):
        engine.plugins.unregister("shared")
    assert "SharedSkill" in engine.registry


# --- a failed registration changes nothing ------------------------------------------------

ENGINES: dict[str, Callable[[], CoordinatorEngine]] = {
    "default engine": lambda: CoordinatorEngine(),
    "engine with its own manager": lambda: make_engine(),
}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest, shared_manager: str) -> CoordinatorEngine:
    return ENGINES[request.param]()


def snapshot(engine: CoordinatorEngine) -> dict[str, Any]:
    return {
        "skills": {e.spec.name: (e.plugin, e.instance) for e in engine.registry.skills()},
        "records": {n: (r.status, r.provides) for n, r in engine.plugins.records.items()},
        "hooks": sorted(
            i.plugin_name for i in engine.plugins.hook_manager.hook.sof_register_skills.get_hookimpls()
        ),
    }


def test_register_skills_under_a_plugin_name_in_use_keeps_the_first(
    engine: CoordinatorEngine, make_skill: Any
) -> None:
    engine.register_skills([make_skill("Kept", ["input_query"], ["kept"])], plugin_name="host")
    before = snapshot(engine)
    with pytest.raises(PluginConflictError, match=r"'host'.*already registered"):
        engine.register_skills([make_skill("Other", ["input_query"], ["other"])], "host")
    assert snapshot(engine) == before
    assert engine.execute_plan(["Kept"], _uif()).status == "success"


def test_register_skill_under_a_plugin_name_in_use_keeps_the_first(
    engine: CoordinatorEngine, make_skill: Any
) -> None:
    engine.register_skill(make_skill("Kept", ["input_query"], ["kept"]), plugin_name="host")
    before = snapshot(engine)
    with pytest.raises(PluginConflictError):
        engine.register_skill(make_skill("Other", ["input_query"], ["other"]), "host")
    assert snapshot(engine) == before


def test_a_skill_name_taken_by_another_in_code_plugin_is_refused(
    engine: CoordinatorEngine, make_skill: Any
) -> None:
    engine.register_skills([make_skill("Taken", ["input_query"], ["t"])], plugin_name="first")
    before = snapshot(engine)
    with pytest.raises(PluginConflictError, match="'Taken' is already registered by plugin 'first'"):
        engine.register_skills(
            [make_skill("Fine", ["input_query"], ["f"]), make_skill("Taken", ["input_query"], ["t2"])],
            plugin_name="second",
        )
    assert snapshot(engine) == before
    assert "Fine" not in engine.registry  # all or nothing


def test_a_duplicate_skill_name_is_a_definition_error_and_a_conflict(
    engine: CoordinatorEngine, make_skill: Any
) -> None:
    # Issue 2 asks for a definition check of unique names: `except SkillDefinitionError`
    # catches it (before: only PluginConflictError did); `except PluginConflictError` still.
    from sof_core import DuplicateSkillError, SkillDefinitionError

    with pytest.raises(SkillDefinitionError, match="two skills named 'Twice'") as info:
        engine.register_skills([make_skill("Twice", ["input_query"], ["a"]),
                                make_skill("Twice", ["input_query"], ["b"])])
    assert isinstance(info.value, (DuplicateSkillError, PluginConflictError))
    assert info.value.skill == "Twice"
    engine.register_skills([make_skill("Taken", ["input_query"], ["t"])], plugin_name="first")
    with pytest.raises(DuplicateSkillError) as taken:
        engine.register_skill(make_skill("Taken", ["input_query"], ["t2"]), "second")
    assert (taken.value.skill, taken.value.plugin) == ("Taken", "second")


MISSING = object()


def duck(**overrides: Any) -> type:
    """A duck-typed skill class (not a BaseSkillModule, so nothing checks it before
    registration), with SAM's declarations unless overridden; ``MISSING`` removes one."""

    def execute(self: Any, uif: Any) -> Any:
        return uif

    attributes: dict[str, Any] = {
        "skill_name": "Duck",
        "skill_version": "1.0",
        "skill_description": "a duck-typed skill",
        "skill_category": "test",
        "required_inputs": ["input_query"],
        "optional_inputs": [],
        "output_keys": ["duck_out"],
        "requires_external_access": False,
        "requires_vetting": False,
        "can_run_parallel": True,
        "estimated_execution_time": 1.0,
        "max_execution_time": None,
        "execute": execute,
    }
    attributes.update(overrides)
    return type("Duck", (), {k: v for k, v in attributes.items() if v is not MISSING})


def _raise(self: Any) -> None:
    raise RuntimeError("no database")


BAD_SKILLS: dict[str, tuple[Any, type[Exception], str]] = {
    "no description": (duck(skill_description=""), SkillDefinitionError, "skill_description"),
    "no required_inputs": (duck(required_inputs=MISSING), SkillDefinitionError, "'required_inputs'"),
    "estimate is a word": (
        duck(estimated_execution_time="fast"),
        SkillDefinitionError,
        "estimated_execution_time must be a number of seconds, got 'fast'",
    ),
    "not a skill": (object(), PluginHookError, "not a skill"),
    "constructor raises": (duck(__init__=_raise), SkillDefinitionError, "no database"),
}


@pytest.mark.parametrize("case", sorted(BAD_SKILLS))
def test_a_broken_skill_raises_its_own_error_type_and_changes_nothing(
    engine: CoordinatorEngine, make_skill: Any, case: str
) -> None:
    bad, error_type, message = BAD_SKILLS[case]
    engine.register_skill(make_skill("Kept", ["input_query"], ["kept"]))
    before = snapshot(engine)
    with pytest.raises(error_type, match=message) as info:
        engine.register_skill(bad)
    assert type(info.value) is error_type  # never a bare SOFError
    assert snapshot(engine) == before


def test_registering_a_skill_name_again_replaces_it_sam_style(
    engine: CoordinatorEngine, make_skill: Any
) -> None:
    engine.register_skill(make_skill("Answer", ["input_query"], ["v1"]))
    engine.register_skill(make_skill("Answer", ["input_query"], ["v2"]))
    entry = engine.registry.skill("Answer")
    assert entry is not None and entry.spec.output_keys == ("v2",)
    assert [r for r in engine.plugins.records if r == "code:Answer"] == ["code:Answer"]


def test_a_failed_replacement_keeps_the_skill_it_would_have_replaced(
    engine: CoordinatorEngine, make_skill: Any
) -> None:
    engine.register_skill(make_skill("Answer", ["input_query"], ["v1"]))
    before = snapshot(engine)

    broken = duck(skill_name="Answer", estimated_execution_time="fast")
    with pytest.raises(SkillDefinitionError, match="estimated_execution_time"):
        engine.register_skill(broken)
    assert snapshot(engine) == before
    assert engine.execute_plan(["Answer"], _uif()).uif.intermediate_data == {"v1": "Answer:v1"}


def test_a_plugin_whose_configure_fails_leaves_the_engine_as_it_was(
    engine: CoordinatorEngine, make_skill: Any
) -> None:
    engine.register_skills([make_skill("Kept", ["input_query"], ["kept"])], plugin_name="host")
    before = snapshot(engine)

    class Unconfigurable:
        @hookimpl
        def sof_register_skills(self) -> list[Any]:
            return [make_skill("Extra", ["input_query"], ["extra"])]

        @hookimpl
        def sof_configure(self) -> None:
            raise RuntimeError("bad settings")

    record = engine.plugins.register(Unconfigurable(), name="unconfigurable")
    assert record.status == "failed" and record.error_type == "PluginHookError"
    assert "Extra" not in engine.registry
    after = snapshot(engine)
    after["records"].pop("unconfigurable")
    assert after == before


def test_registering_the_same_plugin_object_twice_keeps_the_first(
    engine: CoordinatorEngine, make_skill: Any
) -> None:
    class Host:
        @hookimpl
        def sof_register_skills(self) -> list[Any]:
            return [make_skill("HostSkill", ["input_query"], ["h"])]

    host = Host()
    assert engine.plugins.register(host, name="host").status == "loaded"
    before = snapshot(engine)
    again = engine.plugins.register(host, name="host-again")
    assert again.status == "failed" and again.error_type == "PluginConflictError"
    assert snapshot(engine) == before


def test_registrations_never_leak_into_a_fresh_default_engine(
    shared_manager: str, make_skill: Any
) -> None:
    engine = CoordinatorEngine()
    engine.register_skill(make_skill("Temporary", ["input_query"], ["t"]))

    class Observer:
        @hookimpl
        def sof_after_plan(self, report: Any) -> None:
            raise AssertionError("must not run on another engine")

    engine.plugins.register(Observer(), name="observer")
    del engine
    fresh = CoordinatorEngine()
    assert "Temporary" not in fresh.registry
    assert fresh.plugins.observers("sof_after_plan") == []
    assert fresh.execute_plan(["SharedSkill"], _uif()).status == "success"


def test_an_engine_with_its_own_config_gets_its_own_manager(make_skill: Any) -> None:
    config = SOFConfig(plugins_autoload=False)
    first, second = CoordinatorEngine(config=config), CoordinatorEngine(config=config)
    first.register_skill(make_skill("Mine", ["input_query"], ["m"]))
    assert "Mine" not in second.registry
    assert isinstance(first.plugins, PluginManager) and first.plugins is not second.plugins


def _uif() -> Any:
    from sof_core import UIF

    return UIF(input_query="what is SOF?")
