"""The harness itself: the processes the tests start leave the tests' servers alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from tests.dbserver import Server
from tests.processes import start_process

# A process as the daemon, web and Celery tests start one: Django set up from
# settings that import tests.dbserver, a query, then a normal exit (atexit
# handlers run) once the test sends SIGUSR1.
_TEST_PROCESS = """
import os, signal, django
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
connection.close()
print(os.getpid(), flush=True)
signal.sigwait({signal.SIGUSR1})
"""


@pytest.mark.django_db
def test_a_process_of_the_tests_exiting_kills_no_server(database_server: Server) -> None:
    """A bystander whose ``mirakuru_uuid`` contains the exiting process's pid lives on.

    mirakuru's exit handler would SIGKILL it (see tests/dbserver.py): that is how
    the tests' MariaDB, whose variable is pytest's pid and a uuid4, died mid-run.
    """
    test_process = [sys.executable, "-c", _TEST_PROCESS]
    with start_process(database_server, test_process, settings="tests.daemon_settings") as process:
        pid = int(process.stdout.readline())  # type: ignore[union-attr]
        bystander = subprocess.Popen(
            ["sleep", "600"], env={**os.environ, "mirakuru_uuid": f"{os.getpid()}:{pid}{uuid.uuid4()}"}
        )
        with bystander:
            try:
                process.send_signal(signal.SIGUSR1)
                assert process.wait(timeout=60) == 0, process.stderr.read()  # type: ignore[union-attr]
            finally:
                # A SIGKILL already sent takes precedence: the bystander is dying,
                # and Linux drops the later SIGTERM.
                bystander.terminate()
    assert bystander.returncode == -signal.SIGTERM, "the exiting test process SIGKILLed the bystander"
