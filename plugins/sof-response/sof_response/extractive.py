"""The embedded default backend: an answer composed from the evidence, without a model.

It picks the sentences of the retrieved passages and tool results that share the most
content words with the question, cites each one, and says honestly that it is extractive.
It "streams" its answer word by word, so generation controllers work with it too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sof_response.evidence import (
    Evidence,
    Source,
    build_evidence,
    normalise_score,
    sentences,
    terms,
)
from sof_response.protocols import (
    GenerationController,
    GenerationResult,
    Message,
    feed_tokens,
    word_pieces,
)
from sof_response.settings import ResponseSettings

NO_MATCH = (
    "I found nothing in memory that matches this question, so I cannot answer it from "
    "stored knowledge."
)


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
        messages: Sequence[Message],
        *,
        stream: bool = False,
        controller: GenerationController | None = None,
        evidence: Evidence | None = None,
    ) -> GenerationResult:
        """Compose the answer; without ``evidence``, earlier messages serve as passages."""
        started = time.perf_counter()
        evidence = evidence if evidence is not None else evidence_from_messages(messages)
        picked = self.select(evidence)
        if picked:
            body = " ".join(cite(s.text, s.source.number) for s in picked)
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
        """The best sentences by query-term overlap, rank and retrieval score, no repeats."""
        wanted = terms(evidence.query)
        if not wanted:
            return []
        scored: list[ScoredSentence] = []
        for rank, source in enumerate(evidence.sources):
            retrieval = normalise_score(source.score) if source.kind == "memory" else 0.5
            for position, sentence in enumerate(sentences(source.text)):
                shared = len(wanted & terms(sentence))
                if not shared:
                    continue
                overlap = shared / len(wanted)
                score = overlap + 0.15 * retrieval - 0.01 * rank - 0.001 * position
                scored.append(ScoredSentence(sentence, source, position, overlap, score))
        scored.sort(key=lambda s: (-s.score, s.source.number, s.position))
        picked: list[ScoredSentence] = []
        seen: set[str] = set()
        for candidate in scored:
            key = " ".join(sorted(terms(candidate.text)))
            if key in seen:
                continue
            seen.add(key)
            picked.append(candidate)
            if len(picked) == self.max_sentences:
                break
        return picked


def cite(sentence: str, number: int) -> str:
    """``sentence`` with ``[number]`` before its final punctuation ("... in 2023 [1].")."""
    stripped = sentence.rstrip()
    if stripped and stripped[-1] in ".!?":
        return f"{stripped[:-1].rstrip()} [{number}]{stripped[-1]}"
    return f"{stripped} [{number}]."


def evidence_from_messages(messages: Sequence[Message]) -> Evidence:
    """Evidence for callers that pass plain messages: last user message is the question."""
    users = [m for m in messages if m.get("role") == "user"]
    query = users[-1].get("content", "") if users else ""
    context = [
        {"id": str(i), "text": m.get("content", ""), "source": f"message {i + 1}"}
        for i, m in enumerate(messages)
        if m is not (users[-1] if users else None) and m.get("role") != "system"
    ]
    return build_evidence(query or " ", context)


__all__ = ["NO_MATCH", "ExtractiveBackend", "evidence_from_messages"]
