"""The SQLAlchemy pool internals mysqlpool relies on, each as mysqlpool uses it.

mysqlpool lends a QueuePool's records itself (mysqlpool/pooling.py). When a new
SQLAlchemy release comes, these tests tell in one place whether what mysqlpool
assumes still holds: run them on it, read the release's pool/impl.py and
pool/base.py for the names below, then add the release to
FOLLOWED_SQLALCHEMY_RELEASES and raise the bound in pyproject.toml.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import MySQLdb
import pytest
import sqlalchemy
from sqlalchemy.pool import QueuePool

from mysqlpool.dialect import PoolDialect
from mysqlpool.pooling import FOLLOWED_SQLALCHEMY_RELEASES
from tests import dbserver


@pytest.fixture
def pool(database_server: dbserver.Server) -> Iterator[QueuePool]:
    """A bare QueuePool of one connection and one overflow, on the tests' server."""

    def connect() -> Any:
        return MySQLdb.connect(
            host=database_server.host,
            port=database_server.port,
            user=database_server.user,
            password=database_server.password,
        )

    pool = QueuePool(connect, pool_size=1, max_overflow=1, dialect=PoolDialect(on_closed=lambda: None))
    yield pool
    pool.dispose()


def test_the_installed_release_was_checked() -> None:
    release = tuple(int(part) for part in sqlalchemy.__version__.split(".")[:2])
    assert release in FOLLOWED_SQLALCHEMY_RELEASES, (
        f"SQLAlchemy {sqlalchemy.__version__} was not checked: if the other tests of this "
        "module pass, add it to FOLLOWED_SQLALCHEMY_RELEASES and raise the bound in pyproject.toml."
    )


def test_a_new_record_is_made_and_returned_into_the_idle_deque(pool: QueuePool) -> None:
    """_create_connection(), get_connection(), _return_conn() and _pool.queue."""
    record = pool._create_connection()
    connection = record.get_connection()  # type: ignore[attr-defined]
    assert isinstance(connection, MySQLdb.connections.Connection)
    idle = pool._pool.queue  # type: ignore[attr-defined]
    assert isinstance(idle, deque) and len(idle) == 0
    pool._return_conn(record)
    assert list(idle) == [record]
    assert pool._do_get() is record  # _do_get() takes an idle record from that deque
    assert len(idle) == 0


def test_the_overflow_counter_counts_the_room_taken(pool: QueuePool) -> None:
    """_inc_overflow() takes room (pool_size + max_overflow in all), _dec_overflow() frees it."""
    assert pool.overflow() == -1  # pool_size 1, nothing open
    assert pool._inc_overflow() and pool._inc_overflow()  # type: ignore[attr-defined]
    assert not pool._inc_overflow()  # type: ignore[attr-defined]
    pool._dec_overflow()  # type: ignore[attr-defined]
    assert pool.overflow() == 0
    assert pool._inc_overflow()  # type: ignore[attr-defined]


def test_the_dialect_pings_through_its_event_hook(pool: QueuePool) -> None:
    """pre_ping: the dialect's _do_ping_w_event() answers True for a live connection."""
    record = pool._create_connection()
    assert pool._dialect._do_ping_w_event(record.get_connection()) is True  # type: ignore[attr-defined]
    pool._return_conn(record)
