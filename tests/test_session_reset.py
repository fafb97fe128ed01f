"""``reset_on_return: "session"``: nothing a session took reaches the next user."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import ProgrammingError

from tests.helpers import Server, connection_id, pool_stats, request_cycle

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"])

SESSION_SETUP = (
    "SELECT @@tx_isolation, @@autocommit, @@character_set_client, @@collation_connection, @@sql_mode, @marker"
)
# Settings of every layer, none of them the server's defaults: Django's (isolation
# level), mysqlclient's (collation, sql_mode) and the user's (init_command).
OPTIONS = {
    "pool": {"reset_on_return": "session"},
    "isolation_level": "serializable",
    "collation": "utf8mb4_bin",
    "sql_mode": "STRICT_ALL_TABLES,NO_ZERO_DATE",
    "init_command": "SET @marker = 42",
}


@pytest.fixture
def resetting(make_wrapper: Any, server: Server) -> Any:
    wrapper = make_wrapper(OPTIONS=OPTIONS)
    request_cycle(
        wrapper, "CREATE TABLE IF NOT EXISTS reset_notes (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB"
    )
    request_cycle(wrapper, "DELETE FROM reset_notes")
    server.query(f"USE `{server.database}`")
    return wrapper


def test_a_reset_releases_locks_temporary_tables_and_variables(resetting: Any, server: Server) -> None:
    session = connection_id(resetting)
    with resetting.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE scratch (id INT)")
        cursor.execute("SET @left_behind = 1")
        cursor.execute("SELECT GET_LOCK('mysqlpool-test', 0)")
        cursor.execute("LOCK TABLES reset_notes WRITE")
    resetting.close_if_unusable_or_obsolete()

    assert server.query("SELECT IS_FREE_LOCK('mysqlpool-test')") == [(1,)]
    server.query("SET SESSION lock_wait_timeout = 1")  # fails within a second if still locked
    server.query("INSERT INTO reset_notes VALUES (1, 'outside')")
    assert connection_id(resetting) == session  # the same server connection, reused
    assert request_cycle(resetting, "SELECT @left_behind") == ((None,),)
    with pytest.raises(ProgrammingError, match="scratch"), resetting.cursor() as cursor:
        cursor.execute("SELECT * FROM scratch")
    resetting.close()


def test_after_a_reset_the_session_is_set_up_as_at_connect(resetting: Any) -> None:
    fresh = request_cycle(resetting, SESSION_SETUP)
    assert fresh == (("SERIALIZABLE", 1, "utf8mb4", "utf8mb4_bin", "STRICT_ALL_TABLES,NO_ZERO_DATE", 42),)
    request_cycle(resetting, "SET SESSION sql_mode = '', @marker = 0")  # what a user may leave behind
    assert request_cycle(resetting, SESSION_SETUP) == fresh
    # Text beyond Latin-1 and the BMP survives the reset of the character set.
    text = "😀 Grüße, 日本"
    request_cycle(resetting, f"INSERT INTO reset_notes VALUES (2, '{text}')")
    assert request_cycle(resetting, "SELECT note, CHAR_LENGTH(note) FROM reset_notes WHERE id = 2") == (
        (text, len(text)),
    )


def test_a_connection_that_fails_its_reset_is_discarded(
    resetting: Any, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    victim = connection_id(resetting)
    server.kill(victim)
    server.wait_until_gone(victim)
    with caplog.at_level(logging.WARNING, logger="mysqlpool"):
        resetting.close()
    assert any("failed to reset" in record.getMessage() for record in caplog.records)
    assert connection_id(resetting) != victim  # a new connection, and no error for the user
    assert pool_stats(resetting)["invalidations"] == 1


def test_a_reset_connection_the_server_closed_while_idle_is_replaced_silently(
    resetting: Any, server: Server
) -> None:
    victim = connection_id(resetting)
    resetting.close()  # reset: the session's setup is gone until the next checkout
    server.kill(victim)
    server.wait_until_gone(victim)
    assert connection_id(resetting) != victim
    assert pool_stats(resetting)["invalidations"] == 1


@pytest.mark.parametrize(("backend", "runs"), [("QueuePool", 2), ("NullPool", 1)])
def test_a_pool_that_closes_what_is_returned_resets_nothing(
    make_wrapper: Any, server: Server, backend: str, runs: int
) -> None:
    """The init_command counts its runs: at connect, and after each reset."""
    server.query(f"CREATE TABLE IF NOT EXISTS `{server.database}`.setup_runs (session BIGINT) ENGINE=InnoDB")
    server.query(f"DELETE FROM `{server.database}`.setup_runs")
    wrapper = make_wrapper(
        OPTIONS={
            "pool": {"backend": backend, "reset_on_return": "session"},
            "init_command": f"INSERT INTO `{server.database}`.setup_runs VALUES (CONNECTION_ID())",
        }
    )
    session = connection_id(wrapper)
    wrapper.close()  # a reset and a second run of init_command, unless the pool closes it
    assert server.query(f"SELECT COUNT(*) FROM `{server.database}`.setup_runs WHERE session = {session}") == [
        (runs,)
    ]
