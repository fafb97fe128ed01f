"""Units of work for the worker processes of tests/test_daemon.py.

Each unit marks a row 'started', works a little, then marks it 'done', in
autocommit: a unit cut in the middle leaves a 'started' row behind.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable

from django.db import connection

_calls = itertools.count()


def record_unit(work: float = 0.02) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO daemon_units (pid, state) VALUES (%s, 'started')", [os.getpid()])
        unit = cursor.lastrowid
        cursor.execute("SELECT SLEEP(%s)", [work])
        cursor.execute("UPDATE daemon_units SET state = 'done' WHERE id = %s", [unit])
    return True


def record_uid_unit() -> bool:
    """A unit that records the user it runs as, in its state."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO daemon_units (pid, state) VALUES (%s, %s)", [os.getpid(), f"uid{os.geteuid()}"]
        )
    return True


def quick_unit() -> bool:
    """A unit that takes no time and no connection."""
    return True


def exiting_unit() -> bool:
    """The third unit calls sys.exit(), as a unit calling exit() does."""
    if next(_calls) == 2:
        sys.exit("this unit exits on purpose")
    return record_unit()


def failing_unit() -> bool:
    """Always fails, after writing when and in which thread to the file $FAILURE_TIMES."""
    with open(os.environ["FAILURE_TIMES"], "a") as times:
        times.write(f"{threading.current_thread().name} {time.monotonic()}\n")
    raise RuntimeError("this unit always fails")


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")


def unprintable_unit() -> bool:
    """Every third unit raises an exception that str() fails on."""
    if next(_calls) % 3 == 0:
        raise Unprintable()
    return record_unit()


def flaky_unit() -> bool:
    """Every third unit fails."""
    if next(_calls) % 3 == 0:
        raise ValueError("this unit failed on purpose")
    return record_unit()


def slow_unit() -> bool:
    return record_unit(work=30)


def unit_of_a_second() -> bool:
    return record_unit(work=1)


NOT_CALLABLE = 42


def claim_slowly() -> bool:
    """A queue job done in one transaction that lasts a while.

    The claim is also written to a MyISAM table, which no rollback undoes, so the
    test can see who held which job when it kills a worker.
    """
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM queue_jobs WHERE NOT done ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED")
        row = cursor.fetchone()
        if row is None:
            return False
        cursor.execute("INSERT INTO queue_claims (job, pid) VALUES (%s, %s)", [row[0], os.getpid()])
        cursor.execute("SELECT SLEEP(1)")  # the test kills a worker in this second
        cursor.execute("UPDATE queue_jobs SET done = TRUE WHERE id = %s", [row[0]])
        cursor.execute("INSERT INTO queue_completions (job, pid) VALUES (%s, %s)", [row[0], os.getpid()])
    return True


_steps = itertools.count()


def every_path_once() -> bool:
    """One path that logs, counts or raises per unit, in turn (tests/test_secrets.py).

    Run with a budget of 1: a query, logging what a user might log; the budget
    exceeded; the connection killed under a query; a connect refused.
    """
    import logging

    from django.db import connections

    from mysqlpool import get_stats
    from mysqlpool.registry import pool_for

    step = next(_steps) % 4
    if step == 0:
        with connection.cursor() as cursor:
            cursor.execute("SELECT SLEEP(0.3)")  # past the hold warning
        logging.getLogger("tests.jobs").info(
            "%r %r %r %s", connection, connection.connection, pool_for(connection), get_stats()
        )
    elif step == 1:
        connection.ensure_connection()
        connections["second"].ensure_connection()  # no room: ConnectionBudgetExceeded
    elif step == 2:
        with connection.cursor() as cursor:
            cursor.execute("KILL CONNECTION CONNECTION_ID()")
    else:
        connections["wrongpw"].ensure_connection()  # access denied
    return True


def twenty_units() -> bool:
    """record_unit() for the first 20 units of each process, then nothing to do."""
    return next(_calls) < 20 and record_unit()


def hanging_unit() -> bool:
    """A unit that never ends (as one stuck in a call without a timeout)."""
    record_unit(0)
    time.sleep(3600)
    return True


def exiting_at_once_unit() -> bool:
    """Every unit calls sys.exit(): the process ends as soon as it starts."""
    sys.exit("this unit exits on purpose")


class NotAUnit:
    """A class: calling it makes an instance (truthy), which must not pass for a unit done."""


def unit_with_an_argument(job_id: int) -> bool:
    return True


def _with_a_job(unit: Callable[[int], bool]) -> Callable[[], bool]:
    """A decorator that finds the job itself, as a dependency injector does."""

    @functools.wraps(unit)
    def with_a_job() -> bool:
        return unit(0)

    return with_a_job


@_with_a_job
def unit_given_its_job(job_id: int) -> bool:
    return record_unit()
