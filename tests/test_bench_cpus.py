"""bench/cpus.py: the benchmarks' own server on CPUs of its own, their clients on the others."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import MySQLdb
import pytest

from tests import dbserver

ROOT = Path(__file__).resolve().parent.parent
# What a benchmark does before it measures, then where it and the processes it starts run.
_PIN = """
import json, os, subprocess, sys
from bench.cpus import pin_apart
from tests.dbserver import Server
placement = pin_apart(Server("127.0.0.1", int(sys.argv[1]), "root", ""))
child = subprocess.run(
    [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
    capture_output=True, text=True, check=True,
)
own = sorted(os.sched_getaffinity(0))
print(json.dumps({"placement": placement, "own": own, "child": json.loads(child.stdout)}))
"""

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs or more")


@pytest.fixture(scope="module")
def owned() -> Iterator[dbserver.OwnedServer]:
    with dbserver.owned_server() as server:
        yield server


def pin(port: int, **environ: str) -> dict[str, object]:
    """Run a benchmark's pinning in a process of its own (it pins its caller)."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("MYSQLPOOL_TEST_")}
    result = subprocess.run(
        [sys.executable, "-c", _PIN, str(port)],
        env={**clean, **environ},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    placed: dict[str, object] = json.loads(result.stdout)
    return placed


def server_threads(owned: dbserver.OwnedServer) -> list[int]:
    pid = int((owned.log.parent / "server.pid").read_text())
    return [int(thread.name) for thread in (Path("/proc") / str(pid) / "task").iterdir()]


def server_threads_cpus(owned: dbserver.OwnedServer) -> set[frozenset[int]]:
    """The CPU sets the server's threads may run on (one per distinct set)."""
    cpus = set()
    for thread in server_threads(owned):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            cpus.add(frozenset(os.sched_getaffinity(thread)))
    return cpus


def test_the_benchmarks_own_server_and_its_clients_get_cpus_apart(owned: dbserver.OwnedServer) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    client, server = cpus[: len(cpus) // 2], cpus[len(cpus) // 2 :]

    placed = pin(owned.server.port)

    assert placed["own"] == client and placed["child"] == client, placed
    assert server_threads_cpus(owned) == {frozenset(server)}
    # A connection made afterwards gets a new server thread, with the server's CPUs.
    connection = MySQLdb.connect(host="127.0.0.1", port=owned.server.port, user="root")
    with contextlib.closing(connection):
        assert server_threads_cpus(owned) == {frozenset(server)}
    assert placed["placement"] == (
        f"clients on CPU {','.join(map(str, client))}, server on CPU {','.join(map(str, server))}"
    )


def test_a_server_named_by_the_environment_is_left_alone(owned: dbserver.OwnedServer) -> None:
    everywhere = frozenset(os.sched_getaffinity(0))
    for thread in server_threads(owned):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(thread, everywhere)

    port = str(owned.server.port)
    placed = pin(owned.server.port, MYSQLPOOL_TEST_HOST="127.0.0.1", MYSQLPOOL_TEST_PORT=port)

    assert placed["placement"] == "CPUs shared (the server is not the benchmark's own)"
    assert placed["own"] == placed["child"] == sorted(everywhere)
    assert server_threads_cpus(owned) == {everywhere}
