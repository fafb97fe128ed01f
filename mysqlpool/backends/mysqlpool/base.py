"""Django's MySQL backend, with connections borrowed from a per-process pool.

Only Django's own hooks are overridden: ``get_new_connection()`` checks a
connection out, ``close()``/``_close()`` return it, ``init_connection_state()``
runs once per server connection instead of once per checkout, and the error
wrapper discards a connection the moment it raises a disconnect error. MySQLdb and
Django are not patched, so an alias on Django's plain MySQL backend in the same
process is untouched.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from django.core.exceptions import SynchronousOnlyOperation
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.mysql.base import DatabaseWrapper as MySQLDatabaseWrapper
from django.db.utils import DatabaseErrorWrapper
from django.utils.functional import cached_property

from mysqlpool import registry
from mysqlpool.backends.mysqlpool.creation import DatabaseCreation
from mysqlpool.pooling import INITIALIZED, AliasPool, Checkout


def _undecorated(method: Callable[..., Any]) -> Callable[..., Any]:
    """Django's ``method`` without its ``async_unsafe`` wrapper (itself if it has none)."""
    return getattr(method, "__wrapped__", method)


# connect() and close() run on every request once connections are returned.
# Django's async_unsafe check raises and catches an exception on each call (about
# 3,800 CPU instructions); _refuse_in_event_loop() asks the same without one.
_django_connect = _undecorated(MySQLDatabaseWrapper.connect)
_django_close = _undecorated(MySQLDatabaseWrapper.close)


def _refuse_in_event_loop() -> None:
    """What Django's async_unsafe does: no database call from a thread running an event loop."""
    if asyncio._get_running_loop() is not None and not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"):
        raise SynchronousOnlyOperation(
            "You cannot call this from an async context - use a thread or sync_to_async."
        )


class DisconnectAwareErrorWrapper(DatabaseErrorWrapper):
    """Django's error translation, plus: a disconnect error discards the connection.

    It is discarded before Django sees the error, because mysqlclient keeps
    reporting the old, closed file descriptor number, which the next socket of the
    process may reuse: a later health check would then poll somebody else's socket.
    """

    wrapper: DatabaseWrapper

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is None:  # the common case, without a second call
            return
        self.wrapper.discard_if_disconnected(exc_value)
        super().__exit__(exc_type, exc_value, traceback)


class DatabaseWrapper(MySQLDatabaseWrapper):
    """Django's MySQL DatabaseWrapper, pooling through SQLAlchemy."""

    creation_class = DatabaseCreation

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._checkout: Checkout | None = None
        self._pool: AliasPool | None = None
        # Set by get_new_connection() when the connection it checked out already
        # has this wrapper's session settings: connect() then skips setting them.
        self._session_ready = False
        # True while close() runs: only then does Django drop self.connection right
        # after _close(), so only then may the connection go back for reuse.
        self._closing = False
        # Django's throwaway connections without a database (CREATE/DROP DATABASE
        # in the test runner) are not worth pooling.
        self._pooled = self.alias != NO_DB_ALIAS

    @property
    def pool(self) -> AliasPool:
        """The pool of this alias in this process, created on first use."""
        pool = self._pool
        if pool is None or pool.disposed:
            pool = self._pool = registry.pool_for(self)
        return pool

    def close_pool(self) -> None:
        """Dispose this alias's pool (Celery calls this in forked workers)."""
        registry.dispose(self.alias)

    def get_connection_params(self) -> dict[str, Any]:
        # Called on every checkout. The pool's connections are opened with the
        # parameters it was built from; a wrapper with other settings (a copy())
        # still has its own validated, as with Django's backend.
        pool = self.pool if self._pooled else None
        if pool is None or pool.settings_dict is not self.settings_dict:
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
        checkout = self._checkout = self.pool.checkout()
        session = checkout.record.info.get(INITIALIZED)  # type: ignore[union-attr]
        self._session_ready = session == self._session_settings()
        return checkout.connection

    def _session_settings(self) -> tuple[str | None]:
        # What init_connection_state() sets that may differ between wrappers of an
        # alias (a copy() with other OPTIONS); SQL_AUTO_IS_NULL is the server's. A
        # tuple, so that it is true even without an isolation level.
        return (self.isolation_level,)

    def init_connection_state(self) -> None:
        # The session settings outlive a checkout: connect() need not set them again
        # on a connection that has them. Any other call sets them, as Django does.
        ready, self._session_ready = self._session_ready, False
        if ready:
            return
        super().init_connection_state()
        record = self._checkout.record if self._checkout is not None else None
        if record is not None:
            record.info[INITIALIZED] = self._session_settings()

    def set_autocommit(
        self, autocommit: bool, force_begin_transaction_with_broken_autocommit: bool = False
    ) -> None:
        # connect() turns autocommit on. A reused connection with its session
        # settings in place has it on already, unless a former user turned it off:
        # then, and in every other call, Django does the work.
        if self._session_ready and autocommit and self.connection.get_autocommit():
            self.autocommit = True
            return
        super().set_autocommit(autocommit, force_begin_transaction_with_broken_autocommit)

    def _set_autocommit(self, autocommit: bool) -> None:
        # On a reused connection autocommit is already on: skip Django's error
        # wrapping and mysqlclient's method around a check it makes anyway.
        if self.connection.get_autocommit() != autocommit:
            super()._set_autocommit(autocommit)  # type: ignore[misc]  # omitted by django-stubs

    def connect(self) -> None:
        _refuse_in_event_loop()
        _django_connect(self)

    def close(self) -> None:
        _refuse_in_event_loop()
        self._closing = True
        try:
            _django_close(self)
        finally:
            self._closing = False

    def _close(self) -> None:
        checkout, self._checkout = self._checkout, None
        if checkout is not None:
            # Closed inside atomic(), or through _close() alone, Django keeps
            # self.connection and expects it closed (with the transaction rolled
            # back by the server): discard it, so the object Django keeps is dead
            # and never handed to another thread.
            reusable = self._closing and not self.in_atomic_block
            checkout.pool.checkin(checkout, discard=not reusable)
        elif not self._pooled:
            super()._close()  # type: ignore[misc]  # a private hook django-stubs omits

    def forget_inherited_connection(self) -> None:
        """In a forked child: the connection is the parent's; start afresh.

        Its socket has been disarmed (see PooledConnection.disarm). Inside an
        ``atomic()`` block the child cannot go on with the parent's transaction: as
        after close() in a block, queries fail until the block ends.
        """
        self._checkout = None
        self._pool = None
        if self.connection is None or not self._pooled:
            return
        if self.in_atomic_block:
            self.closed_in_transaction = True
            self.needs_rollback = True
        else:
            self.connection = None

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
            checkout.pool.invalidate(checkout, error)
