"""The material an answer is built from, checked and numbered for citation.

Inputs come from other skills (MemoryRetrievalSkill, ConflictDetectorSkill, tool skills), so
their shape is checked here once: a malformed entry raises ``ResponseInputError`` naming the
key and index, instead of failing later with a bare ``KeyError``. Passages and tool results
share one numbering, ``[1]``, ``[2]``, ..., used in prompts, answers and the Sources list.

Two more inputs join that numbering after them: a calculator's ``calculation_result`` (with
its ``calculation_steps``) and the sources ContentVettingSkill let through
(``vetted_content``). Sources the vetting skill blocked are never read: only their address
and the detectors that fired are kept, so the answer can say a source was withheld.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sof_response.errors import ResponseInputError

_APOSTROPHE = "\u2019"  # typographic apostrophe, as in "SAM\u2019s"
_WORD = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n{2,}|\n(?=\s*[-*•])")

#: Words too common to say whether a sentence is about the question.
STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not now of off on once only or other our out over own same
    she should so some such than that the their them then there these they this those through
    to too under until up very was we were what when where which while who whom why will with
    would you your yours tell please know show give""".split()
)


_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+", re.IGNORECASE)


def query_terms(query: str) -> set[str]:
    """Content words of a question, its URLs left out (an address is not the topic)."""
    return terms(_URL.sub(" ", query))


def terms(text: str) -> set[str]:
    """Content words of ``text``, lower-cased and lightly stemmed (plural "s" dropped)."""
    found = set()
    for word in _WORD.findall(text.lower()):
        word = word.replace(_APOSTROPHE, "'").split("'")[0]
        if len(word) < 2 or word in STOPWORDS:
            continue
        found.add(stem(word))
    return found


def stem(word: str) -> str:
    """A deliberately crude stemmer: enough for "redesigned" to meet "redesign"."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (good enough for prose and bullet lists)."""
    parts = (p.strip() for p in _SENTENCE_END.split(text))
    return [" ".join(p.split()) for p in parts if p and p.strip()]


#: One or more citation markers a passage brought with it, as in Wikipedia extracts:
#: "[3]", "[4][5]", "[2, 3]", "[2\u20134]", "[citation needed]", "[clarification needed]",
#: "[note 1]". They number the passage's own references, not this answer's sources.
_MARKER_RUN = re.compile(
    r"[ \t]*(?:\[(?:\d{1,3}(?:\s*[,\u2013-]\s*\d{1,3})*|note\s+\d{1,3}"
    r"|[a-z][a-z ]{0,30}\bneeded)\])+",
    re.IGNORECASE,
)
_CODE_TOKEN = re.compile(r"_|\w\.\w|\w\(.*\)|`")  # "my_list", "sys.argv", "f(x)", "`a"
_CODE_AFTER = re.compile(r"\s*=|[\w(`]|\.\w")  # "a[1] = 2", "a[1]b", "a[1].x"


def strip_citation_markers(text: str) -> str:
    """``text`` without the citation markers it brought ("1889.[3] It" -> "1889. It").

    A passage's own markers would otherwise be copied into the answer, where "[3]" reads as
    this answer's source 3. Other brackets stay ("[sic]", "[Note]", "[x]"), and so does
    indexing in code ("argv[0]", "sys.argv[1]", "a[1] = 2").
    """
    if "[" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        run = match.group()
        before = text[: match.start()]
        if run.startswith("[") and (before[-1:].isalnum() or before[-1:] in ("_", ")", "`")):
            # Right after a word: a citation ("tall[4] and"), or indexing in code.
            token = before.split()[-1] if before.split() else ""
            if (
                run.startswith("[0]")
                or _CODE_TOKEN.search(token)
                or _CODE_AFTER.match(text, match.end())
            ):
                return run
        return ""

    return _MARKER_RUN.sub(replace, text)


def normalise_score(score: Any) -> float:
    """A retrieval score mapped into [0, 1]: kept if already there, squashed if larger."""
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        return 0.5
    if score != score:  # NaN
        return 0.5
    if score <= 0:
        return 0.0
    return float(score) if score <= 1 else float(score) / (1.0 + float(score))


@dataclass(frozen=True)
class Source:
    """One citable item: a memory passage or a tool result."""

    number: int
    kind: str  # "memory", "tool", "calculation" or "web" (vetted external content)
    id: str | None
    source: str
    text: str
    score: float | None = None
    created_at: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        """How the item is named in the Sources list."""
        if self.id and self.id not in self.source:
            return f"{self.source} (id {self.id})"
        return self.source

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "id": self.id,
            "source": self.source,
            "text": self.text,
            "score": self.score,
            "created_at": jsonable(self.created_at),
        }


@dataclass(frozen=True)
class Conflict:
    """Sources that disagree about one subject, as ConflictDetectorSkill reports it."""

    subject: str
    values: tuple[str, ...]
    sources: tuple[str, ...]
    passage_ids: tuple[str, ...]
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "values": list(self.values),
            "sources": list(self.sources),
            "passage_ids": list(self.passage_ids),
            "description": self.description,
        }


@dataclass(frozen=True)
class Withheld:
    """A source the answer may not use: blocked by content vetting, or never fetched.

    ``reason`` is safe to show: detector names, or the fetching tool's own error message;
    never the source's content.
    """

    source: str
    kind: str  # "blocked" or "unavailable"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class Evidence:
    """Everything an answer may use: the question, numbered sources and known conflicts."""

    query: str
    sources: tuple[Source, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    user_context: Mapping[str, Any] = field(default_factory=dict)
    active_profile: str = "general"
    #: Passages received but left out of the prompt (over ``max_passages``).
    dropped: int = 0
    #: External sources the answer must not use, and why.
    withheld: tuple[Withheld, ...] = ()
    #: Web sources content vetting cut parts out of: (citation number, detectors).
    sanitised: tuple[tuple[int, tuple[str, ...]], ...] = ()
    #: Why a calculator that ran gave no result ("no arithmetic found ..."), when it did not.
    calculation_note: str | None = None

    @property
    def passages(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.kind == "memory")

    @property
    def tool_results(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.kind == "tool")

    @property
    def calculations(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.kind == "calculation")

    @property
    def web(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.kind == "web")

    def by_number(self, number: int) -> Source | None:
        return self.sources[number - 1] if 0 < number <= len(self.sources) else None

    def numbers_for(self, conflict: Conflict) -> list[int]:
        """Citation numbers of the passages a conflict is about (matched by id or source)."""
        wanted_ids = set(conflict.passage_ids)
        wanted_sources = set(conflict.sources)
        return [
            s.number
            for s in self.sources
            if (s.id is not None and s.id in wanted_ids)
            or (not wanted_ids and s.source in wanted_sources)
        ]


def build_evidence(
    query: str,
    memory_results: Any = None,
    tool_results: Any = None,
    conflicts: Any = None,
    *,
    user_context: Mapping[str, Any] | None = None,
    active_profile: str = "general",
    max_passages: int = 8,
    max_chars: int = 1200,
    calculation: Mapping[str, Any] | None = None,
    vetted_content: Any = None,
) -> Evidence:
    """Check the skill's inputs and number them: passages first (best first), then tools,
    then the calculation, then vetted web sources.

    ``calculation`` holds the calculator's keys that are present (``calculation_result``,
    ``calculation_steps``); ``vetted_content`` is ContentVettingSkill's structure (or a plain
    string of already-vetted text).
    """
    items: list[Source] = []
    memory = _as_list("memory_results", memory_results)
    kept = memory[:max_passages]
    for index, raw in enumerate(kept):
        items.append(_passage(index, raw, len(items) + 1, max_chars))
    for index, raw in enumerate(_as_list("tool_results", tool_results)):
        items.append(_tool_result(index, raw, len(items) + 1, max_chars))
    note = None
    if calculation:
        source, note = _calculation(calculation, len(items) + 1)
        if source is not None:
            items.append(source)
    web, withheld, sanitised = _vetted(vetted_content, len(items) + 1, max_chars)
    items.extend(web)
    found = tuple(_conflict(i, raw) for i, raw in enumerate(_as_list("conflicts", conflicts)))
    return Evidence(
        query=query,
        sources=tuple(items),
        conflicts=found,
        user_context=dict(user_context or {}),
        active_profile=active_profile,
        dropped=len(memory) - len(kept),
        withheld=tuple(withheld),
        sanitised=tuple(sanitised),
        calculation_note=note,
    )


def _as_list(key: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ResponseInputError(
            key,
            f"must be a list of dicts, got {type(value).__name__}; "
            "see docs/plugins/response.md",
        )
    return list(value)


def _entry(key: str, index: int, raw: Any, shape: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ResponseInputError(
            key, f"item {index} is a {type(raw).__name__}, expected a dict {shape}"
        )
    return raw


def _passage(index: int, raw: Any, number: int, max_chars: int) -> Source:
    shape = '{"id", "text", "source", "score", "created_at", "metadata"}'
    entry = _entry("memory_results", index, raw, shape)
    text = entry.get("text")
    if not isinstance(text, str):
        raise ResponseInputError(
            "memory_results", f"item {index} has no 'text' string (got {text!r}); expected {shape}"
        )
    ident = entry.get("id")
    metadata = entry.get("metadata")
    score = entry.get("score")
    return Source(
        number=number,
        kind="memory",
        id=None if ident is None else str(ident),
        source=str(entry.get("source") or (f"memory:{ident}" if ident is not None else "memory")),
        text=_clip(strip_citation_markers(text), max_chars),
        score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool)
        else None,
        created_at=entry.get("created_at"),
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
    )


def _tool_result(index: int, raw: Any, number: int, max_chars: int) -> Source:
    entry = _entry("tool_results", index, raw, '{"tool", "content", "source"?}')
    if "content" not in entry:
        raise ResponseInputError("tool_results", f"item {index} has no 'content'")
    content = entry["content"]
    text = (
        strip_citation_markers(content) if isinstance(content, str)
        else json.dumps(jsonable(content), sort_keys=True)  # JSON lists are data, kept whole
    )
    tool = str(entry.get("tool") or "tool")
    return Source(
        number=number,
        kind="tool",
        id=None,
        source=str(entry.get("source") or f"tool:{tool}"),
        text=_clip(text, max_chars),
        metadata={"tool": tool},
    )


def display_number(value: Any) -> str | None:
    """A calculation result as people write it ("36", "0.1", "1/3 (about 0.333333)")."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.12g}"
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        return f"{value} (about {float(value):.6g})"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f") if value == value.to_integral() else str(value)
        return text
    if isinstance(value, Mapping):
        for key in ("display", "formatted", "text", "value", "result"):
            if value.get(key) is not None:
                return display_number(value[key])
        return None
    return str(value)


def _steps(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw] if raw.strip() else []
    if isinstance(raw, Sequence):
        steps = []
        for step in raw:
            if isinstance(step, Mapping):
                text = step.get("text") or step.get("description") or step.get("step")
                steps.append(str(text) if text is not None else json.dumps(jsonable(step)))
            elif step is not None:
                steps.append(str(step))
        return [s.strip() for s in steps if s.strip()]
    return [str(raw)]


def _calculation(calculation: Mapping[str, Any], number: int) -> tuple[Source | None, str | None]:
    """The calculator's result as a citable source, or (None, why there is no result)."""
    steps = _steps(calculation.get("calculation_steps"))
    shown = display_number(calculation.get("calculation_result"))
    if shown is None:
        if "calculation_result" not in calculation and not steps:
            return None, None
        why = steps[-1] if steps else "no arithmetic expression was found in the question"
        if len(why) > 1 and why[0].isupper() and why[1].islower():
            why = why[0].lower() + why[1:]  # it continues a sentence
        return None, _clip(why, 300)
    working = [s for s in steps if s.rstrip(".") not in (f"Result: {shown}", shown)]
    if working and working[0].startswith("Expression: "):
        working[0] = working[0][len("Expression: "):]
    text = f"The answer is {shown}."
    if working:
        text += " Working: " + "; ".join(s.rstrip(".") for s in working) + "."
    return (
        Source(
            number=number,
            kind="calculation",
            id=None,
            source="CalculatorTool",
            text=_clip(text, 1200),
            metadata={"result": shown},
        ),
        None,
    )


def _vetted(
    value: Any, number: int, max_chars: int
) -> tuple[list[Source], list[Withheld], list[tuple[int, tuple[str, ...]]]]:
    """Sources ContentVettingSkill passed or sanitised; blocked and failed ones as Withheld."""
    if value is None or value == "" or value == {}:
        return [], [], []
    if isinstance(value, str):
        vetted = _clip(strip_citation_markers(value), max_chars)
        source = Source(number, "web", None, "vetted content", vetted)
        return [source], [], []
    if not isinstance(value, Mapping) or not isinstance(value.get("sources"), Sequence):
        raise ResponseInputError(
            "vetted_content",
            'must be ContentVettingSkill\'s structure ({"version", "verdict", "sources": '
            f"[...]}}) or a string, got {type(value).__name__}; see docs/plugins/vetting.md",
        )
    sources: list[Source] = []
    withheld: list[Withheld] = []
    sanitised: list[tuple[int, tuple[str, ...]]] = []
    for index, raw in enumerate(value["sources"]):
        if not isinstance(raw, Mapping):
            raise ResponseInputError(
                "vetted_content", f"sources[{index}] is a {type(raw).__name__}, expected a dict"
            )
        label = _web_label(raw, index)
        verdict = raw.get("verdict")
        detectors = tuple(str(d) for d in raw.get("detectors") or ())
        if verdict not in ("pass", "sanitize"):
            # "block", or anything this version does not know: never read its text.
            reason = ", ".join(detectors) if detectors else f"verdict {verdict!r}"
            withheld.append(Withheld(label, "blocked", reason))
            continue
        text = raw.get("text")
        error = raw.get("error")
        if not isinstance(text, str) or not text.strip():
            if error:
                withheld.append(Withheld(label, "unavailable", _clip(str(error), 300)))
            continue
        title = raw.get("title")
        shown = f"{title} ({label})" if isinstance(title, str) and title.strip() else label
        current = number + len(sources)
        sources.append(
            Source(
                number=current,
                kind="web",
                id=None,
                source=_clip(shown, 200),
                text=_clip(strip_citation_markers(text), max_chars),
                metadata={"verdict": verdict, "detectors": list(detectors)},
            )
        )
        if verdict == "sanitize":
            sanitised.append((current, detectors))
    return sources, withheld, sanitised


def _web_label(raw: Mapping[str, Any], index: int) -> str:
    """How a vetted source is named: the URL that was asked for (not one the server chose)."""
    metadata = raw.get("metadata")
    url = metadata.get("url") if isinstance(metadata, Mapping) else None
    label = url if isinstance(url, str) and url else raw.get("source")
    return _clip(str(label or f"source {index + 1}"), 200)


def _conflict(index: int, raw: Any) -> Conflict:
    entry = _entry(
        "conflicts", index, raw, '{"subject", "values", "passages", "description"}'
    )
    values = entry.get("values") or []
    passages = entry.get("passages") or []
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise ResponseInputError("conflicts", f"item {index}: 'values' must be a list")
    if not isinstance(passages, Sequence) or isinstance(passages, (str, bytes)):
        raise ResponseInputError("conflicts", f"item {index}: 'passages' must be a list")
    sources: list[str] = []
    ids: list[str] = []
    for p in passages:
        if isinstance(p, Mapping):
            if p.get("source") and str(p["source"]) not in sources:
                sources.append(str(p["source"]))
            if p.get("id") is not None:
                ids.append(str(p["id"]))
    return Conflict(
        subject=str(entry.get("subject") or "this question"),
        values=tuple(str(v) for v in values),
        sources=tuple(sources),
        passage_ids=tuple(ids),
        description=str(entry.get("description") or ""),
    )


def _clip(text: str, max_chars: int) -> str:
    text = text.strip()
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def jsonable(value: Any) -> Any:
    """``value`` reduced to what JSON can hold (the UIF must serialise losslessly)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return str(value)


__all__ = [
    "Conflict",
    "Evidence",
    "Source",
    "Withheld",
    "build_evidence",
    "display_number",
    "jsonable",
    "normalise_score",
    "query_terms",
    "sentences",
    "terms",
]
