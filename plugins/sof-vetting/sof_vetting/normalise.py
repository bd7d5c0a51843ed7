"""Text as a reader sees it: invisible characters out, lookalikes folded for matching.

Attackers hide instructions from people while keeping them for models: zero-width spaces
inside words ("ig\u200bnore") defeat naive pattern matching, Unicode tag characters
(U+E0000..U+E007F, "ASCII smuggling") carry a whole invisible sentence, bidi controls reorder
what is displayed, and Cyrillic or fullwidth lookalikes spell "ignore" with other code points.
``normalise`` removes the invisible characters (counting them, and decoding smuggled tag
text so it can be checked too) and applies NFKC; ``fold`` maps lookalikes and leetspeak to
ASCII one character for one character, so offsets found in the folded text are offsets in
the normalised text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

#: Characters with no visible glyph that have no business inside prose.
ZERO_WIDTH = frozenset(
    "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad\u034f"
    "\u115f\u1160\u3164\uffa0\u17b4\u17b5"
)
#: Bidirectional controls: they change the order text is displayed in, not its content.
BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")
#: Joiners that are legitimate between non-ASCII characters (emoji sequences, Indic and
#: Persian scripts) and are kept there.
JOINERS = frozenset("\u200c\u200d")
TAG_START, TAG_END = 0xE0000, 0xE007F
VARIATION_SUPPLEMENT = (0xE0100, 0xE01EF)


@dataclass
class Normalised:
    """The cleaned text and what was taken out of it."""

    text: str
    #: kind ("zero_width", "bidi", "tag", "control", "variation") -> characters removed.
    removed: dict[str, int] = field(default_factory=dict)
    #: ASCII text that was spelled with invisible tag characters (one entry per run).
    smuggled: list[str] = field(default_factory=list)

    @property
    def removed_total(self) -> int:
        return sum(self.removed.values())


def normalise(text: str) -> Normalised:
    """Remove invisible characters, decode tag-character text, then NFKC."""
    out: list[str] = []
    removed: dict[str, int] = {}
    smuggled: list[str] = []
    run: list[str] = []
    length = len(text)

    def drop(kind: str) -> None:
        removed[kind] = removed.get(kind, 0) + 1

    for index, char in enumerate(text):
        code = ord(char)
        if TAG_START <= code <= TAG_END:
            drop("tag")
            if 0xE0020 <= code <= 0xE007E:
                run.append(chr(code - TAG_START))
            continue
        if run:
            smuggled.append("".join(run))
            run = []
        if char in ZERO_WIDTH:
            if char in JOINERS and _between_non_ascii(text, index, length):
                out.append(char)
            else:
                drop("zero_width")
            continue
        if char in BIDI:
            drop("bidi")
            continue
        if VARIATION_SUPPLEMENT[0] <= code <= VARIATION_SUPPLEMENT[1]:
            drop("variation")
            continue
        if (code < 32 and char not in "\t\n\r") or 0x7F <= code < 0xA0:
            drop("control")
            continue
        out.append(char)
    if run:
        smuggled.append("".join(run))
    cleaned = unicodedata.normalize("NFKC", "".join(out))
    return Normalised(cleaned, removed, [s for s in smuggled if s.strip()])


def _between_non_ascii(text: str, index: int, length: int) -> bool:
    """A joiner between two non-ASCII characters, neither a look-alike of a Latin letter
    (Cyrillic and Greek never need one: "prev\u0456\u200d\u043eus" hid "previous")."""
    before = text[index - 1] if index > 0 else ""
    after = text[index + 1] if index + 1 < length else ""
    return (bool(before and after) and ord(before) > 127 and ord(after) > 127
            and before not in _LOOKALIKES and after not in _LOOKALIKES)


# Lookalikes that NFKC leaves alone (Cyrillic, Greek, Armenian letters shaped like Latin
# ones) and leetspeak digits, each mapped to the one ASCII letter it imitates.
_LOOKALIKES = {
    "\u0430": "a", "\u0432": "b", "\u0435": "e", "\u0451": "e", "\u043a": "k", "\u043c": "m",
    "\u043d": "h", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0442": "t", "\u0443": "y",
    "\u0445": "x", "\u0455": "s", "\u0456": "i", "\u0457": "i", "\u0458": "j", "\u0501": "d",
    "\u0261": "g", "\u04bb": "h", "\u04cf": "l", "\u051b": "q", "\u051d": "w", "\u04af": "y",
    "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M", "\u041d": "H",
    "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X", "\u0405": "S",
    "\u0406": "I", "\u0408": "J", "\u03b1": "a", "\u03b2": "b", "\u03b5": "e", "\u03b9": "i",
    "\u03ba": "k", "\u03bd": "v", "\u03bf": "o", "\u03c1": "p", "\u03c4": "t", "\u03c5": "u",
    "\u03c7": "x", "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0399": "I", "\u039a": "K",
    "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T", "\u03a7": "X",
    "\u03a5": "Y", "\u0396": "Z", "\u0585": "o", "\u057d": "u", "\u0581": "g", "\u0570": "h",
    # leetspeak
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
}
_FOLD = str.maketrans(_LOOKALIKES)


def fold(text: str) -> str:
    """``text`` with lookalikes and leet digits mapped to ASCII letters (same length)."""
    return text.translate(_FOLD)


__all__ = ["BIDI", "ZERO_WIDTH", "Normalised", "fold", "normalise"]
