"""A PooledDaemonCommand whose class attribute sets an interval out of range."""

from __future__ import annotations

from mysqlpool.daemon import PooledDaemonCommand


class Command(PooledDaemonCommand):
    interval = 1e300

    def handle_job(self) -> object:
        return False
