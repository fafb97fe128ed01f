"""What the tests share besides fixtures: a view of the server from outside, request cycles, threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import MySQLdb
from django.db import connections

from mysqlpool import registry
from mysqlpool.backends.mysqlpool.base import DatabaseWrapper
from tests import dbserver
from tests.processes import established_to


class Server:
    """A connection outside every pool, to watch and disturb the pooled ones."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.database = settings["NAME"]
        self.conn = MySQLdb.connect(
            host=settings["HOST"],
            port=int(settings["PORT"]),
            user=settings["USER"],
            password=settings["PASSWORD"],
            autocommit=True,
        )

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, args or None)
            return list(cursor.fetchall())

    def processlist(self) -> list[tuple[Any, ...]]:
        """SHOW PROCESSLIST: Id, User, Host, db, Command, ...

        Not information_schema.processlist, which writes a temporary table to disk
        for every query: cheaper when sampled in a loop, and one thing less that a
        deleted temporary file can break (see dbserver's --tmpdir).
        """
        return self.query("SHOW PROCESSLIST")

    def sessions(self) -> set[int]:
        """Ids of the server sessions connected to the test database."""
        return set(self.client_ports())

    def client_ports(self) -> dict[int, int]:
        """The server sessions on the test database, and the port of each one's client (0: not TCP)."""
        own = self.conn.thread_id()
        return {
            row[0]: int(row[2].rsplit(":", 1)[1]) if ":" in row[2] else 0
            for row in self.processlist()
            if row[3] == self.database and row[0] != own
        }

    def connects(self) -> int:
        """How many connections the server has accepted since it started (status Connections)."""
        return int(self.query("SHOW GLOBAL STATUS LIKE 'Connections'")[0][1])

    def aborted_clients(self) -> int:
        """How many sessions ended without the client's goodbye (COM_QUIT) since the server started."""
        return int(self.query("SHOW GLOBAL STATUS LIKE 'Aborted_clients'")[0][1])

    def kill(self, session_id: int) -> None:
        self.query(f"KILL CONNECTION {int(session_id)}")

    def wait_until_gone(self, session_id: int, timeout: float = 10) -> None:
        """Return once the server no longer lists the session; fail after timeout."""
        deadline = time.monotonic() + timeout
        while session_id in self.all_sessions():
            assert time.monotonic() < deadline, f"session {session_id} still listed"
            time.sleep(0.01)

    def all_sessions(self) -> set[int]:
        return {row[0] for row in self.processlist()}


def admin(server: dbserver.Server, sql: str) -> None:
    """Run ``sql`` on a server of the tests' own, as its root user."""
    connection = MySQLdb.connect(
        host=server.host, port=server.port, user=server.user, password=server.password
    )
    with connection, connection.cursor() as cursor:
        cursor.execute(sql)


def settings_for(server: dbserver.Server, database: str, **extra: Any) -> dict[str, Any]:
    """The test settings of an alias, on ``database`` of a server of the tests' own."""
    settings = dict(connections["default"].settings_dict)
    settings.update(
        NAME=database, HOST=server.host, PORT=server.port, USER=server.user, PASSWORD=server.password
    )
    settings.update(extra)
    return settings


class SessionSampler:
    """Counts, in a thread of its own, the sessions the server lists on the test database.

    ``observers`` are sessions of the test itself, left out; ``interval`` the
    seconds between two samples (0: none, for tests; a benchmark leaves the CPU to
    what it measures). With ``held_only``, a session counts only while a process of
    this host holds its client socket: MariaDB lists a session a moment after its
    client has hung up (a recycled worker's), which no process holds any more. Use
    it as a context manager; ``counts`` holds every sample, ``peak`` the largest.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        observers: Iterable[int] = (),
        interval: float = 0,
        held_only: bool = False,
    ) -> None:
        self.counts: list[int] = []
        self._interval = interval
        self._held_only_to = int(settings["PORT"]) if held_only else None
        self._watcher = Server(settings)
        self._observers = set(observers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="session-sampler")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.counts.append(self._count())
            self._stop.wait(self._interval)

    def _count(self) -> int:
        sessions = self._watcher.client_ports()
        if self._held_only_to is not None:
            held = established_to(self._held_only_to)
            sessions = {session: port for session, port in sessions.items() if port in held}
        return len(sessions.keys() - self._observers)

    @property
    def peak(self) -> int:
        return max(self.counts, default=0)

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._watcher.conn.close()


def connections_by_pid(uses: Iterable[tuple[int, int]]) -> dict[int, set[int]]:
    """(pid, server connection id) pairs: for each process, the connections it used."""
    by_pid: dict[int, set[int]] = {}
    for pid, connection in uses:
        by_pid.setdefault(pid, set()).add(connection)
    return by_pid


def connection_id(wrapper: Any) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        return int(cursor.fetchone()[0])


def request_cycle(wrapper: Any, sql: str = "SELECT 1") -> Any:
    """What one web request does: a query, then Django's end-of-request close."""
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        result = cursor.fetchall()
    wrapper.close_if_unusable_or_obsolete()
    return result


def pool_stats(wrapper: DatabaseWrapper) -> dict[str, Any]:
    return registry.get_stats()[wrapper.alias]


def checked_out(alias: str) -> int:
    return int(registry.get_stats()[alias]["checked_out"])


def run_threads(target: Callable[[], Any], count: int) -> None:
    """Run ``target`` in ``count`` threads at once, and wait for all of them."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def cycles_in_threads(
    settings: dict[str, Any], alias: str, threads: int, cycles: int, sql: str
) -> list[BaseException]:
    """Each thread runs request cycles on its own wrapper of ``alias``; the errors."""
    errors: list[BaseException] = []

    def work() -> None:
        wrapper = DatabaseWrapper(settings, alias=alias)
        try:
            for _ in range(cycles):
                request_cycle(wrapper, sql)
        except BaseException as error:  # noqa: BLE001 - returned to the test
            errors.append(error)
        finally:
            wrapper.close()

    run_threads(work, threads)
    return errors
