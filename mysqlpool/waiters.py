"""A thread waiting in line for a connection, and how it is served.

SQLAlchemy's QueuePool puts a returned connection back in its queue and lets
whoever asks next take it: under load, the thread that returned it asks again at
once and wins, and the threads already waiting starve until they time out while
a few threads do all the work (CHANGELOG.rst has the figures). mysqlpool serves
waiting threads first-come,
first-served, as psycopg_pool does: whoever frees something hands it directly to
the first thread in line.

A waiter is served exactly once, with one of:

* ``RECORD``: a pooled connection record, handed over by a check-in;
* ``PERMIT``: room in the budget, counted for the waiter, which holds room in its
  pool (``holds_slot``, QueuePool's overflow count): it opens a connection.

A waiter without room in its pool may be given some while it waits (a connection
of the pool was closed); it then waits for the budget too, at the same place.

Whoever serves and the waiter itself (giving up at its timeout) race through
``serve()`` and ``withdraw()``; exactly one of them wins.
"""

from __future__ import annotations

import threading
from typing import Protocol

from sqlalchemy.pool import ConnectionPoolEntry

from mysqlpool.stats import PoolStats

RECORD = "record"
PERMIT = "permit"
WITHDRAWN = "withdrawn"


class LinedUpPool(Protocol):
    """What the lines need to know of the pool a waiter waits for (mysqlpool.pooling.AliasPool)."""

    alias: str
    stats: PoolStats


class Waiter:
    """One thread's place in a pool's line, and in the budget's if it waits for room."""

    __slots__ = ("_lock", "_unserved", "holds_slot", "outcome", "pool", "record")

    def __init__(self, pool: LinedUpPool, *, holds_slot: bool = False) -> None:
        self.pool = pool
        # Whether the thread holds room in its pool and waits for the budget; set
        # under its pool's lock.
        self.holds_slot = holds_slot
        self.outcome: str | None = None
        self.record: ConnectionPoolEntry | None = None
        self._lock = threading.Lock()
        # Held until the waiter is served: a bare lock rather than an Event, whose
        # wait() makes a lock of its own and goes through a Condition's lock twice.
        self._unserved = threading.Lock()
        self._unserved.acquire()

    @property
    def served(self) -> bool:
        return self.outcome is not None

    def serve(self, outcome: str, record: ConnectionPoolEntry | None = None) -> bool:
        """Give the waiter ``outcome``; False if it was served or gave up already."""
        with self._lock:
            if self.outcome is not None:
                return False
            self.outcome, self.record = outcome, record
        self._unserved.release()
        return True

    def handed_record(self) -> ConnectionPoolEntry:
        """The record the waiter was served with (its outcome is RECORD)."""
        if self.record is None:
            raise RuntimeError(f"a waiter served with {self.outcome!r} has no record")
        return self.record

    def withdraw(self) -> bool:
        """Give up waiting; False if the waiter was served meanwhile (it must take that)."""
        return self.serve(WITHDRAWN)

    def wait(self, timeout: float) -> str | None:
        """The outcome, or None if nothing came within ``timeout`` seconds; called once."""
        self._unserved.acquire(timeout=max(timeout, 0.0))
        return self.outcome
