"""The SQLAlchemy dialect handed to the pool.

SQLAlchemy's pool asks its dialect to ping (``pre_ping``), to tell disconnect errors
apart, and to reset a connection when it is returned. The stock MySQLdb dialect does
the first two; the reset here skips the ROLLBACK round trip when the server says no
transaction is open, and always rolls back when it may be.
"""

from __future__ import annotations

from typing import Any

import MySQLdb
from sqlalchemy.dialects.mysql.mysqldb import MySQLDialect_mysqldb


class PoolDialect(MySQLDialect_mysqldb):
    """MySQLdb dialect whose reset-on-return costs nothing on a clean connection."""

    def __init__(self) -> None:
        super().__init__(dbapi=MySQLdb)

    def do_rollback(self, dbapi_connection: Any) -> None:
        # Called with the pool's proxy, which forwards to PooledConnection.
        if dbapi_connection.in_transaction():
            super().do_rollback(dbapi_connection)  # type: ignore[no-untyped-call]

    def do_commit(self, dbapi_connection: Any) -> None:
        if dbapi_connection.in_transaction():
            super().do_commit(dbapi_connection)  # type: ignore[no-untyped-call]

    def is_disconnect_error(self, error: BaseException) -> bool:
        """True if ``error`` means the connection can never be used again."""
        # MySQLdb's errors are the DBAPI errors SQLAlchemy's protocol describes.
        return isinstance(error, MySQLdb.Error) and bool(
            self.is_disconnect(error, None, None)  # type: ignore[arg-type]
        )
