"""Processes that fork while holding pooled connections, run by tests/test_forking.py.

Each scenario runs in a process of its own (forking the pytest process would fork
pytest too), on the database named on the command line, and prints one JSON object
with what it saw; the test asserts on it and on the server. Children report through
pipes and never print.

    python tests/fork_scenarios.py SCENARIO DATABASE   (server from MYSQLPOOL_TEST_*)
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import django
from django.conf import settings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.dbserver import configured_server  # noqa: E402


def setup(database: str) -> None:
    server = configured_server()
    assert server is not None, "run through tests/test_forking.py"
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "mysqlpool.backends.mysqlpool",
                "NAME": database,
                "HOST": server.host,
                "PORT": server.port,
                "USER": server.user,
                "PASSWORD": server.password,
                "OPTIONS": {"pool": {"pool_size": 8, "timeout": 5}},
            }
        },
        USE_TZ=True,
    )
    django.setup()


def connection_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        return int(cursor.fetchone()[0])


def in_child(
    work: Callable[[], Any], *, exit_normally: bool = False, forker: Callable[[], int] = os.fork
) -> tuple[int, int]:
    """Fork; the child runs ``work`` and writes its result (or error) to a pipe.

    Returns (pid, read end) in the parent. The child exits through interpreter
    shutdown (sys.exit, atexit, garbage collection) or through os._exit.
    """
    read, write = os.pipe()
    pid = forker()
    if pid:
        os.close(write)
        return pid, read
    os.close(read)
    try:
        report: Any = {"result": work()}
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        report = {"error": f"{type(error).__name__}: {error}"}
    os.write(write, json.dumps(report).encode())
    os.close(write)
    if exit_normally:
        # Collect what the child dropped, inherited connections included, as a
        # long-lived child eventually would: mysqlclient says COM_QUIT for each.
        gc.collect()
        sys.exit(0)
    os._exit(0)


def collect(pid: int, read: int) -> dict[str, Any]:
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    report: dict[str, Any] = json.loads(data) if data else {"error": "no report"}
    report["exit_code"] = os.waitstatus_to_exitcode(status)
    return report


def server_sessions() -> set[int]:
    """The sessions the server lists, asked over a connection outside the pool."""
    import MySQLdb

    server = configured_server()
    assert server is not None
    with MySQLdb.connect(
        host=server.host, port=server.port, user=server.user, password=server.password
    ) as admin:
        with admin.cursor() as cursor:
            cursor.execute("SHOW PROCESSLIST")  # see tests/helpers.py: Server.processlist
            return {row[0] for row in cursor.fetchall()}


def parent_pool() -> dict[str, Any]:
    from mysqlpool import get_stats

    return get_stats()["default"]


def threads_while_forking() -> dict[str, Any]:
    """Threads query without pause while the main thread forks 20 children."""
    from mysqlpool import auto_close_db

    stop = threading.Event()
    # Forking while another thread imports a module deadlocks the child on the
    # import lock (what Python 3.12 warns about): every thread has imported what
    # it needs before the forks start, as in a daemon that has started up.
    started = threading.Barrier(5)
    seen: set[int] = set()
    errors: list[str] = []
    cycles = [0]

    def loop() -> None:
        with auto_close_db():
            seen.add(connection_id())
        started.wait()
        while not stop.is_set():
            try:
                with auto_close_db():
                    seen.add(connection_id())
                cycles[0] += 1
            except Exception as error:  # noqa: BLE001 - reported
                errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    children = [in_child(connection_id, exit_normally=i % 2 == 0) for i in range(20)]
    reports = [collect(pid, read) for pid, read in children]
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "children": reports,
        "parent_ids": sorted(seen),
        "listed_by_server": sorted(seen & server_sessions()),
        "parent_errors": errors,
        "parent_cycles": cycles[0],
        "pool": parent_pool(),
    }


def socket_after_fork(listener_address: tuple[str, int], held_id: int) -> dict[str, Any]:
    """What the child does first: a socket of its own, then the database."""
    with socket.create_connection(listener_address) as sock:
        sock.sendall(b"child-hello")
        child_id = connection_id()
        sock.sendall(b"|%d" % child_id)
    return {"child_id": child_id, "held_id": held_id}


def crosstalk() -> dict[str, Any]:
    """A child opens a socket right after fork, then uses the database."""
    from django.db import connection

    with socket.create_server(("127.0.0.1", 0)) as listener:
        held = connection_id()  # checked out by the forking thread, over the fork
        pid, read = in_child(lambda: socket_after_fork(listener.getsockname(), held))
        peer, _ = listener.accept()
        received = b""
        with peer:
            while chunk := peer.recv(4096):
                received += chunk
        report = collect(pid, read)
    after = connection_id()
    connection.close()
    return {"child": report, "received": received.decode(), "held": held, "after": after}


def _pool_worker(number: int) -> int:
    from mysqlpool import auto_close_db

    with auto_close_db():
        return connection_id()


def multiprocessing_pool() -> dict[str, Any]:
    from django.db import connection

    held = connection_id()
    with multiprocessing.get_context("fork").Pool(3) as workers:
        child_ids = workers.map(_pool_worker, range(9))
    after = connection_id()
    connection.close()
    return {"held": held, "after": after, "child_ids": child_ids}


def grandchildren() -> dict[str, Any]:
    from django.db import connection

    held = connection_id()

    def child() -> dict[str, Any]:
        own = connection_id()
        grandchild = collect(*in_child(connection_id))
        return {"own": own, "grandchild": grandchild, "own_after": connection_id()}

    report = collect(*in_child(child, exit_normally=True))
    after = connection_id()
    connection.close()
    return {"held": held, "after": after, "child": report}


def fork_inside_atomic() -> dict[str, Any]:
    from django.db import connection, transaction
    from django.db.transaction import TransactionManagementError

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS forked (note VARCHAR(20)) ENGINE=InnoDB")
        cursor.execute("DELETE FROM forked")

    from mysqlpool import fork

    def child_in_block() -> dict[str, Any]:
        try:
            connection_id()
            inside = "query ran"
        except TransactionManagementError:
            inside = "TransactionManagementError"
        return {"inside": inside}

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO forked VALUES ('parent')")
        held = connection_id()
        pid, read = in_child(child_in_block, exit_normally=True, forker=fork)
        report = collect(pid, read)
        still = connection_id()
    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM forked")
        rows = [row[0] for row in cursor.fetchall()]
    connection.close()
    return {"held": held, "still": still, "child": report, "rows": rows}


def block_then_leave() -> dict[str, Any]:
    """The child of a fork inside atomic() leaves the block, then queries."""
    from django.db import connection, transaction

    with transaction.atomic():
        held = connection_id()
        read, write = os.pipe()
        pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, json.dumps({"result": connection_id()}).encode())
        os._exit(0)
    os.close(write)
    report = collect(pid, read)
    after = connection_id()
    connection.close()
    return {"held": held, "after": after, "child": report}


def budget_of_the_child() -> dict[str, Any]:
    """The parent's budget is full when it forks; the child's starts empty."""
    from django.db import connection

    from mysqlpool import set_budget

    set_budget(1)
    held = connection_id()  # the parent's whole budget, checked out over the fork
    report = collect(*in_child(connection_id))
    after = connection_id()
    connection.close()
    return {"held": held, "after": after, "child": report}


def python_daemon() -> dict[str, Any]:
    """A child detaches with python-daemon, which closes every descriptor it inherited.

    The numbers of the parent's connections are then free; the daemon's first
    socket takes one. Nothing the daemon drops may reach that socket.
    """
    import daemon
    from django.db import connection

    with socket.create_server(("127.0.0.1", 0)) as listener:
        held = connection_id()
        idle = connection.copy()  # a second connection, left idle in the pool
        idle.ensure_connection()
        idle_fd = idle.connection.fileno()
        idle.close()
        del idle
        address = listener.getsockname()
        pid = os.fork()
        if pid == 0:
            with daemon.DaemonContext(detach_process=False):
                # Take every lower number, so that the daemon's socket gets the one
                # the idle connection had.
                fillers = []
                while (filler := socket.socket()).fileno() < idle_fd:
                    fillers.append(filler)
                filler.close()
                with socket.create_connection(address) as sock:
                    assert sock.fileno() == idle_fd
                    sock.sendall(b"daemon-hello")
                    gc.collect()  # drops whatever of the parent's the daemon no longer uses
                    sock.sendall(b"|%d" % connection_id())
            os._exit(0)
        listener.settimeout(30)
        peer, _ = listener.accept()
        received = b""
        with peer:
            while chunk := peer.recv(4096):
                received += chunk
        os.waitpid(pid, 0)
    after = connection_id()
    connection.close()
    return {"held": held, "after": after, "received": received.decode()}


# Each scenario is run by its function's name.
SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    scenario.__name__: scenario
    for scenario in (
        threads_while_forking,
        crosstalk,
        multiprocessing_pool,
        grandchildren,
        fork_inside_atomic,
        block_then_leave,
        budget_of_the_child,
        python_daemon,
    )
}

if __name__ == "__main__":
    scenario, database = sys.argv[1:3]
    setup(database)
    print(json.dumps(SCENARIOS[scenario]()))
