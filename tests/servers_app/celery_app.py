"""The Celery application of the worker tests (``celery -A tests.servers_app.celery_app``).

The master runs a query when the worker starts and keeps that connection, as
applications that warm up at startup do; its prefork children then inherit it at
every fork. At shutdown the master queries on it again: both times it writes the
connection's id to the task_runs table (states ``master`` and ``master-end``).
"""

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_shutdown

app = Celery("servers_app", include=["tests.servers_app.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")


# Connected after Celery's Django fixup, which closes the database at worker_init:
# this runs after that, so the connection stays open over the forks.
@worker_init.connect
def master_connects(**kwargs: Any) -> None:
    from tests.servers_app.tasks import record_run

    record_run(0, "master")


@worker_shutdown.connect
def master_queries_again(**kwargs: Any) -> None:
    from tests.servers_app.tasks import record_run

    record_run(0, "master-end")
