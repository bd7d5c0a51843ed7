"""Cutting a tool's output to its byte cap (``max_output_bytes``).

What a call wrote (``intermediate_data`` keys and UIF fields, as the isolation worker
reports them) is measured as: UTF-8 bytes of strings, length of bytes, the digits of
numbers, the sum over dict keys and values and over list, tuple and set items, and the
pickled size of any other object. Over the cap, values are cut in the order they were
written: strings and bytes are truncated (a UTF-8 character is never split), lists and
tuples lose their last items, dicts keep every key whose value fits, and an object that does
not fit becomes None. The run gets a warning naming the tool, the cap and the size, so the
cut is never silent.
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
    """``value`` cut to at most ``budget`` bytes, and the bytes it then counts for."""
    size = output_size(value, _depth)
    if size <= budget:
        return value, size
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")[: max(budget, 0)]
        text = data.decode("utf-8", "ignore")
        return text, len(text.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return type(value)(value[: max(budget, 0)]), max(budget, 0)
    if _depth < _MAX_DEPTH and isinstance(value, dict):
        out: dict[Any, Any] = {}
        used = 0
        for key, item in value.items():
            key_size = output_size(key, _depth + 1)
            if used + key_size > budget:
                break
            kept, item_size = cut_to(item, budget - used - key_size, _depth + 1)
            out[key] = kept
            used += key_size + item_size
        return out, used
    if _depth < _MAX_DEPTH and isinstance(value, (list, tuple)):
        items: list[Any] = []
        used = 0
        for item in value:
            if used >= budget:
                break
            kept, item_size = cut_to(item, budget - used, _depth + 1)
            items.append(kept)
            used += item_size
        return (items if isinstance(value, list) else tuple(items)), used
    if _depth < _MAX_DEPTH and isinstance(value, (set, frozenset)):
        kept_items, used = cut_to(sorted(value, key=repr), budget, _depth)
        return type(value)(kept_items), used
    return None, 4


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
            new, used = cut_to(value, budget)
            if new is not value:
                cut_keys.append(key)
            kept[key] = new
            budget = max(budget - used, 0)
        capped[section] = kept
    message = (
        f"output of tool {tool!r} cut to {limit} bytes (max_output_bytes): it wrote "
        f"{total} bytes; cut: {', '.join(cut_keys)}"
    )
    capped["warnings"] = [*changes.get("warnings", []), message]
    capped["log_trace"] = [*changes.get("log_trace", []), f"[{tool}] {message}"]
    return capped
