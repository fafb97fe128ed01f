"""Counters kept for each pool, read by ``mysqlpool.get_stats()``.

The names are constants so that code and tests can rely on them, as in psycopg_pool.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any

CHECKOUTS = "checkouts"  # connections handed to Django
WAITS = "waits"  # checkouts that found the pool exhausted and waited
WAIT_TIME = "wait_time"  # seconds spent in those waits
TIMEOUTS = "timeouts"  # waits that ended in PoolTimeout
CONNECTS = "connects"  # server connections opened
CLOSES = "closes"  # server connections closed
INVALIDATIONS = "invalidations"  # connections discarded as broken or stale

COUNTERS = (CHECKOUTS, WAITS, WAIT_TIME, TIMEOUTS, CONNECTS, CLOSES, INVALIDATIONS)


class Tally:
    """A count that threads raise without taking a lock.

    ``add()`` is itertools.count's ``__next__``, a C call the GIL makes atomic; it
    runs on every checkout. ``value()`` draws a number too, and subtracts the
    draws of earlier reads.
    """

    def __init__(self) -> None:
        self.add: Callable[[], int] = itertools.count().__next__
        self._reads = 0
        self._lock = threading.Lock()

    def value(self) -> int:
        with self._lock:
            count = self.add() - self._reads
            self._reads += 1
        return count


class PoolStats:
    """Thread-safe counters of one pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Checkouts, the most frequent, are counted apart, without the lock.
        self.checkouts = Tally()
        self._counters: dict[str, float] = dict.fromkeys((name for name in COUNTERS if name != CHECKOUTS), 0)

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def get(self) -> dict[str, float]:
        with self._lock:
            counters = dict(self._counters)
        return {CHECKOUTS: self.checkouts.value(), **counters}

    def open_connections(self) -> int:
        """Server connections this pool holds open, idle or checked out."""
        with self._lock:
            return int(self._counters[CONNECTS] - self._counters[CLOSES])


# ---------------------------------------------------------------- for people


def seconds_text(seconds: float) -> str:
    """``0.4 s``, ``12 ms``: a duration as a log line shows it."""
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


def counted(number: float, noun: str, plural: str = "") -> str:
    """``1 wait``, ``3 waits``."""
    return f"{number:.0f} {noun if number == 1 else plural or noun + 's'}"


def pool_summary(alias: str, figures: Mapping[str, Any]) -> str:
    """``default: 2 open, 1404 checkouts, 3 waits (0.4 s)``, and timeouts and
    invalidations when there were any: one pool in a log line."""
    parts = [
        f"{figures['open']} open",
        counted(figures[CHECKOUTS], "checkout"),
        f"{counted(figures[WAITS], 'wait')} ({seconds_text(figures[WAIT_TIME])})",
    ]
    parts += [counted(figures[name], name[:-1]) for name in (TIMEOUTS, INVALIDATIONS) if figures[name]]
    return f"{alias}: " + ", ".join(parts)


def budget_summary(budget: Mapping[str, Any]) -> str:
    """``budget 2/3 open (peak 3), 1 wait (12 ms)``, or ``no budget``."""
    if budget["limit"] is None:
        return "no budget"
    waits = f"{counted(budget['waits'], 'wait')} ({seconds_text(budget['wait_time'])})"
    timeouts = f", {counted(budget['timeouts'], 'timeout')}" if budget["timeouts"] else ""
    return f"budget {budget['open']}/{budget['limit']} open (peak {budget['peak']}), {waits}{timeouts}"
