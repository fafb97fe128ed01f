"""The process's pools: close_pool() and get_stats()."""

from __future__ import annotations

import pytest
from django.db import connections
from django.utils.connection import ConnectionDoesNotExist

from mysqlpool import close_pool, get_stats, stats
from tests.helpers import Server, checked_out, connection_id, pool_stats

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"])


def test_close_pool_of_an_unknown_alias_is_an_error() -> None:
    with pytest.raises(ConnectionDoesNotExist, match="The connection 'nope' doesn't exist"):
        close_pool("nope")


def test_close_pool_closes_every_pool(server: Server) -> None:
    sessions = {connection_id(connections["default"]), connection_id(connections["other"])}
    connections.close_all()
    assert set(get_stats()) == {"default", "other"}
    close_pool()
    assert get_stats() == {}
    for session in sessions:
        server.wait_until_gone(session)


@pytest.mark.usefixtures("server")
def test_stats_report_every_documented_figure() -> None:
    connection_id(connections["default"])
    figures = get_stats()["default"]
    shapes = {"budget", "backend", "open", "idle", "checked_out", "overflow", "pending", "max", "idle_max"}
    assert set(figures) == {*shapes, *stats.COUNTERS, *stats.DISTRIBUTIONS, stats.INVALIDATION_CAUSES}
    assert set(figures[stats.INVALIDATION_CAUSES]) == {"hung_up", "failed", "discarded"}
    # tests/settings.py: pool_size 4, max_overflow 2.
    assert (figures["max"], figures["idle_max"], figures["pending"]) == (6, 4, 0)
    assert figures[stats.WAIT_TIMES]["count"] == figures[stats.CHECKOUTS]
    assert figures[stats.CREATE_TIMES]["count"] == figures[stats.CONNECTS]
    assert set(figures["budget"]) == {"limit", "open", "peak", "held", "waits", "wait_time", "timeouts"}
    assert (figures["open"], figures["checked_out"], figures["idle"]) == (1, 1, 0)
    connections["default"].close()
    assert (pool_stats(connections["default"])["idle"], checked_out("default")) == (1, 0)
    assert get_stats()["default"][stats.USE_TIMES]["count"] == get_stats()["default"][stats.CHECKOUTS]


@pytest.mark.usefixtures("server")
def test_a_closed_pool_is_shown_while_its_connections_are_checked_out() -> None:
    """As after mysqlpool.fork() in the parent: the budget still counts the connection."""
    connection_id(connections["default"])  # checked out until close()
    close_pool()
    figures = get_stats()["default"]
    assert (figures["open"], figures["checked_out"], figures["idle"]) == (1, 1, 0)
    assert figures["budget"]["open"] == 1
    connections["default"].close()  # a connection of a closed pool is closed when returned
    assert "default" not in get_stats()


@pytest.mark.usefixtures("server")
def test_counters_run_on_across_close_pool() -> None:
    connection_id(connections["default"])
    connections["default"].close()
    before = get_stats()["default"]
    close_pool()
    connection_id(connections["default"])
    after = get_stats()["default"]
    assert after[stats.CHECKOUTS] == before[stats.CHECKOUTS] + 1
    assert (after[stats.CONNECTS], after[stats.CLOSES]) == (
        before[stats.CONNECTS] + 1,
        before[stats.CLOSES] + 1,
    )
    assert after["open"] == 1
