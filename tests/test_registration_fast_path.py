"""Skills registered in code go straight into the engine's registry: no pluggy plugin each.

Only objects that implement hooks need pluggy. A skill registered with ``register_skill`` or
``register_skills`` gets a plugin record (``sof plugins`` and error messages name it) and the
same checks, errors and all-or-nothing behaviour as before (``test_engine_registries.py``
pins those); what it no longer gets is a pluggy plugin per call, whose registration cost
~250 µs and grew with every plugin already registered. Speed is measured in
``benchmarks/bench_registration.py``, never here.
"""

from __future__ import annotations

from typing import Any

import pytest
from sof_test_support import errors_in_threads

from sof_core import (
    UIF,
    CoordinatorEngine,
    PluginConflictError,
    SkillDefinitionError,
    SOFConfig,
    hookimpl,
)
from sof_core.plugins import PluginManager, reset_plugin_manager
from sof_core.testing import make_engine


def duck(name: str, **overrides: Any) -> type:
    """A duck-typed skill class (nothing checks it before registration)."""

    def execute(self: Any, uif: Any) -> Any:
        return uif

    attributes: dict[str, Any] = {
        "skill_name": name, "skill_version": "1.0", "skill_description": "a duck",
        "skill_category": "test", "required_inputs": ["input_query"], "optional_inputs": [],
        "output_keys": ["duck_out"], "requires_external_access": False,
        "requires_vetting": False, "can_run_parallel": True, "estimated_execution_time": 1.0,
        "max_execution_time": None, "execute": execute, **overrides,
    }
    return type(name, (), attributes)


def pluggy_plugins(engine: CoordinatorEngine) -> list[str]:
    manager = engine.plugins.hook_manager
    return sorted(name for name, _ in manager.list_name_plugin())


def run(engine: CoordinatorEngine, plan: list[str]) -> Any:
    return engine.execute_plan(plan, UIF(input_query="q"))


def test_registering_skills_in_code_makes_no_pluggy_plugin(make_skill: Any) -> None:
    engine = make_engine()
    before = pluggy_plugins(engine)
    for i in range(50):
        engine.register_skill(make_skill(f"One{i}", ["input_query"], [f"one{i}"]))
    engine.register_skills(
        [make_skill(f"Many{i}", ["input_query"], [f"many{i}"]) for i in range(50)],
        plugin_name="host",
    )
    assert pluggy_plugins(engine) == before
    assert len(engine.registry) == 100
    record = engine.plugins.records["code:One7"]
    assert (record.status, record.source, record.hooks) == (
        "loaded", "code", ["sof_register_skills"]
    )
    assert record.provides == {"skills": ["One7"]}
    assert engine.plugins.records["host"].provides["skills"][:2] == ["Many0", "Many1"]
    assert run(engine, ["One3", "Many4"]).status == "success"


def test_a_default_engine_registers_without_touching_pluggy(make_skill: Any,
                                                            isolated_env: None) -> None:
    reset_plugin_manager()
    try:
        engine = CoordinatorEngine()
        before = pluggy_plugins(engine)
        engine.register_skill(make_skill("Local", ["input_query"], ["local"]))
        assert pluggy_plugins(engine) == before
        assert engine.registry.skill("Local").plugin == "code:Local"  # type: ignore[union-attr]
    finally:
        reset_plugin_manager()


def test_each_registration_moves_the_registry_version(make_skill: Any) -> None:
    engine = make_engine()
    seen = {engine.registry.version}
    compiled = None
    for i in range(5):
        engine.register_skill(make_skill(f"V{i}", ["input_query"], [f"v{i}"]))
        assert engine.registry.version not in seen
        seen.add(engine.registry.version)
        fresh = engine.compile(["V0"])
        assert fresh is not compiled  # a compiled plan is never reused across versions
        compiled = fresh


def test_an_unregistered_in_code_plugin_frees_its_name_and_skills(make_skill: Any) -> None:
    engine = make_engine()
    engine.register_skills([make_skill("Gone", ["input_query"], ["gone"])], plugin_name="tmp")
    engine.plugins.unregister("tmp")
    assert "Gone" not in engine.registry and "tmp" not in engine.plugins.records
    engine.register_skills([make_skill("Gone", ["input_query"], ["again"])], plugin_name="tmp")
    assert engine.registry.skill("Gone").spec.output_keys == ("again",)  # type: ignore[union-attr]


def test_a_failed_replacement_then_a_good_one(make_skill: Any) -> None:
    engine = make_engine()
    engine.register_skill(make_skill("Answer", ["input_query"], ["v1"]))
    broken = duck("Answer", estimated_execution_time="fast")
    with pytest.raises(SkillDefinitionError, match="estimated_execution_time"):
        engine.register_skill(broken)
    assert engine.registry.skill("Answer").spec.output_keys == ("v1",)  # type: ignore[union-attr]
    engine.register_skill(make_skill("Answer", ["input_query"], ["v3"]))
    assert engine.registry.skill("Answer").spec.output_keys == ("v3",)  # type: ignore[union-attr]
    assert engine.registry.providers("Answer") == ["code:Answer"]
    assert run(engine, ["Answer"]).uif.intermediate_data == {"v3": "Answer:v3"}


def test_a_batch_with_one_bad_skill_adds_none_and_the_names_stay_free(make_skill: Any) -> None:
    engine = make_engine()
    batch = [make_skill("First", ["input_query"], ["first"]), object()]
    with pytest.raises(Exception, match="not a skill"):
        engine.register_skills(batch, plugin_name="batch")
    assert "First" not in engine.registry and "batch" not in engine.plugins.records
    engine.register_skills([make_skill("First", ["input_query"], ["first"])], plugin_name="batch")
    assert run(engine, ["First"]).status == "success"


class Hooks:
    """A plugin object that implements a hook, registered under a skill's default name."""

    def __init__(self, skill: type[Any]) -> None:
        self.skill = skill

    @hookimpl
    def sof_register_skills(self) -> list[Any]:
        return [self.skill]


def test_register_skill_replaces_a_hook_plugin_holding_its_default_name(make_skill: Any) -> None:
    engine = make_engine()
    old = make_skill("Answer", ["input_query"], ["old"])
    assert engine.plugins.register(Hooks(old), name="code:Answer").status == "loaded"
    engine.register_skill(make_skill("Answer", ["input_query"], ["new"]))
    assert engine.registry.skill("Answer").spec.output_keys == ("new",)  # type: ignore[union-attr]
    assert engine.plugins.hook_manager.get_plugin("code:Answer") is not None  # swapped in pluggy


def test_a_hook_plugin_cannot_take_an_in_code_plugins_name_unless_it_replaces_it(
    make_skill: Any,
) -> None:
    engine = make_engine()
    engine.register_skills([make_skill("Mine", ["input_query"], ["mine"])], plugin_name="host")
    refused = engine.plugins.register(Hooks(make_skill("Other", ["input_query"], ["o"])), "host")
    assert refused.status == "failed" and refused.error_type == "PluginConflictError"
    assert engine.registry.skill("Mine") is not None and "Other" not in engine.registry
    assert engine.plugins.records["host"].status == "loaded"

    swapped = engine.plugins.register(
        Hooks(make_skill("Other", ["input_query"], ["o"])), "host", replace=True
    )
    assert swapped.status == "loaded"
    assert "Mine" not in engine.registry and "Other" in engine.registry
    engine.plugins.unregister("host")
    assert "Other" not in engine.registry


def test_a_failed_hook_replacement_of_an_in_code_plugin_keeps_it(make_skill: Any) -> None:
    engine = make_engine()
    engine.register_skills([make_skill("Mine", ["input_query"], ["mine"])], plugin_name="host")

    class Broken:
        @hookimpl
        def sof_register_skills(self) -> list[Any]:
            return [object()]

    record = engine.plugins.register(Broken(), "host", replace=True)
    assert record.status == "failed"
    assert engine.registry.skill("Mine") is not None
    assert engine.plugins.records["host"].status == "loaded"
    assert run(engine, ["Mine"]).status == "success"


SHARED = """
    from sof_core import BaseSkillModule, hookimpl

    class Memory(BaseSkillModule):
        skill_name = "MemoryRetrievalSkill"
        skill_description = "installed memory"
        required_inputs = ["input_query"]
        output_keys = ["memories"]
        def execute(self, uif):
            uif.intermediate_data["memories"] = ["installed"]
            return uif

    @hookimpl
    def sof_register_skills():
        return [Memory]
"""


def test_an_in_code_skill_over_an_installed_one_updates_both_conflict_notes(
    dists: Any, make_skill: Any
) -> None:
    dists.add("acme-memory", SHARED, entry_name="acme")
    manager = PluginManager(SOFConfig(plugins_only=["acme"])).load()
    engine = CoordinatorEngine(manager)
    assert manager.records["acme"].conflicts == []

    engine.register_skill(make_skill("MemoryRetrievalSkill", ["input_query"], ["memories"]))
    assert "registered in code" in manager.records["acme"].conflicts[0]
    assert "this plugin provides it" in manager.records["code:MemoryRetrievalSkill"].conflicts[0]
    assert engine.registry.skill("MemoryRetrievalSkill").plugin == (  # type: ignore[union-attr]
        "code:MemoryRetrievalSkill"
    )

    engine.plugins.unregister("code:MemoryRetrievalSkill")
    assert manager.records["acme"].conflicts == []
    assert engine.registry.skill("MemoryRetrievalSkill").plugin == "acme"  # type: ignore[union-attr]


def test_another_in_code_plugin_still_cannot_take_a_registered_skill_name(
    make_skill: Any,
) -> None:
    engine = make_engine()
    engine.register_skill(make_skill("Taken", ["input_query"], ["t"]))
    with pytest.raises(PluginConflictError, match="'Taken' is already registered by plugin"):
        engine.register_skills([make_skill("Taken", ["input_query"], ["t"])], plugin_name="b")
    with pytest.raises(PluginConflictError, match="two skills named 'Twice'"):
        engine.register_skills(
            [make_skill("Twice", ["input_query"], ["a"]), make_skill("Twice", [], ["b"])], "c"
        )
    assert "Twice" not in engine.registry


def test_a_failed_registration_still_raises_an_alert(make_skill: Any) -> None:
    alerts: list[tuple[str, str]] = []

    class Watcher:
        @hookimpl
        def sof_alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
            alerts.append((kind, details["plugin"]))

    engine = make_engine(plugins=[("watcher", Watcher())])
    with pytest.raises(SkillDefinitionError):
        engine.register_skill(duck("Bad", estimated_execution_time="fast"))
    assert alerts == [("plugin_failed", "code:Bad")]


def test_concurrent_registrations_all_land(make_skill: Any) -> None:
    engine = make_engine()
    classes = [[make_skill(f"T{t}x{i}", ["input_query"], [f"t{t}_{i}"]) for i in range(100)]
               for t in range(8)]

    def register(batch: list[type[Any]]) -> None:
        for cls in batch:
            engine.register_skill(cls)

    assert errors_in_threads(register, classes) == []
    assert len(engine.registry) == 800
    assert all(f"code:T{t}x99" in engine.plugins.records for t in range(8))
    assert run(engine, ["T0x0", "T7x99"]).status == "success"


def test_a_skill_logger_is_made_at_first_use_and_can_be_replaced() -> None:
    """Registering makes no logger (``getLogger`` takes logging's lock and was half of
    ``register_skill``); a skill that logs gets ``sof.skill.<name>``, also when its own
    ``__init__`` never calls the base class's."""
    import logging

    from sof_core import BaseSkillModule

    class Quiet(BaseSkillModule):
        skill_name = "QuietLoggerSkill"
        skill_description = "Logs nothing unless asked."

        def execute(self, uif: Any) -> Any:
            return uif

    class OwnInit(Quiet):
        skill_name = "OwnInitLoggerSkill"

        def __init__(self) -> None:
            self.ready = True

    engine = make_engine([])
    engine.register_skill(Quiet)
    instance = engine.registry.skill("QuietLoggerSkill").instance
    assert "logger" not in vars(instance)
    assert "sof.skill.QuietLoggerSkill" not in logging.Logger.manager.loggerDict
    assert instance.logger is logging.getLogger("sof.skill.QuietLoggerSkill")
    assert OwnInit().logger.name == "sof.skill.OwnInitLoggerSkill"
    replaced = OwnInit()
    replaced.logger = logging.getLogger("host.own")
    assert replaced.logger.name == "host.own"


def test_a_skill_with_no_attributes_still_gets_its_setstate_called_when_unpickled() -> None:
    """Copies for Dask and isolation workers are pickled: a ``__setstate__`` that rebuilds
    live state must run even for a skill that holds nothing (it did while every skill held
    its logger)."""
    import pickle

    from sof_core import BaseSkillModule

    class Rebuilds(BaseSkillModule):
        skill_name = "RebuildsOnUnpickleSkill"
        skill_description = "Rebuilds its state when copied."

        def execute(self, uif: Any) -> Any:
            return uif

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)
            self.rebuilt = True

    globals()["Rebuilds"] = Rebuilds  # picklable by reference
    Rebuilds.__qualname__ = "Rebuilds"
    copy = pickle.loads(pickle.dumps(Rebuilds()))
    assert copy.rebuilt is True
    assert copy.logger.name == "sof.skill.RebuildsOnUnpickleSkill"


def test_a_declaration_assigned_after_the_class_was_made_is_the_one_registered() -> None:
    # The spec is built when a named skill class is made and cached on the class. Before,
    # assigning a declaration afterwards (a test or a generator adjusting a class) left the
    # cached spec in use: the skill was registered, checked and run under the old one.
    from sof_core import BaseSkillModule

    class Adjusted(BaseSkillModule):
        skill_name = "Adjusted"
        skill_description = "writes the key it declares"
        required_inputs = ["input_query"]
        output_keys = ["old"]

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["new"] = "written"
            return uif

    Adjusted.output_keys = ["new"]
    engine = make_engine([Adjusted])
    assert engine.registry.skill("Adjusted").spec.output_keys == ("new",)
    report = engine.execute_plan(["Adjusted"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["new"] == "written"
    # Every declaration the spec is made from counts, not only the key lists.
    Adjusted.requires_vetting = True
    assert make_engine([Adjusted]).registry.skill("Adjusted").spec.requires_vetting is True
    # A bad declaration assigned later is refused as it would have been in the class body.
    Adjusted.output_keys = 5  # type: ignore[assignment]
    with pytest.raises(SkillDefinitionError, match="output_keys"):
        make_engine([Adjusted])
