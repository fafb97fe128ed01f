"""A PooledDaemonCommand that records, in daemon_units, each process its start hook ran in."""

from __future__ import annotations

import os

from django.db import connection

from mysqlpool.daemon import PooledDaemonCommand
from tests.jobs import record_unit


class Command(PooledDaemonCommand):
    def worker_process_started(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO daemon_units (pid, state) VALUES (%s, 'booted')", [os.getpid()])

    def handle_job(self) -> object:
        return record_unit()
