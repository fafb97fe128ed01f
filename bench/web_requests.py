"""Web benchmark: gunicorn and uvicorn serving a page of three queries, driven by wrk.

Both servers run tests/servers_app (bench/web_settings.py) in 2 worker processes;
``wrk --latency`` keeps 64 connections busy on a page of three queries, then
Django's end of request:

* gunicorn, ``gthread`` workers x 8 threads, the sync ``/page`` (one cursor);
* uvicorn, the async ``/async-page``: the same three queries, each awaited through
  ``sync_to_async`` as the ORM's async API runs a query; uvicorn as the tests
  install it, on asyncio's loop and h11 (without its ``standard`` extras).

Each configuration is a way for the page to reach the database:

* ``persistent``: Django's MySQL backend, ``CONN_MAX_AGE=None``: the reference
  under gunicorn, one connection per thread (16). Under uvicorn, a connection per
  request that Django never closes: its ASGI handler runs each request's
  ``sync_to_async`` calls in a thread of their own (``ThreadSensitiveContext``), a
  new one per request, and a connection belongs to its thread. The dead thread's
  connection closes only when the garbage collector frees it, so the server's
  sessions pile up to its ``max_connections`` (500 here) and requests fail
  (Django tickets #33497, #35059): the table counts those errors. Its failed
  requests return fast, so its figures flatter it: no reference there.
* ``per-request``: Django's default, ``CONN_MAX_AGE=0``: a connection per request,
  closed at its end (under uvicorn, one for each request in flight): the reference
  under uvicorn, as what an ASGI project can run without a pool.
* ``django-db-connection-pool``: ``POOL_SIZE`` 8 per worker (under gunicorn, one
  per thread), no overflow.
* ``mysqlpool``: ``pool_size`` 4, no overflow, ``MYSQLPOOL_BUDGET`` 4 per worker: at
  most 8 connections, for 16 threads under gunicorn and for every request in
  flight under uvicorn. A request holds its connection from its first query to
  Django's ``request_finished``, across its awaits.
* ``persistent, 4 threads``, under gunicorn only: persistent with 4 threads per
  worker, as many connections as mysqlpool's 8, none shared: what 8 connections
  can serve without a pool.
* ``mysqlpool, 4 threads``, under gunicorn only: mysqlpool's budget of 4 with 4
  threads per worker, as README's Sizing advises: no thread waits for a connection.
* ``mysqlpool, 8 per worker``, under gunicorn only: a pool and a budget of 8 per
  worker, one connection per thread, so that no thread ever waits: what the pool
  costs without the budget's sharing.
* the reference again (``persistent-again``, ``per-request-again``): the control,
  in processes of its own. Its ratio to the reference is what two servers of one
  configuration differ by in the run: the resolution of the others' ratios.

Method: the machine is small and shared, and its speed drifts over seconds. So
every configuration of a web server runs at once, each in a server of its own on a
database of its own, and is warmed up; then, in each round, wrk loads each in turn
for ``--seconds`` (a slice), in an order shuffled per round, while the others idle.
Each figure is divided by the reference's in the same round, and the tables show
the medians of those ratios: two slices of a round are seconds apart. Only
``persistent`` under uvicorn cannot idle beside the others, as its sessions are
never closed: it is started, warmed up and stopped again for each of its slices,
and the next slice waits for its sessions to end. The server's connections on a
configuration's database are sampled (SHOW PROCESSLIST, every 50 ms) during its
slices. Targets for mysqlpool, on each server: at least 0.95x the reference's
requests/s, at most 1.10x its p99 latency, at most 8 server connections, no error.
The exit status is 0 even when a target is missed: this is a report.

Usage: python bench/web_requests.py [--server gunicorn|uvicorn|both] [--seconds S] [--rounds N]
                                    [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Run as bench/web_requests.py, this script sees bench/, not the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import MySQLdb
from request_cycle import shuffled  # bench/, the script's own directory

from tests.dbserver import Server, test_server
from tests.helpers import SessionSampler
from tests.processes import wait_for
from tests.webservers import WebServer

DATABASE = "mysqlpool_bench_web"
WORKERS, THREADS, WRK_CONNECTIONS = 2, 8, 64
WARMUP_SECONDS = 3
BUDGET = 4
CONFIGS: dict[str, dict[str, Any]] = {
    "persistent": {"ENGINE": "django.db.backends.mysql", "CONN_MAX_AGE": None},
    "per-request": {"ENGINE": "django.db.backends.mysql", "CONN_MAX_AGE": 0},
    "django-db-connection-pool": {
        "ENGINE": "dj_db_conn_pool.backends.mysql",
        "POOL_OPTIONS": {"POOL_SIZE": THREADS, "MAX_OVERFLOW": 0},
    },
    "mysqlpool": {"OPTIONS": {"pool": {"pool_size": BUDGET, "max_overflow": 0}}},
}
# Under gunicorn, persistent again with as many threads per worker as mysqlpool's
# budget: as many server connections as mysqlpool, none shared. It tells what the
# pool costs from what serving 8 threads with 4 connections costs.
SAME_CONNECTIONS = f"persistent, {BUDGET} threads"
CONFIGS[SAME_CONNECTIONS] = CONFIGS["persistent"]
# Under gunicorn, mysqlpool with a connection for each thread: nobody waits.
NO_WAITING = f"mysqlpool, {THREADS} per worker"
CONFIGS[NO_WAITING] = {"OPTIONS": {"pool": {"pool_size": THREADS, "max_overflow": 0}}}
# Under gunicorn, mysqlpool with as many threads per worker as its budget: the
# advice of README's Sizing, where a thread never waits for a connection.
THREADS_AS_BUDGET = f"mysqlpool, {BUDGET} threads"
CONFIGS[THREADS_AS_BUDGET] = CONFIGS["mysqlpool"]
BUDGETS = {"mysqlpool": BUDGET, NO_WAITING: THREADS, THREADS_AS_BUDGET: BUDGET}
# The configurations run with BUDGET threads per worker, not THREADS.
FEWER_THREADS = {SAME_CONNECTIONS, THREADS_AS_BUDGET}
# The controls: each server's reference again, in processes of its own.
CONTROLS = {"persistent": "persistent-again", "per-request": "per-request-again"}
CONFIGS.update({control: CONFIGS[reference] for reference, control in CONTROLS.items()})
MIN_THROUGHPUT, MAX_P99, MAX_CONNECTIONS = 0.95, 1.10, WORKERS * BUDGET
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class Measurement:
    """One wrk run against one configuration."""

    requests_per_second: float
    p50: float  # seconds
    p99: float
    errors: int  # non-2xx responses and socket errors
    peak_connections: int


def seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def run_wrk(url: str, duration: int) -> dict[str, float]:
    """``wrk --latency`` for ``duration`` seconds: requests/s, p50, p99 and errors."""
    output = subprocess.run(
        ["wrk", "-t", "2", "-c", str(WRK_CONNECTIONS), "-d", f"{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    errors = sum(map(int, re.findall(r"(?:connect|read|write|timeout) (\d+)", output)))
    errors += int(next(iter(re.findall(r"Non-2xx or 3xx responses: (\d+)", output)), 0))
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50": seconds(latency["50"]),
        "p99": seconds(latency["99"]),
        "errors": errors,
    }


@dataclass(frozen=True)
class WebServerSetup:
    """A server as the benchmark runs it: ``python -m MODULE ARGUMENTS``, the page wrk loads,
    the configuration the others are divided by (see the docstring), the others, and
    those that cannot idle beside the others (started anew for each slice)."""

    module: str
    description: str
    arguments: tuple[str, ...]
    page: str
    reference: str
    others: tuple[str, ...]
    fresh_each_slice: frozenset[str] = frozenset()

    def arguments_for(self, config: str) -> tuple[str, ...]:
        threads = BUDGET if config in FEWER_THREADS else THREADS
        return tuple(argument.format(threads=threads) for argument in self.arguments)

    @property
    def configs(self) -> list[str]:
        return [self.reference, CONTROLS[self.reference], *self.others]


SERVERS = {
    "gunicorn": WebServerSetup(
        "gunicorn", f"gunicorn gthread, {WORKERS} workers x {THREADS} threads, /page",
        ("tests.servers_app.wsgi:application", "--workers", str(WORKERS), "--worker-class", "gthread",
         "--threads", "{threads}"),
        "page",
        "persistent",
        ("mysqlpool", SAME_CONNECTIONS, THREADS_AS_BUDGET, NO_WAITING, "django-db-connection-pool",
         "per-request"),
    ),
    "uvicorn": WebServerSetup(
        "uvicorn", f"uvicorn, {WORKERS} workers, the async /async-page",
        ("tests.servers_app.asgi:application", "--workers", str(WORKERS), "--host", "127.0.0.1",
         "--lifespan", "off", "--no-access-log"),
        "async-page",
        "per-request",
        ("mysqlpool", "django-db-connection-pool", "persistent"),
        fresh_each_slice=frozenset({"persistent"}),
    ),
}  # fmt: skip


def database_of(web: str, config: str) -> str:
    """The database of one configuration's server: its sessions are counted apart."""
    return f"{DATABASE}_{web}_{SERVERS[web].configs.index(config)}"


def start_web_server(server: Server, web: str, name: str, logs: Path) -> WebServer:
    """Start the web server ``web`` for configuration ``name`` (stopped when its context exits)."""
    setup = SERVERS[web]
    budget = {"BENCH_WEB_BUDGET": str(BUDGETS[name])} if name in BUDGETS else {}
    return WebServer(
        server, logs / f"{web}-{name}.log", setup.module, *setup.arguments_for(name),
        settings="bench.web_settings", database=database_of(web, name),
        BENCH_WEB_DATABASE=json.dumps(CONFIGS[name]), **budget,
    )  # fmt: skip


def page_of(web: str, web_server: WebServer) -> str:
    return f"{web_server.url}/{SERVERS[web].page}"


def measure_slice(server: Server, web: str, name: str, web_server: WebServer, duration: int) -> Measurement:
    """wrk on a running, warmed-up server for ``duration`` s, its sessions sampled meanwhile."""
    sampler = SessionSampler(watcher_settings(server, database_of(web, name)), interval=0.05)
    with sampler:
        figures = run_wrk(page_of(web, web_server), duration)
    return Measurement(**figures, peak_connections=sampler.peak)  # type: ignore[arg-type]


def measure_fresh(server: Server, web: str, name: str, duration: int, logs: Path) -> Measurement:
    """Start the server, warm it up, measure a slice, stop it; return once its sessions ended."""
    # Connected before the web server starts: under uvicorn, "persistent" fills the
    # server's max_connections during the warm-up, and then no connection is accepted.
    sampler = SessionSampler(watcher_settings(server, database_of(web, name)), interval=0.05)
    with start_web_server(server, web, name, logs) as web_server:
        run_wrk(page_of(web, web_server), WARMUP_SECONDS)
        with sampler:
            figures = run_wrk(page_of(web, web_server), duration)
            peak = sampler.peak
            web_server.stop()
            # The next slice starts once the server has ended this one's sessions.
            wait_for(lambda: sampler.counts[-1:] == [0], timeout=60, what=f"the sessions of {name} ended")
    return Measurement(**figures, peak_connections=peak)  # type: ignore[arg-type]


def watcher_settings(server: Server, database: str) -> dict[str, Any]:
    return {"NAME": database, "HOST": server.host, "PORT": server.port, "USER": server.user,
            "PASSWORD": server.password}  # fmt: skip


def create_databases(server: Server, databases: list[str]) -> None:
    connection = MySQLdb.connect(
        host=server.host, port=server.port, user=server.user, password=server.password
    )
    with closing(connection), connection.cursor() as cursor:
        for database in databases:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")


# Each round: server -> configuration -> its measurement.
Rounds = list[dict[str, dict[str, Measurement]]]


def run_rounds(server: Server, servers: list[str], duration: int, rounds: int, logs: Path) -> Rounds:
    """Every configuration of every server, a slice each per round (see the docstring)."""
    create_databases(server, [database_of(web, name) for web in servers for name in SERVERS[web].configs])
    results: Rounds = [{} for _ in range(rounds)]
    for web in servers:
        for index, measurements in enumerate(measure_server(server, web, duration, rounds, logs)):
            results[index][web] = measurements
            line = ", ".join(f"{name} {m.requests_per_second:,.0f}" for name, m in measurements.items())
            print(f"round {index + 1}/{rounds}, {web}, req/s: {line}", file=sys.stderr)
    return results


def measure_server(
    server: Server, web: str, duration: int, rounds: int, logs: Path
) -> Iterator[dict[str, Measurement]]:
    """Each round's measurements of the configurations of web server ``web``, all running at once."""
    setup = SERVERS[web]
    with ExitStack() as stack:
        running = {
            name: stack.enter_context(start_web_server(server, web, name, logs))
            for name in setup.configs
            if name not in setup.fresh_each_slice
        }
        for web_server in running.values():
            run_wrk(page_of(web, web_server), WARMUP_SECONDS)
        for index in range(rounds):
            yield {
                name: measure_slice(server, web, name, running[name], duration)
                if name in running
                else measure_fresh(server, web, name, duration, logs)
                for name in shuffled(setup.configs, index)
            }


@dataclass(frozen=True)
class Row:
    """A configuration's medians over the rounds on one server, absolute and relative to the reference."""

    server: str
    config: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    peak_connections: int
    errors: int
    throughput_ratio: float
    p50_ratio: float
    p99_ratio: float
    connections_ratio: float


def median_ratio(results: Rounds, web: str, name: str, field: str) -> float:
    """The median over the rounds of ``field`` divided by the reference's on the same server."""

    def ratio(measurements: dict[str, Measurement]) -> float:
        reference = getattr(measurements[SERVERS[web].reference], field)
        return getattr(measurements[name], field) / reference if reference else 0.0

    return statistics.median(ratio(r[web]) for r in results)


def summarize(results: Rounds, web: str) -> list[Row]:
    def median(name: str, field: str) -> float:
        return statistics.median(getattr(r[web][name], field) for r in results)

    return [
        Row(
            server=web,
            config=name,
            requests_per_second=median(name, "requests_per_second"),
            p50_ms=median(name, "p50") * 1000,
            p99_ms=median(name, "p99") * 1000,
            peak_connections=max(r[web][name].peak_connections for r in results),
            errors=sum(r[web][name].errors for r in results),
            throughput_ratio=median_ratio(results, web, name, "requests_per_second"),
            p50_ratio=median_ratio(results, web, name, "p50"),
            p99_ratio=median_ratio(results, web, name, "p99"),
            connections_ratio=median_ratio(results, web, name, "peak_connections"),
        )
        for name in SERVERS[web].configs
    ]


def table(rows: list[Row], reference: str) -> str:
    lines = [
        f"{'config':<25} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'conns':>5} {'errors':>6}"
        f"   {'ratios to ' + reference + ':':>24} req/s  p50   p99   conns"
    ]
    lines += [
        f"{r.config:<25} {r.requests_per_second:>8,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
        f"{r.peak_connections:>5} {r.errors:>6}   {'':>24} {r.throughput_ratio:>5.2f} {r.p50_ratio:>5.2f} "
        f"{r.p99_ratio:>5.2f} {r.connections_ratio:>5.2f}"
        for r in rows
    ]
    return "\n".join(lines)


def verdict(rows: list[Row], reference: str) -> str:
    [pooled] = [row for row in rows if row.config == "mysqlpool"]
    checks = [
        (
            f"req/s {pooled.throughput_ratio:.2f}x {reference}'s >= {MIN_THROUGHPUT}x",
            pooled.throughput_ratio >= MIN_THROUGHPUT,
        ),
        (f"p99 {pooled.p99_ratio:.2f}x <= {MAX_P99}x", pooled.p99_ratio <= MAX_P99),
        (
            f"{pooled.peak_connections} connections <= {MAX_CONNECTIONS}",
            pooled.peak_connections <= MAX_CONNECTIONS,
        ),
        (f"{pooled.errors} errors", pooled.errors == 0),
    ]
    met = all(ok for _, ok in checks)
    return f"Targets {'met' if met else 'NOT met'} for mysqlpool under {pooled.server}: " + "; ".join(
        f"{text} ({'met' if ok else 'MISSED'})" for text, ok in checks
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server",
        choices=[*SERVERS, "both"],
        default="both",
        help="the web server(s) to measure (default both)",
    )
    parser.add_argument(
        "--seconds", type=int, default=2, help="whole seconds of each slice of wrk (default 2)"
    )
    parser.add_argument(
        "--rounds", type=int, default=15, help="rounds of a slice per configuration (default 15)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.seconds < 1:
        parser.error(f"--seconds must be 1 or more, not {args.seconds}")
    if args.rounds < 1:
        parser.error(f"--rounds must be 1 or more, not {args.rounds}")
    return args


def report(args: argparse.Namespace, servers: list[str], results: Rounds, logs: Path) -> list[Row]:
    """Print each server's table and verdict; every server's rows."""
    print(
        f"A page of 3 queries, wrk with {WRK_CONNECTIONS} connections: {args.rounds} rounds of a "
        f"{args.seconds:g} s slice per configuration, all running at once; medians of the ratios to "
        "the reference in the same round; the control is the reference in servers of its own; peak "
        f"connections = the most the server listed at once (server logs in {logs})."
    )
    rows = []
    for web in servers:
        server_rows = summarize(results, web)
        print(f"\n{SERVERS[web].description}:")
        reference = SERVERS[web].reference
        print(table(server_rows, reference))
        print(verdict(server_rows, reference))
        rows += server_rows
    return rows


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is missing: scripts/system-deps.sh PYTHON bench installs it (apt-get install wrk)"
        )
    servers = list(SERVERS) if args.server == "both" else [args.server]
    logs = Path(tempfile.mkdtemp(prefix="mysqlpool-bench-web-"))
    with test_server() as server:
        results = run_rounds(server, servers, args.seconds, args.rounds, logs)
    rows = report(args, servers, results, logs)
    if args.json is not None:
        document = {
            "date": str(datetime.date.today()),
            "seconds": args.seconds, "rounds": args.rounds, "wrk_connections": WRK_CONNECTIONS,
            "targets": {"throughput_ratio": MIN_THROUGHPUT, "p99_ratio": MAX_P99},
            "servers": {web: SERVERS[web].description for web in servers},
            "references": {web: SERVERS[web].reference for web in servers},
            "controls": {web: CONTROLS[SERVERS[web].reference] for web in servers},
            "rows": [asdict(row) for row in rows],
            "runs": [{web: {name: asdict(m) for name, m in r[web].items()} for web in r} for r in results],
        }  # fmt: skip
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
