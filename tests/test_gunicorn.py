"""gunicorn (sync and gthread workers, --preload, --max-requests) serving tests/servers_app.

Each test starts gunicorn as a real process, loads it from a pool of client
threads, and watches the server's sessions: how many, how many were opened, and
which process used which (each reply says its pid and its connection's id).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.db import connections

from tests import dbserver
from tests.helpers import Server, SessionSampler
from tests.processes import wait_for
from tests.webservers import WebServer, connections_of, failures, pids

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 2
BUDGET = 2


def start_gunicorn(database_server: dbserver.Server, log: Path, worker_class: str, *args: str) -> WebServer:
    """2 workers of ``worker_class`` (4 threads for gthread), a budget of 2 each, the app preloaded.

    Importing the app runs a query (tests/servers_app/wsgi.py): the master holds a
    connection when it forks.
    """
    # gunicorn turns a sync worker given threads into a gthread one.
    threads = ["--threads", "4"] if worker_class == "gthread" else []
    return WebServer(
        database_server, log, "gunicorn", "tests.servers_app.wsgi:application",
        "--workers", str(WORKERS), "--worker-class", worker_class, *threads,
        "--preload", "--graceful-timeout", "20", *args,
        MYSQLPOOL_TEST_BUDGET=str(BUDGET), MYSQLPOOL_TEST_POOL_SIZE=str(BUDGET),
        MYSQLPOOL_TEST_QUERY_AT_IMPORT="1",
    )  # fmt: skip


@pytest.fixture
def watched(server: Server) -> Iterator[tuple[Server, SessionSampler]]:
    """The server, and a sampler of the sessions on the test database that a process holds."""
    with SessionSampler(connections["default"].settings_dict, held_only=True) as sampler:
        yield server, sampler


def the_masters_session(server: Server) -> int:
    """Before any request the only session is the one the master made at import."""
    [session] = server.sessions()
    return session


def gone(server: Server, sessions: set[int]) -> bool:
    return not sessions & server.sessions()


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_concurrent_requests_stay_within_workers_times_budget_and_reuse_connections(
    database_server: dbserver.Server,
    watched: tuple[Server, SessionSampler],
    tmp_path: Path,
    worker_class: str,
    servers: ExitStack,
) -> None:
    server, sampler = watched
    web = servers.enter_context(start_gunicorn(
        database_server, tmp_path / "gunicorn.log", worker_class, "--max-requests", "120",
        "--max-requests-jitter", "30",
    ))  # fmt: skip
    master_session = the_masters_session(server)
    connects_before = server.connects()
    replies = web.load("hit", 400)
    connects = server.connects() - connects_before
    assert failures(replies) == []
    by_pid = connections_of(replies)
    assert len(by_pid) > WORKERS, "--max-requests recycled no worker"
    # No connection was used by two processes, nor the master's by any worker.
    used = [connection for connections_of_pid in by_pid.values() for connection in connections_of_pid]
    assert len(used) == len(set(used))
    assert master_session not in used
    assert master_session in server.sessions()  # no worker's exit or collection ended it
    # Connections are reused: each worker process opened at most its budget.
    assert connects <= len(by_pid) * BUDGET, f"{connects} connects for {len(replies)} requests"
    assert sampler.peak <= WORKERS * BUDGET + 1  # +1: the master's
    web.stop()
    wait_for(lambda: not server.sessions(), what="no session left after SIGTERM")


def test_a_killed_worker_is_replaced_and_a_reload_leaves_no_connection_behind(
    database_server: dbserver.Server,
    watched: tuple[Server, SessionSampler],
    tmp_path: Path,
    servers: ExitStack,
) -> None:
    server, sampler = watched
    web = servers.enter_context(start_gunicorn(database_server, tmp_path / "gunicorn.log", "gthread"))
    first = web.load("hit", 100)
    assert failures(first) == []
    by_pid = connections_of(first)
    killed = min(by_pid)
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: gone(server, by_pid[killed]), what="the killed worker's sessions gone")
    after_kill = web.load("hit", 200)
    assert failures(after_kill) == []  # the other worker carried on, the new one too
    assert killed not in pids(after_kill)
    wait_for(lambda: len(pids(web.load("ping", 20)) - set(by_pid)) >= 1, what="a replacement worker")

    before_reload = connections_of(after_kill)
    web.signal(signal.SIGHUP)  # new workers, then the old ones stop gracefully
    old_sessions = set().union(*before_reload.values())
    wait_for(lambda: gone(server, old_sessions), what="the old workers' sessions gone")
    after_reload = web.load("hit", 100)
    assert failures(after_reload) == []
    assert not pids(after_reload) & set(before_reload)
    assert len(server.sessions()) <= WORKERS * BUDGET + 1
    web.stop()
    wait_for(lambda: not server.sessions(), what="no session left after SIGTERM")
