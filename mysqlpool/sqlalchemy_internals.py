"""Every private part of SQLAlchemy's pool that mysqlpool uses, and nothing else.

mysqlpool lends a pool's connection records itself (mysqlpool.pooling says why):
it takes and returns records, takes and frees a QueuePool's room, and pings,
through the template methods and counters SQLAlchemy's pool classes use among
themselves. Their names are private, so they are named here once, with what each
is for; tests/test_sqlalchemy_internals.py checks each, as mysqlpool uses it, on
the installed release. A new SQLAlchemy release is added to
FOLLOWED_SQLALCHEMY_RELEASES once those tests pass on it, and pyproject.toml's
bound is raised with it (README, Development).

The functions called on every checkout are SQLAlchemy's own, under a second name:
no call of ours in between.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.pool import ConnectionPoolEntry, Pool, QueuePool
from sqlalchemy.pool.base import _ConnectionRecord

FOLLOWED_SQLALCHEMY_RELEASES = ((2, 0), (2, 1))


def idle_records(pool: QueuePool) -> deque[ConnectionPoolEntry]:
    """The deque in which a QueuePool keeps its idle records (its queue's own)."""
    idle: deque[ConnectionPoolEntry] = pool._pool.queue  # type: ignore[attr-defined]
    return idle


# Room for one more connection in a QueuePool (pool_size + max_overflow in all):
# take_room() takes it and says whether there was any; free_room() gives it back.
# For a QueuePool only, though typed for any pool, as mysqlpool holds it.
take_room: Callable[[Pool], bool] = QueuePool._inc_overflow  # type: ignore[assignment]
free_room: Callable[[Pool], None] = QueuePool._dec_overflow  # type: ignore[assignment]

# A new record, its connection opened by the pool's creator, in room already taken.
open_record: Callable[[Pool], ConnectionPoolEntry] = Pool._create_connection
# A record back into the pool class's own keeping (any class but a lent QueuePool).
return_record: Callable[[Pool, ConnectionPoolEntry], None] = Pool._return_conn

# The record's DBAPI connection, (re)connected if the record was invalidated or
# is due for recycling.
connection_of: Callable[[ConnectionPoolEntry], Any] = _ConnectionRecord.get_connection  # type: ignore[assignment]

# What the checkout in C (mysqlpool/_hot_path.c) reads to tell, without calling
# get_connection(), that it would hand out the record's connection unchanged: the
# record's connection, when it was opened and softly invalidated (time.time()),
# its info, and the pool's recycle and invalidation times. Any other answer, and
# get_connection() decides. The recycle time is read once, when the hot path is
# made: only Pool.__init__ sets it (tests/test_sqlalchemy_internals.py checks).
HOT_PATH_RECORD_FIELDS = ("dbapi_connection", "starttime", "_soft_invalidate_time", "info")
HOT_PATH_POOL_FIELDS = ("_recycle", "_invalidate_time")

# pre_ping: True if the connection answers a ping, through the dialect's events.
ping: Callable[[DefaultDialect, Any], bool] = DefaultDialect._do_ping_w_event


def record_from(pool: Pool) -> ConnectionPoolEntry:
    """A record as the pool class itself hands one out (any class but a lent QueuePool)."""
    return pool._do_get()
