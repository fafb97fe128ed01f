"""Django's MySQL backend, with connections borrowed from a per-process pool.

Only Django's own hooks are overridden: ``get_new_connection()`` checks a
connection out, ``close()``/``_close()`` return it, ``init_connection_state()``
runs once per server connection instead of once per checkout, the error
wrapper discards a connection the moment it raises a disconnect error, and
``create_cursor()``/``make_cursor()`` return cursors whose fetches and close are
methods (cursors.py). MySQLdb and
Django are not patched, so an alias on Django's plain MySQL backend in the same
process is untouched.
"""

from __future__ import annotations

import _thread
import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import django
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.mysql.base import DatabaseWrapper as MySQLDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.utils import DatabaseErrorWrapper, ProgrammingError
from django.utils.functional import cached_property
from django.views.decorators.debug import sensitive_variables

from mysqlpool import celery_worker, registry
from mysqlpool.backends.mysqlpool.creation import DatabaseCreation
from mysqlpool.backends.mysqlpool.cursors import DirectCursorsDatabaseWrapper
from mysqlpool.connection import PooledConnection
from mysqlpool.network import with_connect_timeout
from mysqlpool.pooling import AliasPool, Lease

logger = logging.getLogger("mysqlpool")


def _undecorated(method: Callable[..., Any]) -> Callable[..., Any]:
    """Django's ``method`` without its ``async_unsafe`` wrapper (itself if it has none)."""
    return getattr(method, "__wrapped__", method)


# connect() and close() run on every request once connections are returned.
# Django's async_unsafe check raises and catches an exception on each call, which
# costs more than the rest of a reused checkout's connect(); _refuse_in_event_loop()
# asks the same without one.
_django_connect = _undecorated(MySQLDatabaseWrapper.connect)
_django_close = _undecorated(MySQLDatabaseWrapper.close)
# So do cursor() and ensure_connection() before every query, connected or not
# (5,000 instructions of Django's 11,600 at the end and start of a request with a
# persistent connection, counted with bench/instructions.py).
_django_cursor = _undecorated(MySQLDatabaseWrapper.cursor)
_django_ensure_connection = _undecorated(MySQLDatabaseWrapper.ensure_connection)
# A cached_property: its function, to fill the subclass's cache with.
_django_server_data: Callable[[MySQLDatabaseWrapper], dict[str, Any]] = (
    MySQLDatabaseWrapper.mysql_server_data.func  # type: ignore[attr-defined]  # a property to django-stubs
)

# The Django releases whose connect() and close() the wrapper's own paths for
# pooled connections follow (tests/test_pooling.py compares them); with any other,
# Django's run: slower, and right whatever a new release changes in them.
FOLLOWED_DJANGO_RELEASES = ((5, 2), (6, 0), (6, 1))
_OWN_PATHS = django.VERSION[:2] in FOLLOWED_DJANGO_RELEASES


def _refuse_in_event_loop() -> None:
    """What Django's async_unsafe does in a thread running an event loop.

    Callers ask ``asyncio._get_running_loop()`` first: the common case, no loop,
    then costs one C call.
    """
    if not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"):
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


class DatabaseWrapper(DirectCursorsDatabaseWrapper):
    """Django's MySQL DatabaseWrapper, pooling through SQLAlchemy."""

    creation_class = DatabaseCreation

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What this wrapper has borrowed from its pool (lease.record is None when
        # nothing is): one object for every checkout of the wrapper's life.
        self._lease = Lease()
        self._pool: AliasPool | None = None
        # Set at checkout when the connection already has this wrapper's session
        # settings: init_connection_state() then skips setting them.
        self._session_ready = False
        # True while close() runs: only then does Django drop self.connection right
        # after _close(), so only then may the connection go back for reuse.
        self._closing = False
        # True while Django judges the connection's health (see _failed_health_check).
        self._judging_health = False
        # Django's throwaway connections without a database (CREATE/DROP DATABASE
        # in the test runner) are not worth pooling.
        self._pooled = self.alias != NO_DB_ALIAS
        # A subclass's own connect() is called, as Django calls it; this class's is
        # skipped on the way from ensure_connection(), which does its work itself:
        # in the cold start of a request each Python call costs about 0.5 µs
        # (bench/same_process.py --phases). Decided per class: a connect() patched
        # on one instance (a test's mock) is not called from there; patch the class.
        self._own_connect = type(self).connect is DatabaseWrapper.connect

    @property
    def pool(self) -> AliasPool:
        """The pool of this alias in this process, created on first use."""
        pool = self._pool
        if pool is None or pool.disposed:
            pool = self._pool = registry.pool_for(self)
        return pool

    def close_pool(self) -> None:
        """Dispose this alias's pool, unless Celery's fixup asks around a task.

        Celery's Django fixup calls this before and after every task in prefork
        workers (see mysqlpool/celery_worker.py): so that a child never uses its
        parent's pool, which the at-fork handler already ensures. Disposing there
        would open a connection per task; the fixup has returned the connection
        with close() just before, which is all a task boundary needs. Outside a
        task (the fixup's calls at worker and child start, any other caller) the
        pool is disposed. ``mysqlpool.close_pool()`` always disposes.
        """
        if celery_worker.task_running():
            logger.debug("Pool of alias %r kept: close_pool() called around a Celery task", self.alias)
            return
        registry.dispose(self.alias)

    def get_connection_params(self) -> dict[str, Any]:
        # The pool's connections are opened with the parameters it was built from;
        # a wrapper with other settings (a copy()) still has its own validated, as
        # with Django's backend.
        pool = self.pool if self._pooled else None
        if pool is None or pool.settings_dict is not self.settings_dict:
            return self.connection_params_from_settings()
        self.isolation_level = pool.isolation_level
        return pool.connect_params

    @sensitive_variables()  # the password (see registry.pool_for)
    def connection_params_from_settings(self) -> dict[str, Any]:
        """Django's MySQL connection parameters, without the pool's options, with a connect_timeout."""
        params: dict[str, Any] = super().get_connection_params()
        params.pop("pool", None)
        return with_connect_timeout(params)

    @cached_property
    def mysql_server_data(self) -> dict[str, Any]:
        # Django 6.1's model checks ask for the server's version and SQL mode before
        # mysqlpool's checks run. With a mistake in the pool's settings, the pool
        # cannot be made: Django then gets its answer over a connection of its own,
        # so that `manage.py check` reports the mistake as a check message (E001,
        # E002) instead of a traceback. Any other use still raises the error.
        if self._pooled:
            try:
                self.pool  # noqa: B018 - made here, which validates the settings
            except ImproperlyConfigured:
                return self._server_data_without_pool()
        return _django_server_data(self)

    def _server_data_without_pool(self) -> dict[str, Any]:
        self._pooled = False
        try:
            return _django_server_data(self)
        finally:
            self._pooled = True

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not self._pooled:
            return super().get_new_connection(conn_params)
        return self._check_out(self.pool)

    def _check_out(self, pool: AliasPool) -> PooledConnection:
        """A connection from ``pool``; notes whether its session is set up for this wrapper."""
        connection = pool.checkout(self._lease)
        self._session_ready = self._lease.session == self._session_settings()
        return connection

    def _session_settings(self) -> tuple[str | None]:
        # (_connected_from_pool() builds the same tuple inline.)
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
        self._lease.note_session(self._session_settings())

    def _set_autocommit(self, autocommit: bool) -> None:
        # On a reused connection autocommit is already on: skip Django's error
        # wrapping and mysqlclient's method around a check it makes anyway.
        if self.connection.get_autocommit() != autocommit:
            super()._set_autocommit(autocommit)  # type: ignore[misc]  # omitted by django-stubs

    def cursor(self) -> Any:
        if asyncio._get_running_loop() is not None:
            _refuse_in_event_loop()
        return _django_cursor(self)

    def ensure_connection(self) -> None:
        if asyncio._get_running_loop() is not None:
            _refuse_in_event_loop()
        if self.connection is not None:  # Django's would do nothing either
            return
        if not _OWN_PATHS:
            _django_ensure_connection(self)
            return
        # Django's, with its error translation entered only for an error: the
        # with-block's two calls cost more than a reused checkout's connect() saves.
        if self.in_atomic_block and self.closed_in_transaction:
            raise ProgrammingError("Cannot open a new connection in an atomic block.")
        try:
            if not self._own_connect:
                self.connect()
            elif not self._connected_from_pool():  # connect() without its event loop check
                _django_connect(self)
        except Exception:
            with self.wrap_database_errors:
                raise

    def connect(self) -> None:
        if asyncio._get_running_loop() is not None:
            _refuse_in_event_loop()
        if not self._connected_from_pool():
            _django_connect(self)

    def _connected_from_pool(self) -> bool:
        """Django's connect(), for a connection of this wrapper's pool; False if it has none.

        It leaves the wrapper as Django's does (tests/test_pooling.py compares the
        two), without the calls that would cost more than the rest of a reused
        checkout: the connection parameters are the pool's, and a reused
        connection is usually set up already. False, having done nothing, when
        Django's connect() must run: the wrapper is not pooled, its settings are
        not its pool's (a copy()), or the Django release is not one followed.
        """
        pool = self._pool
        if pool is None or pool.disposed:  # the pool property, inlined
            pool = self.pool if self._pooled else None
        if pool is None or not _OWN_PATHS or pool.settings_dict is not self.settings_dict:
            return False
        # self.settings_dict is never bound to a local name here: Django's error
        # reports show each frame's locals, and it holds the password.
        # All that check_settings() checks, in the releases followed: skip the call.
        if self.settings_dict["TIME_ZONE"] is not None:
            self.check_settings()
        self.in_atomic_block = False
        # Django's connect() makes new lists; left empty by the last request, the
        # same ones serve (nothing outside the wrapper keeps them).
        if self.savepoint_ids:
            self.savepoint_ids = []
        if self.atomic_blocks:
            self.atomic_blocks = []
        self.needs_rollback = False
        self.health_check_enabled = self.settings_dict["CONN_HEALTH_CHECKS"]
        max_age = self.settings_dict["CONN_MAX_AGE"]  # 0, unless a test patched it
        self.close_at = None if max_age is None else time.monotonic() + max_age
        self.closed_in_transaction = False
        self.errors_occurred = False
        self.health_check_done = True
        self.isolation_level = pool.isolation_level
        # _check_out(), inlined: the session settings are the pool's isolation level.
        connection = self.connection = pool.checkout(self._lease)
        self._session_ready = self._lease.session == (pool.isolation_level,)
        autocommit = self.settings_dict["AUTOCOMMIT"]
        if self._session_ready and autocommit and connection.get_autocommit():  # type: ignore[no-untyped-call]
            # As its last user left it: nothing to set.
            self._session_ready = False
            self.autocommit = True
        else:
            self.set_autocommit(autocommit)
            self.init_connection_state()
        if connection_created.receivers:  # Signal.send() asks the same first, after a call
            connection_created.send(sender=self.__class__, connection=self)
        if self.run_on_commit:
            self.run_on_commit = []
        return True

    def close_if_unusable_or_obsolete(self) -> None:
        # Django's version, when it ends in close() because the connection outlived
        # CONN_MAX_AGE (0: always): without asking on the way whether autocommit
        # was restored, since close() follows either way and a check-in rolls back
        # whatever was left open. After an error Django asks whether the connection
        # still works: that question stays, so that a broken one is discarded.
        close_at = self.close_at
        if (
            self._lease.record is None
            or not _OWN_PATHS
            or self.errors_occurred
            or close_at is None
            or time.monotonic() < close_at
        ):
            if self.errors_occurred and self._lease.record is not None:
                with self._judging_health_of_connection():
                    super().close_if_unusable_or_obsolete()
            else:
                super().close_if_unusable_or_obsolete()
        else:
            self.health_check_done = False
            self.close()

    def close_if_health_check_failed(self) -> None:
        if self.health_check_done or not self.health_check_enabled:
            return  # nothing to judge: Django's method would return at once too
        with self._judging_health_of_connection():
            super().close_if_health_check_failed()

    @contextmanager
    def _judging_health_of_connection(self) -> Iterator[None]:
        self._judging_health = True
        try:
            yield
        finally:
            self._judging_health = False

    def _failed_health_check(self) -> bool:
        """Whether Django is closing the connection because it failed a health check.

        Django's two health checks close the connection when ``is_usable()`` says
        no, before marking the check done; they close it for other reasons only
        after marking it done (an obsolete connection), or before asking (autocommit
        left off, after an error: discarding it then costs a reconnect, safely).
        Whatever answered (the server, a subclass, a proxy in front of the server),
        such a connection must never be handed out again.
        """
        return self._judging_health and not self.health_check_done

    def close(self) -> None:
        if asyncio._get_running_loop() is not None:
            _refuse_in_event_loop()
        lease = self._lease
        if (
            lease.record is None
            or not _OWN_PATHS
            or self._judging_health
            or self.in_atomic_block
            or self.closed_in_transaction
            or self._thread_ident != _thread.get_ident()  # type: ignore[attr-defined]
        ):
            # Django's checks of thread sharing, and its close inside atomic().
            self._closing = True
            try:
                _django_close(self)
            finally:
                self._closing = False
            return
        # The end of a request, as Django's close() ends it.
        if self.run_on_commit:
            self.run_on_commit = []
        self.connection = None
        lease.pool.checkin(lease)  # type: ignore[union-attr]  # set while a record is

    def _close(self) -> None:
        lease = self._lease
        if lease.record is not None:
            if self._failed_health_check():
                self._discard(ConnectionResetError("the connection failed Django's health check"))
                return
            # Closed inside atomic(), or through _close() alone, Django keeps
            # self.connection and expects it closed (with the transaction rolled
            # back by the server): discard it, so the object Django keeps is dead
            # and never handed to another thread.
            reusable = self._closing and not self.in_atomic_block
            lease.pool.checkin(lease, discard=not reusable)  # type: ignore[union-attr]
        elif not self._pooled:
            super()._close()  # type: ignore[misc]  # a private hook django-stubs omits

    def forget_inherited_connection(self) -> None:
        """In a forked child: the connection is the parent's; start afresh.

        Its socket has been disarmed (see PooledConnection.disarm). Inside an
        ``atomic()`` block the child cannot go on with the parent's transaction: as
        after close() in a block, queries fail until the block ends.
        """
        self._lease = Lease()
        self._pool = None
        if self.connection is None or not self._pooled:
            return
        if self.in_atomic_block:
            self.closed_in_transaction = True
            self.needs_rollback = True
        else:
            self.connection = None

    @cached_property
    def wrap_database_errors(self) -> DatabaseErrorWrapper:
        return DisconnectAwareErrorWrapper(self)

    def discard_if_disconnected(self, error: BaseException) -> None:
        """Discard the checked-out connection if ``error`` means it is dead."""
        lease = self._lease
        if lease.record is not None and lease.pool.dialect.is_disconnect_error(error):  # type: ignore[union-attr]
            self._discard(error)

    def _discard(self, error: BaseException) -> None:
        # self.connection stays: it is closed now, so Django's next use of it fails
        # like any dead connection, until close() clears it.
        lease = self._lease
        if lease.record is not None:
            lease.pool.invalidate(lease, error)  # type: ignore[union-attr]
