"""mysqlpool.metrics: the collector any process registers, read as Prometheus reads it."""

from __future__ import annotations

import pytest
from django.db import connections
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mysqlpool import get_stats, stats
from mysqlpool.metrics import PoolCollector
from tests.helpers import connection_id


def scraped() -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    registry = CollectorRegistry()
    registry.register(PoolCollector())
    text = generate_latest(registry).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


@pytest.mark.usefixtures("server")
def test_the_collector_shows_get_stats_in_opentelemetrys_names() -> None:
    connection_id(connections["default"])  # one checked out...
    figures = get_stats()["default"]
    text, samples = scraped()
    pool = (("pool_name", "default"),)
    assert samples["db_client_connection_count", (*pool, ("state", "used"))] == 1
    assert samples["db_client_connection_count", (*pool, ("state", "idle"))] == figures["idle"]
    assert samples["db_client_connection_max", pool] == 6  # tests/settings.py: 4 + 2 overflow
    assert samples["db_client_connection_idle_max", pool] == 4
    assert samples["db_client_connection_pending_requests", pool] == 0
    assert samples["db_client_connection_timeouts_total", pool] == figures[stats.TIMEOUTS]
    assert samples["mysqlpool_connection_checkouts_total", pool] == figures[stats.CHECKOUTS]
    for cause, count in figures[stats.INVALIDATION_CAUSES].items():
        assert samples["mysqlpool_connection_invalidations_total", (("cause", cause), *pool)] == count
    connections["default"].close()  # ...and returned: its use is timed
    text, samples = scraped()
    checkouts = samples["mysqlpool_connection_checkouts_total", pool]
    assert samples["db_client_connection_use_time_seconds_count", pool] == checkouts
    assert samples["db_client_connection_wait_time_seconds_bucket", (("le", "+Inf"), *pool)] == checkouts
    assert samples["mysqlpool_budget_open", ()] >= 1
    for name in ("db_client_connection_wait_time_seconds", "mysqlpool_budget_waits_total"):
        assert f"# HELP {name} " in text and f"# TYPE {name.removesuffix('_total')}" in text
    assert ("mysqlpool_budget_limit", ()) not in samples  # no budget, no limit sample
