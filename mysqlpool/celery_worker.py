"""What mysqlpool must know of Celery's workers: whether a task is running.

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


def task_running() -> bool:
    """Whether this thread is running a task a Celery worker received (its signals included).

    Celery sends ``task_prerun`` and ``task_postrun`` with the task on its stack,
    which ``celery._state.get_current_worker_task()`` (listed in that module's
    ``__all__``) reads; a task called directly inside another does not count.
    """
    state = sys.modules.get("celery._state")
    return state is not None and state.get_current_worker_task() is not None
