"""Seconds given in settings and options: finite, and short enough to wait for.

Python's waits (``Event.wait()``, ``Lock.acquire()``) refuse a timeout above
``threading.TIMEOUT_MAX`` with an OverflowError at the first wait, long after the
settings were read: such a value is refused where it is read instead.
"""

from __future__ import annotations

import math
import threading
from typing import Any

MAX_SECONDS = threading.TIMEOUT_MAX
# How messages name the bound: the longest wait Python can make.
MAX_SECONDS_TEXT = f"at most {MAX_SECONDS:.0f} (threading.TIMEOUT_MAX)"


def is_seconds(value: Any) -> bool:
    """Whether ``value`` is an int or float a wait can take (its sign is the caller's to check)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_SECONDS
    )
