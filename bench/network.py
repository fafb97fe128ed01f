"""How soon a silently dead connection is known dead, by ``keepalive``: the README's lab figures.

In the network lab of the tests (tests/netlab.py: a private network namespace, as
root), for each keepalive: a pooled-style connection with mysqlpool's socket
options is cut in both directions by nftables right after a query, and the time
is measured until the kernel reports the idle socket dead (what the checkout's
``poll()`` then sees); a second one is cut and then sent a query, and the time is
measured until the query fails. Without root or nftables it says why and exits 0:
this is a report.

Usage: python bench/network.py [KEEPALIVE ...]   (default: 2 5 10)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# Run as bench/network.py, this script sees bench/, not the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from MySQLdb import OperationalError

from mysqlpool.connection import PooledConnection
from mysqlpool.network import KeepAlive
from tests import dbserver, netlab


def kept_alive(server: dbserver.Server, keepalive: KeepAlive) -> PooledConnection:
    """A connection with the pool's socket options, just used (its last packet now)."""
    connection = PooledConnection(host=server.host, port=server.port, user=server.user)
    keepalive.set_on(connection.fileno())
    connection.query("SELECT 1")
    connection.store_result()
    return connection


def seconds_until_known_dead(lab: netlab.Lab, connection: PooledConnection, limit: float) -> float:
    lab.blackhole(netlab.client_port(connection.fileno()))
    started = time.monotonic()
    while not connection.server_hung_up():
        if time.monotonic() - started > limit:
            return float("inf")
        time.sleep(0.01)
    return time.monotonic() - started


def seconds_until_query_fails(lab: netlab.Lab, connection: PooledConnection) -> tuple[float, str]:
    lab.blackhole(netlab.client_port(connection.fileno()))
    started = time.monotonic()
    try:
        connection.query("SELECT 1")
        connection.store_result()
    except OperationalError as error:
        return time.monotonic() - started, f"{error.args[0]} {error.args[1]}"
    return time.monotonic() - started, "no error"


def main(argv: list[str]) -> int:
    reason = netlab.unavailable()
    if reason is not None:
        print(f"Network lab figures not measured: {reason}.")
        return 0
    seconds = [int(arg) for arg in argv] or [2, 5, 10]
    with netlab.Lab.created() as lab, lab.inside(), dbserver.owned_server() as owned:
        print("keepalive  idle connection cut: known dead after  query on a cut connection: failed after")
        for keepalive in map(KeepAlive, seconds):
            idle = seconds_until_known_dead(lab, kept_alive(owned.server, keepalive), 3 * keepalive.seconds)
            failed, error = seconds_until_query_fails(lab, kept_alive(owned.server, keepalive))
            print(f"{keepalive.seconds:>7} s  {idle:>34.2f} s  {failed:>37.2f} s ({error})")
            lab.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
