"""Conflict detection as a pure function: passages in, conflict records out.

Claims (see ``_claims``) are grouped by (kind, subject key), exact claims apart from loose
ones: an exact key is a wording in order, a loose one a set of stems, and the two must never
meet. A group becomes one conflict when two of its values cannot both be true and they come
from different passages; a single passage that states two values is telling a story over
time, not contradicting itself.
Output order follows the input order (best memory first, then tool results), so the same
input always gives the same list.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sof_conflict._claims import KIND_RANK, Claim, extract_claims
from sof_conflict._text import normalise_space, split_sentences
from sof_core import SOFError

Origin = Literal["memory", "tool"]


class ConflictInputError(SOFError, ValueError):
    """``memory_results`` or ``tool_results`` does not have the documented shape.

    ``key`` names the input, ``index`` the offending entry (``None`` for the whole input)
    and ``field`` the offending field of that entry.
    """

    def __init__(self, key: str, index: int | None, field: str | None, problem: str) -> None:
        self.key, self.index, self.field = key, index, field
        where = key if index is None else f"{key}[{index}]"
        if field is not None:
            where += f"[{field!r}]"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Passage:
    """A text to check: a memory passage or a tool result, with where it came from."""

    id: str
    source: str
    text: str
    origin: Origin = "memory"

    @property
    def label(self) -> str:
        return self.source or self.id


@dataclass(frozen=True)
class _Occurrence:
    order: tuple[int, int, int]  # (passage, sentence, claim) positions, for stable output
    passage: Passage
    sentence: str
    claim: Claim



def _kind(value: object) -> str:
    """The type a user wrote: during a run the skill reads lists and dicts as SOF's
    read-only views of them, whose class names mean nothing to whoever wrote the data."""
    for plain in (list, dict, set, tuple, str):
        if isinstance(value, plain):
            return plain.__name__
    return type(value).__name__

def passages_from(
    memory_results: Sequence[Any], tool_results: Sequence[Any] | None = None
) -> list[Passage]:
    """Check and convert the skill's inputs; raise ``ConflictInputError`` on a bad shape.

    Memory entries must be mappings with a string ``text``; ``id`` and ``source`` are
    optional. Tool entries must be mappings; their ``content`` is used when it is text and
    skipped otherwise (structured tool output has no sentences to compare). A tool result
    without ``source`` is labelled ``tool:<name>``, as the response skill labels it.
    """
    passages: list[Passage] = []
    if not isinstance(memory_results, (list, tuple)):
        raise ConflictInputError(
            "memory_results", None, None,
            f"expected a list of passage dicts, got {_kind(memory_results)}",
        )
    for index, entry in enumerate(memory_results):
        if not isinstance(entry, Mapping):
            raise ConflictInputError(
                "memory_results", index, None,
                f"expected a dict with 'text', 'id' and 'source', got {_kind(entry)}",
            )
        text = entry.get("text")
        if not isinstance(text, str):
            raise ConflictInputError(
                "memory_results", index, "text",
                f"expected the passage text as a string, got {_kind(text)}",
            )
        passage_id = entry.get("id")
        passages.append(
            Passage(
                id=f"memory-{index}" if passage_id is None else str(passage_id),
                source=str(entry.get("source") or ""),
                text=text,
            )
        )
    if tool_results is None:
        return passages
    if not isinstance(tool_results, (list, tuple)):
        raise ConflictInputError(
            "tool_results", None, None,
            f"expected a list of tool result dicts, got {_kind(tool_results)}",
        )
    for index, entry in enumerate(tool_results):
        if not isinstance(entry, Mapping):
            raise ConflictInputError(
                "tool_results", index, None,
                f"expected a dict with 'tool' and 'content', got {_kind(entry)}",
            )
        content = entry.get("content")
        if not isinstance(content, str):
            continue
        tool = str(entry.get("tool") or "tool")
        passage_id = entry.get("id")
        passages.append(
            Passage(
                id=f"tool:{tool}:{index}" if passage_id is None else str(passage_id),
                source=str(entry.get("source") or f"tool:{tool}"),
                text=content,
                origin="tool",
            )
        )
    return passages


def detect_conflicts(
    memory_results: Sequence[Any], tool_results: Sequence[Any] | None = None
) -> list[dict[str, Any]]:
    """Contradictions among memory passages and tool results, as documented records.

    Each record has ``subject``, ``kind`` ("number", "date", "value" or "negation"),
    ``values``, ``passages`` (``id``, ``source``, ``text`` = the sentence, ``value``,
    ``origin``), ``key`` and a one-sentence ``description``. No conflicts gives ``[]``.
    """
    return find_conflicts(passages_from(memory_results, tool_results))


def find_conflicts(passages: Sequence[Passage]) -> list[dict[str, Any]]:
    """``detect_conflicts`` for already-built ``Passage`` objects."""
    groups: dict[tuple[str, bool, tuple[str, ...]], list[_Occurrence]] = {}
    for p_index, passage in enumerate(passages):
        for s_index, raw in enumerate(split_sentences(passage.text)):
            sentence = normalise_space(raw)
            for c_index, claim in enumerate(extract_claims(sentence)):
                occurrence = _Occurrence((p_index, s_index, c_index), passage, sentence, claim)
                group = (claim.kind, claim.exact, claim.key)
                groups.setdefault(group, []).append(occurrence)
    found: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for (kind, _exact, key), occurrences in groups.items():
        involved = _disagreeing(kind, occurrences)
        if involved:
            record = _record(kind, key, involved)
            found.append(((involved[0].order, KIND_RANK[kind], record["subject"]), record))
    found.sort(key=lambda item: item[0])
    return [record for _, record in found]


def _disagreeing(kind: str, occurrences: list[_Occurrence]) -> list[_Occurrence]:
    """Occurrences whose value clashes with a value another passage states; ``[]`` if none.

    Two values clash when ``values_compatible`` says they cannot both be true and they are
    not both stated by one single passage only. Rather than comparing every pair of values
    (time quadratic in the passages that share a subject), each value's compatible values
    are *counted* through an index (``_CompatibleCount``); a value clashes when some value
    it is not compatible with comes from elsewhere. The result is the same as comparing
    every pair.
    """
    by_value: dict[Any, list[_Occurrence]] = {}
    for occurrence in occurrences:
        by_value.setdefault(occurrence.claim.value, []).append(occurrence)
    if len(by_value) < 2:
        return []
    clashing = clashing_values(
        kind, {value: {o.order[0] for o in occs} for value, occs in by_value.items()}
    )
    return [o for o in occurrences if o.claim.value in clashing]


def clashing_values(kind: str, passages: Mapping[Any, set[int]]) -> set[Any]:
    """The distinct values (keys of ``passages``, each with the passages stating it) that
    clash with another: some value incompatible with it, the two not stated by one and the
    same single passage. Near-linear in the number of values."""
    everywhere = _CompatibleCount(kind)
    alone: dict[int, _CompatibleCount] = {}  # values stated by that one passage only
    for value, where in passages.items():
        everywhere.add(value)
        if len(where) == 1:
            (passage,) = where
            alone.setdefault(passage, _CompatibleCount(kind)).add(value)
    clashing: set[Any] = set()
    for value, where in passages.items():
        incompatible = everywhere.size - everywhere.count(value)
        if len(where) == 1:
            (passage,) = where
            same = alone[passage]  # incompatible values of this passage alone do not count
            incompatible -= same.size - same.count(value)
        if incompatible > 0:
            clashing.add(value)
    return clashing


class _CompatibleCount:
    """A multiset of distinct values of one kind that counts those compatible with a value.

    It answers what ``values_compatible`` would for each stored value, in a few dictionary
    look-ups:

    * ``date``: ``(year, month, day)`` with ``None`` for a part not stated; compatible when
      every part both state agrees. Values are stored under each subset of the parts they
      state, grouped by which parts those are.
    * ``value``: word tuples; compatible when one's words contain the other's. Values are
      stored by their word set and under every subset of it.
    * anything else: compatible only when equal.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.size = 0
        self._counts: dict[Hashable, int] = {}
        self._masks: set[tuple[bool, ...]] = set()

    def _bump(self, key: Hashable) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1

    def add(self, value: Any) -> None:
        """Store one value (values added are distinct)."""
        self.size += 1
        if self.kind == "date":
            mask = tuple(part is not None for part in value)
            self._masks.add(mask)
            for shared in _submasks(mask):
                self._bump((mask, shared, _project(value, shared)))
        elif self.kind == "value":
            words = frozenset(value)
            self._bump(("equal", words))
            for part in _subsets(words):
                self._bump(("within", part))
        else:
            self._bump(value)

    def count(self, value: Any) -> int:
        """How many stored values are compatible with ``value``."""
        get = self._counts.get
        if self.kind == "date":
            stated = tuple(part is not None for part in value)
            total = 0
            for mask in self._masks:
                shared = tuple(a and b for a, b in zip(mask, stated, strict=True))
                total += get((mask, shared, _project(value, shared)), 0)
            return total
        if self.kind == "value":
            words = frozenset(value)
            inside = sum(get(("equal", part), 0) for part in _subsets(words))  # w <= v
            around = get(("within", words), 0)  # v <= w
            return inside + around - get(("equal", words), 0)  # w == v counted twice
        return get(value, 0)


def _submasks(mask: tuple[bool, ...]) -> list[tuple[bool, ...]]:
    """Every mask that keeps some of ``mask``'s true positions (itself and none included)."""
    found: list[tuple[bool, ...]] = [()]
    for bit in mask:
        found = [(*m, False) for m in found] + ([(*m, True) for m in found] if bit else [])
    return found


def _project(value: tuple[Any, ...], mask: tuple[bool, ...]) -> tuple[Any, ...]:
    return tuple(part if keep else None for part, keep in zip(value, mask, strict=True))


def _subsets(words: frozenset[str]) -> list[frozenset[str]]:
    """Every subset of ``words`` (a named value has at most three)."""
    found: list[frozenset[str]] = [frozenset()]
    for word in sorted(words):
        found += [part | {word} for part in found]
    return found


def _record(kind: str, key: tuple[str, ...], involved: list[_Occurrence]) -> dict[str, Any]:
    shown: dict[Any, str] = {}
    for occurrence in involved:
        shown.setdefault(occurrence.claim.value, occurrence.claim.shown)
    seen: set[tuple[int, int]] = set()
    passages: list[dict[str, Any]] = []
    labels: dict[str, set[str]] = {}
    for occurrence in involved:
        labels.setdefault(occurrence.passage.label, set()).add(occurrence.passage.id)
    for occurrence in involved:
        where = occurrence.order[:2]
        if where in seen:
            continue
        seen.add(where)
        passages.append(
            {
                "id": occurrence.passage.id,
                "source": occurrence.passage.source,
                "text": occurrence.sentence,
                "value": shown[occurrence.claim.value],
                "origin": occurrence.passage.origin,
            }
        )
    if kind == "negation":
        affirmed = next((o for o in involved if o.claim.value is True), involved[0])
        subject = affirmed.claim.clause
    else:
        subject = involved[0].claim.subject
    return {
        "subject": subject,
        "kind": kind,
        "values": list(shown.values()),
        "passages": passages,
        "key": list(key),
        "description": _describe(kind, subject, involved, shown, labels),
    }


def _describe(
    kind: str,
    subject: str,
    involved: list[_Occurrence],
    shown: dict[Any, str],
    labels: dict[str, set[str]],
) -> str:
    """One sentence naming every source and what it says."""
    def name(passage: Passage) -> str:
        ambiguous = len(labels.get(passage.label, ())) > 1
        return f"{passage.label} ({passage.id})" if ambiguous else passage.label

    speakers: dict[Any, list[str]] = {value: [] for value in shown}
    for occurrence in involved:
        who = name(occurrence.passage)
        if who not in speakers[occurrence.claim.value]:
            speakers[occurrence.claim.value].append(who)
    parts = []
    for value, names in speakers.items():
        verb = "says" if len(names) == 1 else "say"
        said = f'"{shown[value]}"' if kind == "negation" else shown[value]
        parts.append(f"{' and '.join(names)} {verb} {said}")
    told = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", while " + parts[-1]
    if kind == "negation":
        return f"Sources disagree: {told}."
    what = {"date": "the date in", "number": "the number in", "value": ""}[kind]
    return f'Sources disagree on {what + " " if what else ""}"{subject}": {told}.'
