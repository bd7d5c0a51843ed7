"""What a detector reports, and the one small contract a detector plugin implements.

A detector is any object with a ``name`` and ``check(text) -> iterable of Finding``; it is
contributed through the ``sof_register_vetting_detectors()`` hook. Nothing needs subclassing,
so a model-based detector (a classifier behind an HTTP API, an ONNX model) is a few lines.
The skill decides what a finding does (block the source, cut the span out, or only record it)
from the finding's ``action`` or, when it has none, from the configured action of its
``category``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

Action = Literal["block", "sanitize", "report"]
Verdict = Literal["pass", "sanitize", "block"]

#: What a finding may ask for, mildest last: ``block`` withholds the whole source,
#: ``sanitize`` cuts the finding's span out (or, without a span, withholds the source),
#: ``report`` only records it.
ACTIONS: tuple[str, ...] = ("block", "sanitize", "report")
VERDICTS: tuple[str, ...] = ("pass", "sanitize", "block")

#: The categories the shipped detectors use. Plugins may add their own.
INJECTION = "injection"
HIDDEN_TEXT = "hidden_text"
SECRET = "secret"
PII = "pii"
LINK = "link"
CATEGORIES: tuple[str, ...] = (INJECTION, HIDDEN_TEXT, SECRET, PII, LINK)


@dataclass(frozen=True)
class Finding:
    """One thing a detector found in a text.

    ``start``/``end`` are offsets in the text the detector was given; with them a
    ``sanitize`` action cuts exactly that span. ``message`` says what was found without
    quoting the content at length (it is shown in logs and the vetting record).
    """

    detector: str
    category: str
    message: str
    start: int | None = None
    end: int | None = None
    action: Action | None = None
    #: Text put where the span was cut; default ``[removed: <category>]``.
    replacement: str | None = None
    #: A model's confidence, when a detector has one (recorded, not used).
    score: float | None = None

    @property
    def has_span(self) -> bool:
        return self.start is not None and self.end is not None and self.end > self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "category": self.category,
            "message": self.message,
            "start": self.start,
            "end": self.end,
            "action": self.action,
            "score": self.score,
        }


@runtime_checkable
class Detector(Protocol):
    """Checks text and reports findings.

    ``check`` is given the normalised text of one source (invisible characters removed,
    Unicode NFKC) and returns ``Finding`` objects, or mappings with the same keys
    (``category`` and ``message`` at least). Offsets refer to that text. It should be
    thread-safe and fast; an exception it raises is recorded against the source and, by
    default, blocks it (``on_detector_error``). Optional: ``with_settings(settings)`` returning
    a configured detector, called with the plugin's ``VettingSettings``.
    """

    name: str

    def check(self, text: str) -> Iterable[Finding | Mapping[str, Any]]: ...


class DetectorOutputError(ValueError):
    """A detector returned something that is not a finding (the message names it)."""


def coerce_finding(detector_name: str, raw: Any, text_length: int) -> Finding:
    """``raw`` (a Finding or a mapping) as a checked Finding from detector ``detector_name``."""
    if isinstance(raw, Finding):
        finding = raw
    elif isinstance(raw, Mapping):
        unknown = set(raw) - {
            "detector", "category", "message", "start", "end", "action", "replacement", "score"
        }
        if unknown:
            raise DetectorOutputError(
                f"detector {detector_name!r} returned a finding with unknown keys "
                f"{sorted(unknown)}"
            )
        try:
            finding = Finding(
                detector=str(raw.get("detector") or detector_name),
                category=str(raw["category"]),
                message=str(raw.get("message") or raw["category"]),
                start=raw.get("start"),
                end=raw.get("end"),
                action=raw.get("action"),
                replacement=raw.get("replacement"),
                score=raw.get("score"),
            )
        except KeyError as exc:
            raise DetectorOutputError(
                f"detector {detector_name!r} returned a finding without {exc.args[0]!r}"
            ) from None
    else:
        raise DetectorOutputError(
            f"detector {detector_name!r} returned {type(raw).__name__}, not a "
            "sof_vetting.Finding or a mapping"
        )
    if finding.action is not None and finding.action not in ACTIONS:
        raise DetectorOutputError(
            f"detector {detector_name!r} returned action {finding.action!r}; use one of "
            f"{', '.join(ACTIONS)}"
        )
    for bound in (finding.start, finding.end):
        if bound is not None and (
            isinstance(bound, bool) or not isinstance(bound, int) or not 0 <= bound <= text_length
        ):
            raise DetectorOutputError(
                f"detector {detector_name!r} returned offset {bound!r} outside the text "
                f"(0..{text_length})"
            )
    if not finding.detector:
        finding = Finding(**{**finding.__dict__, "detector": detector_name})
    return finding


__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "HIDDEN_TEXT",
    "INJECTION",
    "LINK",
    "PII",
    "SECRET",
    "VERDICTS",
    "Action",
    "Detector",
    "DetectorOutputError",
    "Finding",
    "Verdict",
    "coerce_finding",
]
