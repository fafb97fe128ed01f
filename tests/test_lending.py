"""Who gets a pool's connections: the idle ones, then the threads in line, in turn."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import OperationalError

from mysqlpool import PoolTimeout, throttled
from mysqlpool.budget import process_budget
from tests.helpers import Server, connection_id, pool_stats, request_cycle

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"]),
    pytest.mark.usefixtures("hot_path"),  # each test in C and in Python
]


def test_an_exhausted_pool_names_the_holders_where_checkouts_are_tracked(
    make_wrapper: Any, caplog: pytest.LogCaptureFixture
) -> None:
    process_budget().set_hold_warning(3600)  # tracks the checkouts, as a budget does
    holder = make_wrapper(pool={"pool_size": 1, "max_overflow": 0, "timeout": 0.2})
    try:
        holder.ensure_connection()
        waiter = type(holder)(holder.settings_dict, alias=holder.alias)
        with pytest.raises(PoolTimeout) as error:
            waiter.ensure_connection()
    finally:
        holder.close()
        process_budget().set_hold_warning(None)
    assert f"\nHolders:\n  thread 'MainThread' holds a connection of alias {holder.alias!r} for " in str(
        error.value
    )
    assert f"checked out at {__file__}:" in str(error.value)
    # Logged too: under a web server, the error itself may reach only a 500 page.
    assert [record.getMessage() for record in caplog.records if record.name == "mysqlpool"][-1] == str(
        error.value
    )


def test_a_storm_of_pool_timeouts_is_logged_once_then_counted(
    make_wrapper: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every thread in line gives up at once, with the same message: one line, not one per thread."""
    monkeypatch.setattr(throttled, "INTERVAL", 1.0)
    holder = make_wrapper(pool={"pool_size": 1, "max_overflow": 0, "timeout": 0.2})
    holder.ensure_connection()
    errors: list[Exception] = []

    def time_out() -> None:
        waiter = type(holder)(holder.settings_dict, alias=holder.alias)
        try:
            waiter.ensure_connection()
        except PoolTimeout as error:
            errors.append(error)

    def pool_warnings() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.name == "mysqlpool"]

    try:
        threads = [threading.Thread(target=time_out) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(errors) == 4 and pool_warnings() == [str(errors[0])]
        time.sleep(1.0)  # the interval past: the next is logged, with the count of the others
        time_out()
    finally:
        holder.close()
    assert pool_warnings()[1:] == [
        f"{errors[-1]}\n(3 more like it since the last one logged were not logged)"
    ]


def test_an_exhausted_pool_raises_a_django_operational_error(make_wrapper: Any) -> None:
    holder = make_wrapper(pool={"pool_size": 1, "max_overflow": 0, "timeout": 0.2})
    holder.ensure_connection()
    waiter = type(holder)(holder.settings_dict, alias=holder.alias)
    with pytest.raises(PoolTimeout) as error:
        waiter.ensure_connection()
    assert isinstance(error.value, OperationalError)
    message = str(error.value)
    assert f"database alias {holder.alias!r}" in message and "timeout=0.2s" in message
    assert "pool_size=1 + max_overflow=0" in message
    assert "Set MYSQLPOOL_BUDGET or MYSQLPOOL_HOLD_WARNING to have their holders named." in message
    stats = pool_stats(holder)
    assert (stats["waits"], stats["timeouts"]) == (1, 1)
    assert stats["wait_time"] >= 0.2
    holder.close()
    request_cycle(waiter)  # the pool works once the connection is back


@pytest.mark.parametrize("use_lifo", [False, True])
def test_a_wrapper_gets_back_the_connection_it_had_while_that_one_is_idle(
    make_wrapper: Any, use_lifo: bool
) -> None:
    first = make_wrapper(pool={"pool_size": 2, "max_overflow": 0, "use_lifo": use_lifo})
    second = type(first)(first.settings_dict, alias=first.alias)
    owners = [first, second]
    own = [connection_id(first), connection_id(second)]
    first.close()
    second.close()
    # Both idle, the first's returned first: the order use_lifo asks would give
    # the first to ask the other's connection.
    askers = [0, 1] if use_lifo else [1, 0]
    assert [connection_id(owners[i]) for i in askers] == [own[i] for i in askers]
    for wrapper in owners:
        wrapper.close()
    assert pool_stats(first)["connects"] == 2


def thread_in_line(holder: Any, got: list[int]) -> threading.Thread:
    """A thread that waits for a connection of the holder's pool, and notes its id in ``got``."""

    def wait_for_a_connection() -> None:
        waiter = type(holder)(holder.settings_dict, alias=holder.alias)
        got.append(connection_id(waiter))
        waiter.close()

    waits = pool_stats(holder)["waits"]
    thread = threading.Thread(target=wait_for_a_connection, daemon=True)
    thread.start()
    wait_until_waiting(holder, waits + 1)
    return thread


def wait_until_waiting(wrapper: Any, waits: int) -> None:
    """Return once ``waits`` checkouts of the wrapper's pool have lined up."""
    deadline = time.monotonic() + 30
    while pool_stats(wrapper)["waits"] < waits:
        assert time.monotonic() < deadline, "the thread never lined up"
        time.sleep(0.005)


def test_a_waiting_thread_gets_the_connection_when_it_is_returned(make_wrapper: Any) -> None:
    holder = make_wrapper(pool={"pool_size": 1, "max_overflow": 0, "timeout": 30})
    first = connection_id(holder)
    got: list[int] = []
    thread = thread_in_line(holder, got)
    holder.close()
    thread.join()
    assert got == [first]


def test_waiting_threads_are_served_first_come_first_served(make_wrapper: Any) -> None:
    """The thread that returns a connection cannot take it straight back past those waiting.

    SQLAlchemy's QueuePool lets it: with 200 threads on 8 connections, most waiters
    then starve until they time out (bench/load.py).
    """
    holder = make_wrapper(pool={"pool_size": 1, "max_overflow": 0, "timeout": 30})
    holder.ensure_connection()
    served: list[str] = []

    def wait_in_line(name: str) -> None:
        wrapper = type(holder)(holder.settings_dict, alias=holder.alias)
        wrapper.ensure_connection()
        served.append(name)
        wrapper.close()

    threads = []
    for number in range(1, 4):
        thread = threading.Thread(target=wait_in_line, args=(f"waiter {number}",))
        thread.start()
        wait_until_waiting(holder, number)
        threads.append(thread)
    holder.close()
    holder.ensure_connection()  # back at the end of the line
    served.append("holder again")
    holder.close()
    for thread in threads:
        thread.join()
    assert served == ["waiter 1", "waiter 2", "waiter 3", "holder again"]
    assert pool_stats(holder)["timeouts"] == 0


def test_a_broken_connection_makes_room_for_a_waiting_thread(make_wrapper: Any, server: Server) -> None:
    """Its slot goes to the thread in line, which opens a new connection at once.

    The pool's timeout is far longer than the test may take: the thread is served
    by the invalidation, not by giving up.
    """
    holder = make_wrapper(pool={"pool_size": 1, "max_overflow": 0, "timeout": 600})
    broken = connection_id(holder)
    got: list[int] = []
    thread = thread_in_line(holder, got)
    server.kill(broken)
    server.wait_until_gone(broken)
    with pytest.raises(OperationalError):
        connection_id(holder)  # the disconnect error invalidates the connection
    holder.close()
    thread.join(60)
    assert len(got) == 1 and got[0] != broken
    assert pool_stats(holder)["invalidations"] == 1
