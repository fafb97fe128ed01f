"""PooledDaemonCommand through run_pooled_worker: real processes, real signals, real server."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from mysqlpool.daemon.stops import SAME_REQUEST
from tests import dbserver
from tests.helpers import Server, SessionSampler
from tests.processes import server_connections_of, start_command, start_process, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def start_worker(
    database_server: dbserver.Server,
    *args: str,
    command: str = "run_pooled_worker",
    umask: int = -1,
    python: Sequence[str] = (sys.executable,),
) -> subprocess.Popen[str]:
    """``python -m django command args``; ``python`` may be a command that runs it."""
    return start_command(database_server, command, *args, umask=umask, python=python)


def refused(database_server: dbserver.Server, *args: str, command: str = "run_pooled_worker") -> str:
    """Start a worker that must refuse to start; what it said."""
    worker = start_worker(database_server, *args, command=command)
    try:
        _, stderr = worker.communicate(timeout=30)
    finally:
        worker.kill()  # one that started would run for ever
    assert worker.returncode != 0, stderr
    return stderr


def start_logging_worker(database_server: dbserver.Server, log: Path, *args: str) -> subprocess.Popen[str]:
    """A worker that logs to the file ``log`` as well."""
    return start_worker(database_server, *args, "--log-file", str(log))


def start_unconfigured_worker(database_server: dbserver.Server, *args: str) -> subprocess.Popen[str]:
    """A worker of a project whose settings have no LOGGING."""
    return start_command(database_server, "run_pooled_worker", *args, MYSQLPOOL_TEST_LOGGING="none")


def log_text(path: Path) -> str:
    """What a worker has logged to ``path`` so far ('' before it opened it)."""
    return path.read_text() if path.exists() else ""


def states(server: Server) -> dict[str, int]:
    return dict(server.query("SELECT state, COUNT(*) FROM daemon_units GROUP BY state"))


@pytest.fixture
def sessions_peak(units: Server) -> Iterator[list[int]]:
    """Sessions the server lists on the test database, sampled while the test runs."""
    # The test's own session on the database is left out.
    with SessionSampler(connections["default"].settings_dict, {units.conn.thread_id()}) as sampler:
        yield sampler.counts


def stop(worker: subprocess.Popen[str]) -> tuple[int, str]:
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=30)
    return worker.returncode, stderr


def test_sigterm_finishes_units_in_flight_and_returns_every_connection(
    database_server: dbserver.Server, units: Server
) -> None:
    worker = start_worker(database_server, "tests.jobs.record_unit", "--threads", "3", "--interval", "0.01")
    wait_for(lambda: states(units).get("done", 0) >= 10)
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert "started" not in states(units)  # no unit was cut in the middle
    assert units.sessions() == set()  # every connection was returned and closed
    assert "units done" in stderr and ", 0 failed" in stderr


@pytest.mark.parametrize("processes", [0, 2])
def test_a_daemon_speaks_on_stderr_when_logging_is_not_configured(
    database_server: dbserver.Server, units: Server, processes: int
) -> None:
    """As gunicorn and Celery do: start, progress, stop and the last line, with no LOGGING setting."""
    options = ("--processes", str(processes), "--threads", "2", "--budget", "2")
    worker = start_unconfigured_worker(database_server, "tests.jobs.record_unit", *options)
    wait_for(lambda: states(units).get("done", 0) >= 5)
    code, stderr = stop(worker)
    assert code == 0, stderr
    layout = "2 worker processes x 2 threads" if processes else "2 threads in this process"
    assert (
        f"Started run_pooled_worker (pid {worker.pid}): {layout}, budget 2 per process, "
        "unit tests.jobs.record_unit" in stderr
    )
    stopped = re.findall(
        r"Worker \d+ stopped after .* units done .* pools default: (\d+) open, .*; budget", stderr
    )
    assert len(stopped) == max(processes, 1), stderr
    assert stderr.rstrip().endswith(f"Stopped run_pooled_worker (pid {worker.pid}) with exit status 0")
    assert "Created QueuePool" not in stderr  # the pools' own lines need -v 2


@pytest.mark.parametrize(
    ("verbosity", "shown", "hidden"), [("0", None, "Started"), ("2", "Created QueuePool", None)]
)
def test_verbosity_sets_what_the_default_output_shows(
    database_server: dbserver.Server, units: Server, verbosity: str, shown: str | None, hidden: str | None
) -> None:
    worker = start_unconfigured_worker(database_server, "tests.jobs.record_unit", "-v", verbosity)
    wait_for(lambda: states(units).get("done", 0) >= 1)
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert shown is None or shown in stderr
    assert hidden is None or hidden not in stderr


def test_daemonize_without_a_pidfile_or_a_log_file_is_refused_before_detaching(
    database_server: dbserver.Server, units: Server
) -> None:
    stderr = refused(database_server, "tests.jobs.record_unit", "--daemonize")
    assert (
        "--daemonize needs --pidfile (without it, no pid to stop the daemon by) and --log-file "
        "(a detached daemon has no terminal: its log would be lost)." in stderr
    )
    assert states(units) == {}


def test_progress_lines_come_every_progress_interval(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = start_logging_worker(database_server, log, "tests.jobs.record_unit", "--progress-interval", "1")
    wait_for(lambda: log_text(log).count(" running after ") >= 2)
    code, stderr = stop(worker)
    assert code == 0, stderr
    lines = [line for line in log.read_text().splitlines() if " running after " in line]
    assert all("units done" in line and "pools default: " in line for line in lines), lines


def test_a_failing_unit_is_logged_and_the_thread_carries_on(
    database_server: dbserver.Server, units: Server
) -> None:
    worker = start_worker(database_server, "tests.jobs.flaky_unit", "--threads", "1", "--interval", "0.01")
    wait_for(lambda: states(units).get("done", 0) >= 4)  # units done after failures
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert "A unit of work failed; the thread carries on" in stderr
    assert "ValueError: this unit failed on purpose" in stderr


def test_threads_that_fail_together_do_not_retry_in_lockstep(
    database_server: dbserver.Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without jitter, the 4th try of every thread came 0.1 + 0.2 + 0.4 s after its 1st."""
    times = tmp_path / "failures"
    monkeypatch.setenv("FAILURE_TIMES", str(times))
    worker = start_worker(database_server, "tests.jobs.failing_unit", "--threads", "4")

    def tries() -> dict[str, list[float]]:
        by_thread: dict[str, list[float]] = {}
        for line in log_text(times).splitlines():
            thread, when = line.split()
            by_thread.setdefault(thread, []).append(float(when))
        return by_thread

    wait_for(lambda: len(tries()) == 4 and all(len(t) >= 4 for t in tries().values()))
    code, stderr = stop(worker)
    assert code == 0, stderr
    gaps = [t[3] - t[0] for t in tries().values()]
    assert all(0.35 <= gap for gap in gaps), gaps  # each wait at least half the backoff
    assert min(gaps) < 0.65, gaps  # all four near 0.7 s: a chance of 1 in millions


def test_a_unit_raising_an_unprintable_exception_is_logged_and_the_thread_carries_on(
    database_server: dbserver.Server, units: Server
) -> None:
    worker = start_worker(database_server, "tests.jobs.unprintable_unit", "--interval", "0.01")
    wait_for(lambda: states(units).get("done", 0) >= 4 or worker.poll() is not None)
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert "A unit of work failed; the thread carries on" in stderr
    assert "tests.jobs.Unprintable" in stderr


def test_a_unit_raising_system_exit_stops_the_process_with_a_failure(
    database_server: dbserver.Server, units: Server
) -> None:
    """Not a thread gone silently while the process goes on with fewer."""
    worker = start_worker(database_server, "tests.jobs.exiting_unit", "--threads", "2", "--interval", "0.01")
    try:
        _, stderr = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 4, stderr
    assert "A unit of work raised SystemExit: stopping the process" in stderr
    assert "SystemExit: this unit exits on purpose" in stderr
    assert ", 1 failed" in stderr
    assert "started" not in states(units)  # the other thread's unit finished


def test_a_database_outage_does_not_flood_the_log(database_server: dbserver.Server, tmp_path: Path) -> None:
    """Each failure of a kind is logged once with its traceback, then counted per progress line."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: every connect is refused
        down = dataclasses.replace(database_server, host="127.0.0.1", port=closed.getsockname()[1])
        log = tmp_path / "worker.log"
        args = ["tests.jobs.record_unit", "--threads", "8", "--progress-interval", "1"]
        worker = start_logging_worker(down, log, *args)
        wait_for(lambda: log_text(log).count(" running after ") >= 3)
        code, stderr = stop(worker)
    assert code == 0, stderr
    text = log.read_text()
    assert text.count("A unit of work failed") == 1, text  # one traceback in all
    assert text.count("Traceback (most recent call last)") == 2  # its chain: driver, Django
    assert "IndexError" not in text  # nothing of the pool's own lookups
    assert "Can't connect to server on '127.0.0.1'" in text
    assert "more times in the last" in text
    failed = re.findall(r" stopped after .* units done \(.*\), (\d+) failed", text)
    assert int(failed[-1]) > 8  # every thread failed, and again


def test_more_threads_than_the_budget_share_its_connections(
    database_server: dbserver.Server, units: Server, sessions_peak: list[int]
) -> None:
    worker = start_worker(database_server, "tests.jobs.record_unit", "--threads", "4", "--budget", "2")
    wait_for(lambda: states(units).get("done", 0) >= 20)
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert max(sessions_peak) <= 2


def test_a_second_signal_exits_at_once(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = start_logging_worker(database_server, log, "tests.jobs.slow_unit", "--graceful-timeout", "60")
    wait_for(lambda: states(units).get("started", 0) >= 1)
    first = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping: the units in flight have 60s to finish" in log_text(log))
    wait_past_the_same_request(first)
    assert worker.poll() is None  # the unit keeps running
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=10)
    assert worker.returncode == 1
    assert time.monotonic() - started < 5


def test_a_stop_signal_repeated_within_a_second_lets_the_units_finish(
    database_server: dbserver.Server, units: Server
) -> None:
    """Two SIGTERMs 0.2 s apart, a burst from a script: one request, not two."""
    worker = start_worker(database_server, "tests.jobs.unit_of_a_second", "--graceful-timeout", "60")
    wait_for(lambda: states(units).get("started", 0) >= 1)
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # the first handled (the main thread waits interruptibly), the unit still running
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr
    assert "started" not in states(units)  # the unit in flight finished


def wait_past_the_same_request(first: float) -> None:
    """Until a stop signal is a second request, not a repeat of the one sent at ``first``
    (the daemon takes those of the next second as repeats; half a second to spare)."""
    time.sleep(max(0.0, first + SAME_REQUEST + 0.5 - time.monotonic()))


def test_a_stop_signal_repeated_at_once_is_one_request(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    """As GNU ``timeout`` signals: the command, then its process group, the master
    getting the second once it has begun stopping the workers. Their units finish."""
    log = tmp_path / "worker.log"
    master = start_logging_worker(
        database_server, log, "tests.jobs.unit_of_a_second", "--processes", "2", "--graceful-timeout", "60"
    )
    wait_for(lambda: len(pids_with_state(units, "started")) == 2)
    first = time.monotonic()
    master.send_signal(signal.SIGTERM)
    wait_for(lambda: "Master got SIGTERM: stopping the workers" in log_text(log))
    master.send_signal(signal.SIGTERM)
    assert time.monotonic() - first < SAME_REQUEST, "the test was too slow to repeat the signal at once"
    _, stderr = master.communicate(timeout=30)
    assert master.returncode == 0, stderr
    assert "killing the workers" not in stderr
    assert "started" not in states(units)  # every unit in flight finished


def start_from_a_terminal(database_server: dbserver.Server, *args: str) -> subprocess.Popen[str]:
    """``run_pooled_worker ARGS`` as a shell in a terminal starts it: the leader of a
    process group of its own (its worker processes join it), which Ctrl-C signals whole."""
    command = [sys.executable, "-m", "django", "run_pooled_worker", *args]
    return start_process(database_server, command, settings="tests.daemon_settings", new_session=True)


def ctrl_c(master: subprocess.Popen[str]) -> None:
    """What a terminal does on Ctrl-C: SIGINT to every process of the foreground group."""
    os.killpg(master.pid, signal.SIGINT)


def test_ctrl_c_lets_every_worker_process_finish_its_units(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    """Each worker gets the terminal's SIGINT and then the master's SIGTERM: one stop, not two."""
    log = tmp_path / "worker.log"
    master = start_from_a_terminal(
        database_server, "tests.jobs.unit_of_a_second", "--processes", "2", "--log-file", str(log)
    )
    wait_for(lambda: len(pids_with_state(units, "started")) == 2)  # a unit in flight in each
    workers = worker_pids(units)
    ctrl_c(master)
    _, stderr = master.communicate(timeout=30)
    assert master.returncode == 0, stderr
    assert "started" not in states(units)  # every unit in flight finished
    assert log_text(log).count("stopping: the units in flight have") == 2
    assert not any(alive(pid) for pid in workers)


def test_ctrl_c_twice_ends_the_worker_processes_at_once(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    master = start_from_a_terminal(
        database_server, "tests.jobs.slow_unit", "--processes", "2", "--graceful-timeout", "60",
        "--log-file", str(log),
    )  # fmt: skip
    wait_for(lambda: len(pids_with_state(units, "started")) == 2)
    workers = worker_pids(units)
    first = time.monotonic()
    ctrl_c(master)
    wait_for(lambda: log_text(log).count("stopping: the units in flight have 60s to finish") == 2)
    wait_past_the_same_request(first)
    assert master.poll() is None and all(alive(pid) for pid in workers)  # the units keep running
    started = time.monotonic()
    ctrl_c(master)
    _, stderr = master.communicate(timeout=10)
    assert master.returncode == 1, stderr
    assert time.monotonic() - started < 5
    assert "Master got SIGINT again: killing the workers" in stderr
    assert not any(alive(pid) for pid in workers)


def test_a_worker_process_cut_short_by_the_graceful_timeout_fails_the_master(
    database_server: dbserver.Server, units: Server
) -> None:
    master = start_worker(
        database_server, "tests.jobs.slow_unit", "--processes", "1", "--graceful-timeout", "1"
    )
    wait_for(lambda: len(pids_with_state(units, "started")) == 1)
    code, stderr = stop(master)
    assert code == 1, stderr
    # The worker ended by itself, saying why, and the master passed its failure on.
    assert "Units still running after --graceful-timeout; exiting without them" in stderr
    assert "exited with 1 while stopping" in stderr


def run_until_done(database_server: dbserver.Server, units: Server, *args: str, done: int = 1) -> str:
    """``run_pooled_worker ARGS`` until ``done`` units are done, then SIGTERM; its
    stderr, once it exited 0."""
    worker = start_worker(database_server, *args)
    wait_for(lambda: states(units).get("done", 0) >= done)
    code, stderr = stop(worker)
    assert code == 0, stderr
    return stderr


def test_a_unit_whose_decorator_supplies_its_arguments_runs(
    database_server: dbserver.Server, units: Server
) -> None:
    """What is called takes no argument, whatever the function it wraps takes."""
    run_until_done(database_server, units, "tests.jobs.unit_given_its_job", done=2)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["tests.jobs.no_such_unit"], "'tests.jobs.no_such_unit' is not an importable dotted path"),
        (["tests.jobs.NOT_CALLABLE"], "'tests.jobs.NOT_CALLABLE' is not a callable: it is of type int."),
        (["tests.jobs"], "'tests.jobs' is a module, not a callable: name the function in it"),
        (["tests.jobs.NotAUnit"], "'tests.jobs.NotAUnit' is a class: calling it makes an instance"),
        (
            ["tests.jobs.unit_with_an_argument"],
            "'tests.jobs.unit_with_an_argument' needs the argument job_id, and a unit of work is called "
            "without any",
        ),
        (
            ["tests.broken_jobs.unit"],
            "'tests.broken_jobs.unit': importing tests.broken_jobs failed with ModuleNotFoundError: "
            "No module named 'mysqlpool_tests_no_such_package'",
        ),
        (["tests.jobs.record_unit", "--threads", "0"], "argument --threads: '0' is not an int >= 1"),
        (
            ["tests.jobs.record_unit", "--interval", "soon"],
            "argument --interval: 'soon' is not a number of seconds",
        ),
        (["tests.jobs.record_unit", "--budget", "-2"], "argument --budget: '-2' is not an int >= 1"),
        (
            ["tests.jobs.record_unit", "--graceful-timeout", "nan"],
            "argument --graceful-timeout: 'nan' is not a number of seconds >= 0",
        ),
        (
            ["tests.jobs.record_unit", "--progress-interval", "0.5"],
            "argument --progress-interval: '0.5' is not a number of seconds >= 1",
        ),
        (
            ["tests.jobs.record_unit", "--user", "no-such-user"],
            "argument --user: 'no-such-user' is not a user name or uid of this system",
        ),
        (["tests.jobs.record_unit", "--group", "4000000"], "argument --group: '4000000' is not a group name"),
        *(
            (
                ["tests.jobs.record_unit", option, "1e300"],
                f"argument {option}: '1e300' is not a number of seconds >= {minimum} and at most 31536000",
            )
            for option, minimum in [("--graceful-timeout", 0), ("--interval", 0), ("--progress-interval", 1)]
        ),
    ],
)
def test_bad_input_is_a_clear_error_before_anything_starts(
    database_server: dbserver.Server, units: Server, args: list[str], expected: Any
) -> None:
    assert expected in refused(database_server, *args)
    assert states(units) == {}


def test_a_class_attribute_in_seconds_is_checked_as_its_option(
    database_server: dbserver.Server, units: Server
) -> None:
    stderr = refused(database_server, command="sleepy_worker")
    assert "argument --interval: '1e+300' is not a number of seconds >= 0 and at most 31536000" in stderr


def worker_pids(server: Server) -> set[int]:
    return {row[0] for row in server.query("SELECT DISTINCT pid FROM daemon_units")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_worker_processes_share_the_budget_of_each(
    database_server: dbserver.Server, units: Server, sessions_peak: list[int]
) -> None:
    master = start_worker(
        database_server, "tests.jobs.record_unit", "--processes", "2", "--threads", "4", "--budget", "2"
    )
    wait_for(lambda: len(worker_pids(units)) == 2 and states(units).get("done", 0) >= 40)
    code, stderr = stop(master)
    assert code == 0, stderr
    assert master.pid not in worker_pids(units)  # the master does no unit...
    assert max(sessions_peak) <= 4  # ...and holds no connection: 2 workers x budget 2
    assert "started" not in states(units)
    assert units.sessions() == set()
    assert not any(alive(pid) for pid in worker_pids(units))


def test_the_master_holds_no_server_connection(database_server: dbserver.Server, units: Server) -> None:
    """Even when Django's checks connected before handle() (6.1, a project with models)."""
    master = start_command(
        database_server,
        "run_pooled_worker",
        "tests.jobs.record_unit",
        "--processes",
        "2",
        settings="tests.model_settings",
    )
    wait_for(lambda: len(worker_pids(units)) == 2)
    assert all(server_connections_of(pid, database_server.port) for pid in worker_pids(units))
    assert server_connections_of(master.pid, database_server.port) == 0
    code, stderr = stop(master)
    assert code == 0, stderr


def test_a_killed_worker_is_replaced(database_server: dbserver.Server, units: Server) -> None:
    master = start_worker(database_server, "tests.jobs.record_unit", "--processes", "1", "--interval", "0.01")
    wait_for(lambda: len(worker_pids(units)) == 1)
    (victim,) = worker_pids(units)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(worker_pids(units)) == 2)  # a new worker does units
    code, stderr = stop(master)
    assert code == 0, stderr
    assert f"Worker {victim} exited with -9 after" in stderr


def test_max_jobs_recycles_workers_while_the_master_stays(
    database_server: dbserver.Server, units: Server
) -> None:
    master = start_worker(database_server, "tests.jobs.record_unit", "--processes", "1", "--max-jobs", "5")
    wait_for(lambda: len(worker_pids(units)) >= 3)
    assert master.poll() is None
    code, stderr = stop(master)
    assert code == 0, stderr
    counts = dict(units.query("SELECT pid, COUNT(*) FROM daemon_units GROUP BY pid"))
    (last,) = units.query("SELECT pid FROM daemon_units ORDER BY id DESC LIMIT 1")[0]
    recycled = [count for pid, count in counts.items() if pid != last]
    assert len(recycled) >= 2 and set(recycled) == {5}  # 5 units, jitter 5 // 10 = 0


def test_quick_recycling_is_no_boot_failure(database_server: dbserver.Server, tmp_path: Path) -> None:
    """Workers that exit 0 after their --max-jobs, however soon, are respawned for ever."""
    log = tmp_path / "worker.log"
    master = start_logging_worker(
        database_server, log, "tests.jobs.quick_unit", "--processes", "1", "--max-jobs", "5"
    )
    wait_for(lambda: log_text(log).count("Started worker") >= 8 or master.poll() is not None)
    assert master.poll() is None, log_text(log)
    code, stderr = stop(master)
    assert code == 0, stderr
    assert "not respawning" not in stderr


def test_a_sighup_storm_kills_no_worker(database_server: dbserver.Server, tmp_path: Path) -> None:
    """SIGHUPs (systemd's ExecReload) while workers are forked: none dies of one.

    The workers are recycled quickly, so that many HUPs reach one just forked.
    """
    log = tmp_path / "worker.log"
    master = start_logging_worker(
        database_server, log, "tests.jobs.quick_unit", "--processes", "2", "--max-jobs", "4"
    )
    wait_for(lambda: log_text(log).count("Started worker") >= 4)
    for _ in range(3000):
        master.send_signal(signal.SIGHUP)
    started = log_text(log).count("Started worker")
    wait_for(lambda: log_text(log).count("Started worker") >= started + 4 or master.poll() is not None)
    code, stderr = stop(master)
    assert code == 0, stderr
    assert "exited with -1 " not in stderr  # -SIGHUP
    assert "not respawning" not in stderr


def test_workers_exit_when_the_master_dies(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    args = ["tests.jobs.record_unit", "--processes", "2", "--interval", "0.01"]
    master = start_logging_worker(database_server, log, *args)
    wait_for(lambda: len(worker_pids(units)) == 2)
    master.kill()
    master.communicate(timeout=10)
    wait_for(lambda: not any(alive(pid) for pid in worker_pids(units)))
    wait_for(lambda: units.sessions() == set())
    assert log_text(log).count("The master process is gone: stopping") == 2
    assert log_text(log).count("the master is gone: only SIGKILL ends them at once") == 2


def test_max_jobs_needs_processes(database_server: dbserver.Server, units: Server) -> None:
    worker = start_worker(database_server, "tests.jobs.record_unit", "--max-jobs", "5")
    _, stderr = worker.communicate(timeout=30)
    assert worker.returncode != 0
    assert "--max-jobs recycles worker processes: it needs --processes." in stderr


def test_daemonize_with_a_locked_pidfile(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    pidfile, log = tmp_path / "worker.pid", tmp_path / "worker.log"
    args = ["tests.jobs.record_unit", "--daemonize", "--pidfile", str(pidfile), "--log-file", str(log)]
    args += ["--processes", "1", "--max-jobs", "3"]  # recycled workers must leave the pidfile alone
    launcher = start_worker(database_server, *args)
    launcher.communicate(timeout=30)
    assert launcher.returncode == 0  # returns at once; the daemon goes on
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit())
    pid = int(pidfile.read_text())
    assert pid != launcher.pid and alive(pid)
    wait_for(lambda: len(worker_pids(units)) >= 3)
    assert pid not in worker_pids(units)
    assert int(pidfile.read_text()) == pid

    second = start_worker(database_server, *args)
    _, stderr = second.communicate(timeout=30)
    assert second.returncode != 0
    assert f"Already running: the pidfile {pidfile} is held by pid {pid}." in stderr

    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pidfile.exists() and not alive(pid))
    assert "units done" in log.read_text()
    assert "started" not in states(units)


def test_a_start_racing_a_detaching_daemon_is_refused_in_its_terminal(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    """The pidfile is locked before detaching, and stays locked.

    strace holds the first daemon in ``setsid()``, in the middle of detaching, while
    a second start runs: the second must fail where its launcher can tell.
    """
    pidfile, log = tmp_path / "worker.pid", tmp_path / "worker.log"
    args = ["tests.jobs.record_unit", "--daemonize", "--pidfile", str(pidfile)]
    first = start_worker(database_server, *args, "--log-file", str(log), python=held_in("setsid", 10))
    try:
        wait_for(log.exists)  # its pidfile checked, its log open: now detaching
        second = start_worker(database_server, *args, "--log-file", str(tmp_path / "second.log"))
        _, stderr = second.communicate(timeout=60)
        assert second.returncode != 0, stderr
        assert f"Already running: the pidfile {pidfile} is held by pid" in stderr
    finally:
        stop_daemons(pidfile, first)
    assert "units done" in log.read_text()


def test_a_reload_once_the_pid_is_written_kills_no_daemon(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    """``kill -HUP $(cat pidfile)`` (logrotate) may come before the daemon's handlers are in place.

    strace holds the daemon for 2 s right after it wrote its pid; SIGHUPs come meanwhile.
    """
    pidfile = tmp_path / "worker.pid"
    daemon = start_worker(
        database_server, "tests.jobs.record_unit", "--pidfile", str(pidfile), python=held_in("pwrite64", 2)
    )
    try:
        wait_for(lambda: log_text(pidfile).strip().isdigit())
        pid = int(pidfile.read_text())
        deadline = time.monotonic() + 60
        while states(units).get("done", 0) < 1 and alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
        assert states(units).get("done", 0) >= 1
    finally:
        stderr = stop_daemons(pidfile, daemon)
    assert daemon.returncode == 0, stderr


def held_in(syscall: str, seconds: int) -> list[str]:
    """A command that runs Python under strace, held ``seconds`` on returning from ``syscall``."""
    strace = ["strace", "-f", "-qq", "-o", "/dev/null", "--seccomp-bpf", "-e", f"trace={syscall}"]
    return [*strace, "-e", f"inject={syscall}:delay_exit={seconds * 1_000_000}", sys.executable]


def stop_daemons(pidfile: Path, strace: subprocess.Popen[str]) -> str:
    """Stop each daemon that holds ``pidfile`` until strace, which lives as long as them, ends.

    What strace's command wrote to stderr.
    """
    stopped: set[str] = set()

    def ended() -> bool:
        pid = log_text(pidfile).strip()
        if pid.isdigit() and pid not in stopped:  # once: a second SIGTERM cuts it short
            os.kill(int(pid), signal.SIGTERM)
            stopped.add(pid)
        return strace.poll() is not None

    try:
        wait_for(ended, timeout=60)
    finally:
        if strace.poll() is None:  # a daemon that did not stop is killed, not left behind
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        _, stderr = strace.communicate(timeout=30)
    return stderr


@pytest.mark.parametrize("processes", [0, 2])
def test_sighup_reopens_the_log_file(
    database_server: dbserver.Server, units: Server, tmp_path: Path, processes: int
) -> None:
    """In every process: the master forwards SIGHUP to its workers.

    SIGTERM follows at once: a reopen still pending when a worker stops is done
    before its last lines.
    """
    log = tmp_path / "worker.log"
    args = ["--processes", str(processes)] if processes else []
    worker = start_logging_worker(database_server, log, "tests.jobs.record_unit", *args)
    wait_for(lambda: states(units).get("done", 0) >= 1)
    log.rename(tmp_path / "worker.log.1")  # what logrotate does
    worker.send_signal(signal.SIGHUP)
    wait_for(log.exists)
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert log.read_text().count(" stopped after ") == max(processes, 1)  # each worker's summary


@pytest.mark.parametrize("processes", [0, 2])
def test_a_log_that_cannot_be_reopened_is_kept(
    database_server: dbserver.Server, units: Server, tmp_path: Path, processes: int
) -> None:
    """SIGHUP once the log's directory is gone: a warning, and every process goes on."""
    logs = tmp_path / "logs"
    logs.mkdir()
    args = ["--processes", str(processes)] if processes else []
    worker = start_logging_worker(database_server, logs / "worker.log", "tests.jobs.record_unit", *args)
    wait_for(lambda: states(units).get("done", 0) >= 1)
    logs.rename(tmp_path / "gone")
    old = tmp_path / "gone" / "worker.log"
    worker.send_signal(signal.SIGHUP)
    warning = f"Cannot open the log file {logs / 'worker.log'}: No such file or directory. Still writing"
    wait_for(lambda: log_text(old).count(warning) == 1 + processes or worker.poll() is not None)
    done = states(units).get("done", 0)
    wait_for(lambda: states(units).get("done", 0) >= done + 5 or worker.poll() is not None)
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert "started" not in states(units)
    assert log_text(old).count(" stopped after ") == max(processes, 1)


def test_a_reopened_log_keeps_the_operators_umask(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    pidfile, log = tmp_path / "worker.pid", tmp_path / "worker.log"
    args = ["tests.jobs.record_unit", "--daemonize", "--pidfile", str(pidfile), "--log-file", str(log)]
    launcher = start_worker(database_server, *args, umask=0o077)
    launcher.communicate(timeout=30)
    wait_for(lambda: log_text(pidfile).strip().isdigit())
    pid = int(pidfile.read_text())
    log.rename(tmp_path / "worker.log.1")
    os.kill(pid, signal.SIGHUP)
    wait_for(log.exists)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid))
    assert stat.S_IMODE((tmp_path / "worker.log.1").stat().st_mode) == 0o600
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_systemd_notifications(database_server: dbserver.Server, units: Server, tmp_path: Path) -> None:
    import socket

    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        systemd.settimeout(30)
        os.environ.update(NOTIFY_SOCKET=address, WATCHDOG_USEC="500000")
        try:
            master = start_worker(database_server, "tests.jobs.record_unit", "--processes", "1")
        finally:
            del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
        assert systemd.recv(64) == b"READY=1"
        assert systemd.recv(64) == b"WATCHDOG=1"
        code, stderr = stop(master)
        received = []
        systemd.settimeout(0)
        while True:
            try:
                received.append(systemd.recv(64))
            except BlockingIOError:
                break
    assert code == 0, stderr
    assert b"STOPPING=1" in received
    assert set(received) <= {b"WATCHDOG=1", b"STOPPING=1"}  # the master alone speaks to systemd


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--log-file", "Cannot open the log file /nonexistent/x.log"),
        ("--pidfile", "Cannot open the pidfile /nonexistent/x.pid"),
    ],
)
def test_unwritable_files_are_a_clear_error_before_starting(
    database_server: dbserver.Server, units: Server, option: str, expected: str
) -> None:
    path = "/nonexistent/x.log" if option == "--log-file" else "/nonexistent/x.pid"
    worker = start_worker(database_server, "tests.jobs.record_unit", "--processes", "2", option, path)
    _, stderr = worker.communicate(timeout=30)
    assert worker.returncode != 0
    assert expected in stderr
    assert states(units) == {}


@pytest.mark.parametrize("processes", ["0", "2"])
@pytest.mark.parametrize(
    ("hook", "error"),
    [
        ("worker_started", "RuntimeError: this worker thread cannot start"),
        ("worker_process_started", "RuntimeError: this worker process cannot start"),
    ],
)
def test_workers_failing_at_boot_stop_the_daemon(
    database_server: dbserver.Server, units: Server, processes: str, hook: str, error: str
) -> None:
    worker = start_worker(
        database_server, "--processes", processes, "--failing-hook", hook, command="broken_worker"
    )
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 3
    assert error in stderr
    if processes != "0":
        assert "failed at boot (exit 3); not respawning" in stderr
        assert stderr.count("Started worker") == 2  # no respawning


@pytest.mark.parametrize("processes", [0, 2])
def test_worker_process_started_runs_once_in_each_worker_process(
    database_server: dbserver.Server, units: Server, processes: int
) -> None:
    # A budget of one: the thread works only if the hook gave its connection back.
    options = ("--processes", str(processes), "--threads", "1", "--budget", "1")
    worker = start_worker(database_server, *options, command="hooked_worker")
    wait_for(lambda: len(pids_with_state(units, "done")) == max(processes, 1))
    code, stderr = stop(worker)
    assert code == 0, stderr
    started = units.query("SELECT pid FROM daemon_units WHERE state = 'booted'")
    assert sorted(pid for (pid,) in started) == sorted(pids_with_state(units, "done"))  # once in each
    assert (worker.pid in pids_with_state(units, "booted")) == (processes == 0)
    assert units.sessions() == set()


def pids_with_state(server: Server, state: str) -> set[int]:
    return {pid for (pid,) in server.query("SELECT DISTINCT pid FROM daemon_units WHERE state = %s", state)}


def test_a_stale_pidfile_is_taken_over(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    pidfile = tmp_path / "worker.pid"
    pidfile.write_text("999999\n")  # left by a process that died without removing it
    worker = start_worker(database_server, "tests.jobs.record_unit", "--pidfile", str(pidfile))
    wait_for(lambda: pidfile.read_text().strip() == str(worker.pid))
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert f"Taking over the pidfile {pidfile}, left by pid 999999, which is gone" in stderr
    assert not pidfile.exists()


def test_a_worker_killed_mid_job_leaves_it_to_another_exactly_once(
    database_server: dbserver.Server, units: Server
) -> None:
    units.query("DROP TABLE IF EXISTS queue_jobs, queue_claims, queue_completions")
    units.query(
        "CREATE TABLE queue_jobs (id INT PRIMARY KEY, done BOOL NOT NULL DEFAULT FALSE) ENGINE=InnoDB"
    )
    units.query("CREATE TABLE queue_claims (job INT, pid INT) ENGINE=MyISAM")  # no rollback undoes a claim
    units.query("CREATE TABLE queue_completions (job INT PRIMARY KEY, pid INT) ENGINE=InnoDB")
    units.query("INSERT INTO queue_jobs (id) VALUES " + ", ".join(f"({n})" for n in range(1, 11)))
    master = start_worker(
        database_server, "tests.jobs.claim_slowly", "--processes", "2", "--interval", "0.05"
    )
    try:
        in_flight: list[tuple[int, int]] = []

        def a_job_in_flight() -> bool:
            rows = units.query(
                "SELECT c.job, c.pid FROM queue_claims c LEFT JOIN queue_completions d ON d.job = c.job "
                "WHERE d.job IS NULL"
            )
            in_flight[:] = rows
            return bool(rows)

        wait_for(a_job_in_flight)
        job, victim = in_flight[0]
        os.kill(victim, signal.SIGKILL)  # in the middle of the job's transaction
        wait_for(lambda: units.query("SELECT COUNT(*) FROM queue_completions")[0][0] == 10)
    finally:
        code, stderr = stop(master)
    assert code == 0, stderr
    completions = dict(units.query("SELECT job, pid FROM queue_completions"))
    assert sorted(completions) == list(range(1, 11))  # every job exactly once (primary key)
    assert completions[job] != victim  # done by another worker, after the server rolled back
    claims = [pid for (pid,) in units.query("SELECT pid FROM queue_claims WHERE job = %s", job)]
    assert victim in claims and len(claims) == 2
