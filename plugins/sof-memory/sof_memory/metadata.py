"""What document metadata may hold: JSON that SQLite's JSON functions can read back.

The store keeps metadata as JSON text and filters on it with ``json_extract``; one value
SQLite cannot parse (Python writes ``NaN`` and ``Infinity``, which are not JSON) makes every
filtered search fail with "malformed JSON". So metadata is checked before it is stored, by
the importer, the ``sof memory`` commands and the backend alike, and a problem names the
key at fault.
"""

from __future__ import annotations

import math
from typing import Any

#: Deepest nesting of lists/objects accepted in metadata (real metadata is a few levels).
MAX_METADATA_DEPTH = 32


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as UTF-8 text (a lone surrogate), or ``None``.

    Lone surrogates come from undecodable bytes in command-line arguments or file names, and
    from ``\\ud800``-style escapes in JSON; SQLite cannot store them.
    """
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        what = (
            f"undecodable byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF
            else f"lone surrogate U+{code:04X}"
        )
        return f"is not valid UTF-8 text ({what} at position {exc.start})"
    return None


def metadata_problem(metadata: Any, where: str = "metadata") -> str | None:
    """The first reason ``metadata`` cannot be stored, naming its key path, or ``None``.

    Accepted: an object whose keys are strings and whose values are strings, finite
    numbers, booleans, null, lists (tuples count as lists) and objects, at most
    ``MAX_METADATA_DEPTH`` levels deep.
    """
    if not isinstance(metadata, dict):
        return f"{where} must be a JSON object, got {type(metadata).__name__}"
    return value_problem(metadata, where, depth=1)


def value_problem(value: Any, where: str, depth: int = 2) -> str | None:
    """The first reason one metadata value (at nesting ``depth``, 1 being the metadata object
    itself) cannot be stored, naming its path under ``where``, or ``None``.

    Iterative, so a value of any depth is safe to check.
    """
    stack: list[tuple[Any, tuple[str, ...], int]] = [(value, (), depth)]
    while stack:
        item, path, level = stack.pop()
        problem = _problem(item, level)
        if problem:
            return f"{_label(where, path)} {problem}"
        if isinstance(item, dict):
            for key, child in reversed(item.items()):  # reversed: checked in order
                stack.append((child, (*path, f"[{key!r}]"), level + 1))
        elif isinstance(item, (list, tuple)):
            for index in range(len(item) - 1, -1, -1):
                stack.append((item[index], (*path, f"[{index}]"), level + 1))
    return None


def _problem(value: Any, level: int) -> str | None:
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return (
            f"is {value!r}: JSON has no NaN or infinity; store null or a string such as "
            '"NaN" instead'
        )
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, (dict, list, tuple)):
        if level > MAX_METADATA_DEPTH:
            return (
                f"is nested more than {MAX_METADATA_DEPTH} levels deep; flatten it or store "
                "it as a string"
            )
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    return f"has the key {key!r} ({type(key).__name__}); keys must be strings"
                problem = text_problem(key)
                if problem:
                    return f"has a key that {problem}"
        return None
    return (
        f"is a {type(value).__name__}, which is not JSON; use strings, numbers, booleans, "
        "null, lists and objects"
    )


def _label(where: str, path: tuple[str, ...]) -> str:
    if len(path) > 6:  # a deep path: its start and its end are what locate it
        path = (*path[:3], "...", *path[-2:])
    return where + "".join(path)
