"""How a QueuePool's connections are lent: idle ones without a lock, the rest in turn.

SQLAlchemy's QueuePool keeps its idle connection records in a deque and counts the
room left for new ones (its overflow counter). While a connection is idle and nobody
waits, a checkout takes it and a check-in puts it back without a lock (both inlined
in mysqlpool.pooling, the hot path); a checkout takes the record its lease had last
if that one is idle (take_idle_for() says why). Once threads wait, for the pool or
for the budget, they are served first come, first served
(mysqlpool.waiters): a returned record goes to the first in line, and room freed
by a closed record goes to the first without room.

The pool (mysqlpool.pooling.AliasPool) keeps what concerns a connection itself:
opening, checking, resetting and closing it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from mysqlpool import sqlalchemy_internals as sqla
from mysqlpool import stats
from mysqlpool.budget import Budget
from mysqlpool.waiters import PERMIT, RECORD, WITHDRAWN, Waiter


class LendingPool(Protocol):
    """What the lender needs of its pool (mysqlpool.pooling.AliasPool)."""

    alias: str
    stats: stats.PoolStats
    budget: Budget

    def reserve_or_enlist(self, waiter: Waiter) -> bool: ...
    def new_record(self) -> ConnectionPoolEntry: ...
    def close_cleanly(self, record: ConnectionPoolEntry) -> None: ...
    def timed_out(self, waiter: Waiter) -> Exception: ...


class Lender:
    """The idle records of one QueuePool, and the threads waiting for one."""

    def __init__(
        self, pool: LendingPool, queue_pool: QueuePool, *, use_lifo: bool, max_idle: int, timeout: float
    ) -> None:
        self._pool = pool
        self._queue_pool = queue_pool
        self.idle: deque[ConnectionPoolEntry] = sqla.idle_records(queue_pool)
        # Takes the next idle record (IndexError if none), in the order use_lifo asks.
        self.take_idle: Callable[[], ConnectionPoolEntry] = self.idle.pop if use_lifo else self.idle.popleft
        self.max_idle = max_idle
        self._timeout = timeout
        self.line: deque[Waiter] = deque()
        # Reentrant: a checkout dropped without check-in is returned by its __del__,
        # which the garbage collector may run anywhere, with the lock held too.
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- lending

    def take_idle_for(self, previous: ConnectionPoolEntry | None) -> ConnectionPoolEntry:
        """An idle record for a lease that had ``previous`` last: that one if it is
        idle, else the next in the order use_lifo asks (IndexError if none is idle).

        Why: a thread that gets its own connection back talks to the same server
        thread as last time, as with Django's persistent connections, and Linux then
        wakes the two on the same CPU, one after the other; a connection that goes
        from thread to thread makes the scheduler wake them apart, with a thread
        switch more per query (bench/README.rst: 9-30% more CPU per request under
        gunicorn's threads). deque.remove() compares by identity here (records do
        not define ==) and runs without releasing the GIL, so no lock is needed.
        """
        if previous is not None:
            try:
                self.idle.remove(previous)
            except ValueError:  # another lease has it, or it was closed
                pass
            else:
                return previous
        return self.take_idle()

    def record_in_turn(self) -> ConnectionPoolEntry:
        """An idle record if nobody waits, else a new one if there is room, else wait in line."""
        with self._lock:
            if self.idle and not self.line:
                return self.take_idle()
            if sqla.take_room(self._queue_pool):
                waiter = None
            else:
                waiter = Waiter(self._pool)
                self.line.append(waiter)
                # A lock-free check-in may have left one idle as we lined up.
                self.serve_line()
        if waiter is None:
            return self._open_in_slot()
        self._pool.stats.add(stats.WAITS)
        return self._wait_in_line(waiter)

    def _open_in_slot(self) -> ConnectionPoolEntry:
        """A new record in room the caller took in the pool, once the budget has room too."""
        waiter = Waiter(self._pool, holds_slot=True)
        if self._pool.reserve_or_enlist(waiter):
            return self._pool.new_record()
        with self._lock:
            # In this pool's line too: a connection returned to it does as well.
            self.line.append(waiter)
            self.serve_line()
        return self._wait_in_line(waiter)

    def _wait_in_line(self, waiter: Waiter) -> ConnectionPoolEntry:
        started = time.monotonic()
        try:
            outcome = waiter.wait(self._timeout)
        except BaseException:
            self._abandon(waiter, started)
            raise
        if outcome is None:
            if waiter.withdraw():
                raise self._gave_up(waiter, started)
            outcome = waiter.outcome  # served as it gave up
        self._leave_line(waiter, started)
        if outcome == PERMIT:
            return self._pool.new_record()
        if waiter.holds_slot:  # the record handed over brings its own room
            self.free_slot()
        return waiter.handed_record()

    def _leave_line(self, waiter: Waiter, started: float) -> None:
        waited = time.monotonic() - started
        with self._lock:
            if waiter in self.line:
                self.line.remove(waiter)
        if waiter.holds_slot:
            self._pool.budget.leave_line(waiter, waited)
        else:
            self._pool.stats.add(stats.WAIT_TIME, waited)

    def _abandon(self, waiter: Waiter, started: float) -> None:
        """Leave the line after a wait ended by an exception (KeyboardInterrupt, say).

        Whatever the waiter was handed meanwhile goes back: a connection handed to
        a thread that is gone would never be returned, and its room never freed.
        """
        outcome = WITHDRAWN if waiter.withdraw() else waiter.outcome
        self._leave_line(waiter, started)
        if outcome == PERMIT:
            self._pool.budget.released()
        elif outcome == RECORD:
            self.hand_over(waiter.handed_record())
        if waiter.holds_slot:
            self.free_slot()

    def _gave_up(self, waiter: Waiter, started: float) -> Exception:
        self._leave_line(waiter, started)
        if waiter.holds_slot:
            self.free_slot()
        return self._pool.timed_out(waiter)

    # ---------------------------------------------------------------- returning

    def serve_late_comers(self) -> None:
        """Serve threads that lined up while a record was put back idle without the lock."""
        with self._lock:
            self.serve_line()

    def hand_over(self, record: ConnectionPoolEntry) -> None:
        """A returned record: to the first in line, else idle; closed to make room elsewhere."""
        with self._lock:
            if not self._gives_way():
                while self.line:
                    if self.line.popleft().serve(RECORD, record):
                        return
                if not self.max_idle or len(self.idle) < self.max_idle:
                    self.idle.append(record)
                    return
        self._pool.close_cleanly(record)

    def _gives_way(self) -> bool:
        """Whether a returned connection is closed, for a thread of another alias waiting for room.

        Always when no thread of this alias waits; else only if the other alias has
        fewer connections by two or more. The aliases sharing a budget so even out.
        """
        other = self._pool.budget.first_waiting_pool()
        if other is None or other is self._pool:
            return False
        return not self.line or other.stats.open_connections() + 1 < self._pool.stats.open_connections()

    def serve_line(self) -> None:
        """Hand idle records to the threads in line (the lock held)."""
        while self.line and self.idle:
            waiter = self.line.popleft()
            record = self.take_idle()
            if not waiter.serve(RECORD, record):
                self.idle.appendleft(record)

    def free_slot(self) -> None:
        """A record is gone: its room in the pool goes to the first in line without any.

        That thread keeps its place in line, and now waits for a returned
        connection or for room in the budget, whichever comes first.
        """
        sqla.free_room(self._queue_pool)
        with self._lock:
            for waiter in self.line:
                if not waiter.holds_slot and not waiter.served:
                    if sqla.take_room(self._queue_pool):
                        waiter.holds_slot = True
                        if self._pool.budget.reserve_or_enlist(waiter) and not waiter.serve(PERMIT):
                            self._pool.budget.released()  # it gave up meanwhile, and frees the room
                    return

    # ---------------------------------------------------------------- emptying

    def longest_idle(self) -> ConnectionPoolEntry | None:
        """Take the record idle the longest, if any (to close it)."""
        with self._lock:
            return self.idle.popleft() if self.idle else None

    def take_all_idle(self) -> list[ConnectionPoolEntry]:
        """Take every idle record (to close them)."""
        with self._lock:
            idle = list(self.idle)
            self.idle.clear()
        return idle

    def overflow(self) -> int:
        """Connections open beyond pool_size (SQLAlchemy's count; never negative)."""
        return max(self._queue_pool.overflow(), 0)
