"""Client and server on CPUs of their own, as when the database runs on another host.

On a machine of two CPUs, where the benchmarks' MariaDB server shares the cores
with its clients, Linux places each connection's server thread on the client's
CPU or on the other one, and keeps it there for the connection's life: a lottery
drawn per connection. A request whose server thread shares the client's CPU took
about 26 µs here, one whose server thread runs on the other CPU about 100 µs
(waking a thread on another CPU of this virtual machine costs more than all the
rest of a loopback request). Two processes of one configuration then differ by
up to 4x for as long as they live (bench/README.rst, 2026-12-04), and a ratio
between two configurations says more about their draws than about them.

In a deployment the server runs elsewhere: no request ever shares a CPU with the
server's thread, and each one waits for a round trip. Pinning the benchmark's own
server to one part of the CPUs and its clients to the other makes every
connection draw the same, and the one a deployment draws. Only a server the
benchmark started itself is pinned; one named by ``MYSQLPOOL_TEST_HOST`` is left
alone, and so are the clients then, as they were before.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tests.dbserver import Server, configured_server


def pin_apart(server: Server) -> str:
    """Pin ``server`` to the upper half of the CPUs, and the calling thread to the rest.

    Threads and processes it starts afterwards inherit the client half. Returns
    how they were placed, for the report.
    """
    if configured_server() is not None:
        return "CPUs shared (the server is not the benchmark's own)"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "CPUs shared (one CPU only)"
    client, server_cpus = set(cpus[: len(cpus) // 2]), set(cpus[len(cpus) // 2 :])
    for thread in (Path("/proc") / str(server_pid(server)) / "task").iterdir():
        # New server threads inherit the affinity of the thread that starts them.
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(thread.name), server_cpus)
    os.sched_setaffinity(0, client)
    return f"clients on CPU {_cpu_list(client)}, server on CPU {_cpu_list(server_cpus)}"


def server_pid(server: Server) -> int:
    """The process id of a local ``server``, from the pid file it names."""
    import MySQLdb

    connection = MySQLdb.connect(
        host=server.host, port=server.port, user=server.user, password=server.password
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@pid_file")
            (pid_file,) = cursor.fetchone()
    finally:
        connection.close()
    return int(Path(pid_file).read_text().strip())


def _cpu_list(cpus: set[int]) -> str:
    return ",".join(map(str, sorted(cpus)))
