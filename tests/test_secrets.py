"""No password in anything a whole run shows: every log line, statistic, repr and error.

A worker daemon (2 processes under a master) runs at DEBUG, with SQLAlchemy's pool
logging too, through every path that logs or raises: pools created, connections
opened, checked out, held too long, killed under a query and invalidated, the
budget exceeded (the error names every holder), a connect refused; then SIGHUP and
SIGTERM, with their summary lines. mysqlpool_status and the system checks run
beside it. Everything they print is searched for the password; so are, in this
process, the pool's log, its figures and Django's error reports.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.views.debug import ExceptionReporter
from port_for import get_port

from mysqlpool import get_stats
from tests import dbserver
from tests.helpers import Server, connection_id
from tests.processes import start_command, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

USER = "secretuser"
PASSWORD = "Tr0ub4dor&3-pooled-SECRET"


@pytest.fixture
def secret_user(server: Server) -> Iterator[None]:
    server.query(f"CREATE USER IF NOT EXISTS '{USER}'@'%%' IDENTIFIED BY %s", PASSWORD)
    server.query(f"GRANT ALL ON `{server.database}`.* TO '{USER}'@'%'")
    yield
    server.query(f"DROP USER '{USER}'@'%'")


def start(database_server: dbserver.Server, *args: str) -> subprocess.Popen[str]:
    """``manage.py ARGS`` as the user with the secret password."""
    secret_user = {dbserver.ENV_USER: USER, dbserver.ENV_PASSWORD: PASSWORD}
    return start_command(database_server, *args, settings="tests.secrets_settings", **secret_user)


def manage(database_server: dbserver.Server, *args: str) -> str:
    stdout, stderr = start(database_server, *args).communicate(timeout=60)
    return stdout + stderr


@pytest.mark.usefixtures("secret_user")
def test_a_whole_run_never_shows_the_password(database_server: dbserver.Server, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    port = str(get_port(None))
    metrics = f"http://127.0.0.1:{port}"
    worker = start(
        database_server,
        "run_pooled_worker",
        "tests.jobs.every_path_once",
        *("--processes", "2", "--budget", "1", "--log-file", str(log), "--metrics-port", port),
    )
    try:
        wait_for(lambda: log.exists() and log.read_text().count("Access denied") >= 2, timeout=60)
        status = manage(database_server, "mysqlpool_status") + manage(
            database_server, "mysqlpool_status", "--json"
        )
        status += manage(database_server, "mysqlpool_status", "--url", metrics)
        with urllib.request.urlopen(f"{metrics}/metrics", timeout=10) as response:
            scraped = response.read().decode()
        checks = manage(database_server, "check", "--database", "default")
        worker.send_signal(signal.SIGHUP)
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=60)
    finally:
        worker.kill()
    shown = "\n".join([stdout, stderr, log.read_text(), status, checks, scraped])
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
        'db_client_connection_count{pid="',  # the workers' metrics
        "default: live figures",  # mysqlpool_status --url
    ):
        assert evidence in shown, evidence
    # ...never with the password, nor the metrics with a query.
    assert PASSWORD not in shown
    assert "SLEEP" not in scraped and "SELECT" not in scraped


@pytest.mark.usefixtures("secret_user")
@pytest.mark.parametrize("failing", ["connect", "pool creation"])
def test_error_reports_never_show_the_password_in_local_variables(make_wrapper: Any, failing: str) -> None:
    """Django's error reports (admin mails, DEBUG=False) show each frame's variables, cleansed."""
    if failing == "connect":
        wrapper = make_wrapper(USER=USER, PASSWORD=f"{PASSWORD}-wrong")
    else:
        wrapper = make_wrapper(USER=USER, PASSWORD=PASSWORD, pool={"pool_sise": 1})
    with pytest.raises((OperationalError, ImproperlyConfigured)) as error:
        connection_id(wrapper)
    reporter = ExceptionReporter(None, error.type, error.value, error.tb)
    frames = reporter.get_traceback_frames()
    shown = repr([(frame["function"], frame["vars"]) for frame in frames])
    assert any(frame["function"] == "__init__" and "MySQLdb" in frame["filename"] for frame in frames) == (
        failing == "connect"
    )
    assert PASSWORD not in shown


def test_the_password_is_never_shown(
    make_wrapper: Any, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    password = "S3cret-pooled-Passw0rd"
    server.query("CREATE USER IF NOT EXISTS 'pooluser'@'%%' IDENTIFIED BY %s", password)
    server.query(f"GRANT ALL ON `{server.database}`.* TO 'pooluser'@'%'")
    caplog.set_level(logging.DEBUG)
    wrapper = make_wrapper(USER="pooluser", PASSWORD=password, pool={"echo": "debug"})
    try:
        connection_id(wrapper)
        wrapper.close()
        shown = [repr(wrapper.pool), str(get_stats()), caplog.text]
        bad = make_wrapper(USER="pooluser", PASSWORD=password + "-wrong")
        with pytest.raises(OperationalError) as error:
            bad.ensure_connection()
        shown += [str(error.value), repr(error.value), caplog.text]
    finally:
        server.query("DROP USER 'pooluser'@'%'")
    assert "pooluser" in caplog.text  # the log does say who connects...
    assert all(password not in text for text in shown)  # ...never with what
