"""No transaction, lock or dead socket is ever handed to the next user."""

from __future__ import annotations

import gc
import logging
import socket
import threading
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction
from django.db.transaction import TransactionManagementError

from mysqlpool import get_stats, registry
from mysqlpool.backends.mysqlpool.base import DatabaseWrapper
from tests.helpers import Server, connection_id, pool_stats, request_cycle

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"]),
    pytest.mark.usefixtures("hot_path"),  # each test in C and in Python
]


def make_table(wrapper: Any) -> None:
    request_cycle(
        wrapper, "CREATE TABLE IF NOT EXISTS handover (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB"
    )
    request_cycle(wrapper, "DELETE FROM handover")


def lock_is_free(server: Server) -> bool:
    """Can an outside session lock row 1 at once? (1 s lock wait, not a sleep)"""
    server.query("SET SESSION innodb_lock_wait_timeout = 1")
    server.query("START TRANSACTION")
    try:
        server.query("SELECT * FROM handover WHERE id = 1 FOR UPDATE")
        return True
    except Exception as error:  # noqa: BLE001 - 1205 is the answer "no"
        assert error.args[0] == 1205, error
        return False
    finally:
        server.query("ROLLBACK")


def visible_rows(server: Server) -> list[tuple[Any, ...]]:
    return server.query(f"SELECT id FROM `{server.database}`.handover")


@pytest.fixture
def handover_server(server: Server) -> Server:
    server.query(f"USE `{server.database}`")
    return server


def test_raw_transaction_is_rolled_back_when_returned(make_wrapper: Any, handover_server: Server) -> None:
    wrapper = make_wrapper()
    make_table(wrapper)
    with wrapper.cursor() as cursor:
        cursor.execute("START TRANSACTION")
        cursor.execute("INSERT INTO handover VALUES (1, 'uncommitted')")
    wrapper.close_if_unusable_or_obsolete()
    # Rolled back at check-in, before any next checkout: no row, no lock.
    assert lock_is_free(handover_server)
    assert visible_rows(handover_server) == []
    assert request_cycle(wrapper, "SELECT @@in_transaction, COUNT(*) FROM handover") == ((0, 0),)


@pytest.mark.parametrize("end", ["close", "close_if_unusable_or_obsolete"])
def test_autocommit_left_off_is_rolled_back_when_returned(
    make_wrapper: Any, handover_server: Server, end: str
) -> None:
    wrapper = make_wrapper()
    make_table(wrapper)
    wrapper.set_autocommit(False)
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO handover VALUES (1, 'uncommitted')")
    getattr(wrapper, end)()
    assert lock_is_free(handover_server)
    assert visible_rows(handover_server) == []
    assert request_cycle(wrapper, "SELECT @@in_transaction, @@autocommit") == ((0, 1),)


def test_closing_inside_atomic_discards_the_connection(handover_server: Server) -> None:
    """As with Django's backend: the server rolls back, the block sees a closed connection."""
    connection = connections["default"]
    make_table(connection)
    with transaction.atomic():
        first = connection_id(connection)
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO handover VALUES (1, 'in atomic')")
        connection.close()
        with pytest.raises(TransactionManagementError):
            connection_id(connection)
    handover_server.wait_until_gone(first)
    assert lock_is_free(handover_server)
    assert visible_rows(handover_server) == []
    assert connection_id(connection) != first
    connection.close()


def test_a_clean_connection_is_returned_without_rollback(make_wrapper: Any) -> None:
    wrapper = make_wrapper()
    make_table(wrapper)
    before = request_cycle(wrapper, "SHOW SESSION STATUS LIKE 'Com_rollback'")
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO handover VALUES (1, 'committed')")
    wrapper.close()
    after = request_cycle(wrapper, "SHOW SESSION STATUS LIKE 'Com_rollback'")
    assert after == before


def test_an_idle_connection_killed_by_the_server_is_replaced_silently(
    make_wrapper: Any, server: Server
) -> None:
    wrapper = make_wrapper()
    victim = connection_id(wrapper)
    wrapper.close()
    server.kill(victim)
    server.wait_until_gone(victim)
    assert connection_id(wrapper) != victim  # no error reached the user
    stats = pool_stats(wrapper)
    assert (stats["connects"], stats["invalidations"]) == (2, 1)
    assert stats["invalidated_by"] == {"hung_up": 1, "failed": 0, "discarded": 0}


def test_an_idle_connection_past_wait_timeout_is_replaced_silently(make_wrapper: Any, server: Server) -> None:
    wrapper = make_wrapper()
    victim = request_cycle(wrapper, "SELECT CONNECTION_ID()")[0][0]
    request_cycle(wrapper, "SET SESSION wait_timeout = 1")
    server.wait_until_gone(victim)  # the server hangs up after a second idle
    assert connection_id(wrapper) != victim


def test_all_idle_connections_dead_after_a_mass_kill(make_wrapper: Any, server: Server) -> None:
    holders = [make_wrapper(pool={"pool_size": 3})]
    holders += [type(holders[0])(holders[0].settings_dict, alias=holders[0].alias) for _ in range(2)]
    victims = {connection_id(holder) for holder in holders}
    for holder in holders:
        holder.close()
    for victim in victims:
        server.kill(victim)
        server.wait_until_gone(victim)
    assert connection_id(holders[0]) not in victims
    assert pool_stats(holders[0])["invalidations"] == 3


def test_a_disconnect_error_discards_the_connection_at_once(make_wrapper: Any, server: Server) -> None:
    wrapper = make_wrapper()
    victim = connection_id(wrapper)
    server.kill(victim)
    server.wait_until_gone(victim)
    with pytest.raises(OperationalError) as error:
        connection_id(wrapper)
    assert error.value.args[0] in (2006, 2013)
    # Invalidated before the user even closes: the pool no longer holds it.
    assert pool_stats(wrapper)["invalidations"] == 1
    assert pool_stats(wrapper)["open"] == 0
    assert pool_stats(wrapper)["invalidated_by"]["failed"] == 1
    wrapper.close()
    assert connection_id(wrapper) != victim


def test_a_dead_connections_fd_number_reused_by_another_socket_is_never_polled(
    make_wrapper: Any, server: Server
) -> None:
    """The story of django-mysqlpool's README: SQL sent to somebody else's socket.

    After the disconnect error mysqlclient still reports the old fd number; a new
    socket takes that number and has data waiting. If the dead connection went back
    to the pool, the checkout's health check would poll the new socket, judge the
    connection alive, and the next query would go to the listener.
    """
    wrapper = make_wrapper(pool={"pool_size": 1, "max_overflow": 0})
    victim = connection_id(wrapper)
    stale_fd = wrapper.connection.fileno()
    server.kill(victim)
    server.wait_until_gone(victim)
    with pytest.raises(OperationalError):
        connection_id(wrapper)
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    sockets: list[socket.socket] = []
    try:
        while True:  # open sockets until one takes the dead connection's number
            client = socket.create_connection(listener.getsockname())
            sockets.append(client)
            if client.fileno() >= stale_fd:
                break
        peer, _ = listener.accept()
        sockets.append(peer)
        peer.sendall(b"readable")  # the reused socket now polls as readable
        wrapper.close()
        assert connection_id(wrapper) != victim
        peer.setblocking(False)
        try:
            received.append(peer.recv(1024))
        except BlockingIOError:
            pass
        assert received == []  # nothing was sent to the listener
    finally:
        for client in sockets:
            client.close()
        listener.close()


def test_a_connection_failing_is_usable_is_discarded(make_wrapper: Any, server: Server) -> None:
    wrapper = make_wrapper()
    victim = connection_id(wrapper)
    wrapper.errors_occurred = True  # as after any database error in a request
    server.kill(victim)
    server.wait_until_gone(victim)
    wrapper.close_if_unusable_or_obsolete()  # Django pings, the ping fails
    assert pool_stats(wrapper)["invalidations"] == 1
    assert connection_id(wrapper) != victim


class JudgedUnusable(DatabaseWrapper):
    """A wrapper whose health check says no, as a subclass or a proxy in front of the server may."""

    def is_usable(self) -> bool:
        return False


def test_a_connection_failing_djangos_check_after_an_error_is_discarded(
    make_wrapper: Any, server: Server
) -> None:
    wrapper = make_wrapper(pool={"pool_size": 1}, wrapper_class=JudgedUnusable)
    judged = connection_id(wrapper)
    wrapper.errors_occurred = True  # as after any database error in a request
    wrapper.close_if_unusable_or_obsolete()  # Django asks is_usable(), which says no
    assert pool_stats(wrapper)["invalidations"] == 1
    server.wait_until_gone(judged)
    assert connection_id(wrapper) != judged


def test_a_connection_failing_djangos_health_check_is_discarded(make_wrapper: Any, server: Server) -> None:
    """CONN_HEALTH_CHECKS: the check before a request's first query closes it; it must not come back."""
    wrapper = make_wrapper(pool={"pool_size": 1}, wrapper_class=JudgedUnusable, CONN_HEALTH_CHECKS=True)
    judged = connection_id(wrapper)
    wrapper.health_check_done = False  # as Django leaves a connection it keeps for the next request
    assert connection_id(wrapper) != judged
    assert pool_stats(wrapper)["invalidations"] == 1
    server.wait_until_gone(judged)


def test_close_pool_closes_idle_connections_and_later_returns(make_wrapper: Any, server: Server) -> None:
    idle = make_wrapper()
    busy = type(idle)(idle.settings_dict, alias=idle.alias)
    idle_id, busy_id = connection_id(idle), connection_id(busy)
    idle.close()
    idle.close_pool()
    server.wait_until_gone(idle_id)
    assert busy_id in server.sessions()  # in use: left alone until returned
    busy.close()
    server.wait_until_gone(busy_id)
    assert connection_id(idle) not in {idle_id, busy_id}  # a new pool, on demand


def test_pool_errors_during_concurrent_kills_never_escape_as_other_types(
    make_wrapper: Any, server: Server
) -> None:
    """Threads querying while their connections are killed see Django errors only."""
    settings = make_wrapper(pool={"pool_size": 4}).settings_dict
    alias = "killed"
    stop = threading.Event()
    unexpected: list[BaseException] = []
    done: list[int] = []

    def worker() -> None:
        from mysqlpool.backends.mysqlpool.base import DatabaseWrapper

        wrapper = DatabaseWrapper(settings, alias=alias)
        count = 0
        while not stop.is_set():
            try:
                request_cycle(wrapper, "SELECT SLEEP(0.002)")
                count += 1
            except OperationalError:
                wrapper.close()
            except BaseException as error:  # noqa: BLE001 - reported below
                unexpected.append(error)
                break
        wrapper.close()
        done.append(count)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(20):
            for session in server.sessions():
                try:
                    server.kill(session)
                except Exception:  # noqa: BLE001 - already gone
                    pass
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        registry.dispose(alias)
    assert unexpected == []
    assert len(done) == 4


def test_a_connection_its_thread_never_returned_is_closed_when_dropped(
    make_wrapper: Any, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread that ends without auto_close_db must not leak its slot for ever."""
    settings = make_wrapper().settings_dict
    alias = f"leaky{id(settings)}"
    sessions: list[int] = []

    def leak() -> None:
        from mysqlpool.backends.mysqlpool.base import DatabaseWrapper

        sessions.append(connection_id(DatabaseWrapper(settings, alias=alias)))  # never closed

    try:
        with caplog.at_level(logging.WARNING, logger="mysqlpool"):
            thread = threading.Thread(target=leak)
            thread.start()
            thread.join()
            del thread
            gc.collect()
        assert f"A connection of database alias {alias!r} was never returned" in caplog.text
        server.wait_until_gone(sessions[0])
        assert get_stats()[alias]["checked_out"] == 0
    finally:
        registry.dispose(alias)


def test_an_atomic_block_that_raised_hands_over_nothing(handover_server: Server) -> None:
    connection = connections["default"]
    make_table(connection)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO handover VALUES (1, 'rolled back')")
            cursor.execute("SELECT * FROM handover WHERE id = 1 FOR UPDATE")
        1 / 0  # noqa: B018 - the block raises
    connection.close()
    assert lock_is_free(handover_server)
    assert visible_rows(handover_server) == []
    assert request_cycle(connection, "SELECT @@in_transaction, @@autocommit") == ((0, 1),)


def test_the_probes_answer_from_the_socket_and_the_server_status(make_wrapper: Any, server: Server) -> None:
    """The C probes (mysqlpool._probes, built at install) and their ctypes fallback agree."""
    from mysqlpool import connection as pooled_connection

    assert pooled_connection._probes is not None, "the C extension was not built"
    wrapper = make_wrapper()
    session = connection_id(wrapper)
    conn = wrapper.connection

    def answers() -> tuple[tuple[bool, bool], tuple[bool, bool]]:
        return (
            (conn.server_hung_up(), conn.server_hung_up_by_ctypes()),
            (conn.in_transaction(), conn.in_transaction_by_ctypes()),
        )

    assert answers() == ((False, False), (False, False))
    with wrapper.cursor() as cursor:
        cursor.execute("START TRANSACTION")
    assert answers() == ((False, False), (True, True))
    with wrapper.cursor() as cursor:
        cursor.execute("ROLLBACK")
    assert answers()[1] == (False, False)
    server.kill(session)
    server.wait_until_gone(session)
    assert answers()[0] == (True, True)
    wrapper.close()
    conn.close()  # what the pool does to a connection it drops
    # The handle the bound C probe read is gone: it must not be read again.
    assert (conn.in_transaction(), conn.in_transaction_by_ctypes()) == (True, True)


def test_a_pooled_connection_answers_attribute_lookups_as_mysqlclients(make_wrapper: Any) -> None:
    """PooledConnection looks attributes up as Python does, not as mysqlclient's type: same answers."""
    from MySQLdb import Connection

    from mysqlpool.connection import PooledConnection

    params = make_wrapper().connection_params_from_settings()
    for conn in (PooledConnection(**params), Connection(**params)):
        assert (conn.closed, conn.open, conn.get_autocommit()) == (0, 1, False)
        with pytest.raises(AttributeError, match="no_such_attribute"):
            conn.no_such_attribute  # noqa: B018 - the lookup is the test
        conn.close()
        assert (conn.closed, conn.open) == (1, 0)
        assert type(conn.closed) is int
