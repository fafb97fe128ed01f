"""``make demo``'s script against the run's server: every job done exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import MySQLdb

from tests import dbserver

DEMO = Path(__file__).resolve().parent.parent / "examples" / "jobqueue" / "demo.py"


def demo_environment(database_server: dbserver.Server, name: str) -> dict[str, str]:
    return {
        **os.environ,
        "DEMO_DB_HOST": database_server.host,
        "DEMO_DB_PORT": str(database_server.port),
        "DEMO_DB_USER": database_server.user,
        "DEMO_DB_PASSWORD": database_server.password,
        "DEMO_DB_NAME": name,
    }


def test_the_demo_does_every_job_exactly_once_within_its_budget(database_server: dbserver.Server) -> None:
    env = demo_environment(database_server, "mysqlpool_demo_test")
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


def test_the_demo_leaves_a_database_it_did_not_make_alone(database_server: dbserver.Server) -> None:
    """It empties its ``jobs`` app's tables: a project's own ``jobs_job`` must not lose its rows."""
    admin = MySQLdb.connect(
        host=database_server.host,
        port=database_server.port,
        user=database_server.user,
        password=database_server.password,
        autocommit=True,
    )
    with admin, admin.cursor() as cursor:
        cursor.execute("CREATE DATABASE mysqlpool_demo_yours")
        try:
            cursor.execute("CREATE TABLE mysqlpool_demo_yours.jobs_job (id INT PRIMARY KEY)")
            cursor.execute("INSERT INTO mysqlpool_demo_yours.jobs_job VALUES (1), (2)")
            result = subprocess.run(
                [sys.executable, str(DEMO)],
                env=demo_environment(database_server, "mysqlpool_demo_yours"),
                capture_output=True,
                text=True,
                timeout=300,
            )
            cursor.execute("SELECT COUNT(*) FROM mysqlpool_demo_yours.jobs_job")
            assert cursor.fetchone() == (2,)
        finally:
            cursor.execute("DROP DATABASE mysqlpool_demo_yours")
    assert result.returncode == 1
    assert (
        "The database 'mysqlpool_demo_yours' holds tables that the demo did not make (jobs_job), "
        "and the demo empties its own jobs tables at each run: set DEMO_DB_NAME to a database of its own"
    ) in result.stderr
