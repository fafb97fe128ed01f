"""Celery workers (prefork and threads) with a Redis broker, pooling on the tests' server.

Each test starts ``celery worker`` as a real process on tests/servers_app with a
throwaway redis-server, sends tasks by name, and reads what they recorded in the
task_runs table (process, server connection) and what the server lists.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from django.db import connections

from tests import dbserver
from tests.helpers import Server, SessionSampler, connections_by_pid
from tests.processes import ServerProcess, wait_for
from tests.redisserver import throwaway_redis

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = 1000
POOL_SIZE = 2
CHILDREN = 2


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with throwaway_redis() as url:
        yield url


@pytest.fixture
def task_runs(server: Server, broker: str) -> Server:
    """The server, with an empty task_runs table and an empty broker."""
    server.query(f"USE `{server.database}`")
    server.query(
        "CREATE TABLE IF NOT EXISTS task_runs (id INT AUTO_INCREMENT PRIMARY KEY, number INT,"
        " pid INT, connection_id BIGINT, state VARCHAR(10)) ENGINE=InnoDB"
    )
    server.query("DELETE FROM task_runs")
    redis.Redis.from_url(broker).flushall()
    return server


class Worker(ServerProcess):
    """``celery worker`` on tests/servers_app; stop() is Celery's warm shutdown."""

    def __init__(self, database_server: dbserver.Server, broker: str, log: Path, *args: str, **environ: str):
        super().__init__(
            database_server, log, "celery",
            "-A", "tests.servers_app.celery_app", "worker",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
            *args,
            MYSQLPOOL_TEST_BROKER=broker, MYSQLPOOL_TEST_POOL_SIZE=str(POOL_SIZE), **environ,
        )  # fmt: skip


def send(broker: str, task: str, numbers: range) -> None:
    """Send tasks by name, from a client without Celery's Django fixup."""
    client = Celery(broker=broker, fixups=[], set_as_current=False)
    with client.connection_for_write() as connection:
        for number in numbers:
            client.send_task(f"tests.servers_app.tasks.{task}", args=[number], connection=connection)


def runs(server: Server, state: str) -> list[tuple[int, int, int]]:
    """(number, pid, connection_id) of every run that reached ``state``."""
    rows = server.query(
        "SELECT number, pid, connection_id FROM task_runs WHERE state = %s ORDER BY id", state
    )
    return [(int(n), int(p), int(c)) for n, p, c in rows]


def connections_of(done: list[tuple[int, int, int]]) -> dict[int, set[int]]:
    """For each process that ran tasks, the server connections it used."""
    return connections_by_pid((pid, connection) for _, pid, connection in done)


def settings() -> dict[str, Any]:
    return connections["default"].settings_dict


@pytest.mark.parametrize("pool_in", ["options", "arguments"])
def test_prefork_children_reuse_their_pool_and_recycle_without_leaks(
    database_server: dbserver.Server,
    broker: str,
    task_runs: Server,
    tmp_path: Path,
    servers: ExitStack,
    pool_in: str,
) -> None:
    """The pool in OPTIONS["pool"] made Celery's fixup close it around every task: a connection per task."""
    connects_before, aborted_before = task_runs.connects(), task_runs.aborted_clients()
    with SessionSampler(settings(), {task_runs.conn.thread_id()}, held_only=True) as sampler:
        worker = servers.enter_context(Worker(
            database_server, broker, tmp_path / "worker.log",
            "--pool", "prefork", "--concurrency", str(CHILDREN), "--max-tasks-per-child", "100",
            MYSQLPOOL_TEST_POOL_IN=pool_in, MYSQLPOOL_TEST_BUDGET=str(POOL_SIZE),
        ))  # fmt: skip
        wait_for(lambda: runs(task_runs, "master"), what="the master's query at worker_init")
        send(broker, "record", range(1, TASKS + 1))
        wait_for(lambda: len(runs(task_runs, "done")) >= TASKS, timeout=120, what=f"{TASKS} tasks done")
        done = runs(task_runs, "done")
        by_pid = connections_of(done)
        # Children that --max-tasks-per-child ended leave no session behind.
        ended = {pid for pid in by_pid if not Path(f"/proc/{pid}").exists()}
        wait_for(
            lambda: not set().union(*(by_pid[pid] for pid in ended)) & task_runs.sessions(),
            what="the sessions of recycled children gone",
        )
        worker.stop()
    [(_, master_pid, master_connection)] = runs(task_runs, "master")
    assert sorted(number for number, _, _ in done) == list(range(1, TASKS + 1))  # each once
    assert len(by_pid) > CHILDREN, "no child was recycled"
    assert master_pid not in by_pid
    # Each child opened at most its pool's size of connections, however many tasks it ran.
    assert all(len(ids) <= POOL_SIZE for ids in by_pid.values()), {p: len(ids) for p, ids in by_pid.items()}
    assert task_runs.connects() - connects_before <= len(by_pid) * POOL_SIZE + 1  # +1: the master's
    # The master's connection, inherited at every fork, was never used by a child,
    # and still worked when the master stopped.
    assert all(master_connection not in ids for ids in by_pid.values())
    assert runs(task_runs, "master-end") == [(0, master_pid, master_connection)]
    assert sampler.peak <= CHILDREN * POOL_SIZE + 1
    wait_for(lambda: not task_runs.sessions(), what="no session left after the worker stopped")
    # Each child closed its pool as it exited (Celery ends them with os._exit()):
    # the server logged no "Aborted connection" for their sessions.
    assert task_runs.aborted_clients() == aborted_before


def test_threads_share_the_budget_of_their_process(
    database_server: dbserver.Server, broker: str, task_runs: Server, tmp_path: Path, servers: ExitStack
) -> None:
    """--pool threads: 4 threads, a budget of 2 (one kept by the master's startup query)."""
    with SessionSampler(settings(), {task_runs.conn.thread_id()}, held_only=True) as sampler:
        worker = servers.enter_context(Worker(
            database_server, broker, tmp_path / "worker.log",
            "--pool", "threads", "--concurrency", "4",
            MYSQLPOOL_TEST_BUDGET=str(POOL_SIZE),
        ))  # fmt: skip
        send(broker, "record", range(1, 201))
        wait_for(lambda: len(runs(task_runs, "done")) >= 200, timeout=120, what="200 tasks done")
        worker.stop()
    done = runs(task_runs, "done")
    assert len(done) == 200
    [(_, pid, master_connection)] = runs(task_runs, "master")
    by_pid = connections_of(done)
    assert list(by_pid) == [pid]  # the threads of the worker's own process ran them
    assert len(by_pid[pid] | {master_connection}) <= POOL_SIZE
    assert sampler.peak <= POOL_SIZE


def test_a_child_killed_mid_task_has_its_task_run_again_exactly_once(
    database_server: dbserver.Server, broker: str, task_runs: Server, tmp_path: Path, servers: ExitStack
) -> None:
    worker = servers.enter_context(
        Worker(
            database_server,
            broker,
            tmp_path / "worker.log",
            "--pool",
            "prefork",
            "--concurrency",
            str(CHILDREN),
        )
    )
    send(broker, "hold", range(1, 2))
    wait_for(lambda: runs(task_runs, "started"), what="the task started")
    [(_, killed, killed_connection)] = runs(task_runs, "started")
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: len(runs(task_runs, "started")) == 2, what="the task started again")
    task_runs.query("INSERT INTO task_runs (number, state) VALUES (1, 'release')")
    wait_for(lambda: runs(task_runs, "done"), what="the task done")
    worker.stop()
    started = runs(task_runs, "started")
    assert [pid != killed for _, pid, _ in started] == [False, True]
    assert len(runs(task_runs, "done")) == 1
    wait_for(lambda: killed_connection not in task_runs.sessions(), what="the killed child's session gone")
