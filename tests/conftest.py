"""Fixtures: the server, pooled wrappers built from the test settings, a view from outside."""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import MySQLdb
import pytest
from django.conf import settings
from django.db import connections

from mysqlpool import close_pool, registry
from mysqlpool.backends.mysqlpool.base import DatabaseWrapper
from tests import dbserver

_aliases = itertools.count()


@pytest.fixture(scope="session")
def database_server(request: pytest.FixtureRequest) -> Iterator[dbserver.Server]:
    """The MariaDB server of the run: MYSQLPOOL_TEST_HOST's, or a throwaway one.

    If tests failed, the end of the throwaway server's log is shown before it is
    removed: a server that stopped answering says why there.
    """
    configured = dbserver.configured_server()
    if configured is not None:
        yield configured
        return
    with dbserver.owned_server() as owned:
        yield owned.server
        if request.session.testsfailed:
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            state = "running" if owned.executor.running() else "NOT RUNNING"
            reporter.write_sep("-", f"the test server ({state}): the end of its log")
            reporter.write_line(owned.log_tail())


@pytest.fixture(scope="session")
def django_db_modify_db_settings(database_server: dbserver.Server) -> None:
    """pytest-django's hook to point the settings at the server before the test databases."""
    for database in settings.DATABASES.values():
        database.update(
            HOST=database_server.host,
            PORT=database_server.port,
            USER=database_server.user,
            PASSWORD=database_server.password,
        )


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
        own = self.conn.thread_id()
        return {row[0] for row in self.processlist() if row[3] == self.database and row[0] != own}

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


@pytest.fixture
def server(transactional_db: None) -> Iterator[Server]:
    """The server, with no session on the test database yet."""
    connections.close_all()
    close_pool()
    watcher = Server(connections["default"].settings_dict)
    for session in watcher.sessions():
        watcher.wait_until_gone(session)
    yield watcher
    watcher.conn.close()


@pytest.fixture
def units(server: Server) -> Server:
    """The server, with an empty daemon_units table (tests/jobs.py's units write to it)."""
    server.query(f"USE `{server.database}`")
    server.query(
        "CREATE TABLE IF NOT EXISTS daemon_units "
        "(id INT AUTO_INCREMENT PRIMARY KEY, pid INT, state VARCHAR(10)) ENGINE=InnoDB"
    )
    server.query("DELETE FROM daemon_units")
    return server


@pytest.fixture
def make_wrapper(transactional_db: None) -> Iterator[Callable[..., DatabaseWrapper]]:
    """Build pooled wrappers of fresh aliases on the test database.

    Keyword arguments update the settings dict; ``pool`` sets OPTIONS['pool'].
    Each wrapper gets its own alias, so its pool starts empty.
    """
    made: list[DatabaseWrapper] = []

    def make(pool: dict[str, Any] | None = None, **overrides: Any) -> DatabaseWrapper:
        settings = copy.deepcopy(connections["default"].settings_dict)
        settings["OPTIONS"] = {**settings["OPTIONS"], "pool": pool or {}}
        settings.update(overrides)
        wrapper = DatabaseWrapper(settings, alias=f"pooled{next(_aliases)}")
        made.append(wrapper)
        return wrapper

    yield make
    for wrapper in made:
        wrapper.close()
        wrapper.close_pool()


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
