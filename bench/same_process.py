"""Time per request of two configurations in one process, in alternating blocks.

Where bench/request_cycle.py compares processes, this compares two database
aliases of one process: the same interpreter, the same imports, the same memory,
and blocks of ``--requests`` request cycles a few milliseconds apart, in an order
alternating from round to round. It measures the time a configuration costs the
client more precisely than separate processes can on a noisy machine, and tells
CPU time (the thread's own, from ``time.thread_time()``) from wall time, so that
time spent waiting (for the server, for the CPU) is told from time spent working.

``--control`` runs the reference against itself, as a second alias with the same
settings: what the method reads when there is no difference to find (0.98x to
1.04x on 2026-12-04, with the client and the server on CPUs apart, as in
bench/request_cycle.py; 0.97x to 1.59x before, when each connection's server
thread shared the client's CPU or not by lot).

``--phases`` tells where in the request the time goes instead: each request cycle
timed in three phases with ``time.perf_counter_ns()``, the same blocks
alternating, and the median over the rounds of each phase's mean per request:

* start: ``cursor()``, which connects (for mysqlpool: the checkout and Django's
  per-connection state; for a persistent connection, Django's checks only);
* query: ``execute()``, ``fetchone()`` and the cursor's ``close()``;
* end: ``close_if_unusable_or_obsolete()`` (for mysqlpool: the check-in).

The three timer readings cost both configurations the same.

The request cycle is bench/request_cycle.py's, but each block ends a request with
``close_if_unusable_or_obsolete()`` of its own alias only (``close_old_connections()``
would end both aliases' requests, and charge one configuration for the other's).

Usage: python bench/same_process.py [--rounds N] [--requests N] [--control | --phases] [CONFIG]
(CONFIG: one of bench/request_cycle.py's; default pooled)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpus import pin_apart
from bench.request_cycle import CONFIGS_BY_NAME, REFERENCE, database_settings, versions
from tests.dbserver import Server, test_server

WARMUP_REQUESTS = 500
# What a block of request cycles returns: its times.
Result = TypeVar("Result")


def configure(server: Server, config: str, control: bool) -> tuple[str, str]:
    """Django set up with the reference and the configuration measured; their aliases."""
    import django
    from django.conf import settings

    measured = REFERENCE if control else config
    settings.configure(
        DATABASES={
            "default": database_settings(CONFIGS_BY_NAME[REFERENCE], 1, server),
            "measured": database_settings(CONFIGS_BY_NAME[measured], 1, server),
        },
        USE_TZ=True,
    )
    django.setup()
    return "default", "measured"


def block(wrapper: Any, requests: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``requests`` request cycles on ``wrapper``."""
    started, cpu_started = time.perf_counter(), time.thread_time()
    for _ in range(requests):
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        wrapper.close_if_unusable_or_obsolete()
    return time.perf_counter() - started, time.thread_time() - cpu_started


PHASES = ("start", "query", "end")


def phases_block(wrapper: Any, requests: int) -> tuple[float, ...]:
    """The mean ns per request of each phase, over ``requests`` request cycles on ``wrapper``."""
    clock = time.perf_counter_ns
    start = query = end = 0
    for _ in range(requests):
        before = clock()
        cursor = wrapper.cursor()
        connected = clock()
        cursor.execute("SELECT 1")
        cursor.fetchone()
        cursor.close()
        queried = clock()
        wrapper.close_if_unusable_or_obsolete()
        start, query, end = start + connected - before, query + queried - connected, end + clock() - queried
    return start / requests, query / requests, end / requests


def measure_phases(aliases: tuple[str, str], rounds: int, requests: int) -> list[list[float]]:
    """Per alias (reference, then measured): the median over the rounds of each phase's ns per request."""
    timings = alternating_blocks(aliases, rounds, requests, phases_block)
    return [[statistics.median(phase) for phase in zip(*blocks, strict=True)] for blocks in timings]


def phases_table(name: str, medians: list[list[float]]) -> str:
    reference, measured = medians
    lines = [f"{'ns per request':<22}" + "".join(f"{phase:>9}" for phase in (*PHASES, "total"))]
    for label, row in ((REFERENCE, reference), (name, measured)):
        lines.append(f"{label:<22}" + "".join(f"{value:>9,.0f}" for value in (*row, sum(row))))
    difference = [m - r for m, r in zip(measured, reference, strict=True)]
    signed = "".join(f"{value:>+9,.0f}" for value in (*difference, sum(difference)))
    lines.append(f"{'difference':<22}{signed}")
    return "\n".join(lines)


def measure(aliases: tuple[str, str], rounds: int, requests: int) -> tuple[list[float], list[float]]:
    """Per round: the measured alias's wall time and CPU time, divided by the reference's."""
    references, measured = alternating_blocks(aliases, rounds, requests, block)
    pairs = list(zip(measured, references, strict=True))
    wall_ratios = [wall / reference_wall for (wall, _), (reference_wall, _) in pairs]
    cpu_ratios = [cpu / reference_cpu for (_, cpu), (_, reference_cpu) in pairs]
    return wall_ratios, cpu_ratios


def alternating_blocks(
    aliases: tuple[str, str], rounds: int, requests: int, run_block: Callable[[Any, int], Result]
) -> tuple[list[Result], list[Result]]:
    """``run_block(wrapper, requests)`` of the reference's and the measured alias's, per round.

    Both warmed up first; then a block of each per round, the measured alias first
    in even rounds and second in odd ones.
    """
    from django.db import connections

    wrappers = [connections[alias] for alias in aliases]
    for wrapper in wrappers:
        run_block(wrapper, WARMUP_REQUESTS)
    results: tuple[list[Result], list[Result]] = ([], [])
    for round_index in range(rounds):
        for index in (0, 1) if round_index % 2 else (1, 0):
            results[index].append(run_block(wrappers[index], requests))
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", nargs="?", default="pooled", choices=list(CONFIGS_BY_NAME))
    parser.add_argument("--rounds", type=int, default=40, help="rounds of two blocks (default 40)")
    parser.add_argument("--requests", type=int, default=1000, help="request cycles per block (default 1000)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--control", action="store_true", help=f"measure {REFERENCE} against itself")
    mode.add_argument("--phases", action="store_true", help="time each phase of a request (see above)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < 1:
        parser.error(f"--rounds and --requests must be 1 or more, not {args.rounds} and {args.requests}")
    name = f"{REFERENCE} (control)" if args.control else args.config
    with test_server() as server:
        placement = pin_apart(server)
        aliases = configure(server, args.config, args.control)
        if args.phases:
            medians = measure_phases(aliases, args.rounds, args.requests)
        else:
            wall, cpu = measure(aliases, args.rounds, args.requests)
    if args.phases:
        print(
            f"{name} against {REFERENCE} in one process ({placement}), {versions()}, {args.rounds} rounds of "
            f"{args.requests} request cycles each, by phase (median over the rounds):"
        )
        print(phases_table(name, medians))
        return 0
    print(
        f"{name} against {REFERENCE} in one process ({placement}), {versions()}, {args.rounds} rounds of "
        f"{args.requests} request cycles each: median time per request {statistics.median(wall):.3f}x, "
        f"CPU time {statistics.median(cpu):.3f}x; per-round time ratios from {min(wall):.2f} "
        f"to {max(wall):.2f}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
