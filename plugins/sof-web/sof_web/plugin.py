"""The ``web`` entry point: hook implementations only, everything else is imported.

Registers AgentZeroWebBrowserTool as a tool (``sof_register_tools``: it runs in an isolation
worker under the tool policy) and hands the registered instance the config's
``plugin_settings["web"]`` once every plugin is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sof_core import hookimpl
from sof_web.skill import AgentZeroWebBrowserTool

if TYPE_CHECKING:
    from sof_core import Registry
    from sof_core.config import SOFConfig

#: The plugin API this module was written against (a different core API skips it cleanly).
SOF_API_VERSION = 1


@hookimpl
def sof_register_tools() -> list[Any]:
    return [AgentZeroWebBrowserTool]


@hookimpl
def sof_configure(config: SOFConfig, registry: Registry) -> None:
    """Give the registered tool its settings (``plugin_settings["web"]``)."""
    entry = registry.skill(AgentZeroWebBrowserTool.skill_name)
    if entry is not None and isinstance(entry.instance, AgentZeroWebBrowserTool):
        entry.instance.configure(config)
