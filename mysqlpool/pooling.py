"""One alias's SQLAlchemy pool: checkout, check-in and invalidation.

SQLAlchemy's pool makes and keeps the connections: its connection records open,
recycle, ping and invalidate them, its QueuePool holds the idle ones and counts
the room left (overflow), and every other pool class works as SQLAlchemy made it.
mysqlpool borrows the records directly (through the template methods every pool
class implements, mysqlpool.sqlalchemy_internals) instead of through the
per-checkout proxy SQLAlchemy hands to ORM sessions: Django's DatabaseWrapper
already is that proxy, and the second one cost more than the rest of a reused
checkout (CHANGELOG.rst has the figures). What the proxy
did is done here: ``pre_ping``, resetting on return, returning a checkout its
owner dropped.

For a QueuePool, who gets a connection is decided by mysqlpool.lending: idle
records are taken and returned without a lock while nobody waits, and threads
that must wait, for the pool or for the budget, are served first come, first
served.

On top of that, idle connections the server hung up on are replaced at checkout
without a round trip, a transaction is rolled back at check-in only when the server
says one is open, pool errors become Django errors, and every step is counted.
"""

from __future__ import annotations

import logging
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from sqlalchemy import event
from sqlalchemy import exc as sqla_exc
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from mysqlpool import resets, stats
from mysqlpool import sqlalchemy_internals as sqla
from mysqlpool.budget import Budget
from mysqlpool.config import PoolConfig
from mysqlpool.connection import PooledConnection
from mysqlpool.dialect import PoolDialect
from mysqlpool.errors import PoolTimeout
from mysqlpool.lending import Lender
from mysqlpool.stats import FOLD_MASK
from mysqlpool.throttled import ThrottledWarning
from mysqlpool.waiters import Waiter

try:
    from mysqlpool._hot_path import HotPath, LeaseFields
except ImportError:  # built without a C compiler: the Python methods do it all
    HotPath = None  # type: ignore[assignment,misc]

logger = logging.getLogger("mysqlpool")

# Set in a connection's record info once Django has initialized its session (to the
# session settings it was initialized with, or to none once a check-in reset the
# session), so a reused connection is neither initialized again needlessly nor
# mistaken for a fresh one. The pool clears record info whenever it replaces the
# server connection.
INITIALIZED = "mysqlpool.initialized"

# How long a checkout waits, for the pool or the budget, when the pool class has no
# timeout of its own (QueuePool's default).
_DEFAULT_TIMEOUT = 30.0

# Bound once: read on every checkout and check-in.
_monotonic = time.monotonic

# Connection parameters that may be logged and shown.
_SHOWN_PARAMS = ("host", "port", "unix_socket", "database", "user")


class _LeaseFields:
    """What a lease holds (the hot path's LeaseFields in C holds the same, as C fields)."""

    __slots__ = ("connection", "pool", "previous", "record", "session", "since")

    def __init__(self) -> None:
        self.pool: AliasPool | None = None
        self.record: ConnectionPoolEntry | None = None
        # The record lent last, kept after the check-in: the next checkout takes it
        # again if it is idle (Lender.take_idle_for).
        self.previous: ConnectionPoolEntry | None = None
        self.connection: PooledConnection | None = None
        # The session settings the connection was set up with; None if it is new.
        self.session: Any = None
        # When the checkout ended (time.monotonic()): the check-in times the use.
        self.since = 0.0


if HotPath is not None:
    _LeaseFields = LeaseFields  # type: ignore[assignment,misc]  # the same fields, in C


class Lease(_LeaseFields):
    """What one Django wrapper has borrowed from a pool, between checkout and check-in.

    Each wrapper keeps one for its life and lends it to every checkout: ``record``
    is None while nothing is checked out.
    """

    __slots__ = ()

    def note_session(self, session: Any) -> None:
        """The session of the checked-out connection is set up with ``session``."""
        if self.record is not None:
            self.record.info[INITIALIZED] = session

    def __del__(self) -> None:
        # The wrapper was dropped without close(), typically with the thread that
        # owned it. Nobody knows what the connection holds: close it, free the slot.
        pool = self.pool
        if self.record is not None and pool is not None and not pool.orphaned:
            logger.warning(
                "A connection of database alias %r was never returned to its pool; "
                "closing it. Wrap threads' units of work in auto_close_db.",
                pool.alias,
            )
            pool.checkin(self, discard=True)
        self.record = None


class AliasPool:
    """The pool of one database alias in this process."""

    # Every pool alive, the disposed ones too (their checkouts may still be out):
    # a forked child must orphan them all.
    alive: ClassVar[weakref.WeakSet[AliasPool]] = weakref.WeakSet()

    def __init__(
        self,
        config: PoolConfig,
        connect_params: Mapping[str, Any],
        isolation_level: str | None,
        settings_dict: Mapping[str, Any],
        budget: Budget,
        neighbours: Callable[[], Iterable[AliasPool]],
        counters: stats.PoolStats,
    ) -> None:
        self.config = config
        self.alias = config.alias
        # What every connection of the pool is opened with (password included:
        # never log or show it), the isolation level Django sets on it, and the
        # settings they come from.
        self.connect_params = dict(connect_params)
        self.isolation_level = isolation_level
        self.settings_dict = settings_dict
        # The process's budget, and the other pools, whose idle connections may make
        # room in it.
        self.budget = budget
        self._neighbours = neighbours
        self._timeout = config.argument("timeout") or _DEFAULT_TIMEOUT
        self._timeout_warnings = ThrottledWarning(logger)
        # The alias's counters, which outlive the pool (see mysqlpool.registry).
        self.stats = counters
        self._count_checkout = self.stats.checkouts.add
        self._record_wait = self.stats.durations[stats.WAIT_TIMES].record
        self._record_use = self.stats.durations[stats.USE_TIMES].record
        self.dialect = PoolDialect(on_closed=self._closed)
        self.disposed = False
        # Inherited through fork(): nothing of it may be touched again (see orphan()).
        self.orphaned = False
        self.target = {k: connect_params[k] for k in _SHOWN_PARAMS if k in connect_params}
        self._pre_ping = config.argument("pre_ping")
        self._keepalive = config.keepalive
        # SQLAlchemy's per-checkout proxy, which mysqlpool does without, logs each
        # checkout and check-in with echo="debug": mysqlpool does, in its log.
        self._log_checkouts = config.argument("echo") == "debug"
        # A pool class that closes what is returned leaves the server nothing to reset.
        self._reset = (
            resets.no_reset if config.closes_returned_connections else resets.RESETS[config.reset_style]
        )
        self._rolls_back = self._reset is resets.rollback_if_in_transaction
        self._pool = config.backend(
            creator=self._connect, dialect=self.dialect, **config.sqlalchemy_arguments
        )
        # A QueuePool's records are lent by mysqlpool (mysqlpool.lending); other
        # pool classes lend theirs through SQLAlchemy.
        self._lender: Lender | None = None
        if isinstance(self._pool, QueuePool):
            self._lender = Lender(
                self,
                self._pool,
                use_lifo=bool(config.argument("use_lifo")),
                max_idle=config.argument("pool_size") or 0,
                timeout=self._timeout,
            )
            # The checkout's common case, bound once: an idle record, taken without a lock.
            self._take_idle_for: Callable[[ConnectionPoolEntry | None], ConnectionPoolEntry] = (
                self._lender.take_idle_for
            )
        self.hot_path = self._hot_path_in_c()
        # Set by a thread that counted its next connection in the budget already.
        self._reserved = threading.local()
        self._count_invalidations()
        self.alive.add(self)
        logger.info(
            "Created %s for database alias %r (%s) with %s",
            config.backend_name,
            self.alias,
            self.target,
            config.shown_arguments(),
        )

    def __repr__(self) -> str:
        return f"<AliasPool {self.alias!r} {self.config.backend_name} {self.target}>"

    # ---------------------------------------------------------------- opening

    def _connect(self) -> Any:
        """SQLAlchemy's creator: a new connection, counted in the budget."""
        if getattr(self._reserved, "held", False):
            self._reserved.held = False
        else:
            self._wait_for_budget_room()
        started = time.monotonic()
        try:
            connection = PooledConnection(**self.connect_params)
            if self._keepalive is not None:  # once per server connection, never per checkout
                self._keepalive.set_on(connection.fileno())  # type: ignore[no-untyped-call]
        except BaseException:
            self.budget.released()
            raise
        self.stats.durations[stats.CREATE_TIMES].record(time.monotonic() - started)
        self.stats.add(stats.CONNECTS)
        return connection

    def _wait_for_budget_room(self) -> None:
        """Count a connection in the budget, waiting in line for room if it is full."""
        waiter = Waiter(self, holds_slot=True)
        if self.reserve_or_enlist(waiter):
            return
        started = time.monotonic()
        try:
            served = waiter.wait(self._timeout) is not None or not waiter.withdraw()
        except BaseException:  # see Lender._abandon()
            if not waiter.withdraw():
                self.budget.released()
            raise
        finally:
            self.budget.leave_line(waiter, time.monotonic() - started)
        if not served:
            raise self.budget.exceeded(self.alias, self._timeout)

    def reserve_or_enlist(self, waiter: Waiter) -> bool:
        """Count a connection in the budget, closing idle ones of other aliases to make
        room if needed (more than one if the budget was lowered); else put ``waiter``
        in the budget's line."""
        while not self.budget.reserve():
            if not self._make_room():
                return self.budget.reserve_or_enlist(waiter)
        return True

    def _make_room(self) -> bool:
        """Close an idle connection of another alias; False if there is none."""
        return any(pool.evict_idle() for pool in self._neighbours() if pool is not self)

    def evict_idle(self) -> bool:
        """Close one idle connection to make room in the budget; False if none."""
        if self._lender is None or self.orphaned:
            return False
        record = self._lender.longest_idle()
        if record is None:
            return False
        self.close_cleanly(record)
        logger.info("Closed an idle connection of alias %r to make room in the budget", self.alias)
        return True

    def _closed(self) -> None:
        """A connection of the pool is closed (by the dialect): its room in the budget is free."""
        self.stats.add(stats.CLOSES)
        if not self.orphaned:  # a forked child's budget never counted it
            self.budget.released()

    def _count_invalidations(self) -> None:
        def invalidated(dbapi_connection: Any, record: Any, error: BaseException | None) -> None:
            self.stats.invalidated(_cause_of(error))
            logger.info("Invalidated a connection of alias %r: %r", self.alias, error)

        event.listen(self._pool, "invalidate", invalidated)

    def _hot_path_in_c(self) -> HotPath | None:
        """The common checkout and check-in in C (mysqlpool/_hot_path.c), where it applies.

        It does what checkout() and checkin() do when a connection is at hand and
        nobody waits, and passes every other case to them; it replaces them on this
        pool. Not built without a C compiler at install, nor for a pool that pings
        or logs each checkout, or resets the session otherwise than by rolling
        back: those always take the Python methods.
        """
        lender = self._lender
        if HotPath is None or lender is None or self._pre_ping or self._log_checkouts or not self._rolls_back:
            return None
        hot_path = HotPath(
            pool=self,
            check_out=types.MethodType(AliasPool.checkout, self),
            lend=self._lend,
            check_in=types.MethodType(AliasPool.checkin, self),
            count_checkout=self._count_checkout,
            fold=self.stats.fold,
            take_idle=lender.take_idle,
            idle=lender.idle,
            line=lender.line,
            serve_late_comers=lender.serve_late_comers,
            budget=self.budget,
            hold=self.budget.holders.hold,
            release=self.budget.holders.release,
            alias=self.alias,
            queue_pool=self._pool,
            record_use=self._record_use,
            initialized=INITIALIZED,
            wall_clock=time.time,
            monotonic=_monotonic,
            max_idle=lender.max_idle,
        )
        self.budget.follow(hot_path)
        self.checkout = hot_path.checkout  # type: ignore[method-assign,assignment]
        self.checkin = hot_path.checkin  # type: ignore[method-assign,assignment]
        return hot_path

    # ---------------------------------------------------------------- checkout

    def checkout(self, lease: Lease) -> PooledConnection:
        """Lend ``lease`` a healthy connection, waiting up to the pool's timeout for one."""
        if not self._count_checkout() & FOLD_MASK:
            self.stats.fold()
        return self._lend(lease)

    def _lend(self, lease: Lease, record: ConnectionPoolEntry | None = None) -> PooledConnection:
        """The checkout, counted: from ``record`` if one was taken from the idle already."""
        started = 0.0  # set once no idle connection was at hand: the wait is timed
        while True:
            if record is None:
                if self._lender is None:
                    started = started or self._slow_checkout()
                    record = self._record_from_sqlalchemy()
                else:
                    try:
                        # The common case, inlined: an idle connection and nobody in line
                        # (while anyone waits, nothing idles: returns go to the line).
                        record = self._take_idle_for(lease.previous)
                    except IndexError:
                        record = None
                    if record is None:
                        # Outside the handler: an error connecting is not shown as
                        # raised "during handling of" the IndexError.
                        started = started or self._slow_checkout()
                        record = self._lender.record_in_turn()
            try:
                # The record, not its public protocol, knows how to (re)connect.
                connection: PooledConnection = sqla.connection_of(record)
                session = record.info.get(INITIALIZED)
                dead = session is not None and (
                    connection.server_hung_up()
                    or (self._pre_ping and not sqla.ping(self.dialect, connection))
                )
            except BaseException as error:
                self._close_at_once(record, error)
                raise
            if not dead:
                lease.pool, lease.record, lease.connection, lease.session = self, record, connection, session
                lease.previous = record
                lease.since = now = _monotonic()
                if started:
                    self._record_wait(now - started)
                if self.budget.tracking:
                    self.budget.holders.hold(id(lease), self.alias)
                if self._log_checkouts:
                    self._pool.logger.debug("Connection %r checked out from pool", connection)
                return connection
            # An idle connection the server hung up on is replaced here, so the user
            # never sees the error. Each pass discards one dead connection, so the
            # loop ends once the pool has no dead idle ones left.
            self._close_at_once(record, ServerHungUp("the server closed the idle connection"))
            record = None

    def _slow_checkout(self) -> float:
        """Count a checkout that must wait or connect; when it started."""
        self.stats.slow_checkouts.add()
        return _monotonic()

    def _record_from_sqlalchemy(self) -> ConnectionPoolEntry:
        try:
            return sqla.record_from(self._pool)
        except sqla_exc.TimeoutError:
            self.stats.add(stats.TIMEOUTS)
            # Raised outside the except block: the SQLAlchemy error adds nothing.
        raise PoolTimeout(self._timeout_message())

    def new_record(self) -> ConnectionPoolEntry:
        """Open a connection in room taken in the pool and in the budget."""
        self._reserved.held = True
        try:
            return sqla.open_record(self._pool)
        except BaseException:
            if self._reserved.held:  # the creator never ran
                self._reserved.held = False
                self.budget.released()
            self._lender.free_slot()  # type: ignore[union-attr]  # only a lender opens records itself
            raise
        finally:
            self._reserved.held = False

    def timed_out(self, waiter: Waiter) -> Exception:
        """The error for a thread that waited its pool's timeout in vain."""
        if waiter.holds_slot:
            return self.budget.exceeded(self.alias, self._timeout)
        self.stats.add(stats.TIMEOUTS)
        message = self._timeout_message()
        # Logged as the budget's timeouts are: under a web server, the error
        # itself may only reach a 500 page.
        self._timeout_warnings.warn(message)
        return PoolTimeout(message)

    def _timeout_message(self) -> str:
        size, overflow = self.config.argument("pool_size"), self.config.argument("max_overflow")
        return (
            f"mysqlpool: no connection of database alias {self.alias!r} became free "
            f"within timeout={self.config.argument('timeout')}s: all "
            f"{size + overflow} (pool_size={size} + max_overflow={overflow}) are "
            "checked out. Return connections sooner (auto_close_db() around each unit of "
            "work, no long transactions) or raise pool_size/max_overflow." + self._holders_text()
        )

    def _holders_text(self) -> str:
        """The holders of the alias's connections, where checkouts are tracked (a
        budget or a hold warning is set); else how to have them named."""
        if not self.budget.tracking:
            return " Set MYSQLPOOL_BUDGET or MYSQLPOOL_HOLD_WARNING to have their holders named."
        lines = self.budget.holders.describe_all(self.alias) or ["(none recorded)"]
        return "\nHolders:\n  " + "\n  ".join(lines)

    # ---------------------------------------------------------------- check-in

    def checkin(self, lease: Lease, *, discard: bool = False) -> None:
        """Return a connection: reset it, or close it if ``discard`` or it fails to reset."""
        record, lease.record = lease.record, None
        if record is None or self.orphaned:
            return
        self._record_use(_monotonic() - lease.since)
        if self.budget.tracking:
            self.budget.holders.release(id(lease))
        if discard or self.disposed:
            self._close_at_once(record, None)
            return
        connection: PooledConnection = lease.connection  # type: ignore[assignment]  # set with the record
        if self._log_checkouts:
            self._pool.logger.debug("Connection %r being returned to pool", connection)
        try:
            if self._rolls_back:  # the default, inlined
                if connection.in_transaction():
                    connection.rollback()  # type: ignore[no-untyped-call]
            elif not self._reset(connection):
                # Django's setup went with the session; the connection is no new one.
                record.info[INITIALIZED] = _SESSION_RESET
        except Exception as error:
            logger.warning("Closing a connection of alias %r that failed to reset: %r", self.alias, error)
            self._close_at_once(record, error)
            return
        lender = self._lender
        if lender is None:
            sqla.return_record(self._pool, record)
        elif lender.line or self.budget.line or (lender.max_idle and len(lender.idle) >= lender.max_idle):
            lender.hand_over(record)
        else:
            # The common case, inlined (a call here costs about 2% of a request cycle):
            # nobody waits and there is room among the idle; no lock needed.
            lender.idle.append(record)
            if lender.line:  # someone lined up meanwhile
                lender.serve_late_comers()

    def invalidate(self, lease: Lease, error: BaseException) -> None:
        """Close a broken connection at once; its room goes to the next in line."""
        record, lease.record = lease.record, None
        if record is not None and not self.orphaned:
            self._record_use(_monotonic() - lease.since)
            if self.budget.tracking:
                self.budget.holders.release(id(lease))
            self._close_at_once(record, error)

    def _close_at_once(self, record: ConnectionPoolEntry, error: BaseException | None) -> None:
        """Close the record's connection without waiting for the server, and free its room.

        For a connection that is broken (``error``), or whose state nobody knows.
        """
        lender = self._lender
        if lender is None:
            try:
                record.invalidate(error)
            finally:
                sqla.return_record(self._pool, record)
            return
        try:
            record.invalidate(error)
        finally:
            lender.free_slot()

    def close_cleanly(self, record: ConnectionPoolEntry) -> None:
        """Close a healthy lent record's connection (waiting for the server) and free its room."""
        try:
            record.close()
        finally:
            self._lender.free_slot()  # type: ignore[union-attr]  # only lent records come here

    # ---------------------------------------------------------------- life cycle

    def orphan(self) -> None:
        """Abandon this pool in a forked child, whose parent owns its connections.

        Its locks may have been held by another thread of the parent at the fork,
        and its connections are the parent's: returns to it are dropped, and the
        connections, disarmed, are left to the garbage collector.
        """
        self.orphaned = self.disposed = True
        if self.hot_path is not None:
            self.hot_path.stop()

    def dispose(self) -> None:
        """Close the idle connections; the checked-out ones close when returned."""
        self.disposed = True
        if self.hot_path is not None:
            self.hot_path.stop()
        if self._lender is not None:
            for record in self._lender.take_all_idle():
                self.close_cleanly(record)
        else:
            self._pool.dispose()
        logger.info("Closed the pool of database alias %r", self.alias)

    def status(self) -> dict[str, Any]:
        """Live figures of the pool: connections open, idle, checked out, overflow."""
        counters = self.stats.get()
        open_connections = self.stats.open_connections()
        if self._lender is not None:
            idle = len(self._lender.idle)
            overflow = self._lender.overflow()
            pending = len(self._lender.line)
            size, overflow_most = self.config.argument("pool_size"), self.config.argument("max_overflow")
            # QueuePool's 0 and -1 mean no limit.
            most = None if size == 0 or overflow_most == -1 else size + overflow_most
            idle_most = size or None
        else:
            # NullPool closes what is returned; the others keep no shared idle list
            # that can be read, so count what Django holds as checked out.
            idle, overflow, pending, most, idle_most = 0, 0, 0, None, None
        return {
            "budget": self.budget.status(),
            "backend": self.config.backend_name,
            "open": open_connections,
            "idle": idle,
            "checked_out": open_connections - idle,
            "overflow": overflow,
            # Threads waiting for a connection of the pool (those for the budget too).
            "pending": pending,
            # The most connections it may hold, and idle; None where not bounded.
            "max": most,
            "idle_max": idle_most,
            **counters,
        }


class ServerHungUp(ConnectionResetError):
    """The server closed an idle connection: it is replaced before the user sees it."""


def _cause_of(error: BaseException | None) -> str:
    """Why a connection was invalidated, for the counts by cause."""
    if error is None:
        return stats.DISCARDED
    return stats.HUNG_UP if isinstance(error, ServerHungUp) else stats.FAILED


# What a check-in that reset the whole session leaves as the session settings: none
# that Django set, on a connection that has been used (so checked for a hang-up).
_SESSION_RESET: tuple[()] = ()
