"""Counters kept for each pool, read by ``mysqlpool.get_stats()``.

The names are constants so that code and tests can rely on them, as in psycopg_pool.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
from collections import deque
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

# Invalidations by cause: ``{"hung_up": n, ...}``.
INVALIDATION_CAUSES = "invalidated_by"
# The server hung up on an idle connection (found at checkout, or by pre_ping).
HUNG_UP = "hung_up"
# A query or a check-in's reset failed with an error.
FAILED = "failed"
# Closed without an error: its state was unknown (a checkout its owner dropped, a
# connection returned to a closed pool...).
DISCARDED = "discarded"
CAUSES = (HUNG_UP, FAILED, DISCARDED)

# Distributions of durations, in seconds (see Durations.snapshot()), named as
# OpenTelemetry's connection-pool histograms: the time a checkout took (0 when an
# idle connection was at hand), a connection was checked out, a connect took.
WAIT_TIMES = "wait_times"
USE_TIMES = "use_times"
CREATE_TIMES = "create_times"
DISTRIBUTIONS = (WAIT_TIMES, USE_TIMES, CREATE_TIMES)
# The upper bounds of their buckets: OpenTelemetry's advice for these histograms.
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
# A checkout folds the durations recorded since the last fold once in this many
# checkouts (a power of two minus one: a mask), so that they take bounded memory
# when nobody reads them.
FOLD_MASK = 1023


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


class Durations:
    """A distribution of durations that threads record without waiting for a lock.

    ``record()`` is a deque's ``append``, a C call the GIL makes atomic: it runs on
    every check-in. ``fold()`` reduces what was recorded to counts per bucket and a
    sum, in C calls; a checkout folds once in FOLD_MASK + 1, and skips it if another
    thread is folding (it only tries the lock). ``snapshot()`` reads.
    """

    def __init__(self) -> None:
        self._recorded: deque[float] = deque()
        self.record: Callable[[float], None] = self._recorded.append
        self._counts = [0] * (len(BUCKETS) + 1)  # the last one unbounded
        self._sum = 0.0
        self._lock = threading.Lock()

    def fold(self) -> None:
        """Reduce the durations recorded so far, unless another thread is at it."""
        if self._lock.acquire(blocking=False):
            try:
                self._fold()
            finally:
                self._lock.release()

    def _fold(self) -> None:
        # One thread at a time drains (the lock is held), so len() durations are
        # there to take while others append more. Sorted, each bucket's count is
        # found by bisection: a third of the cost of bisecting each duration.
        recorded = self._recorded
        durations = sorted(map(deque.popleft, itertools.repeat(recorded, len(recorded))))
        below = 0
        for bucket, bound in enumerate(_BOUNDS):
            # A duration counts in the first bucket whose upper bound is >= it.
            up_to = bisect.bisect_right(durations, bound)
            self._counts[bucket] += up_to - below
            below = up_to
        self._sum += math.fsum(durations)

    def snapshot(self, zeros: int = 0) -> dict[str, Any]:
        """``{"buckets": [[upper bound, cumulative count], ...], "sum": s, "count": n}``,
        the last bound ``inf``, as a Prometheus histogram reads; plus ``zeros``
        durations of 0 counted elsewhere."""
        with self._lock:
            self._fold()
            counts, total = list(self._counts), self._sum
        counts[0] += zeros
        cumulative = list(itertools.accumulate(counts))
        return {
            "buckets": [[bound, count] for bound, count in zip(_BOUNDS, cumulative, strict=True)],
            "sum": total,
            "count": cumulative[-1],
        }


_BOUNDS = (*BUCKETS, math.inf)


class PoolStats:
    """Thread-safe counters of one pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Checkouts, the most frequent, are counted apart, without the lock.
        self.checkouts = Tally()
        self._counters: dict[str, float] = dict.fromkeys((name for name in COUNTERS if name != CHECKOUTS), 0)
        self.durations = {name: Durations() for name in DISTRIBUTIONS}
        self._causes = dict.fromkeys(CAUSES, 0)
        # Checkouts that found no idle connection at hand: the others waited 0 s,
        # and are counted so in WAIT_TIMES without recording each.
        self.slow_checkouts = Tally()

    def fold(self) -> None:
        """Reduce the durations recorded so far (see FOLD_MASK)."""
        for durations in self.durations.values():
            durations.fold()

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def invalidated(self, cause: str) -> None:
        """A connection of the pool was invalidated, for ``cause`` (one of CAUSES)."""
        with self._lock:
            self._counters[INVALIDATIONS] += 1
            self._causes[cause] += 1

    def get(self) -> dict[str, Any]:
        with self._lock:
            counters: dict[str, Any] = dict(self._counters)
            counters[INVALIDATION_CAUSES] = dict(self._causes)
        # Read before the checkouts: a slow one counted in between must not count as quick.
        slow = self.slow_checkouts.value()
        checkouts = self.checkouts.value()
        distributions = {name: durations.snapshot() for name, durations in self.durations.items()}
        distributions[WAIT_TIMES] = self.durations[WAIT_TIMES].snapshot(zeros=checkouts - slow)
        return {CHECKOUTS: checkouts, **counters, **distributions}

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
