"""Tasks that record which process and which server connection ran them (table task_runs)."""

from __future__ import annotations

import os
import time

from celery import shared_task
from django.db import connection

RELEASE_TIMEOUT = 60


def record_run(number: int, state: str) -> int:
    """A row saying that this process, on its current connection, reached ``state``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        (connection_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO task_runs (number, pid, connection_id, state) VALUES (%s, %s, %s, %s)",
            [number, os.getpid(), connection_id, state],
        )
    return int(connection_id)


@shared_task
def record(number: int) -> None:
    record_run(number, "done")


def released(number: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM task_runs WHERE number = %s AND state = 'release'", [number])
        return cursor.fetchone() is not None


# acks_late with reject_on_worker_lost: a message whose worker process died is
# delivered again, not acknowledged as failed.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def hold(number: int) -> None:
    """Record its start, wait until the test releases it (a 'release' row), record its end."""
    record_run(number, "started")
    deadline = time.monotonic() + RELEASE_TIMEOUT
    while not released(number):
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {number} was never released")
        time.sleep(0.02)
    record_run(number, "done")
