"""Turning free text into a safe FTS5 query, and bm25 ranks into 0..1 scores.

Users type questions, not FTS5 syntax: ``what's "SAM"?`` or ``AND OR (`` must search, not
raise. So the query is cut into word tokens, each token is quoted (FTS5 then treats it as a
plain string, never as an operator), and the tokens are OR-ed so documents matching more of
them rank higher under bm25. Common English words are dropped unless nothing else is left,
so "When was X redesigned?" ranks by ``X`` and ``redesigned``, not by ``was``.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+", re.UNICODE)

STOPWORDS: frozenset[str] = frozenset(
    """a about above after again all am an and any are as at be been before being below
    between both but by can could did do does doing down during each few for from further
    had has have having he her here hers him his how i if in into is it its itself just me
    more most my no nor not now of off on once only or other our out over own same she
    should so some such than that the their them then there these they this those through
    to too under until up very was we were what when where which while who whom why will
    with would you your""".split()
)


def query_terms(text: str) -> list[str]:
    """Distinct lower-cased word tokens of ``text``; stopwords and one-letter tokens (the
    ``s`` of ``what's``) are dropped when other words remain."""
    tokens = list(dict.fromkeys(t.lower() for t in _TOKEN.findall(text)))
    content = [t for t in tokens if t not in STOPWORDS and len(t) > 1]
    return content or tokens


def fts5_match(text: str) -> str | None:
    """An FTS5 MATCH expression for ``text``, or None when it has no searchable word."""
    terms = query_terms(text)
    if not terms:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def bm25_to_score(rank: float, best_rank: float) -> float:
    """Map SQLite's bm25 (negative, lower is better) to a 0..1 score (higher is better).

    Half comes from the hit's strength relative to the best hit of the same search, half
    from its absolute strength ``s / (1 + s)`` with ``s = -rank``. Both halves grow with
    ``s``, so the score keeps bm25's order. The relative half matters in small stores:
    bm25 gives almost no weight to words found in over half the documents, which would
    otherwise make every score there round to zero.
    """
    strength = max(0.0, -rank)
    best = max(0.0, -best_rank)
    relative = strength / best if best > 0 else 0.0
    absolute = strength / (1.0 + strength)
    return round(min(1.0, 0.5 * relative + 0.5 * absolute), 4)
