"""The pooled backend's cursors answer and fail as those of Django's MySQL backend do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import ProgrammingError, connections
from django.db.backends.utils import CursorDebugWrapper
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "plain"])

FOUR_ROWS = "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4"
FETCHES: dict[str, Callable[[Any], Any]] = {
    "fetchone": lambda cursor: cursor.fetchone(),
    "fetchmany": lambda cursor: cursor.fetchmany(2),
    "fetchall": lambda cursor: cursor.fetchall(),
}


def fetched(alias: str) -> list[Any]:
    """What each way of fetching returns, in turn, from one query of four rows."""
    with connections[alias].cursor() as cursor:
        cursor.execute(FOUR_ROWS)
        return [cursor.fetchone(), cursor.fetchmany(2), cursor.fetchmany(), cursor.fetchall()]


def test_fetches_return_what_djangos_backend_returns() -> None:
    assert fetched("default") == fetched("plain") == [(1,), ((2,), (3,)), ((4,),), ()]


@pytest.mark.parametrize("fetch", FETCHES)
def test_a_fetch_raises_djangos_error_as_djangos_backend_does(fetch: str) -> None:
    """Before any query, MySQLdb raises its ProgrammingError: both backends translate it."""
    for alias in ("default", "plain"):
        with connections[alias].cursor() as cursor, pytest.raises(ProgrammingError, match="execute"):
            FETCHES[fetch](cursor)


def test_a_closed_cursor_is_closed() -> None:
    cursor = connections["default"].cursor()
    cursor.execute("SELECT 1")
    cursor.close()
    with pytest.raises(ProgrammingError):
        cursor.execute("SELECT 1")


def test_the_debug_cursor_still_records_every_query() -> None:
    """Django's own debug cursor (DEBUG, assertNumQueries): its queries are logged."""
    connection = connections["default"]
    with CaptureQueriesContext(connection) as captured, connection.cursor() as cursor:
        assert isinstance(cursor, CursorDebugWrapper)
        cursor.execute(FOUR_ROWS)
        assert cursor.fetchall() == ((1,), (2,), (3,), (4,))
    assert [query["sql"] for query in captured.captured_queries] == [FOUR_ROWS]
