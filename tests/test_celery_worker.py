"""mysqlpool/celery_worker.py in-process: what the wrapper's close_pool() does inside and outside a task.

Celery's stack of running tasks is set as its worker sets it around a task and
its signals (tests/test_celery.py runs a real worker).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery._state import pop_current_task, push_current_task

from mysqlpool import celery_worker
from tests.helpers import Server, connection_id


@pytest.fixture
def running_task() -> Iterator[None]:
    """A task on Celery's stack, received by a worker (not called directly)."""
    app = Celery(fixups=[], set_as_current=False)

    @app.task
    def task() -> None: ...

    push_current_task(task)
    task.push_request(called_directly=False)
    try:
        yield
    finally:
        task.pop_request()
        pop_current_task()


def test_no_task_runs_outside_a_worker() -> None:
    assert not celery_worker.task_running()


def test_a_task_called_directly_is_not_one_a_worker_runs() -> None:
    app = Celery(fixups=[], set_as_current=False)

    @app.task
    def task() -> None: ...

    push_current_task(task)
    try:
        assert not celery_worker.task_running()
    finally:
        pop_current_task()


def test_close_pool_around_a_task_keeps_the_pool(
    make_wrapper: Any, server: Server, running_task: None
) -> None:
    """Celery's fixup returns the connection, then calls close_pool(): the next task reuses it."""
    wrapper = make_wrapper()
    first = connection_id(wrapper)
    wrapper.close()
    wrapper.close_pool()
    assert first in server.sessions()
    assert connection_id(wrapper) == first


def test_close_pool_outside_a_task_closes_the_pool(make_wrapper: Any, server: Server) -> None:
    wrapper = make_wrapper()
    first = connection_id(wrapper)
    wrapper.close()
    wrapper.close_pool()
    server.wait_until_gone(first)
