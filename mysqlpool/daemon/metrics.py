"""A daemon's metrics: its worker processes' units and threads, and the master's workers.

Without ``--processes``, the process serves its pools' and its threads' metrics.
With it, each worker sends its own to the master (mysqlpool.daemon.reports), which
serves them labelled ``pid``, beside its own: the series of a worker go with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from mysqlpool.daemon.health import page
from mysqlpool.daemon.metrics_server import MetricsServer
from mysqlpool.daemon.reports import Report
from mysqlpool.daemon.threads import WorkerThreads
from mysqlpool.metrics import PoolCollector

PID_LABEL = "pid"

# Why the master started a worker again (the label ``cause``).
RESTART_CAUSES = {
    "recycled": "it exited 0 (--max-jobs)",
    "failed": "it exited with a failure status",
    "killed": "a signal killed it",
    "hung": "no unit started or finished in it for --unit-timeout",
}


class WorkerCollector(Collector):
    """The units and threads of this process's worker threads."""

    def __init__(self, workers: WorkerThreads) -> None:
        self.workers = workers

    def collect(self) -> Iterator[Metric]:
        workers = self.workers
        yield _counter("mysqlpool_daemon_units_done", "Units of work that did work.", workers.done)
        yield _counter("mysqlpool_daemon_units_failed", "Units of work that raised.", workers.errors)
        yield _gauge("mysqlpool_daemon_threads", "Worker threads of the process.", workers.count)
        yield _gauge(
            "mysqlpool_daemon_busy_threads", "Worker threads in a unit.", len(workers.running.copy())
        )
        yield _gauge(
            "mysqlpool_daemon_stalled_seconds",
            "Seconds since a unit started or finished while every thread is in one (0 when one is free).",
            workers.stalled_for(),
            unit="seconds",
        )


def worker_registry(workers: WorkerThreads) -> CollectorRegistry:
    """What a worker process shows: its pools, its budget, its threads."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PoolCollector())
    registry.register(WorkerCollector(workers))
    return registry


def master_registry(master: Master) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MasterCollector(master))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def serve(server: MetricsServer, registry: CollectorRegistry, health: Callable[[], str | None]) -> None:
    """/metrics renders ``registry``; /healthz, the verdict of ``health()``."""
    server.pages["/metrics"] = lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry))
    server.pages["/healthz"] = lambda: page(health())


class Master(Protocol):
    """What the master's metrics read of the supervisor."""

    processes: int

    @property
    def restarts(self) -> Mapping[str, int]: ...

    def live_workers(self) -> int: ...

    def reports(self) -> Mapping[int, Report]: ...


class MasterCollector(Collector):
    """The master's workers, and every live worker's last report labelled with its pid."""

    def __init__(self, master: Master) -> None:
        self.master = master

    def collect(self) -> Iterator[Metric]:
        master = self.master
        yield _gauge("mysqlpool_daemon_workers", "Worker processes running.", master.live_workers())
        yield _gauge(
            "mysqlpool_daemon_target_workers",
            "Worker processes the master keeps running (--processes, SIGTTIN and SIGTTOU change it).",
            master.processes,
        )
        restarts = CounterMetricFamily(
            "mysqlpool_daemon_worker_restarts",
            "Worker processes started again, by the cause of the end of the one replaced.",
            labels=["cause"],
        )
        for cause in RESTART_CAUSES:
            restarts.add_metric([cause], master.restarts.get(cause, 0))
        yield restarts
        yield from merged_reports(master.reports())


def merged_reports(reports: Mapping[int, Report]) -> Iterator[Metric]:
    """The families of every report, each sample labelled with its worker's pid."""
    families: dict[str, Metric] = {}
    for pid, report in sorted(reports.items()):
        for family in text_string_to_metric_families(report.metrics):
            merged = families.setdefault(
                family.name, Metric(family.name, family.documentation, family.type, family.unit)
            )
            for sample in family.samples:
                merged.add_sample(sample.name, {**sample.labels, PID_LABEL: str(pid)}, sample.value)
    yield from families.values()


def _gauge(name: str, documentation: str, value: float, unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value, unit=unit)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)
