"""Finding the http(s) URLs in a query, the way a reader would see them in prose."""

from __future__ import annotations

import re

#: Longest query scanned for URLs.
MAX_QUERY_CHARS = 100_000

#: Punctuation that never belongs to a URL as written in prose, so a URL ends before it:
#: typographic quotes and guillemets (\u201cx\u201d, \u00abx\u00bb), and CJK and full-width
#: punctuation (\u3002, \uff0c, \u300cx\u300d, \uff08x\uff09). A URL that really holds one
#: has it percent-encoded.
_ENDS = (
    "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
    "\u3001\u3002\u3008-\u3011\u3014-\u301b\uff01\uff08\uff09\uff0c\uff1a\uff1b\uff1c"
    "\uff1e\uff1f\uff3b\uff3d\uff5b\uff5d\uff5f\uff60\uff61\uff62\uff63\uff64"
)
_URL = re.compile(rf"""\bhttps?://[^\s<>"'`{{}}|\\^{_ENDS}]+""", re.IGNORECASE)
#: Punctuation that ends a sentence (or closes a quote) rather than the URL, when last.
#: Besides ASCII: single typographic quotes, an ellipsis and a full-width full stop.
_TRAILING = ".,;:!?*'\"\u2018\u2019\u2026\uff0e"
_PAIRS = {")": "(", "]": "[", "}": "{"}


def _trim(url: str) -> str:
    """Drop punctuation that ends the sentence, not the URL: "see http://x.org/a)." """
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _PAIRS and url.count(last) > url.count(_PAIRS[last])):
            url = url[:-1]
        else:
            break
    return url


def find_urls(text: str) -> list[str]:
    """http and https URLs in ``text``, in order, without duplicates."""
    found: dict[str, None] = {}
    for match in _URL.finditer(text[:MAX_QUERY_CHARS]):
        url = _trim(match.group(0))
        if "://" in url and len(url.split("://", 1)[1]) > 0:
            found.setdefault(url, None)
    return list(found)


__all__ = ["find_urls"]
