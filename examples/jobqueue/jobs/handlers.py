"""The unit of work: claim one pending job, do it, mark it done, in one transaction.

``select_for_update(skip_locked=True)`` lets many threads and processes claim jobs
at once without waiting on each other, and without two of them taking the same
job. Run it with::

    python manage.py run_pooled_worker jobs.handlers.process_one --processes 2 --threads 4 --budget 3
"""

from __future__ import annotations

import os

from django.db import transaction

from jobs.models import Completion, Job


def process_one() -> bool:
    """Do one pending job; False when there is none."""
    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(done=False).order_by("id").first()
        if job is None:
            return False
        job.done = True
        job.save(update_fields=["done"])
        Completion.objects.create(job=job, worker_pid=os.getpid())
    return True
