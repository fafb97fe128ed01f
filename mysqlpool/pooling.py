"""One alias's SQLAlchemy pool: checkout, check-in and invalidation.

SQLAlchemy owns the pooling (queueing, overflow, timeouts, recycling, resetting on
return); this module adds what Django on MySQL needs around it: idle connections the
server hung up on are replaced at checkout without a round trip, pool errors become
Django errors, and every step is counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy import exc as sqla_exc
from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from mysqlpool import stats
from mysqlpool.config import PoolConfig
from mysqlpool.connection import PooledConnection
from mysqlpool.dialect import PoolDialect
from mysqlpool.errors import PoolTimeout

logger = logging.getLogger("mysqlpool")

# Set in a connection's record info once Django has initialized its session, so a
# reused connection is neither initialized again nor mistaken for a fresh one. The
# pool clears record info whenever it replaces the server connection.
INITIALIZED = "mysqlpool.initialized"

# Connection parameters that may be logged and shown.
_SHOWN_PARAMS = ("host", "port", "unix_socket", "database", "user")


class AliasPool:
    """The pool of one database alias in this process."""

    def __init__(
        self, config: PoolConfig, connect_params: Mapping[str, Any], isolation_level: str | None
    ) -> None:
        self.config = config
        self.alias = config.alias
        # What every connection of the pool is opened with (password included:
        # never log or show it) and the isolation level Django sets on it.
        self.connect_params = dict(connect_params)
        self.isolation_level = isolation_level
        self.stats = stats.PoolStats()
        self.dialect = PoolDialect()
        self.disposed = False
        self.target = {k: connect_params[k] for k in _SHOWN_PARAMS if k in connect_params}
        self._max_overflow = config.argument("max_overflow")
        self._may_wait = issubclass(config.backend, QueuePool) and self._max_overflow != -1
        self._pool = config.backend(
            creator=self._connect,
            dialect=self.dialect,
            **config.arguments,
        )
        self._count_closes_and_invalidations()
        logger.info(
            "Created %s for database alias %r (%s) with %s",
            config.backend_name,
            self.alias,
            self.target,
            dict(config.arguments),
        )

    def __repr__(self) -> str:
        return f"<AliasPool {self.alias!r} {self.config.backend_name} {self.target}>"

    def _connect(self) -> Any:
        connection = PooledConnection(**self.connect_params)
        self.stats.add(stats.CONNECTS)
        return connection

    def _count_closes_and_invalidations(self) -> None:
        def closed(*args: Any) -> None:
            self.stats.add(stats.CLOSES)

        def invalidated(dbapi_connection: Any, record: Any, error: BaseException | None) -> None:
            self.stats.add(stats.INVALIDATIONS)
            logger.info("Invalidated a connection of alias %r: %r", self.alias, error)

        event.listen(self._pool, "close", closed)
        event.listen(self._pool, "close_detached", closed)
        event.listen(self._pool, "invalidate", invalidated)

    def checkout(self) -> PoolProxiedConnection:
        """A healthy connection, waiting up to the pool's timeout for one."""
        self.stats.add(stats.CHECKOUTS)
        fairy = self._get()
        # A reused connection the server hung up on while it sat idle is replaced
        # here, so the user never sees the error. Each pass discards one dead
        # connection, so the loop ends once the pool has no dead idle ones left.
        while fairy.info.get(INITIALIZED) and cast(PooledConnection, fairy.dbapi_connection).server_hung_up():
            fairy.invalidate(ConnectionResetError("the server closed the idle connection"))
            fairy = self._get()
        return fairy

    def _get(self) -> PoolProxiedConnection:
        if not (self._may_wait and self._exhausted()):
            return self._checkout_or_timeout()
        self.stats.add(stats.WAITS)
        started = time.perf_counter()
        try:
            return self._checkout_or_timeout()
        finally:
            self.stats.add(stats.WAIT_TIME, time.perf_counter() - started)

    def _exhausted(self) -> bool:
        pool: QueuePool = self._pool  # type: ignore[assignment]
        return pool.checkedin() == 0 and pool.overflow() >= self._max_overflow

    def _checkout_or_timeout(self) -> PoolProxiedConnection:
        try:
            return self._pool.connect()
        except sqla_exc.TimeoutError:
            self.stats.add(stats.TIMEOUTS)
            # Raised outside the except block: the SQLAlchemy error adds nothing.
        raise PoolTimeout(self._timeout_message())

    def _timeout_message(self) -> str:
        size, overflow = self.config.argument("pool_size"), self.config.argument("max_overflow")
        return (
            f"mysqlpool: no connection of database alias {self.alias!r} became free "
            f"within timeout={self.config.argument('timeout')}s: all "
            f"{size + overflow} (pool_size={size} + max_overflow={overflow}) are "
            "checked out. Return connections sooner (auto_close_db() around each "
            "unit of work, no long transactions) or raise pool_size/max_overflow."
        )

    def checkin(self, fairy: PoolProxiedConnection, *, discard: bool = False) -> None:
        """Return a connection; reset first unless ``discard`` closes it instead."""
        if discard or self.disposed:
            fairy.invalidate()
        else:
            fairy.close()

    def invalidate(self, fairy: PoolProxiedConnection, error: BaseException) -> None:
        """Close a broken connection at once; its slot reconnects when next needed."""
        fairy.invalidate(error)

    def dispose(self) -> None:
        """Close the idle connections; the checked-out ones close when returned."""
        self.disposed = True
        self._pool.dispose()
        logger.info("Closed the pool of database alias %r", self.alias)

    def status(self) -> dict[str, Any]:
        """Live figures of the pool: connections open, idle, checked out, overflow."""
        counters = self.stats.get()
        open_connections = self.stats.open_connections()
        if isinstance(self._pool, QueuePool):
            idle, overflow = self._pool.checkedin(), max(self._pool.overflow(), 0)
        else:
            # NullPool closes what is returned; the others keep no shared idle list
            # that can be read, so count what Django holds as checked out.
            idle, overflow = 0, 0
        return {
            "backend": self.config.backend_name,
            "open": open_connections,
            "idle": idle,
            "checked_out": open_connections - idle,
            "overflow": overflow,
            **counters,
        }
