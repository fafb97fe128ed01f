"""Counters kept for each pool, read by ``mysqlpool.get_stats()``.

The names are constants so that code and tests can rely on them, as in psycopg_pool.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

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
