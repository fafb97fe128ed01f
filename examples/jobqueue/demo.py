"""``make demo``: the job queue, end to end, with pooled and budgeted connections.

Starts a throwaway MariaDB (unless DEMO_DB_HOST names a server), migrates,
enqueues 2,000 jobs, works them with 2 processes x 4 threads under a budget of 3
connections each while showing progress, checks that every job was done exactly
once, and prints a summary with the peak number of connections the server saw.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import MySQLdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from tests.dbserver import Server, throwaway_server  # noqa: E402

JOBS = 2000
PROCESSES, THREADS, BUDGET = 2, 4, 3
DATABASE = os.environ.get("DEMO_DB_NAME", "mysqlpool_demo")
MARK = "made_by_mysqlpool_demo"  # the table that tells a database the demo made


@contextlib.contextmanager
def database_server() -> Iterator[Server]:
    if os.environ.get("DEMO_DB_HOST"):
        yield Server(
            host=os.environ["DEMO_DB_HOST"],
            port=int(os.environ.get("DEMO_DB_PORT") or 3306),
            user=os.environ.get("DEMO_DB_USER") or "root",
            password=os.environ.get("DEMO_DB_PASSWORD", ""),
        )
        return
    print("Starting a throwaway MariaDB server (set DEMO_DB_HOST to use your own)...")
    with throwaway_server() as server:
        yield server


class Watcher:
    """A connection outside the pools, to follow the work and count the server's sessions."""

    def __init__(self, server: Server) -> None:
        self.conn = MySQLdb.connect(
            host=server.host, port=server.port, user=server.user, password=server.password, autocommit=True
        )

    def execute(self, sql: str) -> None:
        with self.conn.cursor() as cursor:
            cursor.execute(sql)

    def value(self, sql: str, *args: object) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, args or None)
            return int(cursor.fetchone()[0])

    def tables(self) -> set[str]:
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [DATABASE]
            )
            return {name for (name,) in cursor.fetchall()}

    def sessions(self) -> int:
        # SHOW PROCESSLIST, not information_schema.processlist, which writes a
        # temporary table to disk for every query (this one is sampled in a loop).
        own = self.conn.thread_id()
        with self.conn.cursor() as cursor:
            cursor.execute("SHOW PROCESSLIST")
            return sum(1 for row in cursor.fetchall() if row[3] == DATABASE and row[0] != own)

    def done(self) -> int:
        return self.value(f"SELECT COUNT(*) FROM `{DATABASE}`.jobs_completion")


def claim_database(watcher: Watcher) -> None:
    """Create the demo's database, or make sure that the one there is the demo's.

    Each run empties the tables of its ``jobs`` app: a database of yours with an app
    of that name would lose its rows. So the demo works only in a database it made
    (its mark: the empty table MARK) or in one without tables.
    """
    watcher.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}` CHARACTER SET utf8mb4")
    tables = watcher.tables()
    if tables and MARK not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise SystemExit(
            f"The database {DATABASE!r} holds tables that the demo did not make ({shown}), and the "
            "demo empties its own jobs tables at each run: set DEMO_DB_NAME to a database of its "
            "own, or drop this one if an earlier version of the demo made it."
        )
    watcher.execute(f"CREATE TABLE IF NOT EXISTS `{DATABASE}`.`{MARK}` (id INT PRIMARY KEY)")


@dataclass
class Run:
    """What one run of the queue did, as the server saw it."""

    jobs: int
    done: int
    exactly_once: bool
    pending: int
    worker_pids: int
    seconds: float
    peak: int
    returncode: int
    log: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.done == self.jobs and self.exactly_once and self.pending == 0


def environment(server: Server, **extra: str) -> dict[str, str]:
    """What manage.py of the example needs to reach ``server``."""
    return {
        **os.environ,
        "DEMO_DB_HOST": server.host,
        "DEMO_DB_PORT": str(server.port),
        "DEMO_DB_USER": server.user,
        "DEMO_DB_PASSWORD": server.password,
        "DEMO_DB_NAME": DATABASE,
        "DJANGO_SETTINGS_MODULE": "jobqueue.settings",
        **extra,
    }


def run_queue(server: Server, jobs: int, worker_args: list[str], env: dict[str, str], show: bool) -> Run:
    """Enqueue ``jobs``, work them with run_pooled_worker ``worker_args``, and check the result."""
    watcher = Watcher(server)
    claim_database(watcher)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=HERE, env=env, check=True)
    watcher.execute(f"DELETE FROM `{DATABASE}`.jobs_completion")
    watcher.execute(f"DELETE FROM `{DATABASE}`.jobs_job")
    subprocess.run(
        [sys.executable, "manage.py", "enqueue", str(jobs)],
        cwd=HERE,
        env=env,
        check=True,
        capture_output=not show,
    )
    command = [
        "manage.py",
        "run_pooled_worker",
        "jobs.handlers.process_one",
        "--interval",
        "0.05",
        *worker_args,
    ]
    if show:
        print(f"Working them: {' '.join(command[1:])}")
    started = time.monotonic()
    worker_env = {**env, "DEMO_LOG_LEVEL": "INFO"}  # for the workers' summaries
    worker = subprocess.Popen(
        [sys.executable, *command], cwd=HERE, env=worker_env, stderr=subprocess.PIPE, text=True
    )
    peak, done, shown = 0, 0, 0.0
    while done < jobs and worker.poll() is None and time.monotonic() - started < 300:
        peak = max(peak, watcher.sessions())
        done = watcher.done()
        if show and time.monotonic() - shown >= 0.5:
            shown = time.monotonic()
            print(f"  {done:5d}/{jobs} jobs done, {watcher.sessions()} server connections", flush=True)
        time.sleep(0.05)  # the sampling period of the peak
    seconds = time.monotonic() - started
    worker.send_signal(signal.SIGTERM)
    _, log = worker.communicate(timeout=60)
    return Run(
        jobs=jobs,
        done=watcher.done(),
        exactly_once=watcher.value(f"SELECT COUNT(DISTINCT job_id) FROM `{DATABASE}`.jobs_completion")
        == jobs,
        pending=watcher.value(f"SELECT COUNT(*) FROM `{DATABASE}`.jobs_job WHERE NOT done"),
        worker_pids=watcher.value(f"SELECT COUNT(DISTINCT worker_pid) FROM `{DATABASE}`.jobs_completion"),
        seconds=seconds,
        peak=peak,
        returncode=worker.returncode,
        log=log,
    )


def main() -> int:
    worker_args = ["--processes", str(PROCESSES), "--threads", str(THREADS), "--budget", str(BUDGET)]
    with database_server() as server:
        run = run_queue(server, JOBS, worker_args, environment(server), show=True)
    rows = [
        ("jobs", f"{run.done} of {JOBS}, each done exactly once: {'yes' if run.exactly_once else 'NO'}"),
        ("seconds", f"{run.seconds:.1f}"),
        ("jobs/s", f"{run.done / run.seconds:.0f}"),
        (
            "workers",
            f"{PROCESSES} processes x {THREADS} threads, budget {BUDGET} each; {run.worker_pids} did jobs",
        ),
        ("peak connections", f"{run.peak} on the server (at most {PROCESSES * BUDGET} allowed)"),
        ("worker exit status", str(run.returncode)),
    ]
    print("\nSummary")
    for name, value in rows:
        print(f"  {name:<19} {value}")
    print("Pool statistics, as each worker process reported when it stopped:")
    for line in run.log.splitlines():
        if " stopped after " in line:
            print("  " + line.split(" INFO ", 1)[-1])
    if not run.ok:
        print("\nThe demo FAILED: see above.\n" + run.log[-3000:], file=sys.stderr)
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
