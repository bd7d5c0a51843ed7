"""The detectors sof-vetting ships (registered through ``sof_register_vetting_detectors``)."""

from __future__ import annotations

from typing import Any

from sof_vetting.detectors.encoded import EncodedPayloadDetector
from sof_vetting.detectors.injection import InjectionDetector
from sof_vetting.detectors.links import LinkDetector
from sof_vetting.detectors.pii import PIIDetector
from sof_vetting.detectors.secrets import SecretsDetector


def builtin_detectors() -> list[Any]:
    """Fresh instances of every shipped detector, in the order they run."""
    return [
        InjectionDetector(),
        EncodedPayloadDetector(),
        SecretsDetector(),
        PIIDetector(),
        LinkDetector(),
    ]


__all__ = [
    "EncodedPayloadDetector",
    "InjectionDetector",
    "LinkDetector",
    "PIIDetector",
    "SecretsDetector",
    "builtin_detectors",
]
