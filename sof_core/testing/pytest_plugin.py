"""pytest plugin for skill authors (entry point ``pytest11: sof``): fixtures and the contract.

Fixtures: ``sof_engine`` (an isolated engine), ``sof_contract`` (one skill's contract),
``sof_plugin_check`` (register a plugin object in isolation), ``sof_plugin_contract`` (the
whole plugin contract against installed plugins, as ``sof plugins check``) and ``sof_cli``
(the ``sof`` command with a temporary config and memory). ``pytest --sof-contract[=NAMES]``
adds one test per installed plugin that runs the contract.

pytest loads this module in every session where sof-core is installed, so it imports only
pytest and the standard library: the core is imported when a fixture or the option is used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sof_core.testing.cli import SofCLI


#: What pytest may still rewrite of the core: this kit, whose checks may use ``assert``.
REWRITTEN = "sof_core.testing"


def _leave_the_core_unrewritten(pluginmanager: pytest.PytestPluginManager) -> None:
    """Have pytest import the core as Python does, not through its assertion rewriter.

    pytest rewrites every module of a distribution that provides a pytest plugin, so with
    this plugin installed each ``sof_core`` module a test imports was parsed with ``ast``.
    The core imports some modules lazily, in the threads that need them (the async runner,
    say), and on Python 3.11 ``ast`` is not thread-safe (CPython gh-106905): beside a thread
    formatting a traceback, that import failed with ``SystemError: AST constructor recursion
    depth mismatch``, or another thread got the half-imported module (``cannot import name
    ...``), and skills failed in every skill author's test suite. The core has no assertion
    worth rewriting; this kit keeps its rewriting. ``_must_rewrite`` is pytest's own set:
    if a pytest release renames it, nothing breaks but the rewriting comes back.
    """
    hook = getattr(pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    if isinstance(marked, set) and "sof_core" in marked:
        marked.discard("sof_core")
        marked.add(REWRITTEN)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # The earliest hook that has the plugin manager, before any test module is collected.
    _leave_the_core_unrewritten(pluginmanager)
    group = parser.getgroup("sof", "SOF plugins")
    group.addoption(
        "--sof-contract",
        action="store",
        nargs="?",
        const="*",
        default=None,
        metavar="NAMES",
        help="also run the SOF plugin contract (as `sof plugins check`) against installed "
        "plugins: comma-separated entry-point or distribution names, every installed plugin "
        "when none are given",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    """``--sof-contract`` followed by a test path (``pytest --sof-contract tests/``) means
    every plugin, and the path stays a path: argparse would take it as the NAMES."""
    import copy
    import os

    changed = False
    for index, word in enumerate(args):
        if word != "--sof-contract":
            continue
        following = args[index + 1] if index + 1 < len(args) else None
        if following is None or following.startswith("-") or os.path.exists(
            following.split("::", 1)[0]
        ):
            args[index] = "--sof-contract=*"
            changed = True
    if changed:  # the early parse (initial conftests, rootdir) took the path as NAMES too
        early_config.known_args_namespace = parser.parse_known_args(
            args, namespace=copy.copy(early_config.option)
        )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With ``--sof-contract``: one test per plugin, named ``sof-contract[NAME]``."""
    value = config.getoption("sof_contract", None)
    if not value:
        return
    if value == "*":
        from sof_core._installed import installed_plugins  # metadata only: no plugin imported

        names = sorted({name for name, _, _ in installed_plugins()})
    else:
        names = [n.strip() for n in str(value).split(",") if n.strip()]
    added = [ContractItem.from_parent(session, name=f"sof-contract[{name}]", plugin=name)
             for name in names]
    items.extend(added)
    # Reported as collected, so that "N tests collected" counts them.
    config.hook.pytest_collectreport(
        report=pytest.CollectReport("", "passed", None, list(added))
    )


class ContractItem(pytest.Item):
    """The plugin contract of one installed plugin, as one test."""

    def __init__(self, *, plugin: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugin = plugin

    def runtest(self) -> None:
        from sof_core.cli.contract import ContractViolation
        from sof_core.cli.contract_command import run_isolated

        try:  # in a child process, as `sof plugins check`: a crashing skill fails this test
            [report] = run_isolated([self.plugin])
        except LookupError as exc:
            raise ContractViolation(str(exc.args[0])) from None
        for check in report.checks:
            self.user_properties.append((f"{check.skill or 'plugin'}:{check.check}",
                                         check.status))
        report.raise_for_failures()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        from sof_core.cli.contract import ContractViolation

        if isinstance(excinfo.value, ContractViolation):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        return self.path, None, f"SOF contract of plugin {self.plugin!r}"


@pytest.fixture
def sof_engine() -> Callable[..., Any]:
    """Factory: ``sof_engine([MySkill], continue_on_skill_failure=True)`` → isolated engine."""
    from sof_core.testing.helpers import make_engine

    return make_engine


@pytest.fixture
def sof_contract() -> Callable[..., Any]:
    """``sof_contract(MySkill, inputs={...})`` runs the skill alone and checks the contract."""
    from sof_core.testing.helpers import check_skill_contract

    return check_skill_contract


@pytest.fixture
def sof_plugin_check() -> Callable[..., Any]:
    """``sof_plugin_check("name", module)`` registers a plugin module in isolation."""
    from sof_core.testing.helpers import check_plugin_module

    return check_plugin_module


@pytest.fixture
def sof_plugin_contract() -> Callable[..., Any]:
    """``sof_plugin_contract("name")`` runs the plugin contract (``sof plugins check``)
    against the installed plugin ``name`` and raises ``ContractViolation`` listing every
    failed check; it returns the ``PluginContract`` otherwise. Like the command, it checks
    in a child process, so a skill that ends its process (``os._exit``, a crash) fails its
    check instead of ending the test session. ``module=obj`` checks a plugin object that is
    not installed, registered under ``name`` next to the installed ones, in this process
    (an object cannot be sent to another), as do the options of ``check_plugins``."""
    def check(name: str, *, module: object = None, **options: Any) -> Any:
        if module is None and not options:
            from sof_core.cli.contract_command import run_isolated

            report = run_isolated([name])[0]
        else:
            from sof_core.cli.contract import check_plugins

            modules = {name: module} if module is not None else None
            report = check_plugins([name], modules=modules, **options)[0]
        report.raise_for_failures()
        return report

    return check


@pytest.fixture
def sof_cli(tmp_path_factory: pytest.TempPathFactory) -> SofCLI:
    """``sof_cli("run", "query")`` runs ``sof`` in a subprocess (``inprocess=True``: in this
    process) with a temporary config file (``sof_cli.configure(...)`` writes it), memory
    store and directories; returns ``SofResult(returncode, stdout, stderr)``."""
    from sof_core.testing.cli import SofCLI

    return SofCLI(tmp_path_factory.mktemp("sof-cli"))
