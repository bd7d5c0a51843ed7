"""The largest timeout SOF accepts, shared by the settings and the skill declarations.

A timeout is a deadline the watchdog must be able to wait for: ``inf``, ``nan`` or ``1e300``
would overflow the clock arithmetic (``OverflowError`` out of a lock wait) or never expire.
"No limit" is spelt ``None``. Kept outside the layers (settings and skills both read it).
"""

from __future__ import annotations

from functools import partial

from sof_core._repr import safe_repr

#: A value as a declaration or setting error shows it (``safe_repr``, a little shorter).
shown = partial(safe_repr, limit=60)

#: Seconds; about 11.6 days. Longer waits are "no limit" in all but name: use None.
MAX_TIMEOUT = 1_000_000.0


def timeout_problem(value: object, none_means: str = "no limit") -> str | None:
    """Why ``value`` is not a usable timeout in seconds (None when it is one, or is None);
    ``none_means`` says what None stands for where the value is set."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number of seconds or None ({none_means}), got {shown(value)}"
    # compared, never converted: math.isnan(10**400) is an OverflowError
    if value != value or value <= 0:
        return f"must be a positive number of seconds or None ({none_means}), got {shown(value)}"
    if value > MAX_TIMEOUT:
        return (f"must be at most {MAX_TIMEOUT:,.0f} seconds, got {shown(value)}; "
                f"use None for {none_means}")
    return None
