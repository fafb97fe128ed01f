"""System checks of the ``mysqlpool`` app (``manage.py check``).

Each id has a hint and a section in README.rst ("System checks"). The settings are
checked without connecting; ``manage.py check --database ALIAS`` also compares the
budget and the pool with what the server allows.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from mysqlpool.config import (
    BUDGET_SETTING,
    HOLD_WARNING_SETTING,
    SETTINGS,
    PoolConfig,
    check_conn_max_age,
    pool_config,
    pooled_aliases,
    validated_hold_warning,
    validated_limit,
)
from mysqlpool.errors import ObsoleteSettingWarning
from mysqlpool.resets import ResetStyle


def _message(level: type[Error] | type[Warning], check_id: str, message: str, advice: str) -> CheckMessage:
    """A check's message; its hint gives the advice and where the README explains the check."""
    hint = f"{advice} See '{check_id}' under 'System checks' in mysqlpool's README."
    return level(message, hint=hint, id=check_id)


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E001-E004, W001-W002, W005-W007: what the settings say, without a server."""
    messages: list[CheckMessage] = _check_unknown_settings()
    aliases = pooled_aliases()
    try:
        limit = validated_limit(getattr(settings, BUDGET_SETTING, None))
    except ImproperlyConfigured as error:
        messages.append(_message(Error, "mysqlpool.E003", str(error), "Set it to a positive int, or None."))
        limit = None
    for alias, settings_dict in aliases.items():
        messages += _check_alias(alias, settings_dict, limit)
    try:
        validated_hold_warning(getattr(settings, HOLD_WARNING_SETTING, None))
    except ImproperlyConfigured as error:
        messages.append(
            _message(Error, "mysqlpool.E004", str(error), "Set it to a number of seconds, or None.")
        )
    if limit is not None and limit < len(aliases):
        messages.append(
            _message(
                Warning,
                "mysqlpool.W002",
                f"MYSQLPOOL_BUDGET is {limit}, fewer than the {len(aliases)} pooled aliases: "
                "a unit of work that uses all of them at once can never get its connections.",
                f"Raise MYSQLPOOL_BUDGET to at least {len(aliases)}.",
            )
        )
    return messages


_SUFFIXES = [name.removeprefix("MYSQLPOOL_") for name in SETTINGS]


def _check_unknown_settings() -> list[CheckMessage]:
    # A misspelt setting is otherwise ignored without a word: the default applies.
    messages = []
    for name in sorted(dir(settings)):
        if name.startswith("MYSQLPOOL_") and name not in SETTINGS:
            # Without the prefix that they all share, or every name looks close.
            close = difflib.get_close_matches(name.removeprefix("MYSQLPOOL_"), _SUFFIXES, n=1)
            messages.append(
                _message(
                    Warning,
                    "mysqlpool.W007",
                    f"The setting {name} is not one of mysqlpool's: it has no effect.",
                    f"Did you mean MYSQLPOOL_{close[0]}?"
                    if close
                    else f"mysqlpool's settings: {', '.join(SETTINGS)}.",
                )
            )
    return messages


def _check_alias(alias: str, settings_dict: Any, limit: int | None) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    try:
        check_conn_max_age(alias, settings_dict)
    except ImproperlyConfigured as error:
        messages.append(_message(Error, "mysqlpool.E002", str(error), "Set CONN_MAX_AGE to 0."))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ObsoleteSettingWarning)
        try:
            config = pool_config(alias, {**settings_dict, "CONN_MAX_AGE": 0})
        except ImproperlyConfigured as error:
            messages.append(_message(Error, "mysqlpool.E001", str(error), "Fix the setting named."))
        else:
            messages += _check_reset(alias, config)
            if limit is None:
                messages += _check_bound(alias, config)
    messages += [
        _message(Warning, "mysqlpool.W001", str(warning.message), "Remove it from the settings.")
        for warning in caught
        if issubclass(warning.category, ObsoleteSettingWarning)
    ]
    return messages


# What a returned connection does with each reset style that lets a unit of
# work's transaction outlive it.
_UNSAFE_RESETS = {
    ResetStyle.NONE: "keeps an open transaction and its row locks for whoever checks it out next",
    ResetStyle.COMMIT: "commits whatever a unit of work that failed left half done",
}


def _check_reset(alias: str, config: PoolConfig) -> list[CheckMessage]:
    style = config.reset_style
    if style not in _UNSAFE_RESETS or config.closes_returned_connections:
        return []
    return [
        _message(
            Warning,
            "mysqlpool.W005",
            f"The pool of alias {alias!r} has reset_on_return={config.argument('reset_on_return')!r}: "
            f"a returned connection {_UNSAFE_RESETS[style]}.",
            "Remove reset_on_return (the default rolls back), or set it to 'session'.",
        )
    ]


def _check_bound(alias: str, config: PoolConfig) -> list[CheckMessage]:
    # Only a QueuePool has a bound to lift. NullPool and SingletonThreadPool hold a
    # connection per thread that uses one, as Django's own backend does: not warned.
    if config.backend_name != "QueuePool":
        return []
    size, overflow = config.argument("pool_size"), config.argument("max_overflow")
    if size != 0 and overflow != -1:
        return []
    return [
        _message(
            Warning,
            "mysqlpool.W006",
            f"The pool of alias {alias!r} has no limit (pool_size={size}, max_overflow={overflow}) "
            "and MYSQLPOOL_BUDGET is not set: nothing bounds the connections this process opens.",
            "Set pool_size and max_overflow to finite limits, or set MYSQLPOOL_BUDGET.",
        )
    ]


def check_server(databases: Iterable[str] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """W003-W004: the budget and the pool against the server (``check --database``)."""
    messages: list[CheckMessage] = []
    aliases = pooled_aliases()
    for alias in databases or ():
        if alias in aliases and _settings_valid(alias):
            messages += _check_against_server(alias)
    return messages


def _settings_valid(alias: str) -> bool:
    # With a mistake in them, connecting would raise it: check_settings() reports it.
    try:
        pool_config(alias, connections[alias].settings_dict)
    except ImproperlyConfigured:
        return False
    return True


def _check_against_server(alias: str) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    # A check leaves no connection checked out: the command that runs it may fork.
    with connections[alias].temporary_connection() as cursor:
        cursor.execute("SELECT @@max_connections, @@wait_timeout")
        max_connections, wait_timeout = cursor.fetchone()
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
        connected = int(cursor.fetchone()[1])
    limit = getattr(settings, BUDGET_SETTING, None)
    free = max_connections - connected
    if isinstance(limit, int) and limit > free:
        messages.append(
            _message(
                Warning,
                "mysqlpool.W003",
                f"MYSQLPOOL_BUDGET is {limit}, but the server behind alias {alias!r} has "
                f"{free} of its max_connections={max_connections} free ({connected} in use).",
                "Lower the budget, or raise the server's max_connections.",
            )
        )
    recycle = pool_config(alias, connections[alias].settings_dict).argument("recycle")
    if recycle == -1 or recycle >= wait_timeout:
        messages.append(
            _message(
                Warning,
                "mysqlpool.W004",
                f"The pool of alias {alias!r} recycles connections after {recycle}s, but the "
                f"server closes idle ones after wait_timeout={wait_timeout}s.",
                f"Set the pool's 'recycle' below {wait_timeout}.",
            )
        )
    return messages
