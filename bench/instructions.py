"""What one request cycle costs the client, counted rather than timed.

Time per request is noisy on a shared machine; what the client does per request is
far less so. For each configuration, a worker process runs the request cycle of
bench/request_cycle.py (one ``SELECT 1``, then ``close_old_connections()``) on
``--threads`` threads (default 1): first ``--warmup`` cycles, then ``--requests``
counted ones (shared among the threads), between two marks. Three costs are
counted between the marks only (start-up, imports and the first connection
excluded):

* CPU instructions in user space, by ``valgrind --tool=callgrind``, its counters
  zeroed and dumped by ``callgrind_control`` at the marks;
* system calls by name, by ``strace -f``, between two marker calls the worker
  makes (``access()`` of a path that does not exist). Entering the kernel is slow
  on a virtual machine, and callgrind does not see it;
* context switches of the worker's threads (voluntary and not, from
  ``/proc/PID/task/*/status``), in a run of its own: with several threads, each
  hand-over of the GIL from one thread to another is one at least.

With ``--simulate-caches``, callgrind also simulates the caches and the branch
predictor (``--cache-sim=yes --branch-sim=yes``, with an L1 of 32 KiB for code
and 48 KiB for data and a last level of 2 MiB, as this machine's CPU has them),
and the table adds L1 data misses and mispredicted branches per request cycle.
Two configurations that run as many instructions may still differ in time by
these: each miss served by the next cache costs about 15 cycles, each
mispredicted branch about as many. It is a model (no other process evicts
anything, the predictor is a simple one), so its counts compare configurations
rather than predict time.

The counts vary a little from run to run: mysqlclient reads a reply as soon as the
socket has it, so how often a read finds nothing yet (and polls) depends on the
server's timing. The hash seed moves the instruction count by about 1% (the layout
of dicts and sets): the workers run with ``PYTHONHASHSEED`` fixed (``--hash-seed``,
default 0), so that two runs of the same code count the same.

Configurations: those of bench/request_cycle.py (``pooled``, ``persistent``,
``persistent-same-cursors``,
``default``...), plus ``pooled-budget``: ``pooled`` under ``MYSQLPOOL_BUDGET = 8``,
which records who holds each checkout. The server is tests/dbserver.py's
(throwaway unless MYSQLPOOL_TEST_HOST names one).

Usage: python bench/instructions.py [--requests N] [--warmup N] [--threads N] [--hash-seed S]
                                    [--simulate-caches] [CONFIG ...]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.request_cycle import (
    CONFIGS_BY_NAME,
    SAME_CURSORS,
    configure_django,
    database_settings,
    request_cycle,
)
from tests.dbserver import configured_server, test_server

BUDGET_CONFIG = "pooled-budget"
DEFAULT_CONFIGS = ("persistent", SAME_CURSORS, "pooled", BUDGET_CONFIG, "default")
# The worker's marks, as strace shows them.
START_MARK = "/mysqlpool-bench-counted-cycles-start"
END_MARK = "/mysqlpool-bench-counted-cycles-end"


# ---------------------------------------------------------------- worker process


def worker(config_name: str, warmup: int, requests: int, threads: int) -> None:
    """Warm up, then run the counted cycles between the marks, in step with the controller.

    The threads live until the end mark is passed, so that their counts are read.
    """
    server = configured_server()
    assert server is not None, "worker mode needs the server in MYSQLPOOL_TEST_* variables"
    config = CONFIGS_BY_NAME["pooled" if config_name == BUDGET_CONFIG else config_name]
    configure_django(database_settings(config, threads, server))
    if config_name == BUDGET_CONFIG:
        from mysqlpool import set_budget

        set_budget(8)
    warm, counted, ended = threading.Barrier(threads + 1), threading.Barrier(threads + 1), threading.Event()

    def run() -> None:
        for _ in range(warmup):
            request_cycle()
        warm.wait()
        warm.wait()  # the start mark is passed
        for _ in range(requests // threads):
            request_cycle()
        counted.wait()
        ended.wait()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for thread in workers:
        thread.start()
    warm.wait()
    mark(START_MARK)
    warm.wait()
    counted.wait()
    mark(END_MARK)
    ended.set()
    for thread in workers:
        thread.join()


def mark(path: str) -> None:
    """Tell the controller where the worker is, and wait for its go-ahead."""
    os.access(path, os.F_OK)
    print(path, flush=True)
    sys.stdin.readline()


# ---------------------------------------------------------------- controller


@contextmanager
def started(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def at_mark(process: subprocess.Popen[str], expected: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line == expected, f"the worker said {line!r}, not {expected!r}"


def go_on(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()


def worker_command(config: str, options: argparse.Namespace) -> list[str]:
    counts = (options.warmup, options.requests, options.threads)
    return [sys.executable, __file__, "worker", config, *map(str, counts)]


# callgrind's simulation (--simulate-caches): the caches of this machine's CPU, its
# last level the per-core L2 (valgrind takes sizes of powers of two only there).
SIMULATION = (
    "--cache-sim=yes", "--branch-sim=yes", "--I1=32768,8,64", "--D1=49152,12,64", "--LL=2097152,16,64"
)  # fmt: skip
# The simulated events shown: L1 data misses (reads, writes), mispredicted branches
# (conditional, indirect).
L1D_MISSES, MISPREDICTED = ("D1mr", "D1mw"), ("Bcm", "Bim")


def instructions(config: str, options: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    """callgrind's events per counted request cycle: ``Ir`` (user-space instructions), and
    with ``--simulate-caches`` the cache and branch simulation's too."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch, "callgrind.out")
        simulation = SIMULATION if options.simulate_caches else ()
        valgrind = ["valgrind", "--tool=callgrind", *simulation, f"--callgrind-out-file={out}.%p"]
        with started([*valgrind, *worker_command(config, options)], env) as process:
            at_mark(process, START_MARK)
            subprocess.run(["callgrind_control", "--zero", str(process.pid)], check=True, capture_output=True)
            go_on(process)
            at_mark(process, END_MARK)
            subprocess.run(
                ["callgrind_control", "--dump=counted", str(process.pid)], check=True, capture_output=True
            )
            go_on(process)
            process.wait(timeout=600)
        (dump,) = [path for path in Path(scratch).iterdir() if "Trigger: dump counted" in path.read_text()]
        text = dump.read_text()
        events = re.search(r"^events: (.+)$", text, re.MULTILINE)
        totals = re.search(r"^(?:summary|totals): (.+)$", text, re.MULTILINE)
        assert events is not None and totals is not None, f"no events or totals in {dump}"
        counts = zip(events.group(1).split(), totals.group(1).split(), strict=True)
        return {event: int(count) / options.requests for event, count in counts}


def system_calls(config: str, options: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    """System calls per counted request cycle, by name, by strace."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch, "strace.out")
        with started(["strace", "-f", "-o", str(out), *worker_command(config, options)], env) as process:
            for expected in (START_MARK, END_MARK):
                at_mark(process, expected)
                go_on(process)
            process.wait(timeout=600)
        trace = out.read_text()
    counted = trace[trace.index(START_MARK) : trace.index(END_MARK)].splitlines()[1:-1]
    calls = collections.Counter(name for line in counted if (name := syscall_name(line)))
    # The controller's go-ahead after the start mark: a read of stdin, not a cycle's.
    calls["read"] -= 1
    return {name: count / options.requests for name, count in calls.items() if count > 0}


def context_switches(config: str, options: argparse.Namespace, env: dict[str, str]) -> float:
    """Context switches of the worker's threads per counted request cycle."""
    with started(worker_command(config, options), env) as process:
        at_mark(process, START_MARK)
        before = switches_of(process.pid)
        go_on(process)
        at_mark(process, END_MARK)
        after = switches_of(process.pid)
        go_on(process)
        process.wait(timeout=600)
    return (after - before) / options.requests


def switches_of(pid: int) -> int:
    """Context switches so far of every thread of ``pid``."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                total += int(line.split()[1])
    return total


def syscall_name(line: str) -> str | None:
    """The system call of one strace line (``PID name(args) = result``), if it shows one."""
    match = re.match(r"^\d+\s+([a-z_0-9]+)\(", line)
    return match.group(1) if match else None


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "worker":
        worker(sys.argv[2], *map(int, sys.argv[3:]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="request cycles counted (default 1000)")
    parser.add_argument("--warmup", type=int, default=100, help="cycles before counting (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="threads of the worker (default 1)")
    parser.add_argument("--hash-seed", default="0", help="the workers' PYTHONHASHSEED (default 0)")
    parser.add_argument(
        "--simulate-caches", action="store_true", help="also count simulated L1d misses and mispredictions"
    )
    parser.add_argument("configs", nargs="*", default=DEFAULT_CONFIGS, help="default: %(default)s")
    options = parser.parse_args()
    import django

    with test_server() as server:
        env = {**os.environ, **server.environ(), "PYTHONHASHSEED": options.hash_seed}
        rows = [
            (
                config,
                instructions(config, options, env),
                system_calls(config, options, env),
                context_switches(config, options, env),
            )
            for config in options.configs
        ]
    reference = rows[0][1]["Ir"]
    print(
        f"Per request cycle on {options.threads} thread(s), Django {django.__version__}, Python "
        f"{sys.version.split()[0]}, {options.requests} cycles counted after {options.warmup} per thread, "
        f"PYTHONHASHSEED={options.hash_seed}:"
    )
    width = max(len("configuration"), *map(len, options.configs))
    simulated_header = f"  {'L1d misses':>10}  {'mispredicted':>12}" if options.simulate_caches else ""
    print(
        f"{'configuration':<{width}} {'instructions':>12} {'ratio':>6}{simulated_header}  {'switches':>8}  "
        f"{'syscalls':>8}  by name"
    )
    for config, events, calls, switches in rows:
        cpu = events["Ir"]
        simulated = ""
        if options.simulate_caches:
            misses = sum(events[name] for name in L1D_MISSES)
            mispredicted = sum(events[name] for name in MISPREDICTED)
            simulated = f"  {misses:>10,.0f}  {mispredicted:>12,.0f}"
        shown = ", ".join(f"{name} {count:.2f}" for name, count in sorted(calls.items()) if count >= 0.005)
        print(
            f"{config:<{width}} {cpu:>12,.0f} {cpu / reference:>5.2f}x{simulated}  {switches:>8.2f}  "
            f"{sum(calls.values()):>8.2f}  {shown}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
