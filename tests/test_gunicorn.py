"""gunicorn (sync and gthread workers, --preload, --max-requests) serving tests/servers_app.

Each test starts gunicorn as a real process, loads it from a pool of client
threads, and watches the server's sessions: how many, how many were opened, and
which process used which (each reply says its pid and its connection's id).
"""

from __future__ import annotations

import signal
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests import dbserver
from tests.helpers import Server, SessionSampler
from tests.processes import wait_for
from tests.webservers import (
    WebServer,
    assert_no_connection_shared,
    connections_of,
    failures,
    gone,
    kill_a_worker,
    pids,
    stop_leaving_no_session,
    the_masters_session,
)

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
    assert_no_connection_shared(by_pid, {master_session}, server)
    # Connections are reused: each worker process opened at most its budget.
    assert connects <= len(by_pid) * BUDGET, f"{connects} connects for {len(replies)} requests"
    assert sampler.peak <= WORKERS * BUDGET + 1  # +1: the master's
    stop_leaving_no_session(web, server)


def test_a_killed_worker_is_replaced_and_a_reload_leaves_no_connection_behind(
    database_server: dbserver.Server,
    watched: tuple[Server, SessionSampler],
    tmp_path: Path,
    servers: ExitStack,
) -> None:
    server, sampler = watched
    web = servers.enter_context(start_gunicorn(database_server, tmp_path / "gunicorn.log", "gthread"))
    before_reload = kill_a_worker(web, server)
    web.signal(signal.SIGHUP)  # new workers, then the old ones stop gracefully
    old_sessions = set().union(*before_reload.values())
    wait_for(lambda: gone(server, old_sessions), what="the old workers' sessions gone")
    after_reload = web.load("hit", 100)
    assert failures(after_reload) == []
    assert not pids(after_reload) & set(before_reload)
    assert len(server.sessions()) <= WORKERS * BUDGET + 1
    stop_leaving_no_session(web, server)
