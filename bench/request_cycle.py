"""Request-cycle benchmark: mysqlpool against Django's MySQL backend and django-db-connection-pool.

A request cycle is the least a Django request costs the database layer: one
``SELECT 1`` through ``connection.cursor()``, then ``close_old_connections()`` as
Django runs at the end of a request. It goes over TCP loopback (never the unix
socket) to the MariaDB server of ``tests/dbserver.py``: a throwaway one, unless
MYSQLPOOL_TEST_HOST names a server.

Configurations:

* ``pooled``: mysqlpool.backends.mysqlpool with its defaults (CONN_MAX_AGE=0);
* ``pooled-reset``: the same with ``reset_on_return: "session"``, which resets the
  whole session at each check-in (three round trips a request: the reset, the
  character set, Django's session setup);
* ``persistent``: django.db.backends.mysql, CONN_MAX_AGE=None, the reference;
* ``persistent-again``: the same, the control (see Method);
* ``persistent-same-cursors``: the same on bench/same_cursors, Django's backend
  with mysqlpool's cursors, which skip Django's ``__getattr__`` for the fetches
  and ``close()``: pooled against it is what the pool itself costs;
* ``default``: django.db.backends.mysql, CONN_MAX_AGE=0, a connection per request;
* ``django-db-connection-pool`` (ENGINE dj_db_conn_pool.backends.mysql) with
  its defaults; marked unavailable, with the reason, if it fails to load or run.

Both pools keep their default size at one thread; with more threads they hold one
connection per thread (pool_size=threads, max_overflow=0), so nobody waits.

Method: the machine is small and noisy (the server shares its cores), so absolute
figures drift from second to second, by 30% and more between measurements a
minute apart. So the configurations are measured interleaved, in short slices:
at each thread count, one worker process per configuration (this script in worker
mode) sets up Django, warms up, and keeps its threads and their connections; then
each round runs every configuration for ``--seconds`` (0.2 by default), one after
the other, in an order shuffled from round to round (seeded by the round's
number), while the other workers wait idle. Each configuration's time per request
is divided by that of ``persistent`` in the same round, a second or two apart: a
drift of the machine then weighs on both. The table shows the median of these
per-round ratios (60 rounds by default) and the median requests/s.

Two processes of one configuration differ too, and for as long as they live:
their memory layout decides which attribute lookups share a slot of CPython's
type cache and miss it on every request (attached with gdb, three workers of one
configuration missed it twice a request, each on other names), and a worker
started earlier ran slower than one started later (2-5% measured, 2026-12-03).
So the rounds are split among ``--layouts`` sets of fresh workers (3 by default):
each set is started in an order rotated from the last, with ``PYTHONHASHSEED``
set to the set's number, so that every configuration is measured in as many
layouts and start positions, and a run is repeatable. ``persistent-again`` is
``persistent`` once more, in processes of its own: its ratio to ``persistent``
is what two processes of one configuration differ by in that run, the method's
resolution, and it is printed with the rest.

The clients run on CPUs of their own, and the server on the others (bench/cpus.py):
on a machine of two CPUs, each connection's server thread would otherwise share
its client's CPU or not, by lot, for the connection's life, and its requests take
about 26 µs or about 100 µs. Pinned apart, every request waits for its reply as
it does when the server runs on another host. That takes the lottery out; the
host's load still moves the ratios from run to run (bench/README.rst, "Clients
and server on CPUs apart"). At 16 threads the clients' CPU is then the busy one,
and the ratio there is mostly one of client CPU time per request. A server named
by MYSQLPOOL_TEST_HOST is not the benchmark's own to pin: then nothing is pinned.

Each slice checks that the server ran at least as many SELECTs as requests were
counted (one worker runs at a time: the server's counters are its own), and that
the pooled backend never opened more connections than its pool allows. The exit
status is 0 even when a target is missed: this is a report.

Round trips: over loopback a round trip costs next to nothing, over a network
0.2 to 1 ms, often more than the rest of a request. Each slice reads the
server's counters before and after it: ``Questions`` (every statement and
command a client sent that waits for an answer, COM_RESET_CONNECTION included;
COM_PING, which no configuration here sends, is not in it) and ``Connections``
(each new connection costs three round trips before its first statement: TCP's
handshake, the server's greeting, the authentication). Their sum per request,
and each configuration's time per request projected at 0.2, 0.5 and 1 ms of
round-trip time (the loopback time per request plus round trips x RTT), are
reported with the rest.

Usage: python bench/request_cycle.py [--seconds S] [--rounds N] [--layouts N] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Run as bench/request_cycle.py, this script sees bench/, not the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpus import pin_apart
from tests.dbserver import Server, configured_server, test_server

THREAD_COUNTS = (1, 16)
# Each worker runs this long before its first slice, uncounted.
WARMUP_SECONDS = 1.0
# The progress shown on stderr: every this many rounds.
PROGRESS_EVERY = 10
REFERENCE = "persistent"
# The reference again, in processes of its own (see Method in the docstring).
CONTROL = "persistent-again"
# Persistent with mysqlpool's cursors: what pooled costs beside them is the pool's own.
SAME_CURSORS = "persistent-same-cursors"
# Targets: pooled's time per request relative to persistent, by thread count, and
# how many times faster than a connection per request it must be.
MAX_RATIO = {1: 1.05, 16: 1.05}
MIN_SPEEDUP_OVER_DEFAULT = {1: 5.0, 16: 4.0}
# What a new connection costs before its first statement (see the docstring).
HANDSHAKE_ROUND_TRIPS = 3
# Network round-trip times, in ms, that time per request is projected at.
PROJECTED_RTTS_MS = (0.2, 0.5, 1.0)

SettingsDict = dict[str, Any]


@dataclass(frozen=True)
class Config:
    """One way of configuring Django's database connection."""

    name: str
    engine: str
    conn_max_age: int | None
    # The settings that give the pool one connection per thread, if it is a pool.
    pool_sizing: Callable[[int], SettingsDict] | None = None
    # Reported as unavailable, instead of failing the benchmark, if it cannot run.
    optional: bool = False
    # OPTIONS["pool"] arguments at every thread count, besides the sizing.
    pool_arguments: tuple[tuple[str, Any], ...] = ()


CONFIGS = (
    Config(
        "pooled",
        "mysqlpool.backends.mysqlpool",
        0,
        lambda threads: {"OPTIONS": {"pool": {"pool_size": threads, "max_overflow": 0}}},
    ),
    Config(
        "pooled-reset",
        "mysqlpool.backends.mysqlpool",
        0,
        lambda threads: {"OPTIONS": {"pool": {"pool_size": threads, "max_overflow": 0}}},
        pool_arguments=(("reset_on_return", "session"),),
    ),
    Config(REFERENCE, "django.db.backends.mysql", None),
    Config(CONTROL, "django.db.backends.mysql", None),
    Config(SAME_CURSORS, "bench.same_cursors", None),
    Config("default", "django.db.backends.mysql", 0),
    Config(
        "django-db-connection-pool",
        "dj_db_conn_pool.backends.mysql",
        0,
        lambda threads: {"POOL_OPTIONS": {"POOL_SIZE": threads, "MAX_OVERFLOW": 0}},
        optional=True,
    ),
)
CONFIGS_BY_NAME = {config.name: config for config in CONFIGS}


# ---------------------------------------------------------------- worker process


def database_settings(config: Config, threads: int, server: Server) -> SettingsDict:
    """The ``DATABASES["default"]`` entry of ``config`` for ``threads`` threads."""
    if server.host.startswith("/"):
        raise SystemExit(f"The benchmark runs over TCP, but the server is {server.host!r}.")
    settings_dict: SettingsDict = {
        "ENGINE": config.engine,
        # mysqlclient takes "localhost" to mean the unix socket.
        "HOST": "127.0.0.1" if server.host == "localhost" else server.host,
        "PORT": str(server.port),
        "USER": server.user,
        "PASSWORD": server.password,
        "CONN_MAX_AGE": config.conn_max_age,
    }
    if threads > 1 and config.pool_sizing is not None:
        settings_dict.update(config.pool_sizing(threads))
    if config.pool_arguments:
        settings_dict.setdefault("OPTIONS", {}).setdefault("pool", {}).update(config.pool_arguments)
    return settings_dict


def configure_django(settings_dict: SettingsDict) -> None:
    import django
    from django.conf import settings

    settings.configure(DATABASES={"default": settings_dict}, USE_TZ=True)
    django.setup()


def request_cycle() -> None:
    """One request's database work: a query, then Django's end-of-request cleanup."""
    from django.db import close_old_connections, connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    close_old_connections()
    if row != (1,):
        raise AssertionError(f"SELECT 1 returned {row!r}")


class Slices:
    """A worker's threads, kept between slices, running request cycles when told to.

    The threads live as long as the worker: a thread's connection (a persistent
    one, or a pool's) is opened once, as in a long-lived server process, and not
    once per slice. Each slice lets them run for a given time, between two
    readings of the server's counters.
    """

    def __init__(self, config: Config, threads: int) -> None:
        server = configured_server()
        if server is None:
            raise SystemExit("worker mode needs the server in MYSQLPOOL_TEST_* variables")
        settings_dict = database_settings(config, threads, server)
        configure_django(settings_dict)
        # Loads the backend and opens a first connection before anything is counted.
        request_cycle()
        self.config = config
        self.threads = threads
        self.monitor = monitor_connection(settings_dict)
        self._start = threading.Barrier(threads + 1)
        self._end = threading.Barrier(threads + 1)
        self._until = 0.0
        self._stopping = False
        # Per thread, in the last slice: requests completed, and when the last one ended.
        self._counts: list[tuple[int, float]] = []
        self._error: BaseException | None = None
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._workers:
            thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._start.wait()
                if self._stopping:
                    return
                until, requests = self._until, 0
                while time.perf_counter() < until:
                    request_cycle()
                    requests += 1
                self._counts.append((requests, time.perf_counter()))
                self._end.wait()
        except threading.BrokenBarrierError:
            return
        except BaseException as error:
            self._error = error
            self._end.abort()

    def measure(self, seconds: float) -> dict[str, Any]:
        """Let the threads run request cycles for ``seconds``; what they and the server did."""
        before = server_counters(self.monitor)
        self._counts = []
        started = time.perf_counter()
        self._until = started + seconds
        self._start.wait()
        try:
            self._end.wait()
        except threading.BrokenBarrierError:
            raise RuntimeError(f"a thread of {self.config.name} failed: {self._error!r}") from self._error
        after = server_counters(self.monitor)
        elapsed = max(finished for _, finished in self._counts) - started
        requests = sum(count for count, _ in self._counts)
        result: dict[str, Any] = {
            "config": self.config.name,
            "threads": self.threads,
            "seconds": elapsed,
            "requests": requests,
            "requests_per_second": requests / elapsed,
            "server_selects": after["com_select"] - before["com_select"],
            "server_connections": after["connections"] - before["connections"],
            "round_trips_per_request": round_trips(before, after) / requests,
            # Each thread runs its requests one after another.
            "ms_per_request": 1000 * self.threads / (requests / elapsed),
        }
        if self.config.name == "pooled":
            result.update(pool_figures())
        result["failed_checks"] = failed_checks(result)
        return result

    def stop(self) -> None:
        self._stopping = True
        self._start.wait()
        for thread in self._workers:
            thread.join()
        self.monitor.close()


def server_counters(monitor: Any) -> dict[str, int]:
    """The server's counts of SELECT statements, of statements and commands, and of connections."""
    with monitor.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Questions', 'Connections')")
        return {name.lower(): int(value) for name, value in cursor.fetchall()}


def round_trips(before: dict[str, int], after: dict[str, int]) -> int:
    """The round trips the server's counters saw between two readings by the monitor."""
    # The monitor's own SHOW between the readings is counted once.
    questions = after["questions"] - before["questions"] - 1
    return questions + HANDSHAKE_ROUND_TRIPS * (after["connections"] - before["connections"])


def monitor_connection(settings_dict: SettingsDict) -> Any:
    import MySQLdb

    return MySQLdb.connect(
        host=settings_dict["HOST"],
        port=int(settings_dict["PORT"]),
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"],
    )


def pool_figures() -> dict[str, Any]:
    """mysqlpool's counters, the connections it opened and its pool's limit."""
    from django.db import connections

    import mysqlpool
    from mysqlpool.backends.mysqlpool.base import DatabaseWrapper

    wrapper = connections["default"]
    assert isinstance(wrapper, DatabaseWrapper)
    config = wrapper.pool.config
    stats = mysqlpool.get_stats()["default"]
    return {
        "connects": int(stats["connects"]),
        "pool_limit": config.argument("pool_size") + config.argument("max_overflow"),
        "pool_stats": stats,
    }


def failed_checks(result: dict[str, Any]) -> list[str]:
    failures = []
    if result["server_selects"] < result["requests"]:
        selects, requests = result["server_selects"], result["requests"]
        failures.append(f"the server ran {selects} SELECTs for {requests} requests")
    if "connects" in result and result["connects"] > result["pool_limit"]:
        failures.append(
            f"mysqlpool opened {result['connects']} connections, over its limit of {result['pool_limit']}"
        )
    return failures


def serve(config_name: str, threads: int) -> None:
    """Worker mode: measure slices of one configuration as the driver asks, on stdin.

    Each line in is ``run SECONDS`` or ``stop``; each line out is JSON: first
    ``{"ready": true}`` (or why the configuration is unavailable), then each
    slice's figures.
    """
    config = CONFIGS_BY_NAME[config_name]
    try:
        slices = Slices(config, threads)
    except Exception as error:
        if not config.optional:
            raise
        unavailable = {"config": config.name, "threads": threads, "unavailable": describe(error)}
        print(json.dumps(unavailable), flush=True)
        return
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, _, seconds = line.partition(" ")
        if command != "run":
            break
        print(json.dumps(slices.measure(float(seconds))), flush=True)
    slices.stop()


def describe(error: BaseException) -> str:
    """The first line of the error's root cause (Django wraps an ImportError, say)."""
    while error.__cause__ is not None:
        error = error.__cause__
    first_line = str(error).strip().partition("\n")[0]
    return f"{type(error).__name__}: {first_line}"


# ---------------------------------------------------------------- driver process


class Worker:
    """A worker process of one configuration at one thread count, measuring slices."""

    def __init__(self, server: Server, config: str, threads: int, hash_seed: int) -> None:
        self.config = config
        self.process = subprocess.Popen(
            [sys.executable, __file__, "worker", config, str(threads)],
            env={**os.environ, **server.environ(), "PYTHONHASHSEED": str(hash_seed)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        # {"ready": True}, or the configuration's result if it is unavailable.
        self.greeting = self._reply()

    def measure(self, seconds: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"run {seconds}\n")
        self.process.stdin.flush()
        return self._reply()

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker of {self.config} exited with status {self.process.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # the worker's loop ends at the end of its input
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def workers_started(server: Server, threads: int, layout: int) -> Iterator[dict[str, Worker]]:
    """A warmed-up worker per configuration at ``threads`` threads, stopped at the end.

    Set number ``layout`` of them: started in an order rotated by it, with it as
    their hash seed.
    """
    workers: dict[str, Worker] = {}
    try:
        for name in rotated([config.name for config in CONFIGS], layout):
            workers[name] = Worker(server, name, threads, hash_seed=layout)
        for worker in workers.values():
            if "ready" in worker.greeting:
                worker.measure(WARMUP_SECONDS)
        yield workers
    finally:
        for worker in workers.values():
            worker.stop()


def rotated(names: Sequence[str], offset: int) -> list[str]:
    offset %= len(names)
    return [*names[offset:], *names[:offset]]


def shuffled(names: Sequence[str], seed: int) -> list[str]:
    """``names`` in an order of their own for each ``seed``, the same in every run."""
    order = list(names)
    random.Random(seed).shuffle(order)
    return order


def layout_rounds(rounds: int, layouts: int) -> list[range]:
    """The round numbers each set of workers runs: ``rounds`` split as evenly as can be."""
    return [range(rounds * layout // layouts, rounds * (layout + 1) // layouts) for layout in range(layouts)]


# Per thread count, per round: each configuration's worker result.
Runs = dict[int, list[dict[str, dict[str, Any]]]]


def run_rounds(server: Server, seconds: float, rounds: int, layouts: int) -> Runs:
    runs: Runs = {threads: [] for threads in THREAD_COUNTS}
    for threads in THREAD_COUNTS:
        for layout, round_numbers in enumerate(layout_rounds(rounds, layouts)):
            with workers_started(server, threads, layout) as workers:
                for round_index in round_numbers:
                    results = run_round(workers, seconds, round_index)
                    runs[threads].append(results)
                    if (round_index + 1) % PROGRESS_EVERY == 0 or round_index + 1 == rounds:
                        print(
                            f"round {round_index + 1}/{rounds}, {threads:>2} thread(s): {progress(results)}",
                            file=sys.stderr,
                        )
    return runs


def run_round(workers: dict[str, Worker], seconds: float, round_index: int) -> dict[str, dict[str, Any]]:
    """A slice of each configuration, in the round's order: each one's figures (or why it is unavailable)."""
    results = {}
    for name in shuffled(list(workers), round_index):
        worker = workers[name]
        results[name] = worker.measure(seconds) if "ready" in worker.greeting else worker.greeting
    return results


def progress(results: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{name} {result['requests_per_second']:,.0f}/s"
        if "requests_per_second" in result
        else f"{name} unavailable"
        for name, result in results.items()
    )


@dataclass
class Row:
    """One configuration at one thread count, summed up over the rounds."""

    threads: int
    config: str
    requests_per_second: float | None = None
    ratio: float | None = None
    round_rates: list[float] = field(default_factory=list)
    round_ratios: list[float] = field(default_factory=list)
    round_trips: float | None = None
    ms_per_request: float | None = None
    # RTT in ms (as a str, for JSON) -> projected ms per request.
    projected_ms: dict[str, float] = field(default_factory=dict)
    unavailable: str | None = None
    failed_checks: list[str] = field(default_factory=list)


def summarize(threads: int, name: str, rounds: list[dict[str, dict[str, Any]]]) -> Row:
    row = Row(threads, name)
    for results in rounds:
        result = results.get(name) or {}
        if "unavailable" in result:
            row.unavailable = result["unavailable"]
        if "requests_per_second" not in result:
            continue
        rate = result["requests_per_second"]
        row.round_rates.append(rate)
        # Time per request relative to the reference: the inverse ratio of rates.
        row.round_ratios.append(results[REFERENCE]["requests_per_second"] / rate)
        row.failed_checks += result["failed_checks"]
    if row.round_rates:
        row.requests_per_second = statistics.median(row.round_rates)
        row.ratio = statistics.median(row.round_ratios)
        measured = [results[name] for results in rounds if "ms_per_request" in results.get(name, {})]
        row.round_trips = statistics.median(result["round_trips_per_request"] for result in measured)
        row.ms_per_request = statistics.median(result["ms_per_request"] for result in measured)
        row.projected_ms = {str(rtt): row.ms_per_request + row.round_trips * rtt for rtt in PROJECTED_RTTS_MS}
    return row


def summarize_all(runs: Runs) -> list[Row]:
    return [summarize(threads, config.name, runs[threads]) for threads in THREAD_COUNTS for config in CONFIGS]


@dataclass(frozen=True)
class Target:
    """A median figure of pooled, and the bound it must stay within."""

    description: str
    value: float
    bound: str  # "<=" or ">="
    limit: float
    met: bool

    def __str__(self) -> str:
        outcome = "met" if self.met else "MISSED"
        # Three decimals: 1.0506 must not read "1.05x (<= 1.05: MISSED)".
        return f"{self.description} {self.value:.3f}x ({self.bound} {self.limit:g}: {outcome})"


def targets(rows: list[Row]) -> list[Target]:
    by_key = {(row.threads, row.config): row for row in rows}
    found = []
    for threads in THREAD_COUNTS:
        pooled, default = by_key[threads, "pooled"], by_key[threads, "default"]
        assert pooled.ratio is not None, "pooled is never optional"
        limit = MAX_RATIO[threads]
        found.append(
            Target(
                f"{threads}-thread time vs persistent",
                pooled.ratio,
                "<=",
                limit,
                pooled.ratio <= limit,
            )
        )
        # Per round, like the ratios: pooled's rate over default's in the same round.
        speedup = statistics.median(
            p / d for p, d in zip(pooled.round_rates, default.round_rates, strict=True)
        )
        found.append(
            Target(
                f"{threads}-thread speedup over default",
                speedup,
                ">=",
                MIN_SPEEDUP_OVER_DEFAULT[threads],
                speedup >= MIN_SPEEDUP_OVER_DEFAULT[threads],
            )
        )
    return found


def table(rows: list[Row]) -> str:
    width = max(len(config.name) for config in CONFIGS)
    lines = [f"{'threads':>7}  {'config':<{width}}  {'req/s':>8}  {'ratio':>6}  per-round ratios"]
    for row in rows:
        prefix = f"{row.threads:>7}  {row.config:<{width}}"
        if row.ratio is None:
            lines.append(f"{prefix}  unavailable: {row.unavailable}")
            continue
        ratios = " ".join(f"{ratio:.2f}" for ratio in row.round_ratios)
        lines.append(f"{prefix}  {row.requests_per_second:>8,.0f}  {row.ratio:>5.2f}x  {ratios}")
    return "\n".join(lines)


def round_trips_table(rows: list[Row]) -> str:
    """Round trips per request, and time per request projected over a network (ratio to the reference)."""
    width = max(len(config.name) for config in CONFIGS)
    rtts = "".join(f"  {f'{rtt:g} ms RTT':>16}" for rtt in PROJECTED_RTTS_MS)
    lines = [f"{'threads':>7}  {'config':<{width}}  {'round trips':>11}  {'loopback':>8}{rtts}"]
    reference = {row.threads: row for row in rows if row.config == REFERENCE}
    for row in rows:
        if row.ms_per_request is None or row.round_trips is None:
            continue
        base = reference[row.threads]
        projected = "".join(
            f"  {ms:>7.3f} ({ms / base.projected_ms[rtt]:>4.2f}x)" for rtt, ms in row.projected_ms.items()
        )
        measured = f"{row.round_trips:>11.2f}  {row.ms_per_request:>8.3f}"
        lines.append(f"{row.threads:>7}  {row.config:<{width}}  {measured}{projected}")
    return "\n".join(lines)


def checks_line(rows: list[Row], runs: Runs) -> str:
    failures = [
        f"{row.threads} thread(s) {row.config}: {failure}" for row in rows for failure in row.failed_checks
    ]
    if failures:
        return "Sanity checks FAILED:\n  " + "\n  ".join(failures)
    connects = [
        f"{max(results['pooled']['connects'] for results in rounds)}/"
        f"{rounds[0]['pooled']['pool_limit']} at {threads} thread(s)"
        for threads, rounds in runs.items()
    ]
    return (
        "Sanity checks passed: the server ran every request counted; pooled's server "
        f"connections/pool limit, most over the rounds: {', '.join(connects)}."
    )


def pool_cost_line(runs: Runs) -> str:
    """Pooled's time per request over persistent's with the same cursors, median per round."""
    ratios = []
    for threads, rounds in runs.items():
        per_round = [
            results[SAME_CURSORS]["requests_per_second"] / results["pooled"]["requests_per_second"]
            for results in rounds
        ]
        ratios.append(f"{statistics.median(per_round):.3f}x at {threads} thread(s)")
    return f"The pool's own cost (pooled against {SAME_CURSORS}, the same cursors): {', '.join(ratios)}."


def verdict(found: list[Target]) -> str:
    met = all(target.met for target in found)
    return f"Targets {'met' if met else 'NOT met'} for pooled: " + "; ".join(map(str, found))


def report(server: Server, seconds: float, rounds: int, layouts: int, json_path: Path | None) -> None:
    placement = pin_apart(server)
    started = time.perf_counter()
    runs = run_rounds(server, seconds, rounds, layouts)
    rows = summarize_all(runs)
    found = targets(rows)
    print(
        f"Request cycle (SELECT 1 + close_old_connections), {datetime.date.today()}, {versions()}, "
        f"over TCP to {server.host}:{server.port} ({placement}): {rounds} rounds of interleaved "
        f"{seconds:g} s slices per configuration, in {layouts} sets of worker processes; "
        f"medians over the rounds; ratio = time per request / {REFERENCE}'s in the same round."
    )
    print(table(rows))
    print(
        "Round trips per request the server saw (statements and commands, plus 3 per new "
        "connection), and ms per request per thread: measured over loopback, and projected "
        f"at each RTT (loopback + round trips x RTT; ratio to {REFERENCE}'s):"
    )
    print(round_trips_table(rows))
    print(checks_line(rows, runs))
    print(pool_cost_line(runs))
    print(verdict(found))
    print(f"Ran in {time.perf_counter() - started:.0f} s.")
    if json_path is not None:
        write_json(json_path, placement, seconds, rounds, layouts, rows, found, runs)


def versions() -> str:
    """What the figures were measured with: ``Django 5.2.19, Python 3.11.7``."""
    import django

    return f"Django {django.__version__}, Python {sys.version.split()[0]}"


def write_json(
    path: Path,
    placement: str,
    seconds: float,
    rounds: int,
    layouts: int,
    rows: list[Row],
    found: list[Target],
    runs: Runs,
) -> None:
    document = {
        "date": datetime.date.today().isoformat(),
        "versions": versions(),
        "placement": placement,
        "max_ratio": MAX_RATIO,
        "seconds": seconds,
        "rounds": rounds,
        "layouts": layouts,
        "control": CONTROL,
        "warmup_seconds": WARMUP_SECONDS,
        "rows": [asdict(row) for row in rows],
        "targets": [asdict(target) for target in found],
        "runs": {str(threads): results for threads, results in runs.items()},
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=0.2, help="seconds per slice of one configuration (default 0.2)"
    )
    parser.add_argument("--rounds", type=int, default=60, help="rounds of slices (default 60)")
    parser.add_argument(
        "--layouts", type=int, default=3, help="sets of worker processes sharing the rounds (default 3)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    commands = parser.add_subparsers(dest="command")
    worker_parser = commands.add_parser("worker", help="measure one configuration (used internally)")
    worker_parser.add_argument("config", choices=list(CONFIGS_BY_NAME))
    worker_parser.add_argument("threads", type=int)
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error(f"--seconds must be above 0, not {args.seconds:g}")
    if args.rounds < 1:
        parser.error(f"--rounds must be 1 or more, not {args.rounds}")
    if not 1 <= args.layouts <= args.rounds:
        parser.error(f"--layouts must be from 1 to --rounds ({args.rounds}), not {args.layouts}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.command == "worker":
        serve(args.config, args.threads)
        return 0
    with test_server() as server:
        report(server, args.seconds, args.rounds, args.layouts, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
