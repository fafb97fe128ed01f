"""The MySQLdb connection the pool holds, and what it can tell without a round trip.

A request cycle over loopback costs a few tens of microseconds, so every question
the pool asks at checkout and check-in must be answered locally:

* has the server hung up on an idle connection (KILL, wait_timeout, restart)? A
  healthy idle MySQL connection never has anything to read, so a readable or
  hung-up socket means the server is gone;
* may a transaction be open? The server reports it in the status flags of every
  reply; MariaDB Connector/C exposes them through ``mariadb_get_info()``.

Both are asked through mysqlpool._probes, a small C extension built at install,
which keeps the GIL during the call: Python's own ``select.poll()`` and a plain
ctypes ``CDLL`` release and retake it, and with many threads each retake waits
behind the others, which costs many threads a large share of their throughput.
Neither call can block. Without the extension (no C compiler at install) ctypes'
``PyDLL`` asks them, also keeping the GIL, many times more slowly (the figures
of both are in CHANGELOG.rst).
"""

from __future__ import annotations

import ctypes
import functools
import os
import select
import weakref
from typing import Any, ClassVar

from django.views.decorators.debug import sensitive_variables
from MySQLdb import NotSupportedError, OperationalError, _mysql
from MySQLdb.connections import Connection

from mysqlpool.network import CONNECT_TIMEOUT, explained_connect_error

try:
    from mysqlpool import _probes
except ImportError:  # built without a C compiler: ctypes asks instead
    _probes = None  # type: ignore[assignment]

# From mysql_com.h: set in every reply while a transaction is active.
SERVER_STATUS_IN_TRANS = 0x0001
# From mariadb's mysql.h, enum mariadb_value.
_MARIADB_CONNECTION_SERVER_STATUS = 30
_CAPSULE_NAME = b"_mysql.connection.native_connection"
_HUNG_UP = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL
# How long a close waits for the server to end the session (see close_and_wait()).
SERVER_CLOSE_WAIT = 0.25


class _PollFd(ctypes.Structure):
    _fields_ = (("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short))


def _gil_holding(library: str | None, name: str, argtypes: tuple[Any, ...], restype: Any) -> Any:
    """A C function called without releasing the GIL, or None if it is missing."""
    return _c_function(ctypes.PyDLL, library, name, argtypes, restype)


def _c_function(
    loader: type[ctypes.CDLL], library: str | None, name: str, argtypes: tuple[Any, ...], restype: Any
) -> Any:
    """A C function of ``library`` (None: the process) loaded by ``loader``, or None if missing."""
    try:
        function = getattr(loader(library), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = restype
    return function


# None when mysqlclient was built against MySQL's libmysqlclient, which has no such
# call: the pool then rolls back on every check-in to stay safe.
_mariadb_get_info = _gil_holding(
    _mysql.__file__, "mariadb_get_info", (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p), ctypes.c_char
)
# COM_RESET_CONNECTION, in every client library mysqlclient supports (MariaDB
# Connector/C 3.0+, MySQL 5.7+). A plain CDLL call, which releases the GIL: it
# waits for the server.
_reset_connection = _c_function(
    ctypes.CDLL, _mysql.__file__, "mysql_reset_connection", (ctypes.c_void_p,), ctypes.c_int
)
# poll(2) from the C library already loaded into the process.
_poll = _gil_holding(None, "poll", (ctypes.POINTER(_PollFd), ctypes.c_ulong, ctypes.c_int), ctypes.c_int)
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.argtypes = (ctypes.py_object, ctypes.c_char_p)
_capsule_pointer.restype = ctypes.c_void_p
# Where mariadb_get_info() is, for the C probes (0: nowhere).
_GET_INFO_ADDRESS: int = 0
if _mariadb_get_info is not None:
    _GET_INFO_ADDRESS = ctypes.cast(_mariadb_get_info, ctypes.c_void_p).value or 0


def _cannot_tell() -> bool:
    """A closed connection's answer to in_transaction(): a transaction may be open."""
    return True


class PooledConnection(Connection):
    """A MySQLdb connection that answers the pool's questions locally."""

    # Every one alive in this process, wherever it is (idle in a pool, checked out
    # by any thread, dropped but not yet collected), for disarm_all() after fork.
    _alive: ClassVar[weakref.WeakSet[PooledConnection]] = weakref.WeakSet()
    # In a forked child, the parent's connections, disarmed and kept for the life
    # of the process (see disarm_all()).
    _inherited: ClassVar[set[PooledConnection]] = set()

    # mysqlclient's connection type looks its attributes up with a function of
    # its own (only to answer ``closed``), and CPython specializes attribute
    # access only for types that use the generic one: so every lookup on a
    # connection from Python (the cursor's query, store_result, encoding...)
    # went through the type's method cache, each costing ~500 instructions, and
    # thousands more when two names shared a slot of that cache
    # (bench/README.rst). Python's generic lookup, and ``closed`` as a property,
    # answer the same.
    __getattribute__ = object.__getattribute__
    # The socket's number, which the checkout in C reads on every checkout: as a
    # slot, it reads it where it lies (read_slot() in mysqlpool/_hot_path.c)
    # instead of looking it up in the type and the instance's dict.
    __slots__ = ("_fd",)

    @property
    def closed(self) -> int:
        """1 once the connection is closed, else 0, as mysqlclient answers."""
        return int(not self.open)

    # The connect arguments hold the password: hidden from Django's error reports,
    # with the variables of MySQLdb's frames below (see registry.pool_for).
    @sensitive_variables()
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except OperationalError as error:
            explained = explained_connect_error(error, kwargs.get(CONNECT_TIMEOUT))
            if explained is error:
                raise
            raise explained from error
        self._alive.add(self)
        # The socket's number is fixed for the connection's life, which ends
        # before anything else may reuse it: noted once.
        self._fd: int = self.fileno()  # type: ignore[no-untyped-call]
        self._status = ctypes.c_uint()
        self._status_ref = ctypes.byref(self._status)
        # The MYSQL* handle, or 0 if the server status cannot be read through it.
        self._native = self._native_pointer()
        self._pollfd = _PollFd(self._fd, _HUNG_UP, 0)
        self._pollfd_ref = ctypes.byref(self._pollfd)
        if _probes is not None:
            # The probes with their arguments bound: each question is then one C
            # call, without a Python frame (a method call cost about 1,200
            # instructions, each probe's own work a few hundred). Neither binds
            # the connection itself, so no reference cycle delays its collection
            # (and mysqlclient's COM_QUIT) to the cyclic garbage collector.
            self.server_hung_up = functools.partial(_probes.hung_up, self._fd)  # type: ignore[method-assign]
            self.in_transaction = functools.partial(  # type: ignore[method-assign]
                _probes.in_transaction, _GET_INFO_ADDRESS, self._native
            )
        # What mysqlclient set up in the session at connect, for reset_session().
        self._charset: str = kwargs.get("charset") or self.character_set_name()  # type: ignore[no-untyped-call]
        self._collation: str | None = kwargs.get("collation")
        self._sql_mode: str | None = kwargs.get("sql_mode")
        self._init_command: str | None = kwargs.get("init_command")

    def _native_pointer(self) -> int:
        if _mariadb_get_info is None or not hasattr(self, "_get_native_connection"):
            return 0
        native = self._get_native_connection()  # type: ignore[no-untyped-call]
        pointer: int = _capsule_pointer(native, _CAPSULE_NAME)
        if _mariadb_get_info(pointer, _MARIADB_CONNECTION_SERVER_STATUS, self._status_ref) != b"\x00":
            return 0
        return pointer

    # With the C probes, __init__ replaces both methods by the bound C calls.

    def server_hung_up(self) -> bool:
        """True if the server closed this idle connection, or sent it anything."""
        return self.server_hung_up_by_ctypes()

    def in_transaction(self) -> bool:
        """True if a transaction may be open, so that a rollback is needed."""
        return self.in_transaction_by_ctypes()

    def close(self) -> None:
        # The MYSQL handle the bound probe reads is freed here: from now on a
        # transaction may be open, as far as anyone can tell.
        self.in_transaction = _cannot_tell  # type: ignore[method-assign]
        super().close()  # type: ignore[no-untyped-call]

    def server_hung_up_by_ctypes(self) -> bool:
        return bool(_poll(self._pollfd_ref, 1, 0))

    def in_transaction_by_ctypes(self) -> bool:
        if not self._native or not self.open:
            return True
        _mariadb_get_info(self._native, _MARIADB_CONNECTION_SERVER_STATUS, self._status_ref)
        return bool(self._status.value & SERVER_STATUS_IN_TRANS)

    def reset_session(self) -> None:
        """Reset the server session, then set it up again as mysqlclient did at connect.

        COM_RESET_CONNECTION rolls back, releases GET_LOCK() and LOCK TABLES
        locks, drops temporary tables, prepared statements and user variables, and
        gives session variables the server's global values, the character set's
        included. So the character set and collation, ``sql_mode`` and
        ``init_command`` are set again here; Django's own setup (isolation level,
        autocommit) is made at the next checkout.
        """
        if _reset_connection is None:
            raise NotSupportedError("the MySQL client library has no mysql_reset_connection()")
        native = _capsule_pointer(self._get_native_connection(), _CAPSULE_NAME)  # type: ignore[no-untyped-call]
        if _reset_connection(native) != 0:
            raise OperationalError(self.errno(), self.error())  # type: ignore[no-untyped-call]
        self.set_character_set(self._charset, self._collation)
        if self._sql_mode:
            self.set_sql_mode(self._sql_mode)
        if self._init_command:
            self._run(self._init_command)

    def _run(self, sql: str) -> None:
        """Run ``sql``, one statement or several, and discard what it returns."""
        self.query(sql)
        self.store_result()  # type: ignore[no-untyped-call]
        while self.next_result() == 0:  # type: ignore[no-untyped-call]
            self.store_result()  # type: ignore[no-untyped-call]

    def close_and_wait(self, timeout: float = SERVER_CLOSE_WAIT) -> None:
        """Close the connection, then wait up to ``timeout`` s for the server to end it.

        After COM_QUIT the server ends the session in its own time, and counts it
        until then. A connection opened at once to take this one's place in a
        budget (or in max_connections) would find the server still counting both.
        The server hangs up its end of the socket as it ends the session: a
        duplicate of the descriptor, kept open across the close, sees that.
        """
        if not self.open:
            return
        watch = os.dup(self._fd)
        try:
            self.close()
            poller = select.poll()  # releases the GIL while it waits, as it should here
            poller.register(watch, select.POLLIN | select.POLLHUP)
            poller.poll(timeout * 1000)
        finally:
            os.close(watch)

    def disarm(self, devnull: int) -> None:
        """Make this connection, inherited through fork(), harmless to its parent.

        Its socket is shared with the parent process. mysqlclient sends COM_QUIT
        when the connection is closed or garbage-collected, which would end the
        parent's session; closing the descriptor instead would free its number for
        the next socket the child opens, and SQL meant for the server would go
        there. So /dev/null takes the descriptor's place: the number stays taken,
        anything written goes nowhere, and reads see the end of the file.
        """
        # The number noted at connect: a connection another thread of the parent
        # was using at the fork stays marked busy, and mysqlclient then refuses
        # fileno() in the child.
        if self.open:
            os.dup2(devnull, self._fd, inheritable=False)

    @classmethod
    def disarm_all(cls) -> int:
        """Disarm every connection of this process; return how many there were.

        They are also kept, never to be collected: the child may close their
        descriptors itself (python-daemon closes every descriptor it was not told
        to keep), and a collected connection's COM_QUIT and close() would then go
        to whatever socket took the number since.
        """
        connections = [connection for connection in cls._alive if connection.open]
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for connection in connections:
                connection.disarm(devnull)
        finally:
            os.close(devnull)
        cls._inherited.update(connections)
        return len(connections)
