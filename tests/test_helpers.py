"""auto_close_db, close_pool, get_stats, and test database creation."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction
from django.utils.connection import ConnectionDoesNotExist

from mysqlpool import auto_close_db, close_pool, get_stats, stats
from tests.conftest import Server, connection_id, pool_stats

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"])


def checked_out(alias: str) -> int:
    return int(get_stats()[alias]["checked_out"])


def use_every_alias() -> None:
    for alias in ("default", "other", "plain"):
        connection_id(connections[alias])


@auto_close_db
def bare_decorated(fail: bool) -> str:
    use_every_alias()
    if fail:
        raise ValueError("unit of work failed")
    return "done"


@auto_close_db()
def called_decorated() -> None:
    use_every_alias()


def assert_all_returned() -> None:
    assert all(connections[alias].connection is None for alias in ("default", "other", "plain"))
    assert checked_out("default") == checked_out("other") == 0


@pytest.mark.usefixtures("server")
def test_bare_decorator_returns_every_connection_and_the_result() -> None:
    assert bare_decorated(False) == "done"
    assert bare_decorated.__name__ == "bare_decorated"
    assert_all_returned()


@pytest.mark.usefixtures("server")
def test_connections_are_returned_when_the_unit_of_work_raises() -> None:
    with pytest.raises(ValueError, match="unit of work failed"):
        bare_decorated(True)
    assert_all_returned()


@pytest.mark.usefixtures("server")
def test_called_decorator_and_context_manager() -> None:
    called_decorated()
    assert_all_returned()
    with auto_close_db():
        use_every_alias()
    assert_all_returned()


@pytest.mark.usefixtures("server")
def test_never_closes_inside_an_enclosing_atomic_block() -> None:
    default = connections["default"]
    with transaction.atomic():
        session = connection_id(default)
        with auto_close_db():
            connection_id(connections["other"])
        # The outer block's connection is still checked out, its transaction alive.
        assert connection_id(default) == session
        assert checked_out("default") == 1
    assert connections["other"].connection is None
    default.close()


@pytest.mark.usefixtures("server")
def test_only_the_current_threads_connections_are_returned() -> None:
    connection_id(connections["default"])
    other_thread_done = threading.Event()
    thread = threading.Thread(target=lambda: (auto_close_db(use_every_alias)(), other_thread_done.set()))
    thread.start()
    thread.join()
    assert other_thread_done.is_set()
    assert connections["default"].connection is not None
    assert checked_out("default") == 1
    connections["default"].close()


def test_close_pool_of_an_unknown_alias_is_an_error() -> None:
    with pytest.raises(ConnectionDoesNotExist, match="The connection 'nope' doesn't exist"):
        close_pool("nope")


def test_close_pool_closes_every_pool(server: Server) -> None:
    sessions = {connection_id(connections["default"]), connection_id(connections["other"])}
    connections.close_all()
    assert set(get_stats()) == {"default", "other"}
    close_pool()
    assert get_stats() == {}
    for session in sessions:
        server.wait_until_gone(session)


@pytest.mark.usefixtures("server")
def test_stats_report_every_documented_figure() -> None:
    connection_id(connections["default"])
    figures = get_stats()["default"]
    assert set(figures) == {"budget", "backend", "open", "idle", "checked_out", "overflow", *stats.COUNTERS}
    assert set(figures["budget"]) == {"limit", "open", "peak", "held", "waits", "wait_time", "timeouts"}
    assert (figures["open"], figures["checked_out"], figures["idle"]) == (1, 1, 0)
    connections["default"].close()
    assert (pool_stats(connections["default"])["idle"], checked_out("default")) == (1, 0)


def test_the_password_is_never_shown(
    make_wrapper: Any, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    password = "S3cret-pooled-Passw0rd"
    server.query("CREATE USER IF NOT EXISTS 'pooluser'@'%%' IDENTIFIED BY %s", password)
    server.query(f"GRANT ALL ON `{server.database}`.* TO 'pooluser'@'%'")
    caplog.set_level(logging.DEBUG)
    wrapper = make_wrapper(USER="pooluser", PASSWORD=password, pool={"echo": "debug"})
    try:
        connection_id(wrapper)
        wrapper.close()
        shown = [repr(wrapper.pool), str(get_stats()), caplog.text]
        bad = make_wrapper(USER="pooluser", PASSWORD=password + "-wrong")
        with pytest.raises(OperationalError) as error:
            bad.ensure_connection()
        shown += [str(error.value), repr(error.value), caplog.text]
    finally:
        server.query("DROP USER 'pooluser'@'%'")
    assert "pooluser" in caplog.text  # the log does say who connects...
    assert all(password not in text for text in shown)  # ...never with what


def test_test_database_creation_and_destruction_dispose_the_pool(make_wrapper: Any, server: Server) -> None:
    """DROP DATABASE is never kept waiting by pooled connections."""
    wrapper = make_wrapper()
    settings = wrapper.settings_dict
    settings["TEST"] = {**settings["TEST"], "NAME": "mysqlpool_scratch"}
    name = wrapper.creation._get_test_db_name()
    wrapper.creation._create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    assert wrapper.alias not in get_stats()
    settings["NAME"] = name
    session = connection_id(wrapper)
    with wrapper.cursor() as cursor:  # an open transaction on the scratch database...
        cursor.execute("CREATE TABLE t (id INT) ENGINE=InnoDB")
        cursor.execute("START TRANSACTION")
        cursor.execute("INSERT INTO t VALUES (1)")
    wrapper.close()  # ...rolled back at check-in; the connection idles in the pool
    assert session in server.all_sessions()
    wrapper.creation._destroy_test_db(name, verbosity=0)
    assert wrapper.alias not in get_stats()
    server.wait_until_gone(session)
    assert (name,) not in server.query("SHOW DATABASES")
