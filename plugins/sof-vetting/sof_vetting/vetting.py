"""Vetting one source: normalise, run every detector, decide, and cut.

For each source (one item of ``external_content``) the title and the text are vetted alike:

1. cut to ``max_chars``; invisible characters removed and Unicode tag text decoded
   (``normalise``), NFKC applied;
2. HTML, when the item carries it (``html``) or its text is markup, is searched for text a
   browser would hide; markup text is replaced by what a browser shows;
3. every enabled detector checks the normalised text; hidden and smuggled text is checked
   for injection too;
4. each finding's action (its own, else its category's) decides: any ``block`` withholds
   the source, a ``sanitize`` finding's span is cut out (a ``sanitize`` finding without a
   span cannot be cut, so it withholds the source too), ``report`` is only recorded;
5. verdict: ``block`` > ``sanitize`` > ``pass``. A blocked source's text is never passed on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sof_vetting.detectors.injection import MESSAGES, scan
from sof_vetting.errors import VettingInputError
from sof_vetting.findings import HIDDEN_TEXT, INJECTION, Finding, coerce_finding
from sof_vetting.hidden import HiddenSegment, looks_like_html, read_html
from sof_vetting.normalise import normalise
from sof_vetting.settings import VettingSettings

log = logging.getLogger("sof.vetting")

#: Keys an item's text may be under, in order of preference (SAM's is "content").
TEXT_KEYS = ("content", "text", "body", "snippet")
HTML_KEYS = ("html", "raw_html")
#: Keys naming an item, in order: the URL as asked for comes first (the response skill names
#: sources the same way; ``final_url`` is where a server's redirects ended).
SOURCE_KEYS = ("url", "final_url", "source", "link")
#: Shape version of ``intermediate_data["vetted_content"]``.
SHAPE_VERSION = 1


@dataclass
class SourceItem:
    """One item of ``external_content``, read leniently."""

    index: int
    source: str
    title: str
    text: str
    html: str | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceReport:
    """The verdict on one source and what may be passed on from it."""

    index: int
    source: str
    verdict: str
    title: str
    text: str
    findings: list[tuple[str, Finding, str]]  # (where, finding, effective action)
    metadata: dict[str, Any]
    error: str | None = None
    truncated: bool = False
    chars_in: int = 0

    @property
    def detectors(self) -> list[str]:
        """Names of the detectors that fired, in order of first finding, each once."""
        names: list[str] = []
        for _, finding, _action in self.findings:
            if finding.detector not in names:
                names.append(finding.detector)
        return names

    def reasons(self) -> list[dict[str, Any]]:
        """Findings grouped by detector, action and place, with a count."""
        grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
        for where, finding, action in self.findings:
            key = (finding.detector, action, where)
            entry = grouped.get(key)
            if entry is None:
                grouped[key] = {
                    "detector": finding.detector,
                    "category": finding.category,
                    "action": action,
                    "where": where,
                    "message": finding.message,
                    "count": 1,
                }
            else:
                entry["count"] += 1
        return list(grouped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "source": self.source,
            "title": self.title,
            "verdict": self.verdict,
            "text": self.text,
            "reasons": self.reasons(),
            "detectors": self.detectors,
            "error": self.error,
            "truncated": self.truncated,
            "chars_in": self.chars_in,
            "chars_out": len(self.text),
            "metadata": self.metadata,
        }


@dataclass
class VettingResult:
    sources: list[SourceReport]
    detectors: list[str]
    duration: float

    @property
    def verdict(self) -> str:
        """The worst verdict over all sources ("pass" when there are none)."""
        order = {"pass": 0, "sanitize": 1, "block": 2}
        worst = "pass"
        for report in self.sources:
            if order[report.verdict] > order[worst]:
                worst = report.verdict
        return worst

    def combined_text(self) -> str:
        """The passed and sanitised sources as one text (the UIF field); "" when nothing
        passed, so the field always says vetting ran (None means it did not)."""
        parts = []
        for report in self.sources:
            if report.verdict == "block" or not report.text:
                continue
            heading = report.title or report.source
            parts.append(f"[{report.index + 1}] {heading} ({report.source})\n{report.text}"
                         if report.title else f"[{report.index + 1}] {heading}\n{report.text}")
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        counts = {"pass": 0, "sanitize": 0, "block": 0}
        for report in self.sources:
            counts[report.verdict] += 1
        return {
            "version": SHAPE_VERSION,
            "verdict": self.verdict,
            "counts": counts,
            "sources": [r.to_dict() for r in self.sources],
            "withheld": [r.index for r in self.sources if r.verdict == "block"],
            "detectors": list(self.detectors),
        }

    def record(self) -> dict[str, Any]:
        """What goes to ``security_context["content_vetting"]``: verdicts, never content."""
        return {
            "skill": "ContentVettingSkill",
            "verdict": self.verdict,
            "sources": [
                {
                    "index": r.index,
                    "source": r.source,
                    "verdict": r.verdict,
                    "detectors": r.detectors,
                    "reasons": [
                        {k: v for k, v in reason.items() if k != "message"}
                        for reason in r.reasons()
                    ],
                }
                for r in self.sources
            ],
            "detectors": list(self.detectors),
            "vetted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "duration_ms": round(self.duration * 1000, 3),
        }


# --- reading external_content ----------------------------------------------------------------


def read_items(value: Any) -> list[SourceItem]:
    """``external_content`` as a list of items: a list of dicts (or strings), one dict, or a
    string. Anything else raises ``VettingInputError`` naming the key and item."""
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        raw_items: list[Any] = [value]
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        raw_items = list(value)
    else:
        raise VettingInputError(
            f"expected a list of dicts, a dict or a string, got {type(value).__name__}"
        )
    return [_item(index, raw) for index, raw in enumerate(raw_items)]


def _item(index: int, raw: Any) -> SourceItem:
    if isinstance(raw, str):
        return SourceItem(index, f"external_content[{index}]", "", raw)
    if not isinstance(raw, Mapping):
        raise VettingInputError(
            f"is a {type(raw).__name__}; each item must be a dict such as "
            '{"url", "title", "content"} or a string',
            index=index,
        )
    text: Any = None
    for key in TEXT_KEYS:
        if raw.get(key) is not None:
            text = raw[key]
            break
    if text is None:
        text = ""
    elif not isinstance(text, str):
        try:
            text = json.dumps(text, sort_keys=True, default=str)
        except (TypeError, ValueError) as exc:
            raise VettingInputError(f"content could not be read as text: {exc}",
                                    index=index) from None
    html = next((raw[k] for k in HTML_KEYS if isinstance(raw.get(k), str)), None)
    source = next((str(raw[k]) for k in SOURCE_KEYS if raw.get(k)), f"external_content[{index}]")
    title = raw.get("title")
    error = raw.get("error")
    if error is not None and not isinstance(error, str):
        error = json.dumps(error, sort_keys=True, default=str)
    metadata = {
        key: _jsonable(val)
        for key, val in raw.items()
        if key not in TEXT_KEYS and key not in HTML_KEYS and key not in ("title", "error")
    }
    return SourceItem(
        index=index,
        source=source,
        title=title if isinstance(title, str) else "",
        text=text,
        html=html,
        error=error or None,
        metadata=metadata,
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


# --- vetting -------------------------------------------------------------------------------------


@dataclass
class _Checked:
    text: str
    findings: list[tuple[Finding, str]]  # (finding, effective action)
    applied: list[Finding]  # sanitising already done (invisible characters, hidden markup)
    truncated: bool = False


class Vetter:
    """Runs ``detectors`` over sources under ``settings`` (thread-safe: no state per call)."""

    def __init__(self, detectors: Iterable[Any], settings: VettingSettings) -> None:
        self.settings = settings
        self.detectors = [
            d for d in detectors if not settings.is_disabled(str(getattr(d, "name", "")))
        ]

    @property
    def names(self) -> list[str]:
        return [str(d.name) for d in self.detectors]

    def vet_all(self, items: Sequence[SourceItem]) -> VettingResult:
        started = time.perf_counter()
        reports = [self.vet(item) for item in items]
        return VettingResult(reports, self.names, time.perf_counter() - started)

    def vet(self, item: SourceItem) -> SourceReport:
        findings: list[tuple[str, Finding, str]] = []
        title = self._check(item.title, None) if item.title else None
        body = self._check(item.text, item.html)
        blocked = False
        sanitised = False
        for where, checked in (("title", title), ("content", body)):
            if checked is None:
                continue
            for finding in checked.applied:
                findings.append((where, finding, "sanitize"))
                sanitised = True
            for finding, action in checked.findings:
                findings.append((where, finding, action))
                if action == "block":
                    blocked = True
                elif action == "sanitize":
                    sanitised = True
            if checked.truncated:
                sanitised = True
        verdict = "block" if blocked else "sanitize" if sanitised else "pass"
        if verdict == "block":
            text, shown_title = "", ""
        else:
            text = _cut(body.text, [f for f, a in body.findings if a == "sanitize"])
            shown_title = (
                _cut(title.text, [f for f, a in title.findings if a == "sanitize"])
                if title is not None else ""
            )
        return SourceReport(
            index=item.index,
            source=item.source,
            verdict=verdict,
            title=shown_title.strip(),
            text=text.strip(),
            findings=findings,
            metadata=item.metadata,
            error=item.error,
            truncated=body.truncated,
            chars_in=len(item.text),
        )

    def _check(self, raw: str, html: str | None) -> _Checked:
        settings = self.settings
        applied: list[Finding] = []
        extra: list[Finding] = []
        truncated = len(raw) > settings.max_chars
        if truncated:
            raw = raw[: settings.max_chars]
            applied.append(Finding("limit.max_chars", "limit",
                                   f"cut to the first {settings.max_chars} characters"))
        markup = html
        if markup is None and looks_like_html(raw):
            markup = raw
        hidden: list[HiddenSegment] = []
        visible = ""
        if markup is not None:
            read = read_html(markup[: settings.max_chars * 4])
            visible, hidden = read.visible, read.hidden
            if read.role_tags:  # dropped from the text with the markup: flagged here
                tags = ", ".join(f"<{tag}>" for tag in read.role_tags)
                extra.append(Finding(
                    "injection.fake_message", INJECTION,
                    f"the page's markup has {tags}: fake message tags that mark its text as "
                    "a system, assistant or tool message (a reader does not see them)"))
            if markup is raw:  # the text is markup: what a browser shows is the text
                raw = visible
                if hidden:
                    applied.append(Finding(
                        "hidden_text.css", HIDDEN_TEXT,
                        f"left out {len(hidden)} piece(s) of text hidden from readers "
                        f"({', '.join(sorted({s.reason for s in hidden}))})",
                    ))
        normal = normalise(raw)
        text = normal.text
        if normal.removed and not settings.is_disabled("hidden_text.invisible_characters"):
            kinds = ", ".join(f"{k}: {n}" for k, n in sorted(normal.removed.items()))
            applied.append(Finding("hidden_text.invisible_characters", HIDDEN_TEXT,
                                   f"removed {normal.removed_total} invisible character(s) "
                                   f"({kinds})"))
        for smuggled in normal.smuggled:
            for family in sorted({f for f, _, _ in scan(smuggled)}):
                extra.append(Finding(
                    "hidden_text.unicode_tags", INJECTION,
                    f"invisible Unicode tag characters spell text that {MESSAGES[family]} "
                    f"(injection.{family})",
                ))
        # What the page shows (given its HTML): hidden text that is also shown is not cut,
        # since which copy the extractor kept cannot be told ("Close" of a hidden button
        # cut the visible "Close the window").
        shown = " ".join(normalise(visible).text.split()) if html is not None and hidden \
            else ""
        pieces = [normalise(segment.text).text for segment in hidden]
        alone: set[str] = set()  # injection families a single hidden piece carries
        for segment, piece in zip(hidden, pieces, strict=True):
            reason = segment.reason
            families = sorted({f for f, _, _ in scan(piece)})
            alone.update(families)
            needle = " ".join(piece.split())
            position = (text.find(needle) if html is not None and needle
                        and needle not in shown else -1)
            span = (position, position + len(needle)) if position >= 0 else (None, None)
            for family in families:
                extra.append(Finding(
                    "hidden_text.css", INJECTION,
                    f"text hidden by {reason} {MESSAGES[family]} (injection.{family})",
                    *span,
                ))
            if span[0] is not None and not families:
                extra.append(Finding("hidden_text.css", HIDDEN_TEXT,
                                     f"contains text hidden by {reason}", *span))
        if pieces:
            extra.extend(self._across_hidden(pieces, alone))
        found: list[Finding] = []
        for detector in self.detectors:
            found.extend(self._run(detector, text))
        found.extend(extra)
        decided: list[tuple[Finding, str]] = []
        for finding in found:
            if settings.is_disabled(finding.detector):
                continue
            action = finding.action or settings.action_for(finding.category)
            if action == "sanitize" and not finding.has_span:
                action = "block"  # nothing to cut: the only safe way to drop it
            decided.append((finding, action))
        return _Checked(text, decided, [f for f in applied if not settings.is_disabled(
            f.detector)], truncated)

    def _across_hidden(self, pieces: Sequence[str], alone: set[str]) -> list[Finding]:
        """Injections in the page's hidden text (``pieces``, normalised) that no single
        piece shows (``alone``: the families the pieces carry one by one): split over
        several hidden elements, or encoded (base64, ...) inside one."""
        joined = " ".join(pieces)
        findings = [
            Finding("hidden_text.css", INJECTION,
                    f"text hidden across {len(pieces)} elements {MESSAGES[family]} "
                    f"(injection.{family})")
            for family in sorted({f for f, _, _ in scan(joined)} - alone)
        ]
        for detector in self.detectors:
            if getattr(detector, "name", "") == "injection":  # scanned above
                continue
            for finding in self._run(detector, joined):
                if finding.category == INJECTION:
                    findings.append(Finding(
                        "hidden_text.css", INJECTION,
                        f"text hidden from readers: {finding.message} ({finding.detector})"))
        return findings

    def _run(self, detector: Any, text: str) -> list[Finding]:
        name = str(getattr(detector, "name", type(detector).__name__))
        try:
            raw = detector.check(text)
            return [coerce_finding(name, item, len(text)) for item in raw or ()]
        except Exception as exc:
            log.warning("vetting detector %r failed: %s: %s", name, type(exc).__name__, exc)
            return [Finding(
                detector=name,
                category="detector_error",
                message=f"detector raised {type(exc).__name__}: {exc}"[:300],
                action="block" if self.settings.on_detector_error == "block" else "report",
            )]


def _cut(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with each finding's span replaced by its replacement (overlaps merged)."""
    spans = sorted(
        ((f.start, f.end, f.replacement or f"[removed: {f.category}]")
         for f in findings if f.start is not None and f.end is not None),
    )
    if not spans:
        return text
    merged: list[list[Any]] = []
    for start, end, label in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            if label not in merged[-1][2]:
                merged[-1][2].append(label)
        else:
            merged.append([start, end, [label]])
    out: list[str] = []
    position = 0
    for start, end, labels in merged:
        out.append(text[position:start])
        out.append(labels[0] if len(labels) == 1 else " ".join(labels))
        position = end
    out.append(text[position:])
    return "".join(out)


__all__ = [
    "SHAPE_VERSION",
    "SourceItem",
    "SourceReport",
    "Vetter",
    "VettingResult",
    "read_items",
]
