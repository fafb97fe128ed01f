"""``manage.py enqueue N``: add N pending jobs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.models import Job


class Command(BaseCommand):
    help = "Add N pending jobs to the queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int)

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        if count < 1:
            raise CommandError(f"count is {count}; it must be an int >= 1.")
        Job.objects.bulk_create([Job(payload=number) for number in range(count)], batch_size=1000)
        self.stdout.write(f"Enqueued {count} jobs.")
