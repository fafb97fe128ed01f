"""Forking never hurts the parent's connections, whoever forks and however the child ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from tests import dbserver
from tests.helpers import Server

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = Path(__file__).with_name("fork_scenarios.py")


def run(scenario: str, database_server: dbserver.Server) -> dict[str, Any]:
    """Run a scenario in a process of its own, on the test database."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), scenario, connections["default"].settings_dict["NAME"]],
        env={**os.environ, **database_server.environ()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # A child never acts on what it inherited, not even to return it.
    assert "was never returned" not in result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_threads_keep_working_while_the_main_thread_forks(
    database_server: dbserver.Server, server: Server
) -> None:
    report = run("threads_while_forking", database_server)
    children = report["children"]
    assert [child["exit_code"] for child in children] == [0] * 20
    assert all("result" in child for child in children), children
    assert report["parent_errors"] == []
    assert report["parent_cycles"] > 0
    # No parent connection was killed by a child: none was replaced...
    pool = report["pool"]
    assert pool["invalidations"] == 0
    assert pool["connects"] == len(report["parent_ids"])
    # ...and the server still lists every session the parent used.
    assert report["listed_by_server"] == report["parent_ids"]
    # ...and each child used a connection of its own.
    assert not {child["result"] for child in children} & set(report["parent_ids"])


def test_a_childs_new_socket_never_receives_its_sql(database_server: dbserver.Server) -> None:
    report = run("crosstalk", database_server)
    child = report["child"]
    assert child["exit_code"] == 0 and "result" in child, child
    child_id = child["result"]["child_id"]
    assert report["received"] == f"child-hello|{child_id}"
    assert child_id != report["held"]
    assert report["after"] == report["held"]  # the parent's session survived


def test_multiprocessing_fork_pool(database_server: dbserver.Server) -> None:
    report = run("multiprocessing_pool", database_server)
    assert len(report["child_ids"]) == 9
    assert report["held"] not in report["child_ids"]
    assert report["after"] == report["held"]


def test_grandchildren(database_server: dbserver.Server) -> None:
    report = run("grandchildren", database_server)
    child = report["child"]
    assert child["exit_code"] == 0, child
    family = child["result"]
    grandchild = family["grandchild"]
    assert grandchild["exit_code"] == 0 and "result" in grandchild, grandchild
    assert len({report["held"], family["own"], grandchild["result"]}) == 3
    assert family["own_after"] == family["own"]  # the grandchild did not hurt the child
    assert report["after"] == report["held"]


def test_fork_inside_atomic_leaves_the_parents_transaction_alone(database_server: dbserver.Server) -> None:
    report = run("fork_inside_atomic", database_server)
    assert report["child"] == {"result": {"inside": "TransactionManagementError"}, "exit_code": 0}
    assert report["still"] == report["held"]
    assert report["rows"] == ["parent"]  # committed by the parent alone


def test_the_child_of_a_fork_inside_atomic_queries_once_out_of_the_block(
    database_server: dbserver.Server,
) -> None:
    report = run("block_then_leave", database_server)
    assert report["child"]["exit_code"] == 0
    assert report["child"]["result"] != report["held"]
    assert report["after"] == report["held"]


def test_a_child_starts_with_its_own_empty_budget(database_server: dbserver.Server) -> None:
    report = run("budget_of_the_child", database_server)
    child = report["child"]
    assert child["exit_code"] == 0 and "result" in child, child
    assert child["result"] != report["held"]
    assert report["after"] == report["held"]


def test_python_daemon_closing_every_descriptor_never_causes_crosstalk(
    database_server: dbserver.Server,
) -> None:
    report = run("python_daemon", database_server)
    hello, _, daemon_id = report["received"].partition("|")
    assert hello == "daemon-hello"
    assert int(daemon_id) != report["held"]
    assert report["after"] == report["held"]
