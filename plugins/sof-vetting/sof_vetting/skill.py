"""ContentVettingSkill: the gate between untrusted external content and the answer.

Web pages and other external content (``external_content``, written by tools such as
AgentZeroWebBrowserTool, which declare ``requires_external_access``) may carry instructions
for the model, secrets or personal data. The skill runs every installed detector over each
source, decides pass / sanitize / block per source, and writes:

* ``intermediate_data["vetted_content"]``: the per-source structure the response skill reads
  (verdicts, reasons, sanitised text; blocked text is never in it);
* the UIF field ``vetted_content``: the passed and sanitised text as one string (SAM's
  ``SAM_UIF`` holds a dict there: it gets the structure instead);
* ``security_context["content_vetting"]``: the record of what was checked and what fired
  (verdicts and detector names, never content).

``vets_content = True``: SOF's taint rule lets external content reach the response only
through a skill that says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sof_core import UIF, BaseSkillModule
from sof_vetting.detectors import builtin_detectors
from sof_vetting.errors import PLUGIN

if TYPE_CHECKING:
    from sof_core import Registry
    from sof_core.config import SOFConfig
    from sof_vetting.settings import VettingSettings
    from sof_vetting.vetting import Vetter, VettingResult

log = logging.getLogger("sof.vetting")

#: The registry kind detectors are registered under (hook ``sof_register_vetting_detectors``).
DETECTOR_KIND = "vetting_detectors"


class ContentVettingSkill(BaseSkillModule):
    """Checks external content for injection, secrets, personal data and bad links."""

    skill_name = "ContentVettingSkill"
    skill_version = "1.0.0"
    skill_description = (
        "Vets untrusted external content (web pages, tool output) for prompt injection, "
        "hidden text, encoded payloads, secrets, personal data and suspicious links; passes, "
        "sanitises or blocks each source"
    )
    skill_category = "security"
    required_inputs = ["external_content"]
    output_keys = ["vetted_content", ("security_context", dict)]
    requires_external_access = False
    requires_vetting = False
    vets_content = True
    can_run_parallel = True
    estimated_execution_time = 0.2
    max_execution_time = 30.0

    def __init__(
        self,
        detectors: list[Any] | None = None,
        *,
        settings: VettingSettings | Mapping[str, Any] | None = None,
        config: SOFConfig | None = None,
        registry: Registry | None = None,
    ) -> None:
        """``detectors`` replaces the installed ones (tests, embedding); ``settings`` (a
        mapping of overrides or a complete ``VettingSettings``) wins over config and
        environment. ``config``/``registry`` are normally given by ``sof_configure``."""
        super().__init__()
        self._explicit_detectors = list(detectors) if detectors is not None else None
        self._explicit = settings
        self._plugin_settings: dict[str, Any] = {}
        self._registry: Registry | None = None
        self._lock = threading.Lock()
        self._vetter: tuple[Any, Vetter] | None = None
        if config is not None or registry is not None:
            self.configure(config, registry)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle settings, not live state (the copy builds its vetter again). The registry
        stays behind, so the detectors it holds now travel as the copy's own: an isolated
        skill runs the detectors other plugins registered, in the same order, as it does
        in-thread (before, its worker fell back to the built-in ones)."""
        state = dict(self.__dict__)
        for name in ("_lock", "_registry", "_vetter", "logger"):
            state.pop(name, None)
        if self._explicit_detectors is None and self._registry is not None:
            state["_explicit_detectors"] = self.detectors()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._registry = None
        self._vetter = None
        self._lock = threading.Lock()
        self.logger = logging.getLogger(f"sof.skill.{self.skill_name}")

    def configure(self, config: SOFConfig | None, registry: Registry | None) -> None:
        """Take settings from ``config`` and detectors from ``registry``."""
        if config is not None:
            self._plugin_settings = config.settings_for(PLUGIN)
        if registry is not None:
            self._registry = registry
        with self._lock:
            self._vetter = None

    def settings(self) -> VettingSettings:
        """The effective settings: defaults < plugin_settings < environment < arguments."""
        from sof_vetting.settings import VettingSettings

        if isinstance(self._explicit, VettingSettings):
            return self._explicit
        return VettingSettings.resolve(self._plugin_settings, **dict(self._explicit or {}))

    def detectors(self) -> list[Any]:
        """The detectors to run: given ones, else every installed one (by name)."""
        if self._explicit_detectors is not None:
            return list(self._explicit_detectors)
        if self._registry is not None:
            found = self._registry.components(DETECTOR_KIND)
            return [found[name].obj for name in sorted(found)]
        return builtin_detectors()

    def vetter(self) -> Vetter:
        """A vetter for the current settings and detectors (built once per change)."""
        # The vetting machinery (HTML parser, report types) loads with the first vetting,
        # not with the plugin: most processes that load it never vet anything.
        from sof_vetting.vetting import Vetter

        settings = self.settings()
        version = getattr(self._registry, "version", None)
        key = (settings, version)
        with self._lock:
            if self._vetter is not None and self._vetter[0] == key:
                return self._vetter[1]
        detectors = []
        for detector in self.detectors():
            obj = detector() if isinstance(detector, type) else detector
            configure = getattr(obj, "with_settings", None)
            if callable(configure):
                obj = configure(settings)
            detectors.append(obj)
        vetter = Vetter(detectors, settings)
        with self._lock:
            self._vetter = (key, vetter)
        return vetter

    def vet(self, external_content: Any) -> VettingResult:
        """Vet ``external_content`` without a UIF (the shapes ``execute`` accepts)."""
        from sof_vetting.vetting import read_items

        return self.vetter().vet_all(read_items(external_content))

    def execute(self, uif: UIF) -> UIF:
        result = self.vet(uif.intermediate_data.get("external_content"))
        structure = result.to_dict()
        uif.intermediate_data["vetted_content"] = structure
        if isinstance(uif.vetted_content, dict):  # SAM_UIF keeps a dict in the field
            uif.vetted_content = structure
        else:
            uif.vetted_content = result.combined_text()
        uif.security_context["content_vetting"] = result.record()
        for report in result.sources:
            fired = ", ".join(report.detectors) or "no detector fired"
            uif.add_log_entry(f"{report.source}: {report.verdict} ({fired})", self.skill_name)
            if report.verdict == "block":
                uif.add_warning(
                    f"{self.skill_name}: withheld {report.source} ({fired})"
                )
        if not result.sources:
            uif.add_log_entry("no external content to vet", self.skill_name)
        return uif


__all__ = ["DETECTOR_KIND", "ContentVettingSkill"]
