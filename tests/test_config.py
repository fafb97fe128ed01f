"""Configuration: django-mysqlpool's settings, per-alias overrides, clear errors."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from sqlalchemy.pool import NullPool, QueuePool

from mysqlpool import ObsoleteSettingWarning
from mysqlpool.config import pool_config
from mysqlpool.resets import ResetStyle
from tests.helpers import connection_id, request_cycle


def settings_dict(pool: Any = None, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {} if pool is None else {"pool": pool}
    return {"CONN_MAX_AGE": 0, "OPTIONS": options, **extra}


def test_defaults_are_a_queue_pool_recycling_below_wait_timeout() -> None:
    config = pool_config("default", settings_dict())
    assert config.backend is QueuePool
    assert dict(config.arguments) == {"recycle": 3600}
    assert config.argument("pool_size") == 5  # SQLAlchemy's own default


@override_settings(MYSQLPOOL_BACKEND="QueuePool", MYSQLPOOL_ARGUMENTS={"pool_size": 3, "timeout": 7})
def test_alias_options_override_process_wide_settings() -> None:
    config = pool_config("default", settings_dict({"timeout": 2, "max_overflow": 0}))
    assert dict(config.arguments) == {"recycle": 3600, "pool_size": 3, "timeout": 2, "max_overflow": 0}


@override_settings(MYSQLPOOL_BACKEND="QueuePool")
def test_alias_may_choose_another_backend() -> None:
    config = pool_config("default", settings_dict({"backend": "NullPool"}))
    assert config.backend is NullPool
    assert dict(config.arguments) == {"recycle": 3600}


def test_settings_dicts_are_never_mutated() -> None:
    arguments = {"pool_size": 2, "use_threadlocal": False}
    given = settings_dict({"timeout": 2, "backend": "QueuePool"})
    before = (copy.deepcopy(arguments), copy.deepcopy(given))
    with override_settings(MYSQLPOOL_ARGUMENTS=arguments), pytest.warns(ObsoleteSettingWarning):
        pool_config("default", given)
    assert (arguments, given) == before


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("QueuPool", "'QueuPool', which is not a pool class of sqlalchemy.pool"),
        ("StaticPool", "shares one connection between all threads"),
        ("AsyncAdaptedQueuePool", "asyncio"),
        (42, "MYSQLPOOL_BACKEND is 42"),
    ],
)
def test_unusable_backend_is_named_with_the_allowed_ones(backend: Any, expected: str) -> None:
    with override_settings(MYSQLPOOL_BACKEND=backend), pytest.raises(ImproperlyConfigured) as error:
        pool_config("default", settings_dict())
    assert expected in str(error.value)
    assert "QueuePool, NullPool, SingletonThreadPool, AssertionPool" in str(error.value)


def test_unknown_argument_is_named_with_the_accepted_ones() -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        pool_config("default", settings_dict({"pool_sise": 3}))
    message = str(error.value)
    assert "DATABASES['default']['OPTIONS']['pool'] has an unknown argument 'pool_sise'" in message
    assert "max_overflow, pool_size, pre_ping, recycle, reset_on_return, timeout, use_lifo" in message
    assert "it accepts: backend, " in message  # the pool class, which an alias may choose too


def test_a_budget_among_the_pool_arguments_is_pointed_to_its_setting() -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        pool_config("default", settings_dict({"budget": 4}))
    assert str(error.value).endswith(
        "The budget is the process's, for every alias together: MYSQLPOOL_BUDGET."
    )


def test_the_global_arguments_take_no_backend() -> None:
    with (
        override_settings(MYSQLPOOL_ARGUMENTS={"backend": "NullPool"}),
        pytest.raises(ImproperlyConfigured) as error,
    ):
        pool_config("default", settings_dict())
    message = str(error.value)
    assert "MYSQLPOOL_ARGUMENTS has an unknown argument 'backend'" in message
    assert "backend," not in message  # MYSQLPOOL_BACKEND chooses it


def test_argument_of_another_backend_is_unknown() -> None:
    with override_settings(MYSQLPOOL_BACKEND="NullPool"), pytest.raises(ImproperlyConfigured) as error:
        pool_config("default", settings_dict({"pool_size": 3}))
    assert "unknown argument 'pool_size' for NullPool" in str(error.value)


@pytest.mark.parametrize("name", ["creator", "dialect", "events"])
def test_arguments_mysqlpool_sets_itself_are_refused(name: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"unknown argument '{name}'"):
        pool_config("default", settings_dict({name: None}))


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("pool_size", -1, "an int >= 0"),
        ("pool_size", "5", "an int >= 0"),
        ("pool_size", True, "an int >= 0"),
        ("max_overflow", -2, "an int >= -1"),
        ("timeout", 0, "a number of seconds > 0"),
        ("timeout", "30", "a number of seconds > 0"),
        ("timeout", float("inf"), "a number of seconds > 0"),
        ("timeout", 1e300, "a number of seconds > 0 and at most 31536000 (365 days)"),
        ("recycle", float("nan"), "a number of seconds > 0"),
        ("recycle", 1e300, "a number of seconds > 0 and at most 31536000 (365 days), or -1"),
        ("recycle", 0, "a number of seconds > 0"),
        ("pre_ping", 1, "True or False"),
        ("use_lifo", "yes", "True or False"),
        ("echo", "info", "True, False or 'debug'"),
        ("reset_on_return", "rollbak", "'rollback', 'commit', 'session', True, False or None"),
        ("logging_name", "", "a non-empty str"),
        ("keepalive", 1, "an int of seconds from 2 to 86400, or None to turn it off"),
        ("keepalive", 86401, "an int of seconds from 2 to 86400, or None to turn it off"),
        ("keepalive", 2.5, "an int of seconds from 2 to 86400, or None to turn it off"),
        ("keepalive", "60", "an int of seconds from 2 to 86400, or None to turn it off"),
        ("keepalive", True, "an int of seconds from 2 to 86400, or None to turn it off"),
    ],
)
def test_bad_value_is_named_with_what_is_allowed(name: str, value: Any, allowed: str) -> None:
    with override_settings(MYSQLPOOL_ARGUMENTS={name: value}), pytest.raises(ImproperlyConfigured) as error:
        pool_config("default", settings_dict())
    assert str(error.value).startswith(f"MYSQLPOOL_ARGUMENTS[{name!r}] is {value!r}; it must be {allowed}")


@pytest.mark.parametrize("backend", ["QueuePool", "NullPool", "SingletonThreadPool", "AssertionPool"])
def test_keepalive_is_taken_with_every_pool_class_and_given_to_none(backend: Any) -> None:
    config = pool_config("default", settings_dict({"backend": backend, "keepalive": 5}))
    assert config.keepalive is not None and config.keepalive.seconds == 5
    assert "keepalive" not in config.sqlalchemy_arguments


def test_keepalive_is_on_by_default_and_none_turns_it_off() -> None:
    assert pool_config("default", settings_dict()).argument("keepalive") == 60
    assert pool_config("default", settings_dict({"keepalive": None})).keepalive is None


def test_arguments_that_are_not_a_dict_are_refused() -> None:
    with (
        override_settings(MYSQLPOOL_ARGUMENTS=[("pool_size", 5)]),
        pytest.raises(ImproperlyConfigured) as error,
    ):
        pool_config("default", settings_dict())
    assert str(error.value) == (
        "MYSQLPOOL_ARGUMENTS must be a dict of pool arguments, not list [('pool_size', 5)]."
    )


def test_alias_pool_option_that_is_not_a_dict_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        pool_config("default", settings_dict(pool=True))
    assert str(error.value) == (
        "DATABASES['default']['OPTIONS']['pool'] must be a dict of pool arguments, not bool True."
    )


def test_options_that_are_not_a_dict_are_refused_without_showing_them() -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        pool_config("default", {"OPTIONS": [("passwd", "s3cret")]})
    assert (
        str(error.value)
        == "DATABASES['default']['OPTIONS'] must be a dict of connection options, not a list."
    )


@pytest.mark.parametrize("max_age", [None, 60])
def test_persistent_connections_are_refused(max_age: Any) -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        pool_config("default", settings_dict(CONN_MAX_AGE=max_age))
    assert f"DATABASES['default']['CONN_MAX_AGE'] is {max_age!r}" in str(error.value)
    assert "set CONN_MAX_AGE to 0" in str(error.value)


def test_persistent_connections_fail_every_query_and_are_logged_once(
    make_wrapper: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Logged: gunicorn, uvicorn and Celery run no system checks, and with DEBUG off
    Django's default logging shows a failed request to nobody."""
    wrapper = make_wrapper(CONN_MAX_AGE=60)
    for _ in range(3):
        with pytest.raises(ImproperlyConfigured, match="CONN_MAX_AGE"):
            wrapper.ensure_connection()
    logged = [record for record in caplog.records if record.name == "mysqlpool"]
    assert [record.getMessage() for record in logged] == [
        f"No pool for database alias {wrapper.alias!r}: DATABASES[{wrapper.alias!r}]['CONN_MAX_AGE'] is 60, "
        "but a pooled connection goes back to the pool at the end of every request: set CONN_MAX_AGE to 0 "
        "(the default) and use the pool's 'recycle' argument to limit how long a connection lives."
    ]
    assert logged[0].levelname == "ERROR"


def test_django_mysqlpool_configuration_works_unchanged(make_wrapper: Any, server: Any) -> None:
    """The settings block of django-mysqlpool's README, as it was."""
    old = {"MYSQLPOOL_BACKEND": "QueuePool", "MYSQLPOOL_ARGUMENTS": {"use_threadlocal": False}}
    with override_settings(**old):
        wrapper = make_wrapper()
        with pytest.warns(ObsoleteSettingWarning, match=r"\['use_threadlocal'\] is obsolete and ignored"):
            first = connection_id(wrapper)
        wrapper.close()
        assert request_cycle(wrapper, "SELECT CONNECTION_ID()") == ((first,),)


@pytest.mark.parametrize(
    ("reset_on_return", "style"),
    [
        ("rollback", ResetStyle.ROLLBACK),
        (True, ResetStyle.ROLLBACK),
        ("commit", ResetStyle.COMMIT),
        ("session", ResetStyle.SESSION),
        (None, ResetStyle.NONE),
        (False, ResetStyle.NONE),
    ],
)
def test_reset_on_return_is_parsed_once_into_a_style(reset_on_return: Any, style: ResetStyle) -> None:
    config = pool_config("default", settings_dict(pool={"reset_on_return": reset_on_return}))
    assert config.reset_style is style
    # SQLAlchemy's pool is only ever given values it knows.
    assert config.sqlalchemy_arguments["reset_on_return"] in ("rollback", True, "commit", None, False)


def test_the_default_reset_rolls_back() -> None:
    assert pool_config("default", settings_dict()).reset_style is ResetStyle.ROLLBACK


def test_the_readmes_table_of_pool_arguments_shows_the_defaults_mysqlpool_applies() -> None:
    """What mysqlpool_status shows and the README says come from one place."""
    readme = (Path(__file__).resolve().parent.parent / "README.rst").read_text()
    table = readme.split("Argument               Default", 1)[1].split("\n\n", 1)[0]
    documented = {
        name: _readme_value(default)
        for name, default in re.findall(r"^``(\w+)``\s+(\S.*?)(?:\s{2,}|$)", table, re.MULTILINE)
    }
    with override_settings(MYSQLPOOL_ARGUMENTS=None, MYSQLPOOL_BACKEND="QueuePool"):
        config = pool_config("documented", {"ENGINE": "mysqlpool.backends.mysqlpool", "OPTIONS": {}})
    assert documented == config.shown_arguments()


def _readme_value(text: str) -> Any:
    text = text.strip("`")
    return None if text == "(none)" else ast.literal_eval(text)
