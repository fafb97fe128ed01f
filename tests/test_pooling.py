"""Connections are reused across requests and threads, with no extra round trip."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import django
import MySQLdb
import pytest
from django.db import OperationalError, connections
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.mysql.base import DatabaseWrapper as MySQLDatabaseWrapper
from django.db.backends.signals import connection_created

from mysqlpool import get_stats, registry
from mysqlpool.backends.mysqlpool.base import FOLLOWED_DJANGO_RELEASES, DatabaseWrapper
from mysqlpool.connection import PooledConnection
from tests.helpers import Server, connection_id, cycles_in_threads, pool_stats, request_cycle, run_threads

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"]),
    pytest.mark.usefixtures("hot_path"),  # each test in C and in Python
]


def questions(wrapper: Any) -> int:
    """Statements this server session has received, the SHOW itself included."""
    rows = request_cycle(wrapper, "SHOW SESSION STATUS LIKE 'Questions'")
    return int(rows[0][1])


def test_request_cycles_reuse_one_server_connection(make_wrapper: Any, server: Any) -> None:
    wrapper = make_wrapper()
    ids = {request_cycle(wrapper, "SELECT CONNECTION_ID()")[0][0] for _ in range(5)}
    assert len(ids) == 1
    assert wrapper.connection is None  # returned after each cycle
    assert server.sessions() == ids  # and still open on the server
    stats = pool_stats(wrapper)
    assert (stats["connects"], stats["checkouts"], stats["open"], stats["idle"]) == (1, 5, 1, 1)


def test_a_reused_connection_costs_no_extra_round_trip(make_wrapper: Any) -> None:
    """Neither session setup on checkout nor a ROLLBACK on return is sent again."""
    wrapper = make_wrapper()
    counts = [questions(wrapper) for _ in range(4)]
    # Each cycle sends exactly one statement: its own SHOW STATUS.
    assert [b - a for a, b in zip(counts, counts[1:], strict=False)] == [1, 1, 1]


def _state_after(connect: Callable[[], None], wrapper: Any) -> dict[str, Any]:
    """What ``connect()`` leaves in the wrapper, begun from a wrapper left in disorder."""
    wrapper.savepoint_ids, wrapper.atomic_blocks, wrapper.run_on_commit = ["s1"], ["b1"], [("f", None, False)]
    wrapper.needs_rollback = wrapper.errors_occurred = True
    wrapper.health_check_done = wrapper.autocommit = False
    sent: list[Any] = []

    def receiver(sender: Any, connection: Any, **kwargs: Any) -> None:
        sent.append(connection)

    connection_created.connect(receiver)
    try:
        connect()
    finally:
        connection_created.disconnect(receiver)
    state = dict(vars(wrapper))
    assert state.pop("close_at") >= time.monotonic() - 5  # CONN_MAX_AGE 0: from now on
    state["connection_created sent for"] = sent
    wrapper.close()
    return state


@pytest.mark.parametrize("reused", [False, True], ids=["new connection", "reused connection"])
def test_connect_leaves_the_wrapper_as_djangos_connect_does(make_wrapper: Any, reused: bool) -> None:
    """connect() has its own path for a connection of the pool: it must leave what Django's does."""
    assert django.VERSION[:2] in FOLLOWED_DJANGO_RELEASES, (
        "A Django release mysqlpool's connect() and close() were not compared with: compare "
        "them with Django's, then add it to FOLLOWED_DJANGO_RELEASES (until then Django's run)."
    )
    wrapper = make_wrapper(pool={"pool_size": 1})
    django_connect = MySQLDatabaseWrapper.connect.__wrapped__  # without async_unsafe

    def state_after(connect: Callable[[], None]) -> dict[str, Any]:
        if not reused:
            wrapper.close_pool()
        return _state_after(connect, wrapper)

    request_cycle(wrapper)
    ours, djangos = state_after(wrapper.connect), state_after(lambda: django_connect(wrapper))
    # The same pool and server connection when reused; new ones otherwise.
    assert [ours.pop(name) is djangos.pop(name) for name in ("_pool", "connection")] == [reused, reused]
    assert ours == djangos
    assert ours["autocommit"] is True and ours["connection_created sent for"] == [wrapper]


@pytest.mark.parametrize("method", ["close", "close_if_unusable_or_obsolete"])
def test_closing_leaves_the_wrapper_as_djangos_close_does(make_wrapper: Any, method: str) -> None:
    """close() and the end of a request have their own path too, with the same outcome."""
    wrapper = make_wrapper()
    djangos_method = getattr(MySQLDatabaseWrapper, method)
    djangos_method = getattr(djangos_method, "__wrapped__", djangos_method)

    def state_after(close: Callable[[], None]) -> dict[str, Any]:
        request_cycle(wrapper)
        wrapper.ensure_connection()
        wrapper.run_on_commit = [("f", None, False)]
        close()
        assert wrapper.connection is None
        state = dict(vars(wrapper))
        del state["close_at"]  # the time of the last connect
        return state

    assert state_after(getattr(wrapper, method)) == state_after(lambda: djangos_method(wrapper))


def test_session_is_initialized_like_djangos_backend(make_wrapper: Any) -> None:
    wrapper = make_wrapper()
    for _ in range(2):  # on the new connection, then on the reused one
        rows = request_cycle(wrapper, "SELECT @@tx_isolation, @@autocommit")
        assert rows == (("READ-COMMITTED", 1),)


def test_options_pass_through_to_mysqldb(make_wrapper: Any) -> None:
    wrapper = make_wrapper(
        OPTIONS={
            "pool": {"pool_size": 1},
            "isolation_level": "repeatable read",
            "init_command": "SET @marker = 42",
            "read_timeout": 30,
        },
    )
    rows = request_cycle(wrapper, "SELECT @@tx_isolation, @marker")
    assert rows == (("REPEATABLE-READ", 42),)
    assert "pool" not in wrapper.get_connection_params()


def test_threads_share_the_pool_within_its_limit(make_wrapper: Any, server: Server) -> None:
    """Twelve threads, a pool of 2 + 1 overflow: the server never sees more than 3."""
    settings = make_wrapper(pool={"pool_size": 2, "max_overflow": 1, "timeout": 30}).settings_dict
    alias = f"threads{id(settings)}"
    done = threading.Event()
    seen: list[float] = []

    def read_stats() -> None:  # checkouts are counted without a lock: reads must not upset the count
        while not done.is_set():
            seen.append(get_stats().get(alias, {}).get("checkouts", 0))

    reader = threading.Thread(target=read_stats)
    reader.start()
    try:
        assert cycles_in_threads(settings, alias, threads=12, cycles=20, sql="SELECT SLEEP(0.001)") == []
        done.set()
        reader.join()
        stats = get_stats()[alias]
        assert stats["checkouts"] == 240
        assert seen == sorted(seen) and len(set(seen)) > 2  # read while counting, never backwards
        assert stats["connects"] <= 3
        assert len(server.sessions()) <= 3
        assert stats["checked_out"] == 0
    finally:
        done.set()
        registry.dispose(alias)


def test_a_plain_mysql_alias_in_the_same_process_is_untouched(make_wrapper: Any, server: Any) -> None:
    pooled = make_wrapper()
    request_cycle(pooled)
    plain = connections["plain"]
    plain.ensure_connection()
    assert type(plain.connection) is MySQLdb.connections.Connection
    session = connection_id(plain)
    plain.close()
    server.wait_until_gone(session)  # Django's backend really closed it
    assert "plain" not in get_stats()


def test_pooled_connections_are_pooled_connection_objects(make_wrapper: Any) -> None:
    wrapper = make_wrapper()
    wrapper.ensure_connection()
    assert isinstance(wrapper.connection, PooledConnection)


def test_no_database_connections_of_the_test_runner_bypass_the_pool(make_wrapper: Any) -> None:
    settings = {**make_wrapper().settings_dict, "NAME": None}
    from mysqlpool.backends.mysqlpool.base import DatabaseWrapper

    nodb = DatabaseWrapper(settings, alias=NO_DB_ALIAS)
    with nodb.cursor() as cursor:
        cursor.execute("SELECT 1")
    nodb.close()
    assert NO_DB_ALIAS not in get_stats()


def test_a_failed_connect_raises_a_django_operational_error(make_wrapper: Any) -> None:
    wrapper = make_wrapper(PORT="1")  # nothing listens on port 1
    with pytest.raises(OperationalError) as error:
        wrapper.ensure_connection()
    assert error.value.args[0] == 2002 or error.value.args[0] == 2003
    assert pool_stats(wrapper)["connects"] == 0
    # The traceback tells of the connect alone: nothing of the pool's own lookups
    # ("During handling of the above exception, another exception occurred").
    assert [type(cause) for cause in chain_of(error.value)] == [OperationalError, MySQLdb.OperationalError]


def chain_of(error: BaseException | None) -> list[BaseException]:
    """The error and those it was raised from or while handling, as a traceback prints them."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def test_pools_are_created_once_per_alias_by_racing_threads(make_wrapper: Any) -> None:
    settings = make_wrapper().settings_dict
    alias = f"race{id(settings)}"
    start = threading.Barrier(8)
    pools: list[Any] = []

    def first_use() -> None:
        from mysqlpool.backends.mysqlpool.base import DatabaseWrapper

        wrapper = DatabaseWrapper(settings, alias=alias)
        start.wait()
        pools.append(wrapper.pool)

    run_threads(first_use, 8)
    try:
        assert len({id(pool) for pool in pools}) == 1
    finally:
        registry.dispose(alias)


def test_null_pool_opens_and_closes_a_connection_per_request(make_wrapper: Any, server: Any) -> None:
    wrapper = make_wrapper(pool={"backend": "NullPool"})
    first = request_cycle(wrapper, "SELECT CONNECTION_ID()")[0][0]
    server.wait_until_gone(first)
    second = request_cycle(wrapper, "SELECT CONNECTION_ID()")[0][0]
    assert first != second
    assert pool_stats(wrapper)["connects"] == 2


def test_pre_ping_stays_available(make_wrapper: Any) -> None:
    wrapper = make_wrapper(pool={"pre_ping": True})
    ids = {request_cycle(wrapper, "SELECT CONNECTION_ID()")[0][0] for _ in range(3)}
    assert len(ids) == 1


def test_recycle_replaces_connections_older_than_it(make_wrapper: Any) -> None:
    wrapper = make_wrapper(pool={"recycle": 0.2})
    first = connection_id(wrapper)
    wrapper.close()
    time.sleep(0.3)  # the connection is now older than recycle: no race, just age
    assert connection_id(wrapper) != first
    assert pool_stats(wrapper)["connects"] == 2


def test_connect_and_close_refuse_to_run_in_an_event_loop(make_wrapper: Any) -> None:
    """As Django's async_unsafe methods do, without its exception on every call."""
    import asyncio

    from django.core.exceptions import SynchronousOnlyOperation

    wrapper = make_wrapper()

    async def call(method: Any) -> None:
        method()

    for method in (wrapper.connect, wrapper.close, wrapper.ensure_connection, wrapper.cursor):
        with pytest.raises(SynchronousOnlyOperation):
            asyncio.run(call(method))
    assert wrapper.connection is None  # nothing was checked out
    wrapper.ensure_connection()
    for method in (wrapper.ensure_connection, wrapper.cursor):  # connected too
        with pytest.raises(SynchronousOnlyOperation):
            asyncio.run(call(method))


def test_a_failed_connect_raises_djangos_error(make_wrapper: Any, server: Server) -> None:
    """The driver's error, translated as Django's ensure_connection() translates it."""
    wrapper = make_wrapper(PASSWORD="not-the-password", USER="nobody")
    with pytest.raises(OperationalError) as raised:
        wrapper.ensure_connection()
    assert isinstance(raised.value.__cause__, MySQLdb.OperationalError)


@pytest.mark.parametrize(("echo", "logged"), [("debug", True), (True, False)])
def test_echo_debug_logs_each_checkout_and_checkin(
    make_wrapper: Any, caplog: pytest.LogCaptureFixture, echo: Any, logged: bool
) -> None:
    """As SQLAlchemy's own checkouts do with echo="debug" (mysqlpool does without its proxy)."""
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.pool")
    wrapper = make_wrapper(pool={"echo": echo})
    for _ in range(2):
        request_cycle(wrapper)
    messages = [record.getMessage() for record in caplog.records if record.name.startswith("sqlalchemy.pool")]
    checked_out = [m for m in messages if "checked out from pool" in m]
    returned = [m for m in messages if "being returned to pool" in m]
    assert (len(checked_out), len(returned)) == ((2, 2) if logged else (0, 0))


def test_a_subclass_connect_is_called_on_the_way_to_a_query(make_wrapper: Any) -> None:
    """ensure_connection() skips this backend's own connect() only, never a subclass's override."""

    class CountingConnects(DatabaseWrapper):
        connects = 0

        def connect(self) -> None:
            type(self).connects += 1
            super().connect()

    wrapper = make_wrapper(wrapper_class=CountingConnects)
    for _ in range(2):
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        wrapper.close()
    assert CountingConnects.connects == 2
