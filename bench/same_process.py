"""Time per request of two configurations in one process, in alternating blocks.

Where bench/request_cycle.py compares processes, this compares two database
aliases of one process: the same interpreter, the same imports, the same memory,
and blocks of ``--requests`` request cycles a few milliseconds apart, in an order
alternating from round to round. It measures the time a configuration costs the
client more precisely than separate processes can on a noisy machine, and tells
CPU time (the thread's own, from ``time.thread_time()``) from wall time, so that
time spent waiting (for the server, for the CPU) is told from time spent working.

``--control`` runs the reference against itself, as a second alias with the same
settings: what the method reads when there is no difference to find (1.00x to
1.03x on 2026-12-03).

The request cycle is bench/request_cycle.py's, but each block ends a request with
``close_if_unusable_or_obsolete()`` of its own alias only (``close_old_connections()``
would end both aliases' requests, and charge one configuration for the other's).

Usage: python bench/same_process.py [--rounds N] [--requests N] [--control] [CONFIG]
(CONFIG: one of bench/request_cycle.py's; default pooled)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.request_cycle import CONFIGS_BY_NAME, REFERENCE, database_settings, versions
from tests.dbserver import Server, test_server

WARMUP_REQUESTS = 500


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


def measure(aliases: tuple[str, str], rounds: int, requests: int) -> tuple[list[float], list[float]]:
    """Per round: the measured alias's wall time and CPU time, divided by the reference's."""
    from django.db import connections

    reference, measured = (connections[alias] for alias in aliases)
    for wrapper in (reference, measured):
        block(wrapper, WARMUP_REQUESTS)
    wall_ratios, cpu_ratios = [], []
    for round_index in range(rounds):
        order = (reference, measured) if round_index % 2 else (measured, reference)
        times = {id(wrapper): block(wrapper, requests) for wrapper in order}
        (wall, cpu), (reference_wall, reference_cpu) = times[id(measured)], times[id(reference)]
        wall_ratios.append(wall / reference_wall)
        cpu_ratios.append(cpu / reference_cpu)
    return wall_ratios, cpu_ratios


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", nargs="?", default="pooled", choices=list(CONFIGS_BY_NAME))
    parser.add_argument("--rounds", type=int, default=40, help="rounds of two blocks (default 40)")
    parser.add_argument("--requests", type=int, default=1000, help="request cycles per block (default 1000)")
    parser.add_argument("--control", action="store_true", help=f"measure {REFERENCE} against itself")
    args = parser.parse_args(argv)
    with test_server() as server:
        aliases = configure(server, args.config, args.control)
        wall, cpu = measure(aliases, args.rounds, args.requests)
    name = f"{REFERENCE} (control)" if args.control else args.config
    print(
        f"{name} against {REFERENCE} in one process, {versions()}, {args.rounds} rounds of "
        f"{args.requests} request cycles each: median time per request {statistics.median(wall):.3f}x, "
        f"CPU time {statistics.median(cpu):.3f}x; per-round time ratios from {min(wall):.2f} "
        f"to {max(wall):.2f}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
