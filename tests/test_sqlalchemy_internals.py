"""mysqlpool.sqlalchemy_internals: each private part of SQLAlchemy's pool, as mysqlpool uses it.

When a new SQLAlchemy release comes, these tests tell in one place whether what
mysqlpool assumes still holds: run them on it, read the release's pool/impl.py
and pool/base.py for the names the module uses, then add the release to
FOLLOWED_SQLALCHEMY_RELEASES and raise the bound in pyproject.toml.
"""

from __future__ import annotations

import inspect
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import MySQLdb
import pytest
import sqlalchemy
from sqlalchemy.pool import QueuePool

from mysqlpool import sqlalchemy_internals as sqla
from mysqlpool.dialect import PoolDialect
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
    assert release in sqla.FOLLOWED_SQLALCHEMY_RELEASES, (
        f"SQLAlchemy {sqlalchemy.__version__} was not checked: if the other tests of this module "
        "pass, add it to FOLLOWED_SQLALCHEMY_RELEASES (mysqlpool/sqlalchemy_internals.py) and "
        "raise the bound in pyproject.toml."
    )


def test_a_new_record_is_returned_into_the_idle_deque_and_taken_from_it(pool: QueuePool) -> None:
    record = sqla.open_record(pool)
    connection = sqla.connection_of(record)
    assert isinstance(connection, MySQLdb.connections.Connection)
    idle = sqla.idle_records(pool)
    assert isinstance(idle, deque) and len(idle) == 0
    sqla.return_record(pool, record)
    assert list(idle) == [record]
    assert sqla.record_from(pool) is record  # the pool class takes its idle records from that deque
    assert len(idle) == 0
    assert sqla.connection_of(record) is connection  # the same connection while it lives


def test_the_room_counter_counts_pool_size_plus_max_overflow(pool: QueuePool) -> None:
    assert pool.overflow() == -1  # pool_size 1, nothing open
    assert sqla.take_room(pool) and sqla.take_room(pool)
    assert not sqla.take_room(pool)
    sqla.free_room(pool)
    assert pool.overflow() == 0
    assert sqla.take_room(pool)


def test_an_invalidated_record_reconnects_when_its_connection_is_asked_for(pool: QueuePool) -> None:
    record = sqla.open_record(pool)
    first = sqla.connection_of(record)
    record.invalidate()
    assert sqla.connection_of(record) is not first


def test_the_fields_the_hot_path_reads_are_what_get_connection_decides_by(pool: QueuePool) -> None:
    record = sqla.open_record(pool)
    connection = sqla.connection_of(record)
    fields = {name: getattr(record, name) for name in sqla.HOT_PATH_RECORD_FIELDS}
    assert fields["dbapi_connection"] is connection
    assert isinstance(fields["info"], dict) and record.info is fields["info"]
    assert isinstance(fields["starttime"], float) and abs(fields["starttime"] - time.time()) < 60
    assert fields["_soft_invalidate_time"] <= fields["starttime"]
    for name in sqla.HOT_PATH_POOL_FIELDS:
        assert isinstance(getattr(pool, name), int | float)
    assert pool._recycle == -1 and pool._invalidate_time <= fields["starttime"]  # type: ignore[attr-defined]
    time.sleep(0.01)  # the times compared are time.time() readings
    record.invalidate(soft=True)
    assert record._soft_invalidate_time > record.starttime  # type: ignore[attr-defined]
    assert sqla.connection_of(record) is not connection  # and get_connection() reconnects


def test_only_a_pools_init_sets_its_recycle_time() -> None:
    """The checkout in C reads ``_recycle`` once, when it is made (mysqlpool/_hot_path.c)."""
    import sqlalchemy.pool.base
    import sqlalchemy.pool.impl

    sources = [inspect.getsource(module) for module in (sqlalchemy.pool.base, sqlalchemy.pool.impl)]
    lines = [line.strip() for source in sources for line in source.splitlines()]
    assignments = [line for line in lines if "._recycle =" in line]
    assert assignments == ["self._recycle = recycle"]
    assert "self._recycle = recycle" in inspect.getsource(sqlalchemy.pool.base.Pool.__init__)


def test_the_dialect_pings_through_its_event_hook(pool: QueuePool) -> None:
    record = sqla.open_record(pool)
    assert sqla.ping(pool._dialect, sqla.connection_of(record)) is True  # type: ignore[arg-type]
    sqla.return_record(pool, record)
