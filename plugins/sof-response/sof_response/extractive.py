"""The embedded default backend: an answer composed from the evidence, without a model.

It picks the sentences of the retrieved passages and tool results that share the most
content words with the question, cites each one, and says honestly that it is extractive.
A calculator's result always leads the answer; asked to summarise a web page, it gives the
page's opening sentences.
It "streams" its answer word by word, so generation controllers work with it too.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sof_response.protocols import (
    GenerationController,
    GenerationResult,
    Message,
    as_messages,
    feed_tokens,
    word_pieces,
)
from sof_response.settings import ResponseSettings

if TYPE_CHECKING:
    from sof_response.evidence import Evidence, Source

    #: Questions that ask for a summary rather than a fact ("Summarise http://..."): built
    #: at first use by ``__getattr__``.
    SUMMARY: re.Pattern[str]

# ``sof_response.evidence`` (its dataclasses and patterns) is imported by the functions that
# read evidence, and the patterns here are compiled at first use: registering the backend,
# which every process that loads the plugin does, needs neither.

NO_MATCH = (
    "I found nothing in memory that matches this question, so I cannot answer it from "
    "stored knowledge."
)
NO_USABLE_SOURCE = "I could not use the requested source, so I cannot answer from it."


@functools.cache
def _calculation() -> re.Pattern[str]:
    """A calculation source's text: its answer sentence, then its working (see evidence.py)."""
    return re.compile(r"(The answer is .+?\.)(?: (Working: .+))?$", re.DOTALL)


@functools.cache
def _summary() -> re.Pattern[str]:
    """``SUMMARY``: questions that ask for a summary rather than a fact."""
    return re.compile(
        r"\b(?:summari[sz]e|summary|sum\s+up|tl;?dr|overview|gist|what\s+does\s+.{1,80}?\s+say|"
        r"what\s+is\s+.{1,80}?\s+about)\b",
        re.IGNORECASE,
    )


def __getattr__(name: str) -> Any:
    if name == "SUMMARY":  # compiled at first use (PEP 562), still importable from here
        return _summary()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class ScoredSentence:
    text: str
    source: Source
    position: int
    overlap: float
    score: float


class ExtractiveBackend:
    """Answers from the passages themselves: most relevant sentences first, each cited."""

    name = "extractive"
    model = "extractive"
    uses_evidence = True

    def __init__(self, max_sentences: int = 3) -> None:
        self.max_sentences = max_sentences

    def with_settings(self, settings: ResponseSettings) -> ExtractiveBackend:
        return ExtractiveBackend(max_sentences=settings.max_sentences)

    def generate(
        self,
        messages: str | Sequence[Message],
        *,
        stream: bool = False,
        controller: GenerationController | None = None,
        evidence: Evidence | None = None,
    ) -> GenerationResult:
        """Compose the answer; without ``evidence``, earlier messages serve as passages.

        ``messages`` may be a plain string (one user message: the question).
        """
        from sof_response.evidence import sentences

        started = time.perf_counter()
        messages = as_messages(messages, self.name)
        evidence = evidence if evidence is not None else evidence_from_messages(messages)
        picked = self.select(evidence)
        if picked:
            body = " ".join(cite(s.text, s.source.number) for s in picked)
        elif not evidence.sources and evidence.withheld:
            body = NO_USABLE_SOURCE
        elif evidence.sources:
            best = evidence.sources[0]
            first = (sentences(best.text) or [best.text])[0]
            body = (
                "None of the retrieved passages mention the terms of the question. "
                f"The closest match is: \"{first}\" [{best.number}]"
            )
        else:
            body = NO_MATCH
        text, count, stopped = feed_tokens(controller, word_pieces(body))
        return GenerationResult(
            text=text.rstrip(),
            finish_reason="controller" if stopped else "stop",
            tokens=count,
            usage={"completion_tokens": count},
            model=self.model,
            stopped_by_controller=stopped,
            metadata={
                "extractive": True,
                "streamed": stream,
                "best_overlap": picked[0].overlap if picked else 0.0,
                "selected": [
                    {"number": s.source.number, "overlap": round(s.overlap, 3)} for s in picked
                ],
                "compose_ms": round((time.perf_counter() - started) * 1000, 3),
            },
        )

    def select(self, evidence: Evidence) -> list[ScoredSentence]:
        """The best sentences by query-term overlap, rank and retrieval score, no repeats.

        A calculation's answer comes first whatever the overlap; a summary request over web
        pages takes their opening sentences.
        """
        from sof_response.evidence import normalise_score, query_terms, sentences, terms

        wanted = query_terms(evidence.query)
        picked: list[ScoredSentence] = []
        for source in evidence.calculations:
            # "The answer is N." and, when short enough to read, the working.
            parts = _calculation().match(source.text)
            shown = [parts.group(1)] if parts else [source.text]
            if parts and parts.group(2) and len(parts.group(2)) <= 300:
                shown.append(parts.group(2))
            for position, sentence in enumerate(shown):
                picked.append(ScoredSentence(sentence, source, position, 1.0, 2.0))
        if evidence.web and _summary().search(evidence.query):
            return picked + self._lead(evidence, self.max_sentences - len(picked))
        if not wanted:
            return picked
        scored: list[ScoredSentence] = []
        for rank, source in enumerate(evidence.sources):
            if source.kind == "calculation":
                continue
            retrieval = normalise_score(source.score) if source.kind == "memory" else 0.5
            for position, sentence in enumerate(sentences(source.text)):
                shared = len(wanted & terms(sentence))
                if not shared:
                    continue
                overlap = shared / len(wanted)
                score = overlap + 0.15 * retrieval - 0.01 * rank - 0.001 * position
                scored.append(ScoredSentence(sentence, source, position, overlap, score))
        scored.sort(key=lambda s: (-s.score, s.source.number, s.position))
        seen: set[str] = set()
        for candidate in scored:
            if len(picked) >= self.max_sentences:
                break
            key = " ".join(sorted(terms(candidate.text)))
            if key in seen:
                continue
            seen.add(key)
            picked.append(candidate)
        return picked

    def _lead(self, evidence: Evidence, count: int) -> list[ScoredSentence]:
        """The opening sentences of the web sources, taking from each in turn."""
        leads = [lead_sentences(source.text) for source in evidence.web]
        picked: list[ScoredSentence] = []
        position = 0
        while count > 0 and any(position < len(lead) for lead in leads):
            for source, lead in zip(evidence.web, leads, strict=True):
                if position < len(lead) and count > 0:
                    picked.append(ScoredSentence(lead[position], source, position, 0.0, 1.0))
                    count -= 1
            position += 1
        return picked


def lead_sentences(text: str) -> list[str]:
    """The sentences of a page's text, line breaks ending sentences, headings left out.

    Extracted page text keeps one line per paragraph or heading; a short line without
    closing punctuation ("Tides explained") is a heading, not something to quote.
    """
    from sof_response.evidence import sentences

    found: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line[-1] not in ".!?:;\"')" and len(line.split()) <= 8:
            continue
        found.extend(sentences(line))
    return found or sentences(text)


def cite(sentence: str, number: int) -> str:
    """``sentence`` with ``[number]`` before its final punctuation ("... in 2023 [1].")."""
    stripped = sentence.rstrip()
    if stripped and stripped[-1] in ".!?":
        return f"{stripped[:-1].rstrip()} [{number}]{stripped[-1]}"
    return f"{stripped} [{number}]."


def evidence_from_messages(messages: Sequence[Message]) -> Evidence:
    """Evidence for callers that pass plain messages: last user message is the question."""
    from sof_response.evidence import build_evidence

    users = [m for m in messages if m.get("role") == "user"]
    query = users[-1].get("content", "") if users else ""
    context = [
        {"id": str(i), "text": m.get("content", ""), "source": f"message {i + 1}"}
        for i, m in enumerate(messages)
        if m is not (users[-1] if users else None) and m.get("role") != "system"
    ]
    return build_evidence(query or " ", context)


__all__ = ["NO_MATCH", "NO_USABLE_SOURCE", "SUMMARY", "ExtractiveBackend", "evidence_from_messages"]
