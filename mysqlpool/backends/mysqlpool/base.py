"""Django's MySQL backend, with connections borrowed from a per-process pool.

Only Django's own hooks are overridden: ``get_new_connection()`` checks a
connection out, ``_close()`` returns it, ``init_connection_state()`` runs once per
server connection instead of once per checkout, and the error wrapper discards a
connection the moment it raises a disconnect error. MySQLdb and Django are not
patched, so an alias on Django's plain MySQL backend in the same process is
untouched.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.mysql.base import DatabaseWrapper as MySQLDatabaseWrapper
from django.db.utils import DatabaseErrorWrapper
from django.utils.functional import cached_property
from sqlalchemy.pool import PoolProxiedConnection

from mysqlpool import registry
from mysqlpool.backends.mysqlpool.creation import DatabaseCreation
from mysqlpool.pooling import INITIALIZED, AliasPool


class _Checkout:
    """A connection this wrapper borrowed, and the pool it goes back to."""

    __slots__ = ("fairy", "pool")

    def __init__(self, pool: AliasPool, fairy: PoolProxiedConnection) -> None:
        self.pool = pool
        self.fairy = fairy


class DisconnectAwareErrorWrapper(DatabaseErrorWrapper):
    """Django's error translation, plus: a disconnect error discards the connection.

    It is discarded before Django sees the error, because mysqlclient keeps
    reporting the old, closed file descriptor number, which the next socket of the
    process may reuse: a later health check would then poll somebody else's socket.
    """

    wrapper: DatabaseWrapper

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is not None:
            self.wrapper.discard_if_disconnected(exc_value)
        super().__exit__(exc_type, exc_value, traceback)


class DatabaseWrapper(MySQLDatabaseWrapper):
    """Django's MySQL DatabaseWrapper, pooling through SQLAlchemy."""

    creation_class = DatabaseCreation

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._checkout: _Checkout | None = None
        # Django's throwaway connections without a database (CREATE/DROP DATABASE
        # in the test runner) are not worth pooling.
        self._pooled = self.alias != NO_DB_ALIAS

    @property
    def pool(self) -> AliasPool:
        """The pool of this alias in this process, created on first use."""
        return registry.pool_for(self)

    def close_pool(self) -> None:
        """Dispose this alias's pool (Celery calls this in forked workers)."""
        registry.dispose(self.alias)

    def get_connection_params(self) -> dict[str, Any]:
        # Called on every checkout: once the pool exists, its connections are
        # opened with the parameters it was built from, so reuse them.
        pool = registry.existing_pool(self.alias) if self._pooled else None
        if pool is None:
            return self.connection_params_from_settings()
        self.isolation_level = pool.isolation_level
        return pool.connect_params

    def connection_params_from_settings(self) -> dict[str, Any]:
        """Django's MySQL connection parameters, without the pool's options."""
        params: dict[str, Any] = super().get_connection_params()
        params.pop("pool", None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not self._pooled:
            return super().get_new_connection(conn_params)
        pool = self.pool
        fairy = pool.checkout()
        self._checkout = _Checkout(pool, fairy)
        return fairy.dbapi_connection

    def init_connection_state(self) -> None:
        checkout = self._checkout
        if checkout is None:
            super().init_connection_state()
            return
        # The session settings (isolation level, SQL_AUTO_IS_NULL) are the same for
        # every connection of the alias and outlive a checkout: set them once.
        info = checkout.fairy.info
        if not info.get(INITIALIZED):
            super().init_connection_state()
            info[INITIALIZED] = True

    def _close(self) -> None:
        checkout, self._checkout = self._checkout, None
        if checkout is not None:
            # Closed inside atomic(), Django keeps self.connection and expects it
            # closed, with the transaction rolled back by the server: discard it,
            # so the object Django keeps is never handed to another thread.
            checkout.pool.checkin(checkout.fairy, discard=self.in_atomic_block)
        elif not self._pooled:
            super()._close()  # type: ignore[misc]  # a private hook django-stubs omits

    def is_usable(self) -> bool:
        usable: bool = super().is_usable()
        if not usable and self._checkout is not None:
            self._discard(ConnectionResetError("the connection failed is_usable()"))
        return usable

    @cached_property
    def wrap_database_errors(self) -> DatabaseErrorWrapper:
        return DisconnectAwareErrorWrapper(self)

    def discard_if_disconnected(self, error: BaseException) -> None:
        """Discard the checked-out connection if ``error`` means it is dead."""
        checkout = self._checkout
        if checkout is not None and checkout.pool.dialect.is_disconnect_error(error):
            self._discard(error)

    def _discard(self, error: BaseException) -> None:
        # self.connection stays: it is closed now, so Django's next use of it fails
        # like any dead connection, until close() clears it.
        checkout, self._checkout = self._checkout, None
        if checkout is not None:
            checkout.pool.invalidate(checkout.fairy, error)
