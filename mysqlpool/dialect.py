"""The SQLAlchemy dialect handed to the pool.

SQLAlchemy's pool asks its dialect to ping (``pre_ping``) and to tell disconnect
errors apart; the stock MySQLdb dialect knows how. The bare ``Pool`` default
cannot ping at all (django-db-connection-pool's NotImplementedError after a server
restart).
"""

from __future__ import annotations

import MySQLdb
from sqlalchemy.dialects.mysql.mysqldb import MySQLDialect_mysqldb


class PoolDialect(MySQLDialect_mysqldb):
    """The MySQLdb dialect, bound to MySQLdb without an Engine."""

    def __init__(self) -> None:
        super().__init__(dbapi=MySQLdb)

    def is_disconnect_error(self, error: BaseException) -> bool:
        """True if ``error`` means the connection can never be used again."""
        # MySQLdb's errors are the DBAPI errors SQLAlchemy's protocol describes.
        return isinstance(error, MySQLdb.Error) and bool(
            self.is_disconnect(error, None, None)  # type: ignore[arg-type]
        )
