"""manage.py mysqlpool_status: settings, live figures and budget, never the password."""

from __future__ import annotations

import json
import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test import override_settings

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other"])


def status(*args: str) -> str:
    out = StringIO()
    call_command("mysqlpool_status", *args, stdout=out)
    return out.getvalue()


def test_json_shows_settings_live_figures_and_budget() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
    with override_settings(MYSQLPOOL_BUDGET=5):
        report = json.loads(status("--json"))
    default = report["aliases"]["default"]
    assert default["backend"] == "QueuePool"
    assert default["arguments"]["pool_size"] == 4 and default["arguments"]["recycle"] == 3600
    assert default["live"]["checked_out"] == 1
    assert set(report["aliases"]) == {"default", "other"}  # not the plain alias
    assert set(report["budget"]) == {"limit", "open", "peak", "held", "waits", "wait_time", "timeouts"}
    connections["default"].close()


def test_table_is_readable_and_never_shows_the_password() -> None:
    settings_dict = connections["other"].settings_dict
    settings_dict["PASSWORD"] = "Sup3r-s3cret-pw"
    try:
        text = status()
    finally:
        settings_dict["PASSWORD"] = ""
    assert "Sup3r-s3cret-pw" not in text
    assert "other: QueuePool to root@127.0.0.1:" in text
    assert "\n  pool_size " in text and "\n  recycle " in text
    assert "\nbudget: none\n" in text


def test_text_and_json_show_the_same_values_as_the_readme() -> None:
    settings_dict = connections["other"].settings_dict
    port, settings_dict["PORT"] = settings_dict["PORT"], ""
    try:
        text, report = status(), json.loads(status("--json"))
    finally:
        settings_dict["PORT"] = port
    other = report["aliases"]["other"]
    assert other["target"]["port"] == 3306 and "other: QueuePool to root@127.0.0.1:3306/" in text
    assert (other["arguments"]["reset_on_return"], other["arguments"]["echo"]) == ("rollback", False)
    assert "\n  reset_on_return  rollback\n" in text and "\n  echo             False\n" in text
    assert "\n  timeout          30\n" in text


@pytest.mark.parametrize(
    ("host", "options", "where", "socket"),
    [
        ("", {}, "root@localhost/{name} through the default socket", "default"),
        (
            "localhost",
            {"unix_socket": "/run/db.sock"},
            "root@localhost/{name} through the socket /run/db.sock",
            "/run/db.sock",
        ),
        (
            "/run/mysqld/mysqld.sock",
            {},
            "root@localhost/{name} through the socket /run/mysqld/mysqld.sock",
            "/run/mysqld/mysqld.sock",
        ),
        (  # Django applies OPTIONS after HOST
            "/run/mysqld/mysqld.sock",
            {"unix_socket": "/run/db.sock"},
            "root@localhost/{name} through the socket /run/db.sock",
            "/run/db.sock",
        ),
    ],
)
def test_a_unix_socket_is_shown_as_one(host: str, options: dict[str, str], where: str, socket: str) -> None:
    """Not as localhost:3306: the client library connects through a socket there."""
    settings_dict = connections["other"].settings_dict
    saved = settings_dict["HOST"], settings_dict["OPTIONS"]
    settings_dict["HOST"], settings_dict["OPTIONS"] = host, {**saved[1], **options}
    try:
        text, report = status(), json.loads(status("--json"))
    finally:
        settings_dict["HOST"], settings_dict["OPTIONS"] = saved
    assert f"other: QueuePool to {where.format(name=settings_dict['NAME'])}\n" in text
    target = report["aliases"]["other"]["target"]
    assert (target["host"], target["port"], target["socket"]) == ("localhost", None, socket)


def test_a_settings_mistake_is_a_command_error() -> None:
    with override_settings(MYSQLPOOL_ARGUMENTS={"pool_sise": 3}), pytest.raises(CommandError) as error:
        status()
    assert str(error.value).startswith("MYSQLPOOL_ARGUMENTS has an unknown argument 'pool_sise'")
    assert str(error.value).endswith("(manage.py check lists every mistake)")


def test_a_url_that_cannot_be_read_is_a_clear_error() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: the connect is refused
        port = closed.getsockname()[1]
        with pytest.raises(CommandError, match=rf"Cannot read http://127.0.0.1:{port}/metrics: .*refused"):
            status("--url", f"http://127.0.0.1:{port}")
    with pytest.raises(CommandError, match="--url 'localhost:9187': give an http:// or https:// address"):
        status("--url", "localhost:9187")
