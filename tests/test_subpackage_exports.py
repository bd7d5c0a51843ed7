"""Each stage's subpackage exports its part of the public API (the objects ``sof_core``
exports), resolved on first use: importing a subpackage stays cheap (docs/api.md)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import sof_core

SUBPACKAGES = ["skills", "plugins", "planning", "graph", "execution", "routing", "config"]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_listed_name_resolves_and_is_the_public_object(name: str) -> None:
    package = importlib.import_module(f"sof_core.{name}")
    assert package.__all__, name
    for export in package.__all__:
        value = getattr(package, export)
        assert value is not None, (name, export)
        if export in sof_core.__all__:
            assert value is getattr(sof_core, export), (name, export)
    assert sorted(package.__all__) == sorted(set(package.__all__))


def test_the_layouts_names_import_from_their_stage() -> None:
    from sof_core.config.sources import load_config
    from sof_core.execution import CoordinatorEngine
    from sof_core.graph import ValidationProblem, build_graph
    from sof_core.planning import PlanResult, RulesPlanner
    from sof_core.routing import QueryRouter

    assert CoordinatorEngine is sof_core.CoordinatorEngine
    assert ValidationProblem is sof_core.ValidationProblem
    assert QueryRouter is sof_core.QueryRouter
    assert PlanResult is sof_core.PlanResult
    assert load_config is sof_core.config.load_config
    assert callable(build_graph) and callable(RulesPlanner)
    assert isinstance(load_config(), sof_core.SOFConfig)


def test_importing_the_subpackages_imports_none_of_their_modules() -> None:
    code = (
        "import sys\n"
        "import sof_core.graph, sof_core.execution, sof_core.routing, sof_core.planning\n"
        "import sof_core.skills, sof_core.config, sof_core.plugins\n"
        "heavy = ('networkx', 'pydantic', 'sof_core.execution.coordinator',\n"
        "         'sof_core.graph.build', 'sof_core.routing.router', 'sof_core.planning.rules',\n"
        "         'sof_core.skills.base', 'sof_core.skills.spec', 'sof_core.uif',\n"
        "         'sof_core.config.model', 'sof_core.config.manager',\n"
        "         'sof_core.config.sources', 'sof_core.plugins.loader')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
