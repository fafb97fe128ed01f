"""The load run: many threads sharing a small connection budget, for a bounded time.

200 threads (by default) share a budget of 8 connections across two pooled aliases
for 60 seconds, on a throwaway MariaDB server this script owns. Each unit of work is
what a request or a job does: inside ``auto_close_db``, one ``atomic()`` block that
inserts a row and reads back how many rows its thread has written. Half of the
threads use the alias ``default``, half ``other``: the budget makes room for one by
closing idle connections of the other.

The run passes when:

* no unit raised, and every thread read back exactly the rows it had written;
* the process never held more connections than the budget (the budget's own
  high-water mark, ``get_stats()[alias]["budget"]["peak"]``);
* the server never counted more connections from the pools than the budget, but
  for one it was still ending: ``Max_used_connections`` since ``FLUSH STATUS``,
  exact rather than sampled. MariaDB counts a session until its thread has
  cleaned up, a moment after it hung up the socket; mysqlpool waits for the hang-up
  before it opens a replacement, and cannot see the rest;
* the table holds exactly one row per unit counted: nothing lost, nothing extra;
* after ``close_pool()`` the server lists no connection of the pools' user;
* memory is stable: from a quarter of the run to its end, the process's resident
  memory grows by less than ``MEMORY_SLACK`` and the number of objects the garbage
  collector tracks by less than ``OBJECT_SLACK``.

It prints the figures (and writes them as JSON with ``--json``), and exits 1 if any
condition failed. ``make load`` runs it in full; tests/test_load.py runs it briefly.

    python bench/load.py [--threads N] [--budget K] [--seconds S] [--timeout T] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import MySQLdb  # noqa: E402

from tests.dbserver import Server, owned_server  # noqa: E402

ALIASES = ("default", "other")
DATABASE = "loadrun"
USER = "loaduser"
# The pools' own user, so that the admin connection is never counted as theirs.
PASSWORD = "load-Passw0rd"
# Memory growth allowed between a quarter of the run and its end: noise, not leaks.
MEMORY_SLACK = 4 * 1024 * 1024
OBJECT_SLACK = 2000
# A session the server still counts after mysqlpool closed it (see above).
SERVER_TEARDOWN_SLACK = 1


@dataclass
class Figures:
    threads: int
    budget: int
    seconds: float
    units: int = 0
    errors: list[str] = field(default_factory=list)
    rows_in_table: int = 0
    process_peak: int = 0
    server_peak: int = 0
    left_open: int = 0
    budget_waits: int = 0
    checkouts: int = 0
    connects: int = 0
    rss_after_warmup: int = 0
    rss_at_end: int = 0
    objects_after_warmup: int = 0
    objects_at_end: int = 0

    def failures(self) -> list[str]:
        checks = {
            f"{len(self.errors)} units raised, e.g. {self.errors[:3]}": not self.errors,
            f"{self.rows_in_table} rows in the table for {self.units} units": self.rows_in_table
            == self.units,
            f"the process held {self.process_peak} connections, over the budget of {self.budget}": (
                self.process_peak <= self.budget
            ),
            f"the server counted {self.server_peak} connections, for a budget of {self.budget}": (
                self.server_peak <= self.budget + SERVER_TEARDOWN_SLACK
            ),
            f"{self.left_open} connections left open after close_pool()": self.left_open == 0,
            f"resident memory grew {self.rss_at_end - self.rss_after_warmup} bytes": (
                self.rss_at_end - self.rss_after_warmup < MEMORY_SLACK
            ),
            f"tracked objects grew by {self.objects_at_end - self.objects_after_warmup}": (
                self.objects_at_end - self.objects_after_warmup < OBJECT_SLACK
            ),
        }
        return [message for message, passed in checks.items() if not passed]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=positive_int, default=200)
    parser.add_argument("--budget", type=positive_int, default=8)
    parser.add_argument("--seconds", type=positive_float, default=60.0)
    parser.add_argument(
        "--timeout", type=positive_float, default=30.0, help="the pools' timeout: how long a unit may wait"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int > 0")
    return int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0")
    return value


class Admin:
    """The script's own connection to the server, outside the pools."""

    def __init__(self, server: Server) -> None:
        self.connection = MySQLdb.connect(
            host=server.host, port=server.port, user=server.user, password=server.password, autocommit=True
        )

    def execute(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, args or None)
            return list(cursor.fetchall())

    def value(self, sql: str, *args: Any) -> int:
        return int(self.execute(sql, *args)[0][-1])


def prepare(admin: Admin) -> None:
    admin.execute(f"CREATE DATABASE {DATABASE}")
    admin.execute(
        f"CREATE TABLE {DATABASE}.load_rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, thread INT NOT NULL, "
        "KEY (thread)) ENGINE=InnoDB"
    )
    admin.execute(f"CREATE USER {USER}@'%%' IDENTIFIED BY %s", PASSWORD)
    admin.execute(f"GRANT ALL ON {DATABASE}.* TO {USER}@'%'")


def configure_django(server: Server, budget: int, timeout: float) -> None:
    import django
    from django.conf import settings

    database = {
        "ENGINE": "mysqlpool.backends.mysqlpool",
        "NAME": DATABASE,
        "HOST": server.host,
        "PORT": server.port,
        "USER": USER,
        "PASSWORD": PASSWORD,
    }
    settings.configure(
        DATABASES={alias: dict(database) for alias in ALIASES},
        # The pools may overflow past the budget: the budget is what holds them.
        MYSQLPOOL_ARGUMENTS={"pool_size": budget, "max_overflow": budget, "timeout": timeout},
        MYSQLPOOL_BUDGET=budget,
        INSTALLED_APPS=["mysqlpool"],
        USE_TZ=True,
    )
    django.setup()


def unit(alias: str, thread: int, written: int) -> None:
    """One request or job: a write and a read in a transaction, then the connection returned."""
    from django.db import connections, transaction

    from mysqlpool import auto_close_db

    with auto_close_db(), transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("INSERT INTO load_rows (thread) VALUES (%s)", [thread])
        cursor.execute("SELECT COUNT(*) FROM load_rows WHERE thread = %s", [thread])
        (count,) = cursor.fetchone()
        if count != written + 1:
            raise AssertionError(f"thread {thread} wrote {written + 1} rows and reads {count}")


def work(number: int, stop: threading.Event, figures: Figures, lock: threading.Lock) -> None:
    alias = ALIASES[number % len(ALIASES)]
    written = 0
    try:
        while not stop.is_set():
            unit(alias, number, written)
            written += 1
    except Exception as error:  # noqa: BLE001 - every error is a finding of the run
        with lock:
            figures.errors.append(f"{type(error).__name__}: {error}")
    finally:
        with lock:
            figures.units += written


def resident_memory() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def tracked_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def run(server: Server, threads: int, budget: int, seconds: float, timeout: float) -> Figures:
    from mysqlpool import close_pool, get_stats

    figures = Figures(threads=threads, budget=budget, seconds=seconds)
    admin = Admin(server)
    prepare(admin)
    configure_django(server, budget, timeout)
    admin.execute("FLUSH STATUS")  # Max_used_connections counts from here
    baseline = admin.value("SHOW STATUS LIKE 'Threads_connected'")
    connects_before = admin.value("SHOW STATUS LIKE 'Connections'")

    stop, lock = threading.Event(), threading.Lock()
    workers = [
        threading.Thread(target=work, args=(number, stop, figures, lock), name=f"load-{number}")
        for number in range(threads)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    wait_until(started + seconds / 4, stop)
    figures.rss_after_warmup, figures.objects_after_warmup = resident_memory(), tracked_objects()
    wait_until(started + seconds, stop)
    figures.rss_at_end, figures.objects_at_end = resident_memory(), tracked_objects()
    stop.set()
    for worker in workers:
        worker.join()

    stats = get_stats()
    figures.checkouts = sum(stats[alias]["checkouts"] for alias in ALIASES)
    figures.budget_waits = stats["default"]["budget"]["waits"]
    figures.process_peak = stats["default"]["budget"]["peak"]
    figures.server_peak = admin.value("SHOW STATUS LIKE 'Max_used_connections'") - baseline
    figures.connects = admin.value("SHOW STATUS LIKE 'Connections'") - connects_before
    close_pool()
    figures.left_open = wait_for_sessions_to_end(admin)
    figures.rows_in_table = admin.value(f"SELECT COUNT(*) FROM {DATABASE}.load_rows")
    return figures


def wait_until(deadline: float, stop: threading.Event) -> None:
    stop.wait(max(0.0, deadline - time.monotonic()))


def wait_for_sessions_to_end(admin: Admin, timeout: float = 10) -> int:
    """Connections of the pools' user still listed: the server ends a closed one asynchronously."""

    def listed() -> int:
        # SHOW PROCESSLIST: see tests/helpers.py, Server.processlist.
        return sum(1 for row in admin.execute("SHOW PROCESSLIST") if row[1] == USER)

    deadline = time.monotonic() + timeout
    while listed() and time.monotonic() < deadline:
        time.sleep(0.05)
    return listed()


def report(figures: Figures, show: Callable[[str], None] = print) -> None:
    show(f"Load: {figures.threads} threads, budget {figures.budget}, {figures.seconds:g} s, 2 aliases")
    show(f"  units of work done:        {figures.units} ({figures.units / figures.seconds:.0f}/s)")
    show(f"  units that raised:         {len(figures.errors)}")
    show(f"  rows in the table:         {figures.rows_in_table}")
    show(f"  most connections held:     {figures.process_peak} (budget {figures.budget})")
    show(f"  server's peak count:       {figures.server_peak} (Max_used_connections)")
    show(f"  connections opened:        {figures.connects} for {figures.checkouts} checkouts")
    show(f"  budget waits:              {figures.budget_waits}")
    show(f"  left open after close:     {figures.left_open}")
    show(
        f"  resident memory:           {figures.rss_after_warmup / 2**20:.1f} MiB after warm-up, "
        f"{figures.rss_at_end / 2**20:.1f} MiB at the end"
    )
    show(f"  tracked objects:           {figures.objects_after_warmup} -> {figures.objects_at_end}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    with owned_server() as owned:
        figures = run(owned.server, args.threads, args.budget, args.seconds, args.timeout)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))
    failures = figures.failures()
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print("load run: " + ("FAILED" if failures else "passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
