"""The core's shape: no import cycles, layers that point down, a small eager import."""

from __future__ import annotations

import subprocess
import sys

import grimp
import networkx as nx

import sof_core


def _import_graph(exclude_type_checking: bool) -> nx.DiGraph:
    graph = grimp.build_graph("sof_core", exclude_type_checking_imports=exclude_type_checking)
    edges = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    return edges


def test_no_module_of_the_core_imports_itself_back_through_others() -> None:
    # Type-only imports count too: a cycle there is a cycle a reader has to untangle.
    cycles = list(nx.simple_cycles(_import_graph(exclude_type_checking=False)))
    assert cycles == []


def test_the_import_linter_contracts_hold() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())"],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_public_name_resolves_and_all_is_the_whole_surface() -> None:
    for name in sof_core.__all__:
        assert getattr(sof_core, name) is not None, name
    assert sorted(sof_core.__all__) == sorted(dir(sof_core))


def test_the_design_import_paths_keep_working() -> None:
    import pluggy

    from sof_core import hookspecs
    from sof_core.config import (
        disable_sof_framework,
        enable_sof_framework,
        get_sof_config_manager,
    )

    assert callable(disable_sof_framework) and callable(enable_sof_framework)
    assert callable(get_sof_config_manager)
    manager = pluggy.PluginManager("sof")
    manager.add_hookspecs(hookspecs)
    assert hasattr(manager.hook, "sof_register_skills")
    assert hasattr(manager.hook, "sof_after_plan")


def test_importing_sof_core_loads_neither_pydantic_nor_networkx() -> None:
    code = (
        "import sys, sof_core; from sof_core import hookimpl; "
        "print(sorted(m for m in ('pydantic', 'networkx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
