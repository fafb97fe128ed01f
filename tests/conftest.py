"""Fixtures: the server, pooled wrappers built from the test settings, a view from outside.

The helpers the tests share are in tests/helpers.py.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from mysqlpool import close_pool, holders, pooling
from mysqlpool.backends.mysqlpool.base import DatabaseWrapper
from mysqlpool.budget import process_budget
from tests import dbserver
from tests.helpers import Server, SessionSampler

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


@pytest.fixture
def own_database_access(django_db_blocker: Any) -> Iterator[None]:
    """For tests on a server of their own, not the test database pytest-django guards."""
    with django_db_blocker.unblock():
        yield


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
def watched(server: Server) -> Iterator[tuple[Server, SessionSampler]]:
    """The server, and a sampler of the sessions on the test database that a process holds."""
    with SessionSampler(connections["default"].settings_dict, held_only=True) as sampler:
        yield server, sampler


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
def servers() -> Iterator[contextlib.ExitStack]:
    """Where a test enters the servers it starts: killed at its end if still running, pass or fail."""
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture(params=["C", "Python"])
def hot_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test twice: with pools whose common checkout and check-in run in C
    (mysqlpool/_hot_path.c) and holders recorded in C (_holders.c), then with the
    Python methods alone, as where no C compiler built the extensions. For the
    Python run, every pool is made again (those made before keep their path) and
    the process budget's holders are new (a recorder is chosen when made)."""
    if request.param == "C":
        yield "C"
        return
    monkeypatch.setattr(pooling, "HotPath", None)
    monkeypatch.setattr(holders, "CRecorder", None)
    monkeypatch.setattr(process_budget(), "holders", holders.Holders())
    close_pool()
    yield "Python"
    close_pool()  # the pools made from now on take the C paths again


@pytest.fixture
def make_wrapper(transactional_db: None) -> Iterator[Callable[..., DatabaseWrapper]]:
    """Build pooled wrappers of fresh aliases on the test database.

    Keyword arguments update the settings dict; ``pool`` sets OPTIONS['pool'];
    ``wrapper_class`` is a subclass of the ENGINE's wrapper, as a project may use.
    Each wrapper gets its own alias, so its pool starts empty.
    """
    made: list[DatabaseWrapper] = []

    def make(
        pool: dict[str, Any] | None = None,
        wrapper_class: type[DatabaseWrapper] = DatabaseWrapper,
        **overrides: Any,
    ) -> DatabaseWrapper:
        settings = copy.deepcopy(connections["default"].settings_dict)
        settings["OPTIONS"] = {**settings["OPTIONS"], "pool": pool or {}}
        settings.update(overrides)
        wrapper = wrapper_class(settings, alias=f"pooled{next(_aliases)}")
        made.append(wrapper)
        return wrapper

    yield make
    for wrapper in made:
        wrapper.close()
        wrapper.close_pool()
