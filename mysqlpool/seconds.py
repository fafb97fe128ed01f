"""Seconds given in settings and options: finite, and short enough to wait for.

Python's waits (``Event.wait()``, ``Lock.acquire()``) refuse a timeout above
``threading.TIMEOUT_MAX`` with an OverflowError at the first wait, long after the
settings were read, and other waits (``poll()`` in milliseconds) overflow sooner:
such a value is refused where it is read instead. One bound for every setting and
daemon option, a year, is more than any timeout, interval or age needs.
"""

from __future__ import annotations

import math
from typing import Any

MAX_SECONDS = 365 * 24 * 3600
# How messages name the bound.
MAX_SECONDS_TEXT = f"at most {MAX_SECONDS} (365 days)"


def is_seconds(value: Any) -> bool:
    """Whether ``value`` is an int or float a wait can take (its sign is the caller's to check)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_SECONDS
    )
