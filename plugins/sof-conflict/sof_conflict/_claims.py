"""Claims: what one clause asserts, as (kind, subject key, value).

A clause yields at most these claims:

* ``date`` - one per date or year in it ("redesigned in 2023", "on March 3, 2024"), unless
  the clause also holds a plain number (then the date only scopes that number);
* ``number`` - one per number ("has 12 modules", "40%", "1,000 users", "-5 degrees");
* ``value`` - a named value after a copula ("the default backend is SQLite");
* ``negation`` - the clause's polarity ("X does not support streaming").

The *key* of a claim is the sorted set of stems of every other word in the clause, with the
other values kept as literal context, so "In 2023 SAM had 12 modules" and "In 2024 SAM had
15 modules" never meet. Such a loose key needs two stems (three for negation): one word
("deadline") says too little about what two sentences are about. A clause whose loose key is
shorter makes an *exact* claim instead, keyed by its whole wording in order (the value cut
out, or the negation taken out), so only a sentence worded the same meets it: "The deadline
is March 3" meets "The deadline is March 5" but not "The launch is March 5".

Only definite statements can contradict each other, so questions, hedged clauses ("may",
"if", "reportedly"), code, tables and pronoun-led clauses make no claims; negated clauses
claim only their polarity; approximate values ("about 12", "before 2024") and numbers that
belong to names ("Python 3.11") are context, never claims.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from sof_conflict._text import (
    HEDGES,
    STOPWORDS,
    SUBJECTLESS_OPENERS,
    Token,
    is_negation,
    looks_like_code,
    normalise_space,
    split_clauses,
    stem,
    strip_citations,
    tokenize,
)

Kind = Literal["date", "number", "value", "negation"]
#: Longer clauses are tables, logs or run-ons, not statements another passage could repeat;
#: skipping them also bounds the work per clause, so detection stays linear in the text.
MAX_CLAUSE_CHARS = 500
MAX_CLAUSE_WORDS = 80
#: A clause with more dates and numbers than this is a table row or a list, not a statement.
MAX_VALUES = 4
#: Order in which kinds are reported for the same place in the text.
KIND_RANK: dict[str, int] = {"date": 0, "number": 1, "value": 2, "negation": 3}

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November"
    r"|December|Sept|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec)(?![a-z])\.?"
)
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(1[89]\d\d|2[01]\d\d)"
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<![\w\-\u2013/.])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w\-\u2013/]|\.\d)"), "ymd"),
    (re.compile(rf"\b({_MONTH})\s+(\d{{1,2}}){_ORD},?\s+{_YEAR}\b"), "mdy"),
    (re.compile(rf"\b(\d{{1,2}}){_ORD}\s+({_MONTH}),?\s+{_YEAR}\b"), "dmy"),
    (re.compile(rf"\b({_MONTH}),?\s+{_YEAR}\b"), "my"),
    (re.compile(rf"\b({_MONTH})\s+(\d{{1,2}}){_ORD}(?![\w,]|\s*\d)"), "md"),
    (re.compile(rf"(?<![\w\-\u2013/.$#]){_YEAR}(?![\w\-\u2013/%]|[.,]\d)"), "y"),
)
#: A minus sign ("-" or U+2212) directly before the digits makes the number negative
#: ("-5 degrees", "-3%"); a hyphen inside a word ("GPT-4") or a range ("5-7") never does.
_NUMBER = re.compile(
    r"(?<![\w\-\u2013\u2212/.#])([-\u2212](?=\d))?"
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(%|(?:ms|sec|s|h|kb|mb|gb|tb|k|m|x)\b)?(?![\w\-\u2013\u2212/+]|[.,]\d)",
    re.IGNORECASE,
)
#: A dash between two numbers ("5 - 7", "5 -7") joins a range; it is not a minus sign.
_RANGE_DASH_BEFORE = re.compile(r"\d[\w%]*\s*[-\u2013\u2212]\s*$")
_RANGE_DASH_AFTER = re.compile(r"\s*[-\u2013\u2212]\s*[-\u2212]?\d")
_UNIT_WORDS = {"%": "percent", "s": "second", "sec": "second", "ms": "millisecond", "h": "hour"}

#: A year or date right after these is relative ("before 2024"), not a statement of when.
_RELATIVE_DATE = frozenset(
    "before after by since until till from to between circa around about approximately "
    "early late mid through than prior or and".split()
)
#: A number right after these is approximate or a bound ("about 12", "over 1,000").
_APPROXIMATE = frozenset(
    "about around approximately approx roughly nearly almost over under than least most "
    "between up some circa estimated ~ < > <= >= \u2248 upwards".split()
)
_RANGE_JOINERS = frozenset({"to", "and", "or", "through"})
_APPROX_AFTER = re.compile(r"^\s*(?:\+|or (?:more|fewer|less|so|above|below)\b|plus\b|-ish\b)")

_COPULAS = frozenset({"is", "are", "was", "were", "remains", "remain", "becomes", "become"})
_COPULA_PAIRS = frozenset({("has", "been"), ("have", "been"), ("had", "been"),
                           ("will", "be"), ("defaults", "to"), ("default", "to")})
_ADVERBS = frozenset(
    "now still currently also always actually officially usually typically normally today "
    "again already".split()
)
#: Participle phrases that belong to the subject: "is written in Python" -> subject "written".
_LEADS: tuple[tuple[str, ...], ...] = (
    ("set", "to"), ("written", "in"), ("implemented", "in"), ("stored", "in"),
    ("built", "on"), ("built", "with"), ("based", "on"), ("known", "as"), ("called",),
    ("named",), ("powered", "by"), ("hosted", "on"), ("located", "in"), ("licensed", "under"),
    ("released", "under"), ("configured", "as"), ("configured", "to"), ("changed", "to"),
    ("switched", "to"), ("headquartered", "in"), ("maintained", "by"), ("developed", "by"),
    ("created", "by"),
)
_TRAILERS: tuple[tuple[str, ...], ...] = (("by", "default"), ("today",), ("now",), ("currently",))
#: Single lower-case words accepted as named values ("streaming is enabled").
STATE_WORDS = frozenset(
    "enabled disabled on off true false required optional mandatory deprecated experimental "
    "stable synchronous asynchronous sync async public private open closed free paid "
    "active inactive".split()
)
_QUOTES = "`'\"\u2018\u2019\u201c\u201d"
#: One-word subjects too generic to compare on their own ("The default is False").
GENERIC_SUBJECTS = frozenset(
    "default value result output input answer return type name option setting parameter "
    "argument example one thing".split()
)
_GENERIC_STEMS = frozenset(stem(word) for word in GENERIC_SUBJECTS)  # "setting" -> "sett"
#: A loose key with fewer stems than this says too little; such clauses make exact claims.
MIN_LOOSE_KEY = {"date": 2, "number": 2, "negation": 3}
#: An exact key needs at least this many words (the value's "…" counts as one), so a
#: fragment ("Not bad", "Takes 30s") never matches another.
MIN_EXACT_WORDS = 3
#: The value's place in an exact key and in a claim's subject ("The deadline is …").
GAP = "\u2026"
#: Negated contractions whose base is not the word minus "n't".
_CONTRACTED = {"can't": "can", "cannot": "can", "won't": "will", "shan't": "shall"}
#: The "do" of "does not support" is only there to carry the negation.
_DO_SUPPORT = frozenset({"do", "does", "did"})
#: "has a GPU" / "has no GPU" / "does not have a GPU" should read alike once polarity is out.
_POLARITY_FREE = {"a": "", "an": "", "has": "have", "had": "have"}


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a clause.

    ``key`` is the sorted tuple of subject stems claims are grouped by; ``value`` is the
    normalised value compared with ``values_compatible``; ``shown`` is the value as written;
    ``subject`` is the clause with the value replaced by "…" (the clause itself for negation).
    An ``exact`` claim (a subject too short for a loose key) is keyed instead by the clause's
    stems in order, with "…" for the value, and meets only claims worded the same.
    """

    kind: Kind
    key: tuple[str, ...]
    value: Hashable
    shown: str
    subject: str
    clause: str
    exact: bool = False


@dataclass(frozen=True)
class _Span:
    kind: Literal["date", "number"]
    start: int
    end: int
    value: Hashable
    context: str
    unit: str | None
    claimable: bool


def values_compatible(kind: str, left: Hashable, right: Hashable) -> bool:
    """Whether two values of one kind can both be true of the same subject.

    Dates are compatible when every part both state agrees ("2023" and "March 2023");
    named values when one's words contain the other's ("SQLite" and "SQLite WAL").
    """
    if kind == "date":
        assert isinstance(left, tuple) and isinstance(right, tuple)
        return all(a is None or b is None or a == b for a, b in zip(left, right, strict=True))
    if kind == "value":
        assert isinstance(left, tuple) and isinstance(right, tuple)
        small, big = sorted((set(left), set(right)), key=len)
        return small <= big
    return left == right


def extract_claims(sentence: str) -> list[Claim]:
    """Every claim of every clause of ``sentence``; ``[]`` for questions and guesses."""
    sentence = strip_citations(sentence)
    if sentence.rstrip().endswith("?") or looks_like_code(sentence):
        return []
    claims: list[Claim] = []
    for clause in split_clauses(sentence):
        claims.extend(_clause_claims(clause))
    return claims


def _clause_claims(clause: str) -> list[Claim]:
    if len(clause) > MAX_CLAUSE_CHARS:
        return []
    tokens = tokenize(clause)
    lows = [t.lower for t in tokens]
    if not lows or len(lows) > MAX_CLAUSE_WORDS or lows[0] in SUBJECTLESS_OPENERS:
        return []
    spans = _value_spans(clause)
    words = sum(1 for t in tokens if t.text[0].isalpha())
    if len(spans) > MAX_VALUES or words <= len(spans):
        return []  # a table row or a list of numbers, not a statement
    in_dates = [any(s.start <= t.start < s.end for s in spans) for t in tokens]  # "May 2023"
    if any(word in HEDGES and not dated for word, dated in zip(lows, in_dates, strict=True)):
        return []
    negated = _is_negated(lows)
    claims: list[Claim] = []
    polarity = _polarity_claim(clause, tokens, spans, negated)
    if polarity is not None:
        claims.append(polarity)
    if negated:
        return claims
    has_number = any(s.kind == "number" for s in spans)
    for span in spans:
        if not span.claimable or (span.kind == "date" and has_number):
            continue
        key = _key(tokens, spans, skip=span)
        exact = len(key) < MIN_LOOSE_KEY[span.kind]
        if exact:
            if _too_vague(list(key)) or not _reads_as_prose(clause):
                continue
            key = _value_template(tokens, span)
            if len(key) < MIN_EXACT_WORDS:
                continue
        subject = normalise_space(f"{clause[: span.start]}{GAP}{clause[span.end :]}")
        shown = clause[span.start : span.end].strip()
        claims.append(Claim(span.kind, key, span.value, shown, subject, clause, exact))
    value_claim = _named_value(clause, tokens, spans)
    if value_claim is not None:
        claims.append(value_claim)
    return claims


def _polarity_claim(
    clause: str, tokens: list[Token], spans: list[_Span], negated: bool
) -> Claim | None:
    """The clause's polarity, keyed loosely when it has three subject stems, else exactly.

    The exact key is the clause without its negation, so "The server is running" meets
    only "The server is not running" (or "isn't", "never", ...), never "The client is not
    running". A clause led by a generic word ("The result is not cached") stays out: two
    documents rarely mean the same result.
    """
    key = _key(tokens, spans, skip=None)
    if len(key) >= MIN_LOOSE_KEY["negation"]:
        return Claim("negation", key, not negated, clause, clause, clause)
    if not _reads_as_prose(clause):
        return None
    template = _polarity_template(tokens)
    content = [word for word in template if word not in STOPWORDS]
    if len(template) < MIN_EXACT_WORDS or _too_vague(content[:1]):
        return None
    return Claim("negation", template, not negated, clause, clause, clause, exact=True)


def _reads_as_prose(clause: str) -> bool:
    """Whether the clause opens with a word; only such clauses make exact claims.

    A row such as ``("C", "A", 13)`` has a one-letter "subject" and repeats its wording with
    other numbers on every line, so matching it by wording would flag every table.
    """
    return clause[:1].isalpha()


def _too_vague(subject: list[str]) -> bool:
    """No subject stem at all, or one generic word ("The default is 5" in two docstrings)."""
    return not subject or (len(subject) == 1 and subject[0] in _GENERIC_STEMS)


def _value_template(tokens: list[Token], span: _Span) -> tuple[str, ...]:
    """The clause's stems in order with the value as "…": "the deadline is …".

    Stems (not raw words) so case and punctuation do not matter; the order and every
    article, verb and preposition stay, so "is" and "was" or "on" and "before" differ.
    """
    words: list[str] = []
    for token in tokens:
        if span.start < token.end and token.start < span.end:
            if words[-1:] != [GAP]:
                words.append(GAP)
        else:
            words.append(stem(token.lower))
    return tuple(words)


def _polarity_template(tokens: list[Token]) -> tuple[str, ...]:
    """The clause's stems in order with every negation taken out.

    "is not"/"isn't" read as "is", "cannot"/"can't" as "can", "does not support" as
    "support", "no longer"/"never" vanish, and "a"/"no" before a noun both vanish, so a
    statement and its negation give the same words.
    """
    lows = [t.lower for t in tokens]
    words: list[str] = []
    for i, low in enumerate(lows):
        following = lows[i + 1] if i + 1 < len(lows) else ""
        if low in _DO_SUPPORT and is_negation(following):
            continue  # "does not support" -> "support"
        if low == "longer" and i > 0 and lows[i - 1] == "no":
            continue
        if is_negation(low):
            base = _CONTRACTED.get(low, low[:-3] if low.endswith("n't") else "")
            if base and base not in _DO_SUPPORT:
                words.append(stem(base))
            continue
        word = stem(_POLARITY_FREE.get(low, low))
        if word:
            words.append(word)
    return tuple(words)


#: "not only fast", "not just fast", "not merely fast", "not simply fast": emphasis that
#: adds to the statement ("... but also small"), not its negation.
_NOT_ONLY = frozenset({"only", "just", "merely", "simply"})


def _negates(lows: list[str], i: int) -> bool:
    """Whether ``lows[i]`` negates its clause ("not", "never", "isn't"; not "not just")."""
    word = lows[i]
    if not is_negation(word):
        return False
    return not (word == "not" and i + 1 < len(lows) and lows[i + 1] in _NOT_ONLY)


def _is_negated(lows: list[str]) -> bool:
    """Polarity of a clause; "not only"/"not just"/"not merely" are emphasis, not negation."""
    return sum(1 for i in range(len(lows)) if _negates(lows, i)) % 2 == 1


def _content_stems(tokens: Iterable[Token]) -> list[str]:
    stems = []
    for token in tokens:
        low = token.lower
        if low in STOPWORDS or is_negation(low) or low == "longer":
            continue
        stemmed = stem(low)
        if stemmed and stemmed not in STOPWORDS:
            stems.append(stemmed)
    return stems


def _key(tokens: list[Token], spans: list[_Span], skip: _Span | None) -> tuple[str, ...]:
    """Subject stems: words outside every value span, plus the other values as context."""
    outside = [t for t in tokens if not any(s.start < t.end and t.start < s.end for s in spans)]
    units = _content_stems(outside)
    for span in spans:
        if span is not skip:
            units.append(span.context)
        if span.unit:
            units.append(span.unit)
    return tuple(sorted(set(units)))


# --- values ------------------------------------------------------------------------------


def _value_spans(clause: str) -> list[_Span]:
    spans: list[_Span] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s.start or start >= s.end for s in spans)

    for pattern, layout in _DATE_PATTERNS:
        for match in pattern.finditer(clause):
            if not free(match.start(), match.end()):
                continue
            date = _date_value(match.groups(), layout)
            if date is None:
                continue
            if layout == "y" and _reads_as_count(clause, match.start(), match.end()):
                continue
            claimable = _before_word(clause, match.start()) not in _RELATIVE_DATE
            claimable = claimable and not _APPROX_AFTER.match(clause[match.end() :])
            context = "-".join("?" if part is None else f"{part:02d}" for part in date)
            spans.append(
                _Span("date", match.start(), match.end(), date, context, None, claimable)
            )
    for match in _NUMBER.finditer(clause):
        start = match.start()
        negative = match.group(1) is not None
        if negative and _RANGE_DASH_BEFORE.search(clause[: match.end(1)]):
            negative, start = False, match.start(2)  # "5 - 7": a range, not minus seven
        if not free(start, match.end()):
            continue
        try:
            number = Decimal(match.group(2).replace(",", "")).normalize()
        except InvalidOperation:  # pragma: no cover - the regex only admits digits
            continue
        if negative and number:
            number = -number  # "-0" is 0
        text = format(number, "f")
        raw_unit = (match.group(3) or "").lower()
        unit = _UNIT_WORDS.get(raw_unit, raw_unit) or None
        spans.append(
            _Span(
                "number", start, match.end(), text, text + (raw_unit or ""), unit,
                _number_is_exact(clause, start, match.end()),
            )
        )
    spans.sort(key=lambda s: s.start)
    return spans


def _date_value(groups: tuple[str | None, ...], layout: str) -> tuple[int | None, ...] | None:
    """``(year, month, day)`` with ``None`` for parts not stated; ``None`` if impossible."""
    def month(name: str | None) -> int:
        return _MONTHS[(name or "").rstrip(".").lower()]

    year: int | None
    if layout == "ymd":
        year, mon, day = int(groups[0] or 0), int(groups[1] or 0), int(groups[2] or 0)
    elif layout == "mdy":
        year, mon, day = int(groups[2] or 0), month(groups[0]), int(groups[1] or 0)
    elif layout == "dmy":
        year, mon, day = int(groups[2] or 0), month(groups[1]), int(groups[0] or 0)
    elif layout == "my":
        return (int(groups[1] or 0), month(groups[0]), None)
    elif layout == "md":
        year, mon, day = None, month(groups[0]), int(groups[1] or 0)
    else:
        return (int(groups[0] or 0), None, None)
    if not (1 <= mon <= 12 and 1 <= day <= 31):
        return None
    return (year, mon, day)


def _before_word(clause: str, start: int) -> str:
    match = re.search(r"([^\s\d]+)\s*$", clause[max(0, start - 40) : start])
    return match.group(1).lower().strip(",.;:(\"'") if match else ""


def _reads_as_count(clause: str, start: int, end: int) -> bool:
    """A bare 1800-2199 is a count, not a year, before a plural noun ("stores 2000 documents")."""
    after = re.match(r"\s+([a-z]+)", clause[end:])
    if after is None:
        return False
    word = after.group(1)
    before = _before_word(clause, start)
    return (
        len(word) > 3 and word.endswith("s") and not word.endswith("ss")
        and before not in {"in", "of", "on", "since", "during"}
        and before.rstrip(".") not in _MONTHS
    )


def _number_is_exact(clause: str, start: int, end: int) -> bool:
    """False for approximations, range ends and names ("about 12", "10 to 12", "PEP 484")."""
    before = _before_word(clause, start)
    if re.search(r"[A-Z][\w.-]*\s+$", clause[max(0, start - 40) : start]):
        return False  # "Python 3.11", "SAM 2.0", "Volume 486": part of a name, not a count
    if before in _APPROXIMATE or clause[:start].rstrip().endswith(("~", "<", ">", "\u2248")):
        return False
    if before in _RANGE_JOINERS and re.search(
        rf"\d\S*\s+{re.escape(before)}\s*$", clause[:start], re.IGNORECASE
    ):
        return False
    if _RANGE_DASH_BEFORE.search(clause[:start]):
        return False  # the end of "5 - 7"
    after = clause[end:]
    if re.match(rf"\s*(?:{'|'.join(sorted(_RANGE_JOINERS))})\s+[-\u2212]?\d", after):
        return False
    if _RANGE_DASH_AFTER.match(after):
        return False  # the start of "5 - 7"
    return not _APPROX_AFTER.match(after)


def _named_value(clause: str, tokens: list[Token], spans: list[_Span]) -> Claim | None:
    """A "SUBJECT is VALUE" claim where VALUE is a name, code or state word ending the clause."""
    lows = [t.lower for t in tokens]
    copula = _find_copula(lows)
    if copula is None:
        return _colon_value(clause, tokens, spans)
    at, width = copula
    rest = list(range(at + width, len(tokens)))
    while rest and lows[rest[0]] in _ADVERBS:
        rest.pop(0)
    lead: list[int] = []
    for phrase in _LEADS:
        if tuple(lows[i] for i in rest[: len(phrase)]) == phrase:
            lead, rest = rest[: len(phrase)], rest[len(phrase) :]
            break
    tail = tokens[rest[-1]].end if rest else len(clause)
    for trailer in _TRAILERS:
        if len(rest) > len(trailer) and tuple(lows[i] for i in rest[-len(trailer) :]) == trailer:
            rest = rest[: -len(trailer)]
            break
    subject_tokens = tokens[:at] + [tokens[i] for i in lead]
    return _value_claim(clause, subject_tokens, [tokens[i] for i in rest], spans, tail)


def _find_copula(lows: list[str]) -> tuple[int, int] | None:
    for i, word in enumerate(lows):
        if i + 1 < len(lows) and (word, lows[i + 1]) in _COPULA_PAIRS:
            return i, 2
        if word in _COPULAS:
            return i, 1
    return None


def _colon_value(clause: str, tokens: list[Token], spans: list[_Span]) -> Claim | None:
    """Key-value lines from tools: "Default backend: SQLite"."""
    colon = clause.find(": ")
    if colon <= 0 or clause[colon - 1].isspace():
        return None
    left = [t for t in tokens if t.end <= colon]
    if len(set(_content_stems(left))) < 2:
        return None  # "shape: 'SQUARE'" is too vague to compare
    right = [t for t in tokens if t.start > colon]
    return _value_claim(clause, left, right, spans)


def _value_claim(
    clause: str,
    subject_tokens: list[Token],
    value_tokens: list[Token],
    spans: list[_Span],
    tail: int | None = None,
) -> Claim | None:
    """Build the claim; ``tail`` is where allowed trailers ("by default") end."""
    if not 1 <= len(value_tokens) <= 3:
        return None
    start, end = value_tokens[0].start, value_tokens[-1].end
    if clause[max(end, tail or 0) :].strip(" \t" + _QUOTES + ")]"):
        return None  # something other than the value follows: not a "X is VALUE" clause
    if any(s.start < end and start < s.end for s in spans):
        return None  # numbers and dates are compared as such
    single_state = len(value_tokens) == 1 and value_tokens[0].lower in STATE_WORDS
    if not single_state and not all(_is_named(clause, t) for t in value_tokens):
        return None
    key = tuple(sorted(set(_content_stems(subject_tokens))))
    if _too_vague(list(key)):
        return None
    value = tuple(stem(t.lower) for t in value_tokens)
    shown = clause[start:end]
    subject = normalise_space(f"{clause[:start]}\u2026{clause[end:]}")
    return Claim("value", key, value, shown, subject, clause)


def _is_named(clause: str, token: Token) -> bool:
    """Proper nouns ("SQLite"), code ("sof_core.config") or quoted words ("`sqlite`")."""
    text = token.text
    if is_negation(text.lower()) or text.lower() in STOPWORDS:
        return False
    if text[0].isupper() or "_" in text or re.search(r"[a-z]\.[a-z]", text, re.IGNORECASE):
        return True
    quoted_before = token.start > 0 and clause[token.start - 1] in _QUOTES
    quoted_after = token.end < len(clause) and clause[token.end] in _QUOTES
    return quoted_before and quoted_after
