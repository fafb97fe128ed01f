"""System checks: each id raised where it should be, and silent where it should not."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.db import connections
from django.test import override_settings

from mysqlpool import get_stats
from tests import dbserver
from tests.helpers import Server
from tests.processes import ROOT, start_command

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"]),
    # The checks only read settings.DATABASES; no connection sees the override.
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES:UserWarning"),
]


def ids(**kwargs: Any) -> list[str]:
    return sorted(
        message.id for message in run_checks(**kwargs) if message.id and message.id.startswith("mysqlpool")
    )


def databases_with(alias: str = "other", **changes: Any) -> dict[str, Any]:
    databases = copy.deepcopy(settings.DATABASES)
    databases[alias].update(changes)
    return databases


def test_the_test_settings_pass_every_check() -> None:
    assert ids() == []
    assert ids(databases=["default", "other"]) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"OPTIONS": {"pool": {"pool_sise": 3}}}, ["mysqlpool.E001"]),
        ({"OPTIONS": ["pool"]}, ["mysqlpool.E001"]),
        ({"OPTIONS": {"pool": {"backend": "StaticPool"}}}, ["mysqlpool.E001"]),
        ({"OPTIONS": {"pool": {"timeout": -1}}}, ["mysqlpool.E001"]),
        ({"OPTIONS": {"pool": {"keepalive": 0}}}, ["mysqlpool.E001"]),
        ({"CONN_MAX_AGE": 600}, ["mysqlpool.E002"]),
        ({"OPTIONS": {"pool": {"use_threadlocal": False}}}, ["mysqlpool.W001"]),
        ({"OPTIONS": {"pool": {"reset_on_return": None}}}, ["mysqlpool.W005"]),
        ({"OPTIONS": {"pool": {"reset_on_return": False}}}, ["mysqlpool.W005"]),
        ({"OPTIONS": {"pool": {"reset_on_return": "commit"}}}, ["mysqlpool.W005"]),
        ({"OPTIONS": {"pool": {"reset_on_return": "session"}}}, []),
        ({"OPTIONS": {"pool": {"reset_on_return": True}}}, []),
        ({"OPTIONS": {"pool": {"reset_on_return": None, "backend": "NullPool"}}}, []),
    ],
)
def test_alias_settings(changes: dict[str, Any], expected: list[str]) -> None:
    with override_settings(DATABASES=databases_with(**changes)):
        assert ids() == expected


@pytest.mark.parametrize(
    ("pool", "budget", "expected"),
    [
        ({"pool_size": 10**9, "max_overflow": -1}, None, ["mysqlpool.W006"]),
        ({"pool_size": 0}, None, ["mysqlpool.W006"]),
        ({"pool_size": 10**9, "max_overflow": -1}, 8, []),
        ({"pool_size": 10, "max_overflow": 0}, None, []),
        ({"backend": "NullPool"}, None, []),
    ],
)
def test_a_pool_without_a_bound_needs_a_budget(
    pool: dict[str, Any], budget: int | None, expected: list[str]
) -> None:
    with override_settings(DATABASES=databases_with(OPTIONS={"pool": pool}), MYSQLPOOL_BUDGET=budget):
        assert ids() == expected


def test_the_message_names_the_setting_and_the_hint_the_fix() -> None:
    with override_settings(DATABASES=databases_with(CONN_MAX_AGE=600)):
        (message,) = [m for m in run_checks() if m.id == "mysqlpool.E002"]
    assert "DATABASES['other']['CONN_MAX_AGE'] is 600" in message.msg
    assert message.hint.startswith("Set CONN_MAX_AGE to 0.")


@pytest.mark.parametrize(
    ("budget", "expected"),
    [(0, ["mysqlpool.E003"]), ("8", ["mysqlpool.E003"]), (1, ["mysqlpool.W002"]), (2, [])],
)
def test_budget(budget: Any, expected: list[str]) -> None:
    with override_settings(MYSQLPOOL_BUDGET=budget):
        assert ids() == expected


@pytest.mark.parametrize(
    ("seconds", "expected"), [(0, ["mysqlpool.E004"]), ("5", ["mysqlpool.E004"]), (2.5, [])]
)
def test_hold_warning(seconds: Any, expected: list[str]) -> None:
    with override_settings(MYSQLPOOL_HOLD_WARNING=seconds):
        assert ids() == expected


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("MYSQLPOOL_BUGDET", "Did you mean MYSQLPOOL_BUDGET?"),
        ("MYSQLPOOL_ARGUMENT", "Did you mean MYSQLPOOL_ARGUMENTS?"),
        ("MYSQLPOOL_POOL_SIZE", "mysqlpool's settings: MYSQLPOOL_BACKEND, MYSQLPOOL_ARGUMENTS, "),
    ],
)
def test_a_misspelt_setting_is_named_with_the_closest(name: str, hint: str) -> None:
    with override_settings(**{name: 2}):
        messages = [message for message in run_checks() if message.id == "mysqlpool.W007"]
    assert [message.msg for message in messages] == [
        f"The setting {name} is not one of mysqlpool's: it has no effect."
    ]
    assert hint in messages[0].hint


def test_plain_aliases_are_not_checked() -> None:
    with override_settings(DATABASES=databases_with("plain", CONN_MAX_AGE=600)):
        assert ids() == []


def test_database_checks_compare_the_budget_with_the_server() -> None:
    with override_settings(MYSQLPOOL_BUDGET=100_000):
        assert ids() == []  # only with --database
        assert ids(databases=["default"]) == ["mysqlpool.W003"]


def test_database_checks_compare_recycle_with_wait_timeout() -> None:
    with override_settings(MYSQLPOOL_ARGUMENTS={"recycle": 30_000}):
        assert ids(databases=["default"]) == ["mysqlpool.W004"]
    with override_settings(MYSQLPOOL_ARGUMENTS={"recycle": 60}):
        assert ids(databases=["default"]) == []


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        ("CONN_MAX_AGE", "mysqlpool.E002"),
        ("MYSQLPOOL_BACKEND", "mysqlpool.E001"),
        ("pool argument", "mysqlpool.E001"),
    ],
)
@pytest.mark.parametrize("command", ["check", "migrate"])
def test_a_settings_mistake_is_a_check_message_in_a_fresh_process(
    database_server: dbserver.Server, command: str, mistake: str, expected: str
) -> None:
    """Django 6.1's model checks connect before mysqlpool's run: the mistake must still read as a check."""
    process = start_command(
        database_server, command, settings="tests.model_settings", MYSQLPOOL_TEST_MISTAKE=mistake
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"({expected})" in stderr and "HINT:" in stderr
    assert "Traceback" not in stderr


def test_checks_leave_no_connection_checked_out(server: Server) -> None:
    """Whatever Django's checks connect for (6.1: every database), the connection goes back."""
    connections.close_all()
    ids(databases=["default", "other"])
    for alias in ("default", "other"):
        assert connections[alias].connection is None
        assert get_stats().get(alias, {}).get("checked_out", 0) == 0


def test_a_fresh_status_command_shows_no_use_of_its_own(database_server: dbserver.Server) -> None:
    """Django 6.1's checks connect; mysqlpool_status skips them, so its figures are the process's own."""
    process = start_command(database_server, "mysqlpool_status", "--json", settings="tests.model_settings")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert json.loads(stdout)["aliases"]["default"]["live"] is None


def test_every_check_the_hints_point_to_is_explained_in_the_readme() -> None:
    source = (ROOT / "mysqlpool" / "checks.py").read_text()
    readme = (ROOT / "README.rst").read_text()
    section = readme[readme.index("\nSystem checks\n") : readme.index("\nConnection budgets\n")]
    check_ids = set(re.findall(r'"(mysqlpool\.[EW]\d{3})"', source))
    assert len(check_ids) == 11
    assert {check_id for check_id in check_ids if f"``{check_id}``" not in section} == set()
