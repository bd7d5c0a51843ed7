"""Legacy comparison: the seed's default plan through SOF vs a hand-written fixed pipeline.

Both call the same two skill bodies: a keyword-overlap memory search over 200 stored notes,
and a response composed from the best passages. The legacy pipeline is what SAM did before
SOF: build the UIF, call the two skills in a fixed order.
"""

from __future__ import annotations

import random
from typing import Any

from _common import Row, Section, best_of, make_skill

from sof_core import UIF
from sof_core.testing import make_engine

_WORDS = ("memory system store vector index sam redesign response profile vetting web "
          "search conflict passage answer query embedding cache plan skill graph").split()
_rng = random.Random(3)
NOTES = [" ".join(_rng.choice(_WORDS) for _ in range(12)) for _ in range(200)]
QUERY = "When was the SAM memory system redesigned, and what does it store?"


def retrieve(query: str, limit: int = 3) -> list[str]:
    terms = set(query.lower().replace(",", " ").replace("?", " ").split())
    scored = sorted(NOTES, key=lambda note: -len(terms.intersection(note.split())))
    return scored[:limit]


def respond(query: str, passages: list[str]) -> str:
    cited = "; ".join(f"[{i + 1}] {p[:40]}" for i, p in enumerate(passages))
    return f"Answer to {query!r} from {len(passages)} passages: {cited}"


def _memory(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["memory_results"] = retrieve(uif.input_query)
    return uif


def _response(self: Any, uif: UIF) -> UIF:
    uif.final_response = respond(uif.input_query, uif.intermediate_data["memory_results"])
    uif.confidence_score = 0.8
    return uif


MemoryRetrievalSkill = make_skill("MemoryRetrievalSkill", [], ["memory_results"], body=_memory)
ResponseGenerationSkill = make_skill(
    "ResponseGenerationSkill", ["memory_results"], ["final_response", "confidence_score"],
    body=_response,
)


def legacy_pipeline(query: str) -> UIF:
    """SAM's fixed pipeline: one UIF, the two skills in a hard-coded order."""
    uif = UIF.for_query(query)
    for skill in (MemoryRetrievalSkill(), ResponseGenerationSkill()):
        uif = skill.execute(uif)
    return uif


def run(quick: bool) -> Section:
    section = Section("legacy", "Seed's default plan: SOF vs the legacy fixed pipeline")
    repeat = 3 if quick else 7
    number = 200 if quick else 1000
    legacy = best_of(lambda: legacy_pipeline(QUERY), repeat, number)
    expected = legacy_pipeline(QUERY).final_response
    for label, config in (
        ("SOF, default config (threads, timeouts on)", {}),
        ("SOF, sequential, no timeouts", {"executor": "sequential", "skill_timeout": None,
                                         "total_timeout": None}),
    ):
        engine = make_engine([MemoryRetrievalSkill, ResponseGenerationSkill], **config)
        report = engine.run_query(QUERY)  # the configured default plan, as SAM ran it
        assert report.status == "success" and report.final_response == expected, report.errors
        seconds = best_of(lambda engine=engine: engine.run_query(QUERY), repeat, number)
        section.rows.append(Row(f"{label}: per query", seconds * 1e6, "us", legacy * 1e6,
                                "legacy pipeline",
                                f"+{(seconds - legacy) * 1e6:.0f} us per query"))
    section.notes.append("both variants build the UIF and call the same two skill bodies")
    return section
