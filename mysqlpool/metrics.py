"""This process's pools and budget as Prometheus metrics (``pip install mysqlpool[metrics]``).

Register the collector in any process to add its pools to that process's
``/metrics`` (a web app's, say)::

    from prometheus_client import REGISTRY
    from mysqlpool.metrics import PoolCollector

    REGISTRY.register(PoolCollector())

The names follow OpenTelemetry's semantic conventions for database client
connection pools, in Prometheus form (``db.client.connection.count`` becomes
``db_client_connection_count``), labelled ``pool_name`` with the alias; mysqlpool's
own figures are named ``mysqlpool_*``. They are read from ``get_stats()`` at each
scrape: nothing is counted twice, and no password or query text is in them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from mysqlpool import stats
from mysqlpool.budget import process_budget
from mysqlpool.registry import get_stats

POOL_LABEL = "pool_name"
_INVALIDATIONS = "mysqlpool_connection_invalidations"

# name -> (help, the get_stats() figure it reads); counters get their _total.
_POOL_GAUGES = {
    "db_client_connection_max": ("Most connections the pool may hold open at once.", "max"),
    "db_client_connection_idle_max": ("Most idle connections the pool keeps.", "idle_max"),
    "db_client_connection_pending_requests": (
        "Checkouts waiting for a connection of the pool.",
        "pending",
    ),
}
_POOL_COUNTERS = {
    "db_client_connection_timeouts": ("Checkouts that gave up waiting for a connection.", stats.TIMEOUTS),
    "mysqlpool_connection_checkouts": ("Connections handed to Django.", stats.CHECKOUTS),
    "mysqlpool_connection_waits": ("Checkouts that found the pool exhausted and waited.", stats.WAITS),
    "mysqlpool_connection_wait_time_seconds": ("Seconds spent in those waits.", stats.WAIT_TIME),
    "mysqlpool_connection_opens": ("Server connections opened.", stats.CONNECTS),
    "mysqlpool_connection_closes": ("Server connections closed.", stats.CLOSES),
}
_POOL_HISTOGRAMS = {
    "db_client_connection_wait_time": (
        "Seconds a checkout took to obtain an open connection (0 when one was idle).",
        stats.WAIT_TIMES,
    ),
    "db_client_connection_use_time": ("Seconds a connection was checked out.", stats.USE_TIMES),
    "db_client_connection_create_time": ("Seconds opening a server connection took.", stats.CREATE_TIMES),
}
_BUDGET_GAUGES = {
    "mysqlpool_budget_limit": ("Most server connections the process may hold open (its budget).", "limit"),
    "mysqlpool_budget_open": ("Server connections the process holds open, every alias.", "open"),
    "mysqlpool_budget_peak": ("Most server connections the process held open at once.", "peak"),
}
_BUDGET_COUNTERS = {
    "mysqlpool_budget_waits": ("Connections that waited for room in the budget.", "waits"),
    "mysqlpool_budget_wait_time_seconds": ("Seconds spent waiting for room in the budget.", "wait_time"),
    "mysqlpool_budget_timeouts": ("Waits for room in the budget that gave up.", "timeouts"),
}


class PoolCollector(Collector):
    """The pools (by alias) and the connection budget of the process it is collected in."""

    def collect(self) -> Iterator[Metric]:
        yield from pool_metrics(get_stats())
        yield from budget_metrics(process_budget().status())


def pool_metrics(pools: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
    """Metric families of ``get_stats()``'s figures, one sample per alias in each."""
    count = GaugeMetricFamily(
        "db_client_connection_count",
        "Connections the pool holds open, by state.",
        labels=[POOL_LABEL, "state"],
    )
    for alias, figures in pools.items():
        count.add_metric([alias, "idle"], figures["idle"])
        count.add_metric([alias, "used"], figures["checked_out"])
    yield count
    yield from _families(GaugeMetricFamily, _POOL_GAUGES, pools)
    yield from _families(CounterMetricFamily, _POOL_COUNTERS, pools)
    invalidations = CounterMetricFamily(
        _INVALIDATIONS,
        "Connections closed at once, by cause: hung_up (by the server, while idle), failed (an "
        "error in a query or a reset), discarded (returned in an unknown state).",
        labels=[POOL_LABEL, "cause"],
    )
    for alias, figures in pools.items():
        for cause, count in figures[stats.INVALIDATION_CAUSES].items():
            invalidations.add_metric([alias, cause], count)
    yield invalidations
    for name, (documentation, key) in _POOL_HISTOGRAMS.items():
        histogram = HistogramMetricFamily(name, documentation, labels=[POOL_LABEL], unit="seconds")
        for alias, figures in pools.items():
            distribution = figures[key]
            buckets = [(_bound(bound), count) for bound, count in distribution["buckets"]]
            histogram.add_metric([alias], buckets, distribution["sum"])
        yield histogram


def budget_metrics(budget: Mapping[str, Any]) -> Iterator[Metric]:
    """Metric families of the budget's status(); no limit, no limit sample."""
    for name, (documentation, key) in _BUDGET_GAUGES.items():
        family = GaugeMetricFamily(name, documentation, labels=[])
        if budget[key] is not None:
            family.add_metric([], budget[key])
        yield family
    for name, (documentation, key) in _BUDGET_COUNTERS.items():
        counter = CounterMetricFamily(name, documentation, labels=[])
        counter.add_metric([], budget[key])
        yield counter


def _families(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    table: Mapping[str, tuple[str, str]],
    pools: Mapping[str, Mapping[str, Any]],
) -> Iterable[Metric]:
    for name, (documentation, key) in table.items():
        family = kind(name, documentation, labels=[POOL_LABEL])
        for alias, figures in pools.items():
            if figures.get(key) is not None:  # a pool class without a maximum has none
                family.add_metric([alias], figures[key])
        yield family


def figures_from_metrics(text: str) -> dict[str, dict[str, Any]]:
    """The inverse of the collectors, for ``mysqlpool_status --url``: per process (the
    ``pid`` label a daemon's master adds, or "" for a process serving its own), its
    pools' figures by alias and its budget, keyed as get_stats() keys them."""
    processes: dict[str, dict[str, Any]] = {}
    pools_by_name = {**_POOL_GAUGES, **_POOL_COUNTERS}
    budget_by_name = {**_BUDGET_GAUGES, **_BUDGET_COUNTERS}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            process = processes.setdefault(labels.pop("pid", ""), {"pools": {}, "budget": {"limit": None}})
            name = sample.name.removesuffix("_total")
            value = int(sample.value) if sample.value.is_integer() else sample.value  # counts read as such
            if name in budget_by_name:
                process["budget"][budget_by_name[name][1]] = value
            elif POOL_LABEL in labels:
                pool = process["pools"].setdefault(labels[POOL_LABEL], {})
                if name in pools_by_name:
                    pool[pools_by_name[name][1]] = value
                elif name == "db_client_connection_count":
                    pool["idle" if labels["state"] == "idle" else "checked_out"] = value
                elif name == _INVALIDATIONS:
                    pool.setdefault(stats.INVALIDATION_CAUSES, {})[labels["cause"]] = value
                    pool[stats.INVALIDATIONS] = pool.get(stats.INVALIDATIONS, 0) + value
    for process in processes.values():
        for pool in process["pools"].values():
            pool["open"] = pool.get("idle", 0) + pool.get("checked_out", 0)
    return {
        label: process
        for label, process in processes.items()
        if process["pools"] or len(process["budget"]) > 1
    }


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
