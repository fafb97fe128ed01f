"""A PooledDaemonCommand whose worker threads cannot start: for the boot failure tests."""

from __future__ import annotations

from mysqlpool.daemon import PooledDaemonCommand


class Command(PooledDaemonCommand):
    def worker_started(self) -> None:
        raise RuntimeError("this worker cannot start")

    def handle_job(self) -> object:
        return False
