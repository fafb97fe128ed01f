"""The per-process connection budget: never more server connections than it allows."""

from __future__ import annotations

import gc
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connections, transaction
from django.test import override_settings

from mysqlpool import ConnectionBudgetExceeded, get_stats, set_budget
from mysqlpool.backends.mysqlpool.base import DatabaseWrapper
from mysqlpool.budget import process_budget
from mysqlpool.waiters import Waiter
from tests.helpers import Server, connection_id, cycles_in_threads, request_cycle
from tests.processes import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"]),
    pytest.mark.usefixtures("hot_path"),  # each test in C and in Python
]


@pytest.fixture(autouse=True)
def no_budget_after(hot_path: str) -> Iterator[None]:  # undone before the hot path's choice
    yield
    set_budget(None)
    process_budget().set_hold_warning(None)


def budget_figures() -> dict[str, Any]:
    return process_budget().status()


def test_a_budget_removed_and_set_again_shows_no_stale_holder(make_wrapper: Any) -> None:
    connections.close_all()  # idle, the test runner's connections make room
    wrapper = make_wrapper()
    set_budget(2)
    wrapper.ensure_connection()
    assert budget_figures()["held"] == 1
    set_budget(None)  # no budget: the check-in below records nothing
    wrapper.close()
    set_budget(2)
    assert budget_figures()["held"] == 0


def test_exhaustion_names_a_holder_whose_thread_ended(make_wrapper: Any) -> None:
    """A thread that ended without returning its connection is named as such, until it is collected."""
    connections.close_all()  # idle, the test runner's connections make room
    set_budget(1)
    template = make_wrapper(pool={"timeout": 0.3})

    def check_out_and_end() -> None:
        DatabaseWrapper(template.settings_dict, alias=template.alias).ensure_connection()

    gc.disable()  # the dropped wrapper's connection is returned once it is collected
    try:
        thread = threading.Thread(target=check_out_and_end, name="gone")
        thread.start()
        thread.join()
        with pytest.raises(ConnectionBudgetExceeded, match=r"a thread that has ended \(ident \d+\) holds"):
            template.ensure_connection()
    finally:
        gc.enable()
    gc.collect()
    connection_id(template)  # collected, the wrapper returned it


def test_many_threads_share_a_small_budget(make_wrapper: Any, server: Server) -> None:
    set_budget(3)
    settings = make_wrapper(pool={"pool_size": 10, "timeout": 30}).settings_dict
    alias = f"budgeted{id(settings)}"
    stop = threading.Event()
    peak: list[int] = []

    def sample() -> None:  # what the server sees, while the threads work
        watcher = Server(settings)
        while not stop.is_set():
            peak.append(len(watcher.sessions()))
        watcher.conn.close()

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        errors = cycles_in_threads(settings, alias, threads=12, cycles=15, sql="SELECT SLEEP(0.002)")
    finally:
        stop.set()
        sampler.join()
    assert errors == []
    assert get_stats()[alias]["checkouts"] == 180
    assert peak and max(peak) <= 3
    assert budget_figures()["open"] <= 3


def test_an_idle_connection_of_another_alias_makes_room(make_wrapper: Any, server: Server) -> None:
    set_budget(1)
    first, second = make_wrapper(), make_wrapper()
    idle = request_cycle(first, "SELECT CONNECTION_ID()")[0][0]
    waits = budget_figures()["waits"]
    assert connection_id(second) != idle  # no wait: the idle one was closed for it
    server.wait_until_gone(idle)
    figures = budget_figures()
    assert (figures["open"], figures["waits"]) == (1, waits)
    assert get_stats()[first.alias]["idle"] == 0


def test_a_budget_lowered_below_the_open_connections_closes_as_many_idle_ones_as_needed(
    make_wrapper: Any, server: Server
) -> None:
    first, second, third = make_wrapper(), make_wrapper(), make_wrapper()
    idle = [request_cycle(wrapper, "SELECT CONNECTION_ID()")[0][0] for wrapper in (first, second)]
    set_budget(1)
    connection_id(third)  # both idle connections are closed for it, without a wait
    for session in idle:
        server.wait_until_gone(session)
    assert budget_figures()["open"] == 1


def test_a_thread_waiting_for_room_is_served_before_the_alias_holding_it_takes_more(
    make_wrapper: Any, server: Server
) -> None:
    """A connection returned while another alias waits for the budget is closed for it."""
    set_budget(1)
    first = make_wrapper(pool={"timeout": 30})
    second = make_wrapper(pool={"timeout": 30})
    held = connection_id(first)
    served: list[str] = []

    def wait_for_room() -> None:
        wrapper = type(second)(second.settings_dict, alias=second.alias)
        connection_id(wrapper)
        served.append(second.alias)
        wrapper.close()

    waits, timeouts = budget_figures()["waits"], budget_figures()["timeouts"]
    thread = threading.Thread(target=wait_for_room)
    thread.start()
    while budget_figures()["waits"] == waits:  # the thread is in the budget's line
        thread.join(0.005)
    first.close()
    connection_id(first)  # behind the waiting thread: it waits for the room back
    served.append(first.alias)
    first.close()
    thread.join()
    assert served == [second.alias, first.alias]
    assert held not in server.all_sessions()
    assert budget_figures()["timeouts"] == timeouts


def test_exhaustion_names_the_holder(make_wrapper: Any) -> None:
    connections["default"].close()  # this thread's (the test database's setup may leave it open)
    set_budget(1)
    holding, release = threading.Event(), threading.Event()

    def hold_in_atomic() -> None:
        with transaction.atomic():
            connection_id(connections["default"])
            holding.set()
            release.wait(30)
        connections["default"].close()

    before = budget_figures()
    holder = threading.Thread(target=hold_in_atomic, name="hoarder")
    holder.start()
    holding.wait(30)
    waiter = make_wrapper(pool={"timeout": 0.3})
    try:
        with pytest.raises(ConnectionBudgetExceeded) as error:
            waiter.ensure_connection()
    finally:
        release.set()
        holder.join()
    assert isinstance(error.value, OperationalError)
    message = str(error.value)
    assert "connection budget of this process (1 connections" in message
    assert f"while opening one for alias {waiter.alias!r}" in message
    assert "thread 'hoarder' holds a connection of alias 'default' for " in message
    assert f"checked out at {__file__}:" in message and "in hold_in_atomic" in message
    figures = budget_figures()
    assert (figures["waits"] - before["waits"], figures["timeouts"] - before["timeouts"]) == (1, 1)
    connection_id(waiter)  # the budget has room again once the holder returned


@pytest.mark.parametrize("value", [0, -1, "3", True, 2.5])
def test_a_budget_must_be_none_or_a_positive_int(value: Any) -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        set_budget(value)
    assert (
        str(error.value) == f"the connection budget is {value!r}; it must be None (no budget) or an int > 0."
    )
    with (
        override_settings(MYSQLPOOL_BUDGET=value),
        pytest.raises(ImproperlyConfigured, match="MYSQLPOOL_BUDGET is"),
    ):
        from mysqlpool import budget

        budget._configured = False
        budget.process_budget()


def test_a_connection_held_too_long_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    connection = connections["other"]
    connection.close()  # the test database's setup may leave it open, checked out
    process_budget().set_hold_warning(0.2)
    with caplog.at_level(logging.WARNING, logger="mysqlpool"):
        connection.ensure_connection()  # checked out here, and held
        deadline = time.monotonic() + 10
        while not [r for r in caplog.records if "held longer than 0.2s" in r.getMessage()]:
            assert time.monotonic() < deadline, "no hold warning within 10s"
            time.sleep(0.01)
        watched = time.monotonic()
        while time.monotonic() - watched < 0.5:  # two more rounds of the watchdog
            time.sleep(0.05)
        connection.close()
    warnings = [r.getMessage() for r in caplog.records if "held longer than" in r.getMessage()]
    assert len(warnings) == 1
    assert "thread 'MainThread' holds a connection of alias 'other'" in warnings[0]
    assert f"checked out at {__file__}:" in warnings[0]
    assert "in test_a_connection_held_too_long_is_warned_about_once" in warnings[0]


def test_a_hold_warning_removed_and_set_again_warns_again(caplog: pytest.LogCaptureFixture) -> None:
    """The watchdog ends with the warning; the next hold after it is set again starts another."""
    connection = connections["other"]
    connection.close()  # the test database's setup may leave it open, checked out

    def warned() -> bool:
        return any("held longer than 0.2s" in record.getMessage() for record in caplog.records)

    def watchdog_ended() -> bool:
        return not any(thread.name == "mysqlpool-hold-watchdog" for thread in threading.enumerate())

    def warned_of_a_hold() -> None:
        connection.ensure_connection()
        try:
            wait_for(warned, timeout=10, what="a hold warning")
        finally:
            connection.close()
        caplog.clear()

    with caplog.at_level(logging.WARNING, logger="mysqlpool"):
        process_budget().set_hold_warning(0.2)
        warned_of_a_hold()
        process_budget().set_hold_warning(None)
        wait_for(watchdog_ended, timeout=10, what="the end of the watchdog")
        process_budget().set_hold_warning(0.2)
        warned_of_a_hold()


def test_a_shorter_hold_warning_applies_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """The watchdog looks every quarter of the hold warning: an hour's must not delay
    a new one by 15 minutes."""
    connection = connections["other"]
    connection.close()  # the test database's setup may leave it open, checked out
    with caplog.at_level(logging.WARNING, logger="mysqlpool"):
        process_budget().set_hold_warning(3600)
        connection.ensure_connection()  # the watchdog starts, to look again in 15 minutes
        try:
            process_budget().set_hold_warning(0.2)
            wait_for(
                lambda: any("held longer than 0.2s" in record.getMessage() for record in caplog.records),
                timeout=10,
                what="a hold warning",
            )
        finally:
            connection.close()


@pytest.mark.parametrize("value", [0, -1, "3", True, float("inf"), float("nan"), 1e300])
def test_a_hold_warning_must_be_a_positive_number(value: Any) -> None:
    expected = f"MYSQLPOOL_HOLD_WARNING is {value!r}; it must be None"
    with pytest.raises(ImproperlyConfigured, match=re.escape(expected)):
        process_budget().set_hold_warning(value)


class Interrupted(Exception):
    """What a signal handler raised in the main thread while it waited."""


def interrupt_main_thread_once_waiting(signum: int = signal.SIGUSR1) -> threading.Thread:
    """A thread that sends the main thread a real signal once it waits in a pool's or budget's line.

    The signal's handler raises Interrupted, as SIGINT's raises KeyboardInterrupt.
    """
    main = threading.main_thread()

    def waiting_in_line() -> bool:
        frame = sys._current_frames().get(main.ident or 0)
        while frame is not None:
            if frame.f_code is Waiter.wait.__code__:
                return True
            frame = frame.f_back
        return False

    def interrupt() -> None:
        deadline = time.monotonic() + 30
        while not waiting_in_line():
            assert time.monotonic() < deadline
            time.sleep(0.001)
        signal.pthread_kill(main.ident or 0, signum)

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted

    signal.signal(signum, handler)
    thread = threading.Thread(target=interrupt)
    thread.start()
    return thread


@pytest.mark.parametrize("waiting_for", ["the pool", "the budget"])
def test_a_wait_ended_by_an_exception_gives_back_what_comes_later(
    make_wrapper: Any, server: Server, waiting_for: str
) -> None:
    """A connection (or room) freed after the waiter is gone goes to the next user, not to it."""
    holder = make_wrapper(pool={"pool_size": 1, "max_overflow": 0})
    waiter = holder if waiting_for == "the pool" else make_wrapper()
    if waiting_for == "the budget":
        set_budget(1)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        other = type(holder)(holder.settings_dict, alias=holder.alias)
        connection_id(other)
        held.set()
        release.wait()
        other.close()

    holding = threading.Thread(target=hold)
    holding.start()
    assert held.wait(30), "the holding thread got no connection"
    try:
        interrupter = interrupt_main_thread_once_waiting()
        with pytest.raises(Interrupted):
            connection_id(waiter)
        interrupter.join()
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        release.set()
        holding.join()
    waiter.close()
    connection_id(waiter)  # at once: a timeout here means the freed connection went to nobody
    figures = get_stats()[waiter.alias]
    assert (figures["open"], figures["checked_out"], figures["timeouts"]) == (1, 1, 0)
