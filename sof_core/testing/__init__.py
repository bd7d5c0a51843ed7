"""Helpers for testing skills and plugins against the SOF contract.

The bundled plugins pass exactly these checks, so a third-party plugin that passes them
works with SOF the way the bundled ones do. The pytest plugin (registered as the
``pytest11`` entry point ``sof``) exposes them as fixtures and as ``pytest --sof-contract``.

pytest imports this package in every session where sof-core is installed, so names resolve
on first use: importing it costs no pydantic, no networkx and none of the core's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "ContractViolation": "sof_core.cli.contract",
    "ContractCheck": "sof_core.cli.contract",
    "PluginContract": "sof_core.cli.contract",
    "check_plugin": "sof_core.cli.contract",
    "check_plugins": "sof_core.cli.contract",
    "check_plugin_module": "sof_core.testing.helpers",
    "check_skill_contract": "sof_core.testing.helpers",
    "describe_failures": "sof_core.testing.helpers",
    "make_engine": "sof_core.testing.helpers",
    "Footprint": "sof_core.testing.footprint",
    "import_footprint": "sof_core.testing.footprint",
    "SofCLI": "sof_core.testing.cli",
    "SofResult": "sof_core.testing.cli",
}

if TYPE_CHECKING:
    from sof_core.cli.contract import (
        ContractCheck,
        ContractViolation,
        PluginContract,
        check_plugin,
        check_plugins,
    )
    from sof_core.testing.cli import SofCLI, SofResult
    from sof_core.testing.footprint import Footprint, import_footprint
    from sof_core.testing.helpers import (
        check_plugin_module,
        check_skill_contract,
        describe_failures,
        make_engine,
    )


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "ContractCheck",
    "ContractViolation",
    "Footprint",
    "PluginContract",
    "SofCLI",
    "SofResult",
    "check_plugin",
    "check_plugin_module",
    "check_plugins",
    "check_skill_contract",
    "describe_failures",
    "import_footprint",
    "make_engine",
]
