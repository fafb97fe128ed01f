"""auto_close_db: the current thread's connections returned after each unit of work."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from mysqlpool import auto_close_db
from tests.helpers import checked_out, connection_id

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"])


def use_every_alias() -> None:
    for alias in ("default", "other", "plain"):
        connection_id(connections[alias])


@auto_close_db
def bare_decorated(fail: bool) -> str:
    use_every_alias()
    if fail:
        raise ValueError("unit of work failed")
    return "done"


@auto_close_db()
def called_decorated() -> None:
    use_every_alias()


def assert_all_returned() -> None:
    assert all(connections[alias].connection is None for alias in ("default", "other", "plain"))
    assert checked_out("default") == checked_out("other") == 0


@pytest.mark.usefixtures("server")
def test_bare_decorator_returns_every_connection_and_the_result() -> None:
    assert bare_decorated(False) == "done"
    assert bare_decorated.__name__ == "bare_decorated"
    assert_all_returned()


@pytest.mark.usefixtures("server")
def test_connections_are_returned_when_the_unit_of_work_raises() -> None:
    with pytest.raises(ValueError, match="unit of work failed"):
        bare_decorated(True)
    assert_all_returned()


@pytest.mark.usefixtures("server")
def test_called_decorator_and_context_manager() -> None:
    called_decorated()
    assert_all_returned()
    with auto_close_db():
        use_every_alias()
    assert_all_returned()


@pytest.mark.usefixtures("server")
def test_never_closes_inside_an_enclosing_atomic_block() -> None:
    default = connections["default"]
    with transaction.atomic():
        session = connection_id(default)
        with auto_close_db():
            connection_id(connections["other"])
        # The outer block's connection is still checked out, its transaction alive.
        assert connection_id(default) == session
        assert checked_out("default") == 1
    assert connections["other"].connection is None
    default.close()


@pytest.mark.usefixtures("server")
def test_only_the_current_threads_connections_are_returned() -> None:
    connection_id(connections["default"])
    other_thread_done = threading.Event()
    thread = threading.Thread(target=lambda: (auto_close_db(use_every_alias)(), other_thread_done.set()))
    thread.start()
    thread.join()
    assert other_thread_done.is_set()
    assert connections["default"].connection is not None
    assert checked_out("default") == 1
    connections["default"].close()
