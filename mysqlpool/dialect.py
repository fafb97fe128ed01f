"""The SQLAlchemy dialect handed to the pool.

SQLAlchemy's pool asks its dialect to ping (``pre_ping``), to tell disconnect
errors apart and to close connections; the stock MySQLdb dialect knows how. The
bare ``Pool`` default cannot ping at all (django-db-connection-pool's
NotImplementedError after a server restart).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import MySQLdb
from sqlalchemy.dialects.mysql.mysqldb import MySQLDialect_mysqldb


class PoolDialect(MySQLDialect_mysqldb):
    """The MySQLdb dialect, bound to MySQLdb without an Engine.

    Every connection the pool closes goes through do_close() or do_terminate(),
    and only then is ``on_closed`` called: SQLAlchemy's "close" event comes before
    the close, too early to give the connection's place in a budget to another.
    """

    def __init__(self, on_closed: Callable[[], None]) -> None:
        super().__init__(dbapi=MySQLdb)
        self.on_closed = on_closed

    def do_close(self, dbapi_connection: Any) -> None:
        """A healthy connection: closed once the server has ended its session."""
        try:
            dbapi_connection.close_and_wait()
        finally:
            self.on_closed()

    def do_terminate(self, dbapi_connection: Any) -> None:
        """A broken or invalidated connection: closed at once, the server may be gone."""
        try:
            dbapi_connection.close()
        finally:
            self.on_closed()

    def is_disconnect_error(self, error: BaseException) -> bool:
        """True if ``error`` means the connection can never be used again."""
        # MySQLdb's errors are the DBAPI errors SQLAlchemy's protocol describes.
        return isinstance(error, MySQLdb.Error) and bool(
            self.is_disconnect(error, None, None)  # type: ignore[arg-type]
        )
