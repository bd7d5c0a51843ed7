"""Plain-text plumbing: sentences, clauses, tokens and the stems subjects are compared by.

Everything here is deliberately crude and deterministic. Two statements are only compared
when their subjects reduce to the *same* set of stems, so the normalisation has one job:
make harmless variation (articles, auxiliaries, plurals, tense endings, possessives) vanish
while keeping every word that could name a different thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words that carry no subject identity: articles, auxiliaries, pronouns, prepositions,
# discourse markers and light verbs. Numbers, names and content words are never here.
STOPWORDS: frozenset[str] = frozenset(
    """
    a an the this that these those it its it's they them their there here we our us you your
    i me my he she his her him which who whom whose what
    is are was were be been being am has have had having do does did done doing
    shall should can could must get gets got gotten
    of in on at to for from with by as into onto upon via per within out
    and or nor so also then thus hence too very just only really actually currently now
    still already even yet again overall total totally exactly fully completely
    however moreover furthermore additionally meanwhile note notes notably indeed otherwise
    happen happens happened occur occurs occurred took take takes place
    all some any each every both either neither such own same other
    """.split()
)

#: Words that flip a clause's polarity ("n't" contractions are recognised by their ending).
NEGATIONS: frozenset[str] = frozenset({"not", "no", "never", "cannot", "nobody"})

#: Words that make a clause a guess, a condition or a question rather than a statement.
HEDGES: frozenset[str] = frozenset(
    {
        "might", "may", "could", "perhaps", "possibly", "probably", "maybe", "likely",
        "unlikely", "reportedly", "allegedly", "rumored", "rumoured", "if", "unless",
        "whether", "suppose", "assume", "assuming", "unclear", "unknown",
    }
)

_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "vs", "dr", "mr", "mrs", "ms", "st", "approx", "fig", "inc", "ltd"}
)

_PARAGRAPHS = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*\u2022]|\d+[.)])\s)")
_BULLET = re.compile(r"^\s*(?:[-*\u2022>#]+|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<![.!?])[.!?]+[\"')\]]*\s+")  # starts a run only: linear
_CLAUSE_BREAK = re.compile(
    r"\s*;\s*|:\s+(?=\S+\s+\S+\s+\S)"
    r"|,\s*(?:and|but|while|whereas|although|though|yet)\s+|\s+(?:but|whereas)\s+"
    r"|\s+and\s+(?=(?:is|are|was|were|has|have|had|now|also|still|then|later|does|did|can|will"
    r"|became|becomes)\b)",
    re.IGNORECASE,
)
#: A clause opening with one of these has no subject of its own ("It has 12 modules",
#: "... and now stores embeddings"): it cannot be matched safely, so it makes no claims.
SUBJECTLESS_OPENERS: frozenset[str] = frozenset(
    """it its they them their this that these those he she his her we our i you
    is are was were has have had now also still then later does did can will became becomes
    """.split()
)
#: Citation markers, one or a run of them: "[1]", "[2, 3]", "[4][5]", "[citation needed]".
#: A numbered one not right after a word or a bracket ("argv[0]" and "a[0][1]" are code);
#: "[citation needed]" anywhere (no code indexes with it: "15 modules[citation needed]").
_CITATION = re.compile(
    r"(?:(?<![\w\]])\s*(?:\[(?:\d{1,3}(?:[,\u2013-]\s*\d{1,3})*|citation needed)\])+"
    r"|\[citation needed\])+",
    re.IGNORECASE,
)
#: Code, markup and tables: calls, indexing, operators, doctest prompts, rst directives.
_CODE = re.compile(r">>>|\w[(\[]|[\[\]{}=|<>\\]|::|---|\*\*|^\s*:\w")
_LEAD_IN = re.compile(r"^(?:according to|per)\b[^,]{0,80},\s*", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
#: A token: a run of letters/digits that may hold inner dots, apostrophes, hyphens, etc.
_TOKEN = re.compile(r"[^\W_](?:[\w'\u2019.+#/-]*[\w+#])?|%|\$")


@dataclass(frozen=True)
class Token:
    """One word of a clause with its position, so values can be cut out of subjects."""

    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower().replace("\u2019", "'")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: paragraphs and bullets first, then ``. ! ?`` before a non-lowercase.

    Single newlines inside a paragraph are treated as spaces (hard-wrapped notes), and a
    stop after a common abbreviation ("e.g.", "vs.") does not end a sentence.
    """
    sentences: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = _WHITESPACE.sub(" ", _BULLET.sub("", paragraph)).strip()
        start = 0
        for match in _SENTENCE_END.finditer(paragraph):
            end = match.end()
            if end < len(paragraph) and paragraph[end].islower():
                continue
            words = paragraph[max(start, match.start() - 12) : match.start()].split()
            last = words[-1].lower().rstrip(".") if words else ""
            if last in _ABBREVIATIONS and match.group().startswith(".") and end < len(paragraph):
                continue
            sentences.append(paragraph[start:end].strip())
            start = end
        if start < len(paragraph):
            sentences.append(paragraph[start:].strip())
    return [s for s in sentences if s]


def split_clauses(sentence: str) -> list[str]:
    """Independent clauses of a sentence ("X is A; Y is B", "X is A, but Y is B").

    Citation markers ("[1]", "[2, 3]") are dropped first: they number sources, not facts.

    A colon splits only when a clause follows it ("Release notes: X was redesigned in
    2024"); a short "Default backend: SQLite" stays whole and reads as key and value.
    """
    clauses = []
    for clause in _CLAUSE_BREAK.split(strip_citations(sentence)):
        clause = _LEAD_IN.sub("", clause.strip()).strip().rstrip(".!,")
        if clause:
            clauses.append(clause)
    return clauses


def strip_citations(sentence: str) -> str:
    """Drop citation markers ("[1]", "[2, 3]", "[4][5]", "[citation needed]"): they number
    sources, they state nothing."""
    return _CITATION.sub("", sentence)


def looks_like_code(clause: str) -> bool:
    """Code, markup or a table row rather than prose: such clauses make no claims."""
    return _CODE.search(clause) is not None


def tokenize(clause: str) -> list[Token]:
    """Word tokens of a clause with their character spans."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(clause)]


def is_negation(word: str) -> bool:
    """True for "not", "never", "no", "cannot" and "n't" contractions (lower-cased input)."""
    return word in NEGATIONS or word.endswith("n't")


def stem(word: str) -> str:
    """A crude, consistent stem: lower case, no possessive, no plural/-ed/-ing ending.

    It only has to map "supports"/"support", "modules"/"module", "redesigned"/"redesign" to
    one form; being consistent matters more than being linguistically right.
    """
    word = word.lower().replace("\u2019", "'")
    if word.endswith("'s"):
        word = word[:-2]
    word = word.strip("'.-/")
    if not word.isalpha():
        return word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    return word


def normalise_space(text: str) -> str:
    """Collapse runs of whitespace, for sentences quoted in conflict records."""
    return _WHITESPACE.sub(" ", text).strip()
