"""``manage.py run_pooled_worker dotted.path.to.callable [options]``.

Runs any callable as the unit of work of a PooledDaemonCommand: truthy when it did
work, falsy when there was nothing to do. The path is checked before anything starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.module_loading import import_string

from mysqlpool.daemon import PooledDaemonCommand


class Command(PooledDaemonCommand):
    help = "Run a callable as the unit of work of pooled worker threads, until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("callable", help="Dotted path of the unit of work, e.g. myapp.jobs.process_one.")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.unit = resolve_callable(options["callable"])
        self.unit_path: str = options["callable"]
        super().handle(*args, **options)

    def describe_unit(self) -> str:
        return self.unit_path

    def handle_job(self) -> object:
        return self.unit()


def resolve_callable(path: str) -> Callable[[], object]:
    """The callable at ``path``, or a CommandError saying why not."""
    try:
        found = import_string(path)
    except ImportError as error:
        raise CommandError(f"{path!r} is not an importable dotted path to a callable: {error}") from None
    if not callable(found):
        raise CommandError(f"{path!r} is not a callable: it is of type {type(found).__name__}.")
    unit: Callable[[], object] = found
    return unit
