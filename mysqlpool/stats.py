"""Counters kept for each pool, read by ``mysqlpool.get_stats()``.

The names are constants so that code and tests can rely on them, as in psycopg_pool.
"""

from __future__ import annotations

import threading

CHECKOUTS = "checkouts"  # connections handed to Django
WAITS = "waits"  # checkouts that found the pool exhausted and waited
WAIT_TIME = "wait_time"  # seconds spent in those waits
TIMEOUTS = "timeouts"  # waits that ended in PoolTimeout
CONNECTS = "connects"  # server connections opened
CLOSES = "closes"  # server connections closed
INVALIDATIONS = "invalidations"  # connections discarded as broken or stale

COUNTERS = (CHECKOUTS, WAITS, WAIT_TIME, TIMEOUTS, CONNECTS, CLOSES, INVALIDATIONS)


class PoolStats:
    """Thread-safe counters of one pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, float] = dict.fromkeys(COUNTERS, 0)

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def get(self) -> dict[str, float]:
        with self._lock:
            return dict(self._counters)

    def open_connections(self) -> int:
        """Server connections this pool holds open, idle or checked out."""
        with self._lock:
            return int(self._counters[CONNECTS] - self._counters[CLOSES])
