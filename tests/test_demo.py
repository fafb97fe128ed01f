"""``make demo``'s script against the run's server: every job done exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import MySQLdb

from tests import dbserver

DEMO = Path(__file__).resolve().parent.parent / "examples" / "jobqueue" / "demo.py"


def test_the_demo_does_every_job_exactly_once_within_its_budget(database_server: dbserver.Server) -> None:
    env = {
        **os.environ,
        "DEMO_DB_HOST": database_server.host,
        "DEMO_DB_PORT": str(database_server.port),
        "DEMO_DB_USER": database_server.user,
        "DEMO_DB_PASSWORD": database_server.password,
        "DEMO_DB_NAME": "mysqlpool_demo_test",
    }
    try:
        result = subprocess.run(
            [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        admin = MySQLdb.connect(
            host=database_server.host,
            port=database_server.port,
            user=database_server.user,
            password=database_server.password,
        )
        with admin, admin.cursor() as cursor:
            cursor.execute("DROP DATABASE IF EXISTS mysqlpool_demo_test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2000 of 2000, each done exactly once: yes" in result.stdout
    assert "(at most 6 allowed)" in result.stdout
    peak = int(result.stdout.split("peak connections")[1].split()[0])
    assert 1 <= peak <= 6
