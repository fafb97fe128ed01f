"""What mysqlpool must know of Celery's workers: whether a task is running, and
when a child process exits.

Celery's Django fixup (``celery/fixups/django.py``, ``_close_database``, since
celery #9953 and #10020; 5.7 does it) calls ``connection.close_pool()`` in prefork
workers before and after every task, for every alias whose ``OPTIONS`` has
``"pool"`` (celery #10554). Its purpose is that a forked child never uses its
parent's pool, which mysqlpool's at-fork handler already guarantees
(mysqlpool/forking.py); taken literally at every task, it would close the pool's
connections twice per task and pooling would be silently off (300 tasks, 300
connections).

Celery is never imported here: if no module of it is loaded, no task can run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def task_running() -> bool:
    """Whether this thread is running a task a Celery worker received (its signals included).

    Celery sends ``task_prerun`` and ``task_postrun`` with the task on its stack,
    which ``celery._state.get_current_worker_task()`` (listed in that module's
    ``__all__``) reads; a task called directly inside another does not count.
    """
    state = sys.modules.get("celery._state")
    return state is not None and state.get_current_worker_task() is not None


def on_child_exit(close: Callable[[], None]) -> None:
    """Have Celery call ``close`` in each pool child as it exits, if Celery is loaded.

    billiard ends a prefork child with ``os._exit()``, without the garbage
    collection that would close its idle pooled connections politely (COM_QUIT):
    the server saw them drop, counted each in ``Aborted_clients`` and logged an
    "Aborted connection ... Got an error reading communication packets" warning
    for each, at every ``--max-tasks-per-child`` recycling. Celery sends
    ``worker_process_shutdown`` in the child just before. Connected once (its
    ``dispatch_uid``); called where a pool is created, which a child does before
    its first query.
    """
    signals = sys.modules.get("celery.signals")
    if signals is None:
        return

    def close_at_exit(**kwargs: Any) -> None:
        close()

    signals.worker_process_shutdown.connect(close_at_exit, weak=False, dispatch_uid="mysqlpool.on_child_exit")
