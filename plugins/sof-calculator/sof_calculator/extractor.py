"""Find the arithmetic in a query and rewrite it in the evaluator's syntax.

"What is 15% of 240?" becomes ``percent(15) * 240``; "square root of 144 plus 3" becomes
``sqrt(144) + 3``. The query is split into tokens by one regular expression (no nested
quantifiers, so its time is linear in the query's length), words are looked up in fixed
tables, and a small recursive-descent reader turns each run of arithmetic tokens into a
candidate; the candidate with the most tokens that does at least one operation wins. A
lone number ("in 1999") or a negative number ("covid-19") is not a calculation, and a number
it cannot read ("1,5", "1.5.5", "1 0000") is refused rather than cut into another one
(``CalculationSyntaxError``). A query
that is a request in words ("add 3 and 4", "what is the sum of 3, 4 and 5?") is read
first, by ``_phrase``: only with plain numbers as operands, and only as the whole query.

The output is only ever text for ``evaluator.evaluate``, which checks it again from
scratch: the extractor is a convenience, not a guard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sof_calculator.errors import CalculationLimitError, CalculationSyntaxError
from sof_calculator.evaluator import CONSTANTS, FUNCTIONS, MAX_NESTING

#: Longest query read (characters).
MAX_QUERY_CHARS = 10_000

# Symbols: ASCII operators, then x-times, middle dot, dot operator, division sign, minus
# sign, square root, pi, superscript 2 and 3, and currency signs (skipped).
_SYMBOL_CLASS = (
    r"[-+*/%^()!,\u00d7\u00b7\u22c5\u00f7\u2212\u221a\u03c0\u00b2\u00b3$\u20ac\u00a3\u00a5]"
)
#: A whole number: thousands in groups of three after single spaces ("1 000 000", also
#: with thin or no-break spaces), or digits with single underscores ("1_000") and commas
#: ("1,234"; groups that are not thousands are split by ``_numbers``).
#: (Not after "digit space": else "1 000 ... 000 0000" would be tried again from each
#: group, quadratic time.)
_WHOLE = r"(?:(?<!\d )\d{1,3}(?: \d{3})+(?!\d|[ ,_]\d)|\d+(?:_\d+)*(?:,\d+)*)"
_DECIMALS = r"\.\d+(?:_\d+)*"
_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<date>\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4})"
    # Python's hexadecimal, octal and binary literals ("0x10"), read as the evaluator
    # reads them; "0x1g" or "0b12" is not a number (never "0 x 1" or "0 b 12").
    r"|(?P<radix>(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+)"
    r"(?![0-9A-Za-z_]))"
    r"|(?P<badradix>0[xXoObB][0-9A-Za-z_]*)"
    r"|(?P<num>(?:" + _WHOLE + r"(?:" + _DECIMALS + r")?|" + _DECIMALS + r")"
    r"(?:[eE][+-]?\d+)?)"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<sym>\*\*|//|" + _SYMBOL_CLASS + ")"
    r"|(?P<other>.)",
    re.DOTALL | re.ASCII,
)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.[\d_]+)?(?:[eE][+-]?\d+)?", re.ASCII)
_SPACES = str.maketrans({"\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2007": " "})

# Token kinds.
NUM, CONST, FUNC, OP, PCT, OF, POST, LP, RP, COMMA, NEG, BREAK = (
    "num", "const", "func", "op", "pct", "of", "post", "lp", "rp", "comma", "neg", "break"
)

_SYMBOLS: dict[str, tuple[str, str]] = {
    "**": (OP, "**"), "^": (OP, "**"), "//": (OP, "//"),
    "+": (OP, "+"), "-": (OP, "-"), "\u2212": (OP, "-"),
    "*": (OP, "*"), "\u00d7": (OP, "*"), "\u00b7": (OP, "*"), "\u22c5": (OP, "*"),
    "/": (OP, "/"), "\u00f7": (OP, "/"),
    "%": (PCT, "%"), "(": (LP, "("), ")": (RP, ")"), ",": (COMMA, ","),
    "!": (POST, "!"), "\u00b2": (POST, "**2"), "\u00b3": (POST, "**3"),
    "\u221a": (FUNC, "sqrt"), "\u03c0": (CONST, "pi"),
}
_CURRENCY = frozenset("$\u20ac\u00a3\u00a5")

#: Word phrases, longest first where they share a start.
#: "to the power of" and the like: ``**``, and a fraction written right after it is the
#: exponent ("8 to the power of 1/3" is ``8 ** (1/3)``, not ``8 ** 1 / 3``).
WORD_POWER = "**w"

_PHRASES: dict[tuple[str, ...], tuple[str, str]] = {
    ("raised", "to", "the", "power", "of"): (OP, WORD_POWER),
    ("raised", "to", "the", "power"): (OP, WORD_POWER),
    ("to", "the", "power", "of"): (OP, WORD_POWER),
    ("to", "the", "power"): (OP, WORD_POWER),
    ("raised", "to"): (OP, WORD_POWER),
    ("multiplied", "by"): (OP, "*"),
    ("divided", "by"): (OP, "/"),
    ("square", "root", "of"): (FUNC, "sqrt"),
    ("square", "root"): (FUNC, "sqrt"),
    ("cube", "root", "of"): (FUNC, "cbrt"),
    ("cube", "root"): (FUNC, "cbrt"),
    ("natural", "logarithm", "of"): (FUNC, "ln"),
    ("natural", "logarithm"): (FUNC, "ln"),
    ("natural", "log", "of"): (FUNC, "ln"),
    ("natural", "log"): (FUNC, "ln"),
    ("absolute", "value", "of"): (FUNC, "abs"),
    ("absolute", "value"): (FUNC, "abs"),
    ("per", "cent"): (PCT, "%"),
    ("percent",): (PCT, "%"),
    ("plus",): (OP, "+"),
    ("minus",): (OP, "-"),
    ("times",): (OP, "*"),
    ("x",): (OP, "*"),
    ("over",): (OP, "/"),
    ("mod",): (OP, "%"),
    ("modulo",): (OP, "%"),
    ("squared",): (POST, "**2"),
    ("cubed",): (POST, "**3"),
    ("negative",): (NEG, "-"),
    ("of",): (OF, "of"),
    ("sine",): (FUNC, "sin"),
    ("cosine",): (FUNC, "cos"),
    ("tangent",): (FUNC, "tan"),
    ("logarithm",): (FUNC, "log"),
    **{(name,): (FUNC, name) for name in FUNCTIONS if name != "percent"},
    **{(name,): (CONST, name) for name in CONSTANTS},
}
_LONGEST_PHRASE = max(len(words) for words in _PHRASES)
_PHRASE_FIRST = frozenset(words[0] for words in _PHRASES)
_OPERAND_START = frozenset({NUM, CONST, FUNC, LP, NEG})


@dataclass(frozen=True)
class Token:
    kind: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class Extraction:
    """An arithmetic expression found in a query."""

    #: The part of the query it was read from, as written ("15% of 240").
    text: str
    #: The same in the evaluator's syntax ("percent(15) * 240").
    expression: str


def tokenize(text: str) -> list[Token]:
    """Classified tokens of ``text``; spaces and currency signs are dropped, anything that
    is not arithmetic becomes a ``break`` token."""
    if len(text) > MAX_QUERY_CHARS:
        raise CalculationLimitError(
            f"the text is {len(text):,} characters long; the calculator reads at most "
            f"{MAX_QUERY_CHARS:,}"
        )
    text = text.translate(_SPACES)
    raw = [(m.lastgroup or "other", m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    tokens: list[Token] = []
    calls: list[bool] = []  # open parentheses: True where they hold a function's arguments
    i = 0
    while i < len(raw):
        group, value, start, end = raw[i]
        i += 1
        if group == "space" or (group == "sym" and value in _CURRENCY):
            continue
        previous = tokens[-1] if tokens else None
        if group == "num":
            tokens.extend(_numbers(value, start, bool(calls and calls[-1])))
        elif group == "radix":
            tokens.append(Token(NUM, value.lower(), start, end))
        elif group == "word":
            kind, name, i, end = _word(raw, i - 1)
            # "log10" and "log2" arrive as a word and a number.
            if name == "log" and i < len(raw) and raw[i][2] == end \
                    and raw[i][1] in ("10", "2"):
                name, end = "log" + raw[i][1], raw[i][3]
                i += 1
                if i + 1 < len(raw) and raw[i][0] == "space" \
                        and raw[i + 1][1].lower() == "of":  # "log2 of 8"
                    end, i = raw[i + 1][3], i + 2
            tokens.append(Token(kind, name, start, end))
        elif group == "sym":
            kind, name = _SYMBOLS[value]
            adjacent = previous is not None and previous.end == start
            if kind == OP and name == "-" and adjacent and previous is not None \
                    and previous.kind == BREAK and text[start - 1].isalpha():
                kind = BREAK  # a hyphen: "covid-19", "gpt-4"
            elif kind == POST and name == "!" and not adjacent:
                kind = BREAK  # "!" ends a sentence unless it follows a number directly
            elif kind == LP:
                calls.append(previous is not None and previous.kind in (FUNC, PCT))
            elif kind == RP and calls:
                calls.pop()
            elif kind == COMMA and not (calls and calls[-1]):
                kind = BREAK  # a comma in prose, not between a function's arguments
            tokens.append(Token(kind, name, start, end))
        else:
            tokens.append(Token(BREAK, value, start, end))
    return tokens


def _numbers(value: str, start: int, in_call: bool) -> list[Token]:
    """A number token; "1,234" is one number, except between a function's parentheses
    ("max(1,234)") or where the groups are not thousands ("1,2,3")."""
    if "," not in value or (not in_call and _THOUSANDS.fullmatch(value)):
        return [Token(NUM, _numeral(value.replace(",", "")), start, start + len(value))]
    tokens: list[Token] = []
    offset = start
    for index, part in enumerate(value.split(",")):
        if index:
            tokens.append(Token(COMMA if in_call else BREAK, ",", offset, offset + 1))
            offset += 1
        tokens.append(Token(NUM, _numeral(part), offset, offset + len(part)))
        offset += len(part)
    return tokens


def _numeral(text: str) -> str:
    """The number as Python reads it: no leading zeros ("007" is a syntax error there), no
    group separators ("1 000", "1_000")."""
    text = text.replace(" ", "").replace("_", "")
    mantissa, sep, exponent = text.partition("e") if "e" in text else text.partition("E")
    whole, dot, decimals = mantissa.partition(".")
    whole = whole.lstrip("0") or "0"
    return whole + dot + decimals + ("e" + exponent if sep else "")


def _word(raw: list[tuple[str, str, int, int]], i: int) -> tuple[str, str, int, int]:
    """The phrase starting at raw token ``i``: (kind, value, next index, end offset)."""
    words: list[tuple[str, int, int]] = []  # (word, raw index after it, end offset)
    first = raw[i][1].lower()
    if first not in _PHRASE_FIRST:  # most words of prose: no phrase to look for
        return BREAK, first, i + 1, raw[i][3]
    j = i
    while j < len(raw) and len(words) < _LONGEST_PHRASE:
        group, value, _start, end = raw[j]
        if group != "word":
            break
        words.append((value.lower(), j + 1, end))
        if j + 2 < len(raw) and raw[j + 1][0] == "space" and raw[j + 2][0] == "word":
            j += 2
        else:
            break
    for size in range(len(words), 0, -1):
        found = _PHRASES.get(tuple(w for w, _, _ in words[:size]))
        if found is None:
            continue
        kind, name = found
        after, end = words[size - 1][1], words[size - 1][2]
        if kind == FUNC and size < len(words) and words[size][0] == "of":
            after, end = words[size][1], words[size][2]  # "log of 100", "factorial of 5"
        return kind, name, after, end
    return BREAK, words[0][0], words[0][1], words[0][2]


# --- reading candidates ----------------------------------------------------------------


@dataclass
class _Operand:
    text: str
    end: int  # index of the next token
    operations: int
    percent: bool = False  # ends with "15%": "of" may follow
    closes: bool = False  # ends with a number, constant, ")" or postfix: implicit * may follow


class _Reader:
    """Recursive descent over one run of tokens; each failure is remembered, so a hostile
    run costs linear time."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.failed: set[int] = set()
        self.depth = 0

    def kind(self, i: int) -> str | None:
        return self.tokens[i].kind if i < len(self.tokens) else None

    def expression(self, i: int) -> tuple[str, int, int] | None:
        """operand (operator operand)*: (text, next index, operations) or None."""
        first = self.operand(i)
        if first is None:
            return None
        parts, i, operations, last = [first.text], first.end, first.operations, first
        while i < len(self.tokens):
            token = self.tokens[i]
            operator: str | None = None
            right_at = i + 1
            if token.kind == OP or (token.kind == PCT and not last.percent):
                operator = token.value
            elif token.kind == OF and last.percent:
                operator = "*"
            elif last.closes and token.kind in (CONST, FUNC, LP):
                operator, right_at = "*", i  # implicit: "2pi", "2(3 + 4)", "3 sqrt 4"
            if operator is None:
                break
            right = None
            if operator == WORD_POWER:
                operator = "**"
                right = self._fraction(right_at)
            if right is None:
                right = self.operand(right_at)
            if right is None:
                break  # a trailing operator is not part of the expression
            parts += [operator, right.text]
            operations += 1 + right.operations
            i, last = right.end, right
        return " ".join(parts), i, operations

    def _fraction(self, i: int) -> _Operand | None:
        """A fraction written as one word, "1/3" or "-2/3" (no spaces), as one operand."""
        tokens = self.tokens
        sign = ""
        if self.kind(i) in (OP, NEG) and tokens[i].value == "-":
            sign, i = "-", i + 1
        if i + 2 >= len(tokens) or (self.kind(i), self.kind(i + 2)) != (NUM, NUM):
            return None
        numerator, slash, denominator = tokens[i:i + 3]
        if slash.kind != OP or slash.value != "/" or numerator.end != slash.start \
                or slash.end != denominator.start:
            return None
        if self.kind(i + 3) == POST:
            return None  # "1/3!", "1/2 squared": leave it to the usual reading
        return _Operand(f"({sign}{numerator.value}/{denominator.value})", i + 3, 1,
                        closes=True)

    def operand(self, i: int) -> _Operand | None:
        if i in self.failed:
            return None
        self.depth += 1
        try:
            if self.depth > MAX_NESTING + 10:
                raise CalculationLimitError(
                    f"the arithmetic is nested more than {MAX_NESTING} deep"
                )
            found = self._operand(i)
        finally:
            self.depth -= 1
        if found is None:
            self.failed.add(i)
        return found

    def _operand(self, i: int) -> _Operand | None:
        sign, first = "", i
        while self.kind(i) in (OP, NEG) and self.tokens[i].value in "+-":
            sign += self.tokens[i].value
            i += 1
        if sign and i in self.failed:
            self.failed.update(range(first, i))  # "- - - ... -": each start fails once
            return None
        kind = self.kind(i)
        if kind is None:
            self.failed.update(range(first, i))
            return None
        token = self.tokens[i]
        operations = 0
        if kind in (NUM, CONST):
            text, i = token.value, i + 1
        elif kind == LP:
            inner = self.expression(i + 1)
            if inner is None:
                return None
            text, i, operations = f"({inner[0]})", inner[1], inner[2]
            if self.kind(i) == RP:
                i += 1
        elif kind == FUNC or (kind == PCT and self.kind(i + 1) == LP):
            name = "percent" if kind == PCT else token.value
            if self.kind(i + 1) == LP:
                args, i = self._arguments(i + 2)
                if args is None:
                    return None
                text, operations = f"{name}({', '.join(a[0] for a in args)})", \
                    1 + sum(a[1] for a in args)
            else:
                argument = self.operand(i + 1)
                if argument is None:
                    return None
                text, i, operations = f"{name}({argument.text})", argument.end, \
                    1 + argument.operations
        else:
            return None
        closes, percent = True, False
        while i < len(self.tokens):
            token = self.tokens[i]
            if token.kind == POST:
                text = f"factorial({text})" if token.value == "!" else f"({text}{token.value})"
                operations += 1
            elif token.kind == PCT and self.kind(i + 1) not in _OPERAND_START:
                # Not an operation by itself: "sales grew 20%" is not a calculation.
                text, percent = f"percent({text})", True
            elif token.kind == FUNC and token.value == "factorial" \
                    and self.kind(i + 1) not in _OPERAND_START:
                # "5 factorial", as "5 squared"; "2 factorial 3" stays 2 * factorial(3).
                text = f"factorial({text})"
                operations += 1
            else:
                break
            i += 1
        return _Operand(sign + text, i, operations, percent=percent, closes=closes)

    def _arguments(self, i: int) -> tuple[list[tuple[str, int]] | None, int]:
        args: list[tuple[str, int]] = []
        while True:
            found = self.expression(i)
            if found is None:
                return None, i
            args.append((found[0], found[2]))
            i = found[1]
            if self.kind(i) == COMMA:
                i += 1
                continue
            if self.kind(i) == RP:
                i += 1
            return args, i


def _candidates(tokens: list[Token]) -> list[tuple[int, int, int, str]]:
    """(first token, next token, operations, expression) for each run that reads."""
    found: list[tuple[int, int, int, str]] = []
    runs: list[list[Token]] = [[]]
    for token in tokens:
        if token.kind == BREAK:
            runs.append([])
        else:
            runs[-1].append(token)
    offset = 0
    for run in runs:
        reader = _Reader(run)
        i = 0
        while i < len(run):
            if run[i].kind not in _OPERAND_START and not (
                run[i].kind in (OP,) and run[i].value in "+-"
            ) and not (run[i].kind == PCT and reader.kind(i + 1) == LP):
                i += 1
                continue
            result = reader.expression(i)
            if result is None:
                i += 1
                continue
            text, end, operations = result
            found.append((offset + i, offset + end, operations, text))
            i = max(end, i + 1)
        offset += len(run) + 1  # the break token between runs
    return found


def extract(query: str) -> Extraction | None:
    """The arithmetic in ``query``, or None when there is none.

    Raises ``CalculationLimitError`` for a query over ``MAX_QUERY_CHARS`` or arithmetic
    nested too deep to read.
    """
    tokens = tokenize(query)
    phrased = _phrase(query, tokens)
    if phrased is not None:
        _refuse_cut_numbers(query, tokens, *phrased[1:])
        return phrased[0]  # "add 3 and 4": the whole query, so nothing else competes
    best: tuple[int, int, int, str] | None = None
    # Where the query's text begins and where only "?", "=", "." or "!" is left: "10-2?"
    # is the whole query. Found once, so each candidate's test is cheap (linear in all).
    lead = len(query) - len(query.lstrip())
    trail = len(query.rstrip(" ?=.!"))
    for candidate in _candidates(tokens):
        first, end, operations, _text = candidate
        if operations == 0:
            continue  # "1999", "-19", "pi": a number, not a calculation
        if _notation(query, tokens, first, end, lead, trail):
            continue  # "555-1234", "the 80/20 rule", "24/7": written so, not a sum
        if best is None or end - first > best[1] - best[0]:
            best = candidate
    if best is None:
        return None
    _refuse_cut_numbers(query, tokens, best[0], best[1])
    start = tokens[best[0]].start
    stop = tokens[best[1] - 1].end
    return Extraction(query[start:stop], best[3])


#: What may join two numbers into one written number the calculator cannot read: "1,5"
#: (a decimal comma, or a list), "1.5.3", "1__000", "1 0000" (one space).
_GLUE = frozenset(",._")


def _written(query: str, start: int, end: int) -> tuple[int, int]:
    """The span around ``start:end`` widened over digits and ``_GLUE`` ("1,5" around "5");
    a full stop after it ends a sentence."""
    while start > 0 and (query[start - 1].isdigit() or query[start - 1] in _GLUE):
        start -= 1
    while end < len(query) and (query[end].isdigit() or query[end] in _GLUE):
        end += 1
    return start, start + len(query[start:end].rstrip(".,_"))


def _refuse_cut_numbers(query: str, tokens: list[Token], first: int, end: int) -> None:
    """Refuse an expression whose first or last number, or any number of a phrase, is part
    of a longer written number it cannot read ("1,5 + 2,5" would be ``5 + 2``, "1 0000 + 1"
    ``0000 + 1``): a refused calculation is an error, never a wrong result."""
    for i in range(max(first - 8, 0), min(end, len(tokens) - 1)):
        if tokens[i].kind != NUM:
            continue
        j = i + 1
        while j < len(tokens) and tokens[j].kind == BREAK and tokens[j].value in _GLUE \
                and tokens[j].start == tokens[j - 1].end and j - i < 8:
            j += 1
        if j >= len(tokens) or tokens[j].kind != NUM or j < first:
            continue
        glued = tokens[j].start == tokens[j - 1].end  # "1,5", "1.5.5", "1__000"
        if glued or (j == i + 1 and query[tokens[i].end:tokens[j].start] == " "):
            left, right = _written(query, tokens[i].start, tokens[j].end)
            shown_left, shown_right = _written(query, tokens[first].start,
                                               tokens[end - 1].end)
            shown = query[min(left, shown_left):max(right, shown_right)]
            raise CalculationSyntaxError(
                f"cannot read the number {query[left:right]!r}",
                shown,
                "write decimals with a point (1.5), thousands with commas or spaces in "
                "groups of three (1,234 or 1 234 567), and put an operator between two "
                "numbers",
            )


#: Words right before "10-2" or "80/20" that ask for it to be calculated.
_ASKED = re.compile(
    r"(?:what\s+is|what's|whats|calculate|compute|evaluate|solve|how\s+much\s+is|=)\s*$",
    re.IGNORECASE,
)
_INTEGER = re.compile(r"\d+", re.ASCII)


def _notation(query: str, tokens: list[Token], first: int, end: int, lead: int,
              trail: int) -> bool:
    """Whether the candidate is two whole numbers joined by "-" or "/" with no spaces, in
    prose that does not ask for a calculation: a phone number ("555-1234"), a range
    ("2019-2020"), a ratio or schedule ("80/20", "24/7"), a score. Calculated when the
    query is nothing else ("10-2?") or asks for it just before ("what is 80/20")."""
    if end - first != 3:
        return False
    left, operator, right = tokens[first:end]
    if operator.kind != OP or operator.value not in ("-", "/"):
        return False
    if left.end != operator.start or operator.end != right.start:
        return False
    if not (_INTEGER.fullmatch(query[left.start:left.end])
            and _INTEGER.fullmatch(query[right.start:right.end])):
        return False
    if left.start <= lead and right.end >= trail:
        return False  # the whole query: "10-2", "144/12?"
    # The request ends right before the numbers: only the text just before is read (a
    # search of all of it, for each candidate, made pasted text take quadratic time).
    stop = left.start
    while stop > 0 and query[stop - 1].isspace() and left.start - stop < 64:
        stop -= 1
    return _ASKED.search(query, max(0, stop - 32), stop) is None


# --- verb-first and noun phrases: "add 3 and 4", "the sum of 3, 4 and 5" -------------------

#: What may come before a phrase: "please", "can you", "what is the", "tell me the".
_LEAD = re.compile(
    r"\s*(?:(?:please|kindly)(?:\s*,)?\s+)?"
    r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?)?"
    r"(?:(?:what\s+is|what\s*['\u2019]\s*s|whats|calculate|compute|find|work\s+out|"
    r"tell\s+me|give\s+me)\s+)?"
    r"(?:the\s+)?",
    re.IGNORECASE,
)
#: What may come after it: ", please" and the sentence's end.
_TAIL = re.compile(r"(?:[\s,]*please)?[\s?.!]*", re.IGNORECASE)
#: The words a phrase starts with.
_PHRASE_START = frozenset({
    "add", "subtract", "take", "multiply", "divide", "square", "cube",
    "sum", "difference", "product", "quotient", "average", "mean",
})


class _Words:
    """Matching a phrase over tokens: words (lower case), "," and signed plain numbers."""

    def __init__(self, tokens: list[Token], i: int) -> None:
        self.tokens = tokens
        self.i = i

    def word(self, *choices: str) -> str | None:
        """The next token when it is one of ``choices`` (a word, "," or "of")."""
        if self.i < len(self.tokens):
            token = self.tokens[self.i]
            if token.kind in (BREAK, OF) and token.value.lower() in choices:
                self.i += 1
                return token.value.lower()
        return None

    def number(self) -> str | None:
        """A plain number ("3", "1.5", "-2", "negative 2"), as the evaluator reads it;
        negative numbers in parentheses, so "square -5" is 25."""
        tokens, i = self.tokens, self.i
        sign = ""
        if i < len(tokens) and (tokens[i].kind == NEG or (
                tokens[i].kind == OP and tokens[i].value == "-")):
            sign, i = "-", i + 1
        if i >= len(tokens) or tokens[i].kind != NUM:
            return None
        self.i = i + 1
        return f"({sign}{tokens[i].value})" if sign else tokens[i].value

    def numbers(self) -> list[str] | None:
        """Two or more numbers: "3 and 4", "3, 4 and 5", "3, 4, and 5"."""
        first = self.number()
        if first is None:
            return None
        found = [first]
        while True:
            back = self.i
            separated = self.word(",") is not None
            separated = self.word("and") is not None or separated
            following = self.number() if separated else None
            if following is None:
                self.i = back
                break
            found.append(following)
        return found if len(found) >= 2 else None

    def pair(self, between: str) -> tuple[str, str] | None:
        """Two numbers with ``between`` ("and", "by", "to", "from") between them."""
        left = self.number()
        if left is None or self.word(between) is None:
            return None
        right = self.number()
        return None if right is None else (left, right)


def _phrase_expression(verb: str, words: _Words) -> str | None:
    """The expression the phrase starting with ``verb`` asks for, or None."""
    start = words.i
    if verb in ("add", "multiply"):
        symbol, joiner = ("+", "to") if verb == "add" else ("*", "by")
        pair = words.pair(joiner)
        if pair is not None:  # "add 3 to 4", "multiply 3 by 4"
            return f"{pair[0]} {symbol} {pair[1]}"
        words.i = start
        listed = words.numbers()  # "add 3 and 4", "multiply 2, 3 and 4"
        return None if listed is None else f" {symbol} ".join(listed)
    if verb in ("subtract", "take"):
        away = verb == "take" and words.word("away") is not None
        taken = words.number()
        if taken is None:
            return None
        if verb == "take" and not away:
            words.word("away")  # "take 3 away from 10"
        if words.word("from") is None:
            return None
        whole = words.number()
        return None if whole is None else f"{whole} - {taken}"
    if verb == "divide":
        pair = words.pair("by")
        return None if pair is None else f"{pair[0]} / {pair[1]}"
    if verb in ("square", "cube"):
        words.word("of")  # "square 5", "the square of 5"
        number = words.number()
        power = "2" if verb == "square" else "3"
        return None if number is None else f"{number} ** {power}"
    if verb == "difference":
        if words.word("between", "of") is None:
            return None
        pair = words.pair("and")
        return None if pair is None else f"{pair[0]} - {pair[1]}"
    if words.word("of") is None:
        return None
    if verb == "quotient":
        pair = words.pair("and")
        return None if pair is None else f"{pair[0]} / {pair[1]}"
    listed = words.numbers()
    if listed is None:
        return None
    if verb == "sum":
        return " + ".join(listed)
    if verb == "product":
        return " * ".join(listed)
    return f"({' + '.join(listed)}) / {len(listed)}"  # average, mean


def _phrase(query: str, tokens: list[Token]) -> tuple[Extraction, int, int] | None:
    """The arithmetic a whole query asks for in words: "add 3 and 4", "subtract 3 from
    10", "what is the sum of 3, 4 and 5?". Only plain numbers count as operands, and the
    phrase must be all of the query (after "please", "can you", "what is the" and the
    like), so "add milk and eggs", "the product of our research" and "add 3 cups of flour
    to the bowl" are not calculations."""
    index = 0  # the phrase's first word: only words and punctuation before it
    while index < len(tokens) and tokens[index].kind == BREAK \
            and tokens[index].value.lower() not in _PHRASE_START:
        index += 1
    if index == len(tokens) or tokens[index].kind != BREAK:
        return None
    token = tokens[index]
    if _LEAD.fullmatch(query, 0, token.start) is None:
        return None
    words = _Words(tokens, index + 1)
    expression = _phrase_expression(token.value.lower(), words)
    if expression is None or words.i == index + 1:
        return None
    stop = tokens[words.i - 1].end
    if _TAIL.fullmatch(query, stop) is None:
        return None
    return Extraction(query[token.start:stop], expression), index, words.i


def rewrite(expression: str) -> str | None:
    """``expression`` in the evaluator's syntax when all of it is arithmetic ("2^10",
    "15% of 240"), else None (the caller then evaluates it as written, and the evaluator
    says what it refuses)."""
    tokens = tokenize(expression)
    if not tokens or any(t.kind == BREAK for t in tokens):
        return None
    reader = _Reader(tokens)
    result = reader.expression(0)
    if result is None or result[1] != len(tokens):
        return None
    return result[0]


__all__ = ["MAX_QUERY_CHARS", "Extraction", "extract", "rewrite", "tokenize"]
