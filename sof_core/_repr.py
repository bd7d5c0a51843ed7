"""A value as an error message shows it: ``repr``, clipped, and never raising.

An error about bad input must not fail in turn while it names the input: a deeply nested
tuple's ``repr`` is a ``RecursionError``, an int of more than 4,300 digits' a ``ValueError``,
a class's own ``__repr__`` anything at all. Kept outside the layers (declarations, plugin
loading and graph building all name values this way).
"""

from __future__ import annotations


def safe_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` clipped to ``limit`` characters; for a value whose ``repr`` raises,
    what it is and what was raised."""
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<{type(value).__name__} object (repr raised {type(exc).__name__})>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
