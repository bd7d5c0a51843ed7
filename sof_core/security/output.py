"""Cutting a tool's output to its byte cap (``max_output_bytes``).

What a call wrote (``intermediate_data`` keys and UIF fields, as the isolation worker
reports them) is measured by ``output_size``: UTF-8 bytes of strings, length of bytes, about
the digits of an int (``bit_length // 3 + 1``), 8 for a float, 4 for None and bools, the sum
over dict keys and values and over list, tuple and set items, and the pickled size of any
other object. Over the cap, values are cut in the order they were written, so that the
result never measures more than the cap: strings and bytes are truncated (a UTF-8 character
is never split); lists, tuples and sets keep their first items that fit (the first one that
does not fit whole is cut if it can be, a string shortened, else dropped, and so is every
item after it); dicts keep the entries whose key and (cut) value fit and drop the others;
a written value of which nothing fits (a number, None or other object over what is left)
is not written at all. No None is ever put in for what was cut. The run gets a warning
naming the tool, the cap and the size, so the cut is never silent.
"""

from __future__ import annotations

import pickle
from typing import Any

#: Report sections that hold what the tool wrote (see ``sof_core.execution.remote``).
_WRITTEN = ("data", "changed", "copies", "fields")
_MAX_DEPTH = 64


def output_size(value: Any, _depth: int = 0) -> int:
    """The size ``value`` counts for against a byte cap."""
    kind = type(value)
    if kind is str:
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if kind is bytes or kind is bytearray:
        return len(value)
    if value is None or kind is bool:
        return 4
    if kind is int:
        return int(value.bit_length()) // 3 + 1
    if kind is float:
        return 8
    if _depth < _MAX_DEPTH:
        if isinstance(value, dict):
            return sum(
                output_size(k, _depth + 1) + output_size(v, _depth + 1) for k, v in value.items()
            )
        if isinstance(value, (list, tuple, set, frozenset)):
            return sum(output_size(item, _depth + 1) for item in value)
        if isinstance(value, str):
            return output_size(str(value))
        if isinstance(value, (bytes, bytearray)):
            return len(value)
    try:
        return len(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    except Exception:
        return len(repr(value))


def cut_to(value: Any, budget: int, _depth: int = 0) -> tuple[Any, int]:
    """``value`` cut to at most ``budget`` bytes, and the bytes it then counts for; None
    (4 bytes) when nothing of it fits."""
    cut = _cut(value, budget, _depth)
    return cut if cut is not None else (None, output_size(None))


def _cut(value: Any, budget: int, depth: int) -> tuple[Any, int] | None:
    """``value`` cut to at most ``budget`` bytes and its size, or None when nothing of it
    fits (a number, None or other object over the budget: it cannot be shortened)."""
    budget = max(budget, 0)
    size = output_size(value, depth)
    if size <= budget:
        return value, size
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")[:budget]
        text = data.decode("utf-8", "ignore")
        return text, len(text.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return type(value)(value[:budget]), budget
    if depth < _MAX_DEPTH and isinstance(value, dict):
        return _cut_dict(value, budget, depth)
    if depth < _MAX_DEPTH and isinstance(value, (list, tuple)):
        items, used = _cut_items(value, budget, depth)
        return (items if isinstance(value, list) else tuple(items)), used
    if depth < _MAX_DEPTH and isinstance(value, (set, frozenset)):
        kept, used = _cut_items(sorted(value, key=repr), budget, depth)
        return type(value)(kept), used
    return None


def _cut_items(values: Any, budget: int, depth: int) -> tuple[list[Any], int]:
    """The first items of ``values`` that fit in ``budget``: the first one that does not
    fit whole is cut (a string shortened) or, if nothing of it fits, dropped, and the rest
    with it, so the list is always a prefix of what was written (no None stands in)."""
    items: list[Any] = []
    used = 0
    for item in values:
        if used >= budget:
            break
        cut = _cut(item, budget - used, depth + 1)
        if cut is None:
            break
        items.append(cut[0])
        used += cut[1]
        if cut[0] is not item:
            break
    return items, used


def _cut_dict(value: dict[Any, Any], budget: int, depth: int) -> tuple[dict[Any, Any], int]:
    """The entries of ``value`` whose key and (cut) value fit in what is left of ``budget``,
    in order; an entry that does not fit is dropped (never kept with a None value)."""
    out: dict[Any, Any] = {}
    used = 0
    for key, item in value.items():
        key_size = output_size(key, depth + 1)
        if used + key_size > budget:
            continue
        cut = _cut(item, budget - used - key_size, depth + 1)
        if cut is None:
            continue
        out[key] = cut[0]
        used += key_size + cut[1]
    return out, used


def cap_changes(tool: str, changes: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """A call's report with what it wrote cut to ``limit`` bytes, flagged in its warnings;
    ``changes`` itself when it fits (or there is no limit)."""
    if limit is None:
        return changes
    total = 0
    for section in _WRITTEN:
        for value in changes.get(section, {}).values():
            total += output_size(value)
    if total <= limit:
        return changes
    capped = dict(changes)
    budget = limit
    cut_keys: list[str] = []
    for section in _WRITTEN:
        values = changes.get(section)
        if not values:
            continue
        kept: dict[str, Any] = {}
        for key, value in values.items():
            cut = _cut(value, budget, 0)
            if cut is None or cut[0] is not value:
                cut_keys.append(key)
            if cut is not None:  # nothing of it fits: the key is not written at all
                kept[key] = cut[0]
                budget -= cut[1]
        capped[section] = kept
    message = (
        f"output of tool {tool!r} cut to {limit} bytes (max_output_bytes): it wrote "
        f"{total} bytes; cut: {', '.join(cut_keys)}"
    )
    capped["warnings"] = [*changes.get("warnings", []), message]
    capped["log_trace"] = [*changes.get("log_trace", []), f"[{tool}] {message}"]
    return capped
