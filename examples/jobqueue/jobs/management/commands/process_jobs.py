"""``manage.py process_jobs``: the job queue's worker as a PooledDaemonCommand subclass.

The same work as ``run_pooled_worker jobs.handlers.process_one``, with the defaults
of the options in the class and the hooks of a worker thread overridden.
"""

from __future__ import annotations

import logging
import threading

from jobs.handlers import process_one
from mysqlpool import PooledDaemonCommand

logger = logging.getLogger("mysqlpool")


class Command(PooledDaemonCommand):
    help = "Work the job queue until SIGTERM."

    processes = 2
    threads = 4
    budget = 3
    interval = 0.5

    def worker_started(self) -> None:
        logger.info("%s is ready", threading.current_thread().name)

    def handle_job(self) -> bool:
        return process_one()
