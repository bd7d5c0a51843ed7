"""Registering skills in code: ``register_skills`` of N skills and N ``register_skill`` calls.

Every batch registers N fresh skill classes (built outside the clock, as a host defines its
classes at import) on a fresh engine. The baseline does the least any registry must do with
the same classes in the same run: instantiate each one and store it in a dict by name. The
row "one pluggy plugin per skill" registers the same skills the way ``register_skill``
worked before (each skill wrapped in a pluggy plugin with full plugin checks), for the
before/after ratio.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from _common import Row, Section, Target, best_of_batches, make_skill

from sof_core import CoordinatorEngine, SOFConfig, hookimpl

_batches = itertools.count()


def _classes(n: int) -> list[type[Any]]:
    """``n`` skill classes with names never used before in this process."""
    tag = next(_batches)
    return [make_skill(f"Reg{tag}x{i}", ["input_query"], [f"reg{tag}_{i}"]) for i in range(n)]


class _OnePlugin:
    """One skill as a pluggy plugin: what ``register_skill`` made of every skill before."""

    def __init__(self, skill: type[Any]) -> None:
        self._skill = skill

    @hookimpl
    def sof_register_skills(self) -> list[Any]:
        return [self._skill]


def _engines() -> dict[str, Callable[[], CoordinatorEngine]]:
    own = SOFConfig(plugins_autoload=False)
    return {
        "default engine": CoordinatorEngine,
        "engine with its own manager": lambda: CoordinatorEngine(config=own),
    }


def run(quick: bool) -> Section:
    section = Section("registration", "Registering skills in code (per skill)")
    repeat = 3 if quick else 7
    n = 1000

    def baseline(classes: list[type[Any]]) -> None:
        store: dict[str, Any] = {}
        for cls in classes:
            store[cls.skill_name] = cls()

    base = best_of_batches(lambda: _classes(n), baseline, repeat)
    section.rows.append(Row(f"instantiate + store in a dict, N = {n}", base * 1e6, "us",
                            note="the baseline below"))
    for label, factory in _engines().items():
        def bulk(classes: list[type[Any]], factory: Callable[[], CoordinatorEngine] = factory
                 ) -> None:
            factory().register_skills(classes)

        def single(classes: list[type[Any]], factory: Callable[[], CoordinatorEngine] = factory
                   ) -> None:
            engine = factory()
            for cls in classes:
                engine.register_skill(cls)

        many = best_of_batches(lambda: _classes(n), bulk, repeat)
        one_by_one = best_of_batches(lambda: _classes(n), single, repeat)
        section.rows.append(Row(f"register_skills(N = {n} skills), {label}", many * 1e6, "us",
                                base * 1e6, "instantiate + store",
                                f"{(many - base) * 1e6:.1f} us/skill above the baseline"))
        section.rows.append(Row(f"{n} x register_skill, {label}", one_by_one * 1e6, "us",
                                base * 1e6, "instantiate + store",
                                f"{(one_by_one - base) * 1e6:.1f} us/skill above the baseline"))
        if label == "default engine":
            section.targets.append(Target(f"register_skills of {n} skills, per skill", 20.0,
                                          "us", many * 1e6))
            section.targets.append(Target(f"{n} x register_skill, per skill", 20.0, "us",
                                          one_by_one * 1e6))
    size = 200 if quick else n

    def pluggy_each(classes: list[type[Any]]) -> None:
        engine = CoordinatorEngine()
        for cls in classes:
            engine.plugins.register(_OnePlugin(cls), name=f"code:{cls.skill_name}",
                                    raise_errors=True)

    slow = best_of_batches(lambda: _classes(size), pluggy_each, 1 if quick else 3)
    section.rows.append(Row(f"one pluggy plugin per skill (register_skill before), N = {size}",
                            slow * 1e6, "us", base * 1e6, "instantiate + store",
                            "plugin checks + pluggy's registration for every skill"))
    section.notes.append("fresh skill classes per batch, built outside the clock; best of "
                         f"{repeat} batches, GC paused")
    return section
