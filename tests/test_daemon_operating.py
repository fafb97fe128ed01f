"""Operating a daemon: /metrics, /healthz, hung units, resizing; real processes and signals."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from port_for import get_port
from prometheus_client.parser import text_string_to_metric_families

from mysqlpool.daemon.exits import EXIT_CUT_SHORT
from tests import dbserver
from tests.helpers import Server
from tests.processes import server_connections_of, start_command
from tests.test_daemon import refused, start_worker, stop, wait_for, worker_pids

pytestmark = pytest.mark.django_db(transaction=True)


class Daemon:
    """A daemon started with --metrics-port, and what its endpoint says."""

    def __init__(self, database_server: dbserver.Server, *args: str) -> None:
        self.port = get_port(None)
        self.process = start_worker(database_server, *args, "--metrics-port", str(self.port))
        wait_for(self.answers)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def answers(self) -> bool:
        assert self.process.poll() is None, self.process.communicate()[1]
        try:
            return self.get("/healthz")[0] in (200, 503)
        except OSError:
            return False

    def samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """The samples named ``name`` in /metrics, by their labels."""
        text = self.get("/metrics")[1]
        return {
            tuple(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        }

    def by_pid(self, name: str, **labels: str) -> dict[int, float]:
        wanted = set(labels.items())
        return {
            int(dict(key)["pid"]): value
            for key, value in self.samples(name).items()
            if wanted <= set(key) and "pid" in dict(key)
        }

    def stopped(self) -> str:
        """SIGTERM, which must stop it cleanly; what it logged."""
        code, stderr = stop(self.process)
        assert code == 0, stderr
        return stderr

    def killed(self) -> str:
        """Kill the daemon (its master only, as a crash would); what it logged."""
        self.process.kill()
        return self.process.communicate()[1]

    def value(self, name: str, **labels: str) -> float:
        return self.samples(name).get(tuple(sorted(labels.items())), 0.0)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.communicate()


def start(daemons: list[Daemon], database_server: dbserver.Server, *args: str) -> Daemon:
    daemon = Daemon(database_server, *args)
    daemons.append(daemon)
    return daemon


def children_of(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``, read from /proc."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                children.add(int(entry.name))
    return children


def test_metrics_of_two_worker_processes_match_what_the_server_counts(
    database_server: dbserver.Server, units: Server, daemons: list[Daemon]
) -> None:
    daemon = start(daemons, database_server, "tests.jobs.twenty_units", "--processes", "2", "--threads", "2")
    # Each worker does 20 units, then idles: its figures settle and can be compared.
    wait_for(lambda: list(daemon.by_pid("mysqlpool_daemon_units_done_total").values()) == [20.0, 20.0])
    done = dict(units.query("SELECT pid, COUNT(*) FROM daemon_units WHERE state = 'done' GROUP BY pid"))
    assert daemon.by_pid("mysqlpool_daemon_units_done_total") == {pid: 20.0 for pid in done}
    assert len(done) == 2 and daemon.process.pid not in done
    assert daemon.value("mysqlpool_daemon_workers") == 2
    opened = daemon.by_pid("db_client_connection_count", pool_name="default", state="idle")
    assert daemon.by_pid("db_client_connection_count", pool_name="default", state="used") == dict.fromkeys(
        done, 0.0
    )
    # What each worker holds open is what the kernel sees it hold to the server.
    assert opened == {pid: server_connections_of(pid, database_server.port) for pid in done}
    checkouts = daemon.by_pid("mysqlpool_connection_checkouts_total", pool_name="default")
    assert all(count >= 20 for count in checkouts.values())
    for histogram in ("wait_time", "use_time"):
        count = daemon.by_pid(f"db_client_connection_{histogram}_seconds_count", pool_name="default")
        assert count == checkouts
        infinite = daemon.by_pid(
            f"db_client_connection_{histogram}_seconds_bucket", pool_name="default", le="+Inf"
        )
        assert infinite == checkouts
    created = daemon.by_pid("db_client_connection_create_time_seconds_count", pool_name="default")
    assert created == daemon.by_pid("mysqlpool_connection_opens_total", pool_name="default")
    text = daemon.get("/metrics")[1]
    assert "# HELP db_client_connection_pending_requests" in text
    assert "INSERT INTO" not in text and "SLEEP" not in text  # no query text (no password: test_secrets.py)
    status = start_command(database_server, "mysqlpool_status", "--url", f"http://127.0.0.1:{daemon.port}")
    shown, errors = status.communicate(timeout=60)
    assert status.returncode == 0, errors
    for pid in done:  # the layout of `mysqlpool_status` for its own process, for each worker
        figures = f"default: {opened[pid]:.0f} open, {checkouts[pid]:.0f} checkouts, 0 waits \\(0 ms\\)"
        assert re.search(rf"worker process {pid}:\ndefault: live figures\n  summary +{figures}\n", shown)
    assert "budget: none\n  summary    no budget\n" in shown
    daemon.stopped()


def test_a_dead_workers_series_go_with_it(
    database_server: dbserver.Server, units: Server, daemons: list[Daemon]
) -> None:
    daemon = start(daemons, database_server, "tests.jobs.record_unit", "--processes", "2")
    wait_for(lambda: len(daemon.by_pid("mysqlpool_daemon_threads")) == 2)
    victim = min(daemon.by_pid("mysqlpool_daemon_threads"))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(set(daemon.by_pid("mysqlpool_daemon_threads")) - {victim}) == 2)
    assert victim not in daemon.by_pid("db_client_connection_count")
    assert f'pid="{victim}"' not in daemon.get("/metrics")[1]
    assert daemon.value("mysqlpool_daemon_worker_restarts_total", cause="killed") == 1
    daemon.stopped()


def test_a_hung_unit_is_logged_with_its_stack_and_fails_the_health_check(
    database_server: dbserver.Server, units: Server, daemons: list[Daemon]
) -> None:
    daemon = start(daemons, database_server, "tests.jobs.hanging_unit", "--unit-timeout", "1")
    wait_for(lambda: daemon.get("/healthz")[0] == 503)
    assert "every worker thread has been in a unit longer than --unit-timeout 1s" in daemon.get("/healthz")[1]
    # Long enough for a second report, were the unit reported more than once.
    wait_for(lambda: daemon.value("mysqlpool_daemon_stalled_seconds") > 3)
    stderr = daemon.killed()
    assert "A unit of work runs longer than --unit-timeout 1s: thread 'worker-1' has run it for" in stderr
    assert "in hanging_unit; its stack:" in stderr
    assert 'tests/jobs.py", line' in stderr and "time.sleep(3600)" in stderr
    assert stderr.count("runs longer than --unit-timeout") == 1  # once per unit


def test_the_systemd_watchdog_is_not_fed_while_every_thread_is_stuck(
    database_server: dbserver.Server, units: Server, daemons: list[Daemon], tmp_path: Path
) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        os.environ.update(NOTIFY_SOCKET=address, WATCHDOG_USEC="200000")
        try:
            daemon = start(daemons, database_server, "tests.jobs.hanging_unit", "--unit-timeout", "2")
        finally:
            del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
        # Fed while healthy (the main loop's first second); once past the timeout, no more.
        wait_for(lambda: daemon.value("mysqlpool_daemon_stalled_seconds") > 3)
        assert b"WATCHDOG=1" in received(systemd)
        wait_for(lambda: daemon.value("mysqlpool_daemon_stalled_seconds") > 6)
        assert b"WATCHDOG=1" not in received(systemd)
    daemon.killed()


def received(sock: socket.socket) -> list[bytes]:
    """The datagrams waiting on ``sock``."""
    datagrams = []
    sock.setblocking(False)
    while True:
        try:
            datagrams.append(sock.recv(64))
        except BlockingIOError:
            return datagrams


def test_a_worker_with_hung_units_is_recycled(
    database_server: dbserver.Server, units: Server, daemons: list[Daemon]
) -> None:
    daemon = start(
        daemons,
        database_server,
        "tests.jobs.hanging_unit",
        "--processes",
        "1",
        "--unit-timeout",
        "1",
        "--graceful-timeout",
        "0.5",
    )
    wait_for(lambda: len(worker_pids(units)) == 1)
    (first,) = worker_pids(units)
    wait_for(lambda: len(worker_pids(units)) == 2)  # its replacement took a unit
    wait_for(lambda: daemon.value("mysqlpool_daemon_worker_restarts_total", cause="hung") >= 1)
    assert first not in children_of(daemon.process.pid)
    stderr = daemon.killed()
    assert f"Worker {first} started or finished no unit for --unit-timeout 1s: recycling it" in stderr


def test_sigttin_and_sigttou_resize_the_daemon_and_survive_sighup(
    database_server: dbserver.Server, units: Server, daemons: list[Daemon]
) -> None:
    daemon = start(daemons, database_server, "tests.jobs.record_unit", "--processes", "1")
    master = daemon.process.pid
    wait_for(lambda: len(children_of(master)) == 1)

    def resized(signum: int, workers: int) -> None:
        os.kill(master, signum)
        wait_for(lambda: len(children_of(master)) == workers)
        wait_for(lambda: daemon.value("mysqlpool_daemon_target_workers") == workers)

    resized(signal.SIGTTIN, 2)
    resized(signal.SIGTTIN, 3)
    os.kill(master, signal.SIGHUP)
    resized(signal.SIGTTOU, 2)
    resized(signal.SIGTTOU, 1)
    resized(signal.SIGTTOU, 1)  # never below one
    assert daemon.value("mysqlpool_daemon_workers") == 1
    stderr = daemon.stopped()
    assert "Master got SIGTTIN: 3 worker processes from now on" in stderr
    assert "Master got SIGTTOU with 1 worker process: keeping it" in stderr


def test_healthz_fails_while_workers_keep_failing(
    database_server: dbserver.Server, units: Server, daemons: list[Daemon]
) -> None:
    """From the first quick death until the master gives up, /healthz says why, also
    while the master waits to respawn a worker and none runs."""
    daemon = start(daemons, database_server, "tests.jobs.exiting_at_once_unit", "--processes", "1")
    failing = (503, "unhealthy: workers keep failing soon after their start\n")
    wait_for(lambda: daemon.get("/healthz") == failing)
    answers, while_none_ran = set(), set()
    with contextlib.suppress(OSError):  # refused: the master has given up
        while daemon.process.poll() is None:
            none_before = not children_of(daemon.process.pid)
            answer = daemon.get("/healthz")
            answers.add(answer)
            if none_before and not children_of(daemon.process.pid):
                while_none_ran.add(answer)
    _, stderr = daemon.process.communicate(timeout=60)
    assert answers <= {failing}
    assert while_none_ran == {failing}  # asked during a wait to respawn too
    assert daemon.process.returncode == EXIT_CUT_SHORT, stderr


def test_healthz_is_ok_while_units_are_taken_or_the_queue_is_idle(
    database_server: dbserver.Server, units: Server, daemons: list[Daemon]
) -> None:
    daemon = start(
        daemons, database_server, "tests.jobs.twenty_units", "--processes", "1", "--unit-timeout", "5"
    )
    wait_for(lambda: len(daemon.by_pid("mysqlpool_daemon_threads")) == 1)  # a worker reported
    assert daemon.get("/healthz") == (200, "ok\n")
    daemon.stopped()


def test_a_metrics_port_in_use_or_not_allowed_is_refused_before_starting(
    database_server: dbserver.Server,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        stderr = refused(
            database_server, "tests.jobs.record_unit", "--processes", "2", "--metrics-port", port
        )
    assert (
        f"--metrics-host '127.0.0.1' --metrics-port {port}: cannot listen there (Address already in use)"
        in (stderr)
    )
    assert "Started" not in stderr  # nothing forked
    stderr = refused(
        database_server, "tests.jobs.record_unit", "--metrics-port", "9", "--metrics-host", "192.0.2.1"
    )
    assert "cannot listen there (Cannot assign requested address)" in stderr
    stderr = refused(database_server, "tests.jobs.record_unit", "--metrics-port", "65536")
    assert "argument --metrics-port: '65536' is not a TCP port from 1 to 65535" in stderr
    stderr = refused(database_server, "tests.jobs.record_unit", "--unit-timeout", "0")
    assert "argument --unit-timeout: '0' is not a number of seconds >= 0.1" in stderr


def test_a_daemon_without_processes_serves_its_own_metrics(
    database_server: dbserver.Server, units: Server, daemons: list[Daemon]
) -> None:
    daemon = start(daemons, database_server, "tests.jobs.twenty_units", "--threads", "2")
    wait_for(lambda: daemon.value("mysqlpool_daemon_units_done_total") == 20)
    assert daemon.value("mysqlpool_daemon_threads") == 2
    assert daemon.value("mysqlpool_connection_checkouts_total", pool_name="default") >= 20
    assert daemon.get("/nothing")[0] == 404
    daemon.stopped()
