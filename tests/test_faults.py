"""Faults of a server the tests own: a restart under load, max_connections reached, a server
that stops answering."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import MySQLdb
import pytest
from django.db import OperationalError

from mysqlpool import registry, set_budget
from mysqlpool.backends.mysqlpool.base import DatabaseWrapper
from tests import dbserver
from tests.helpers import Server, admin, request_cycle, settings_for

pytestmark = pytest.mark.usefixtures("own_database_access")


@pytest.fixture(scope="module")
def owned() -> Iterator[dbserver.OwnedServer]:
    with dbserver.owned_server() as server:
        admin(server.server, "CREATE DATABASE faults")
        yield server


def wait_until_stopped(pid: int, timeout: float = 10) -> None:
    """Return once every thread of ``pid`` has stopped: SIGSTOP takes effect asynchronously,
    and a thread still running may answer one more query."""
    deadline = time.monotonic() + timeout
    while True:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                states.append((task / "stat").read_text().rpartition(")")[2].split()[0])
            except FileNotFoundError:  # a thread that just ended
                continue
        if all(state in ("T", "t") for state in states):
            return
        assert time.monotonic() < deadline, f"process {pid} did not stop: {states}"
        time.sleep(0.01)


def test_a_restart_under_load_costs_only_django_operational_errors(owned: dbserver.OwnedServer) -> None:
    settings = settings_for(owned.server, "faults", OPTIONS={"pool": {"pool_size": 4, "timeout": 5}})
    alias = f"restart{id(settings)}"
    stop = threading.Event()
    restarted_at: list[float] = []
    unexpected: list[BaseException] = []
    outage_errors: list[int] = []
    after_restart: dict[str, int] = {}
    before_restart: set[str] = set()  # threads that ran a request before the restart

    def work() -> None:
        wrapper = DatabaseWrapper(settings, alias=alias)
        name = threading.current_thread().name
        while not stop.is_set():
            try:
                request_cycle(wrapper, "SELECT 1")
                if restarted_at:
                    after_restart[name] = after_restart.get(name, 0) + 1
                else:
                    before_restart.add(name)
            except OperationalError as error:
                outage_errors.append(error.args[0])
                wrapper.close()
                after_restart.pop(name, None)  # count only the successes since the last error
            except BaseException as error:  # noqa: BLE001 - the test is about these
                unexpected.append(error)
                return
        wrapper.close()

    threads = [threading.Thread(target=work, name=f"t{number}") for number in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(before_restart) < 4:  # every thread under way, with a pooled connection
            assert unexpected == [] and time.monotonic() < deadline, unexpected
            time.sleep(0.01)
        owned.restart()
        restarted_at.append(time.monotonic())
        deadline = time.monotonic() + 30
        while not (len(after_restart) == 4 and min(after_restart.values()) >= 20):
            assert unexpected == [] and time.monotonic() < deadline, (after_restart, unexpected)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        registry.dispose(alias)
    assert unexpected == []
    assert all(thread.is_alive() is False for thread in threads)
    assert outage_errors, "the restart went unnoticed: the test did not exercise the outage"
    assert set(outage_errors) <= {2002, 2003, 2006, 2013, 1053, 1927, 4031}, outage_errors


def test_a_server_refusing_connections_at_startup_leaks_nothing(owned: dbserver.OwnedServer) -> None:
    """Refused connects are clear errors, and use up neither the pool's room nor the budget.

    With one connection allowed by both, a leaked slot would make the next checkout
    time out, and a leaked budget count would refuse it.
    """
    settings = settings_for(
        owned.server, "faults", OPTIONS={"pool": {"pool_size": 1, "max_overflow": 0, "timeout": 2}}
    )
    alias = f"startup{id(settings)}"
    wrapper = DatabaseWrapper(settings, alias=alias)
    set_budget(1)
    owned.executor.stop()
    try:
        for _ in range(3):
            with pytest.raises(OperationalError) as refused:
                request_cycle(wrapper, "SELECT 1")
            assert refused.value.args[0] in (2002, 2003), refused.value
            wrapper.close()
    finally:
        owned.executor.start()
    try:
        assert request_cycle(wrapper, "SELECT 1") == ((1,),)
        figures = registry.get_stats()[alias]
        assert (figures["connects"], figures["open"], figures["budget"]["open"]) == (1, 1, 1)
        wrapper.close()
    finally:
        set_budget(None)
        registry.dispose(alias)


def test_max_connections_reached_is_a_clear_error_and_the_pool_recovers(owned: dbserver.OwnedServer) -> None:
    server = owned.server
    admin(server, "CREATE USER IF NOT EXISTS 'limited'@'%' IDENTIFIED BY 'pw'")
    admin(server, "GRANT ALL ON faults.* TO 'limited'@'%'")
    admin(server, "SET GLOBAL max_connections = 3")
    holders = []
    # Connected before the server is full, so that closing it frees no slot.
    watcher = Server({"NAME": "faults", "HOST": server.host, "PORT": server.port,
                      "USER": server.user, "PASSWORD": server.password})  # fmt: skip
    try:
        settings = settings_for(server, "faults", USER="limited", PASSWORD="pw")
        alias = f"full{id(settings)}"
        wrapper = DatabaseWrapper(settings, alias=alias)
        while True:  # take every connection the server has left
            try:
                holders.append(
                    MySQLdb.connect(host=server.host, port=server.port, user="limited", password="pw")
                )
            except MySQLdb.OperationalError as error:
                assert error.args[0] == 1040
                break
        with pytest.raises(OperationalError) as refused:
            wrapper.ensure_connection()
        assert refused.value.args[0] == 1040
        assert "Too many connections" in str(refused.value)
        freed = holders.pop()
        freed_id = freed.thread_id()
        freed.close()
        watcher.wait_until_gone(freed_id)  # MariaDB frees the slot a moment after the hang-up
        assert request_cycle(wrapper, "SELECT 1") == ((1,),)  # not poisoned
        wrapper.close()
        registry.dispose(alias)
    finally:
        for holder in holders:
            holder.close()
        watcher.conn.close()
        admin(server, "SET GLOBAL max_connections = 500")


def test_a_server_that_stops_answering_is_bounded_by_read_timeout(owned: dbserver.OwnedServer) -> None:
    settings = settings_for(owned.server, "faults", OPTIONS={"read_timeout": 1, "connect_timeout": 2})
    alias = f"stopped{id(settings)}"
    wrapper = DatabaseWrapper(settings, alias=alias)
    pid = owned.executor.process.pid
    try:
        request_cycle(wrapper, "SELECT 1")
        wrapper.ensure_connection()  # a connection held across the stop
        os.kill(pid, signal.SIGSTOP)
        wait_until_stopped(pid)
        started = time.monotonic()
        try:
            with pytest.raises(OperationalError) as error:
                request_cycle(wrapper, "SELECT 1")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert time.monotonic() - started < 10  # read_timeout, not for ever
        assert error.value.args[0] in (2013, 2006)
        wrapper.close()
        assert request_cycle(wrapper, "SELECT 1") == ((1,),)  # the pool recovers
        wrapper.close()
    finally:
        os.kill(pid, signal.SIGCONT)
        registry.dispose(alias)
