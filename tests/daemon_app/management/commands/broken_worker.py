"""A PooledDaemonCommand whose workers cannot start: for the boot failure tests."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from mysqlpool.daemon import PooledDaemonCommand


class Command(PooledDaemonCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--failing-hook", choices=["worker_started", "worker_process_started"])

    def handle(self, *args: Any, **options: Any) -> None:
        self.failing_hook = options["failing_hook"]
        super().handle(*args, **options)

    def worker_process_started(self) -> None:
        if self.failing_hook == "worker_process_started":
            raise RuntimeError("this worker process cannot start")

    def worker_started(self) -> None:
        if self.failing_hook == "worker_started":
            raise RuntimeError("this worker thread cannot start")

    def handle_job(self) -> object:
        return False
