"""No password in anything a whole run shows: every log line, statistic, repr and error.

A worker daemon (2 processes under a master) runs at DEBUG, with SQLAlchemy's pool
logging too, through every path that logs or raises: pools created, connections
opened, checked out, held too long, killed under a query and invalidated, the
budget exceeded (the error names every holder), a connect refused; then SIGHUP and
SIGTERM, with their summary lines. mysqlpool_status and the system checks run
beside it. Everything they print is searched for the password.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

from tests import dbserver
from tests.conftest import Server
from tests.test_daemon import ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

USER = "secretuser"
PASSWORD = "Tr0ub4dor&3-pooled-SECRET"


@pytest.fixture
def secret_user(server: Server) -> Iterator[None]:
    server.query(f"CREATE USER IF NOT EXISTS '{USER}'@'%%' IDENTIFIED BY %s", PASSWORD)
    server.query(f"GRANT ALL ON `{server.database}`.* TO '{USER}'@'%'")
    yield
    server.query(f"DROP USER '{USER}'@'%'")


def environment(database_server: dbserver.Server) -> dict[str, str]:
    return {
        **os.environ,
        **database_server.environ(),
        dbserver.ENV_USER: USER,
        dbserver.ENV_PASSWORD: PASSWORD,
        "MYSQLPOOL_TEST_DATABASE": connections["default"].settings_dict["NAME"],
        "DJANGO_SETTINGS_MODULE": "tests.secrets_settings",
        "PYTHONPATH": str(ROOT),
    }


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "django", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr


@pytest.mark.usefixtures("secret_user")
def test_a_whole_run_never_shows_the_password(database_server: dbserver.Server, tmp_path: Path) -> None:
    env = environment(database_server)
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "django", "run_pooled_worker", "tests.jobs.every_path_once"]
        + ["--processes", "2", "--budget", "1", "--log-file", str(log)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: log.exists() and log.read_text().count("Access denied") >= 2, timeout=60)
        status = manage(env, "mysqlpool_status") + manage(env, "mysqlpool_status", "--json")
        checks = manage(env, "check", "--database", "default")
        worker.send_signal(signal.SIGHUP)
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=60)
    finally:
        worker.kill()
    shown = "\n".join([stdout, stderr, log.read_text(), status, checks])
    # Every path ran, and said so with the user's name...
    for evidence in (
        f"'user': '{USER}'",  # the pool's creation
        "held longer than 0.2s",
        "ConnectionBudgetExceeded",
        "Connection was killed",
        "Invalidated a connection",
        f"Access denied for user '{USER}'",
        "units done",
        "checked out",  # SQLAlchemy's pool at DEBUG
    ):
        assert evidence in shown, evidence
    # ...never with the password.
    assert PASSWORD not in shown
