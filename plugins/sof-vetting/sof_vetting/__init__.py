"""sof-vetting: the gate between untrusted external content and the answer.

``ContentVettingSkill`` reads ``external_content`` (web pages and other tool output), checks
each source for prompt injection (overrides, role hijacks, fake system or tool messages, text
hidden by CSS or invisible characters, encoded payloads), secrets and credentials, personal
data and suspicious links, and passes, sanitises or blocks it. Detectors are plain objects
(``sof_vetting.Detector``: a ``name`` and ``check(text)``); other plugins add theirs through
the ``sof_register_vetting_detectors()`` hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core import lazy_exports
from sof_vetting.detectors import (
    EncodedPayloadDetector,
    InjectionDetector,
    LinkDetector,
    PIIDetector,
    SecretsDetector,
    builtin_detectors,
)
from sof_vetting.errors import VettingConfigError, VettingInputError
from sof_vetting.findings import ACTIONS, CATEGORIES, VERDICTS, Detector, Finding
from sof_vetting.skill import ContentVettingSkill

if TYPE_CHECKING:
    from sof_vetting.settings import DEFAULT_ACTIONS, VettingSettings
    from sof_vetting.vetting import SourceReport, Vetter, VettingResult

#: Names imported on first use, from the module that defines them: ``sof_vetting.vetting``
#: pulls in ``html.parser`` and the report types, and the settings are read when a source is
#: vetted; a process that loads the plugin but vets nothing needs neither.
_LAZY = {
    "SourceReport": "sof_vetting.vetting",
    "Vetter": "sof_vetting.vetting",
    "VettingResult": "sof_vetting.vetting",
    "DEFAULT_ACTIONS": "sof_vetting.settings",
    "VettingSettings": "sof_vetting.settings",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__version__ = "0.1.0"

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "DEFAULT_ACTIONS",
    "VERDICTS",
    "ContentVettingSkill",
    "Detector",
    "EncodedPayloadDetector",
    "Finding",
    "InjectionDetector",
    "LinkDetector",
    "PIIDetector",
    "SecretsDetector",
    "SourceReport",
    "Vetter",
    "VettingConfigError",
    "VettingInputError",
    "VettingResult",
    "VettingSettings",
    "__version__",
    "builtin_detectors",
]
