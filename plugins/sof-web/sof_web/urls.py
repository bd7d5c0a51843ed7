"""Finding the http(s) URLs in a query, the way a reader would see them in prose."""

from __future__ import annotations

import re

#: Longest query scanned for URLs.
MAX_QUERY_CHARS = 100_000

_URL = re.compile(r"""\bhttps?://[^\s<>"'`{}|\\^]+""", re.IGNORECASE)
_TRAILING = ".,;:!?*'\""
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
