"""Units of work for the worker processes of tests/test_daemon.py.

Each unit marks a row 'started', works a little, then marks it 'done', in
autocommit: a unit cut in the middle leaves a 'started' row behind.
"""

from __future__ import annotations

import itertools
import os

from django.db import connection

_calls = itertools.count()


def record_unit(work: float = 0.02) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO daemon_units (pid, state) VALUES (%s, 'started')", [os.getpid()])
        unit = cursor.lastrowid
        cursor.execute("SELECT SLEEP(%s)", [work])
        cursor.execute("UPDATE daemon_units SET state = 'done' WHERE id = %s", [unit])
    return True


def flaky_unit() -> bool:
    """Every third unit fails."""
    if next(_calls) % 3 == 0:
        raise ValueError("this unit failed on purpose")
    return record_unit()


def slow_unit() -> bool:
    return record_unit(work=30)


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
