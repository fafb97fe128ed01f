"""Settings -> pool configuration, validated.

django-mysqlpool's names are kept: ``MYSQLPOOL_BACKEND`` names a pool class of
``sqlalchemy.pool`` and ``MYSQLPOOL_ARGUMENTS`` holds its keyword arguments. Each
alias may override both in ``DATABASES[alias]["OPTIONS"]["pool"]``, a dict of pool
arguments plus an optional ``"backend"``. Nothing here mutates the user's dicts.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from sqlalchemy import pool as sqla_pool

from mysqlpool.errors import ObsoleteSettingWarning
from mysqlpool.network import DEFAULT_KEEPALIVE, KEEPALIVE_ALLOWED, KeepAlive, is_keepalive
from mysqlpool.resets import ResetStyle
from mysqlpool.seconds import MAX_SECONDS_TEXT, is_seconds

BACKEND_SETTING = "MYSQLPOOL_BACKEND"
ARGUMENTS_SETTING = "MYSQLPOOL_ARGUMENTS"
ENGINE = "mysqlpool.backends.mysqlpool"
DEFAULT_BACKEND = "QueuePool"

# Below the server's default wait_timeout (28800 s on MariaDB and MySQL), so a
# connection is replaced before the server gives up on it. A connection the server
# closed anyway is still detected at checkout, without a round trip.
DEFAULT_ARGUMENTS: Mapping[str, Any] = MappingProxyType({"recycle": 3600})

SUPPORTED_BACKENDS: Mapping[str, type[sqla_pool.Pool]] = MappingProxyType(
    {
        "QueuePool": sqla_pool.QueuePool,
        "NullPool": sqla_pool.NullPool,
        "SingletonThreadPool": sqla_pool.SingletonThreadPool,
        "AssertionPool": sqla_pool.AssertionPool,
    }
)
UNSUITABLE_BACKENDS: Mapping[str, str] = MappingProxyType(
    {
        "StaticPool": "it shares one connection between all threads, and a MySQLdb "
        "connection must not be used by two threads at once",
        "AsyncAdaptedQueuePool": "it is made for asyncio drivers",
        "FallbackAsyncAdaptedQueuePool": "it is made for asyncio drivers",
        "Pool": "it is the abstract base class",
    }
)

# Arguments of django-mysqlpool's era that SQLAlchemy no longer has: accepted so an
# old configuration works unchanged, warned about, and dropped.
OBSOLETE_ARGUMENTS: Mapping[str, str] = MappingProxyType(
    {
        "use_threadlocal": "SQLAlchemy 1.4 removed it; Django already gives each thread its own connection",
    }
)

# mysqlpool's own arguments, with their defaults: taken with every pool class, and
# given to none (see PoolConfig.sqlalchemy_arguments).
OWN_ARGUMENTS: Mapping[str, Any] = MappingProxyType({"keepalive": DEFAULT_KEEPALIVE})

# Set by mysqlpool itself, never by the user.
_RESERVED_ARGUMENTS = frozenset({"creator", "dialect", "events", "_dispatch"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_bool(value: Any) -> bool:
    return value is True or value is False


_VALIDATORS: Mapping[str, tuple[Callable[[Any], bool], str]] = MappingProxyType(
    {
        "pool_size": (lambda v: _is_int(v) and v >= 0, "an int >= 0 (0: no limit)"),
        "max_overflow": (lambda v: _is_int(v) and v >= -1, "an int >= -1 (-1: no limit)"),
        "timeout": (lambda v: is_seconds(v) and v > 0, f"a number of seconds > 0 and {MAX_SECONDS_TEXT}"),
        "recycle": (
            lambda v: is_seconds(v) and (v == -1 or v > 0),
            f"a number of seconds > 0 and {MAX_SECONDS_TEXT}, or -1 to never recycle",
        ),
        "pre_ping": (_is_bool, "True or False"),
        "use_lifo": (_is_bool, "True or False"),
        "echo": (lambda v: _is_bool(v) or v == "debug", "True, False or 'debug'"),
        "logging_name": (lambda v: isinstance(v, str) and bool(v), "a non-empty str"),
        "reset_on_return": (
            lambda v: v is None or _is_bool(v) or v in ("rollback", "commit", ResetStyle.SESSION.value),
            "'rollback', 'commit', 'session', True, False or None",
        ),
        "keepalive": (is_keepalive, KEEPALIVE_ALLOWED),
    }
)


@dataclass(frozen=True)
class PoolConfig:
    """What one alias's pool is built from: the pool class and its arguments."""

    alias: str
    backend: type[sqla_pool.Pool]
    arguments: Mapping[str, Any]

    @property
    def backend_name(self) -> str:
        return self.backend.__name__

    @property
    def closes_returned_connections(self) -> bool:
        """Whether the pool class closes each connection returned to it (NullPool).

        The server then forgets the session, its transaction included: there is
        nothing to reset, and nothing a reset_on_return could hand over.
        """
        return self.backend is sqla_pool.NullPool

    @property
    def reset_style(self) -> ResetStyle:
        """What ``reset_on_return`` asks a check-in to do."""
        return ResetStyle.of_setting(self.argument("reset_on_return"))

    @property
    def keepalive(self) -> KeepAlive | None:
        """The socket settings ``keepalive`` asks for; None if it is off."""
        seconds = self.argument("keepalive")
        return None if seconds is None else KeepAlive(seconds)

    @property
    def sqlalchemy_arguments(self) -> dict[str, Any]:
        """The arguments as the SQLAlchemy pool class takes them."""
        arguments = {name: value for name, value in self.arguments.items() if name not in OWN_ARGUMENTS}
        # mysqlpool's own style; SQLAlchemy's pool, which never resets mysqlpool's
        # connections itself, is given one it knows.
        if self.reset_style is ResetStyle.SESSION:
            arguments["reset_on_return"] = "rollback"
        return arguments

    def argument(self, name: str) -> Any:
        """The argument's value, or the pool class's own default for it."""
        if name in self.arguments:
            return self.arguments[name]
        return accepted_arguments(self.backend).get(name)

    def shown_arguments(self) -> dict[str, Any]:
        """Every argument the pool class takes, with its value, as the README names it.

        SQLAlchemy's signatures say ``reset_on_return=True`` and ``echo=None``;
        what they mean here is ``"rollback"`` and False. mysqlpool_status (text and
        JSON) and the pool's first log line show this, and a test holds the
        README's table of defaults to it.
        """
        shown = {**accepted_arguments(self.backend), **self.arguments}
        if "reset_on_return" in shown:
            shown["reset_on_return"] = self.reset_style.value
        if "echo" in shown:
            shown["echo"] = shown["echo"] or False
        return shown


def accepted_arguments(backend: type[sqla_pool.Pool]) -> dict[str, Any]:
    """The keyword arguments ``backend`` accepts from users, with their defaults."""
    accepted: dict[str, Any] = {}
    # Subclasses pass **kw up to Pool, so collect the named parameters of the MRO;
    # a subclass's default wins over its base's.
    for klass in reversed(backend.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for name, param in inspect.signature(init).parameters.items():
            if name in _VALIDATORS:
                accepted[name] = param.default
    return {**accepted, **OWN_ARGUMENTS}


def pool_config(alias: str, settings_dict: Mapping[str, Any]) -> PoolConfig:
    """Build and validate the pool configuration of ``alias``.

    Raises ImproperlyConfigured naming the bad setting, its value and what is allowed.
    """
    check_conn_max_age(alias, settings_dict)
    alias_options = _alias_pool_options(alias, settings_dict)
    backend_name = alias_options.get("backend", getattr(settings, BACKEND_SETTING, DEFAULT_BACKEND))
    backend_source = (
        f"DATABASES[{alias!r}]['OPTIONS']['pool']['backend']"
        if "backend" in alias_options
        else BACKEND_SETTING
    )
    backend = _backend_class(backend_name, backend_source)

    global_arguments = getattr(settings, ARGUMENTS_SETTING, None) or {}
    if not isinstance(global_arguments, Mapping):
        raise ImproperlyConfigured(
            f"{ARGUMENTS_SETTING} must be a dict of pool arguments, "
            f"not {type(global_arguments).__name__} {global_arguments!r}."
        )
    arguments = {
        name: value for name, value in DEFAULT_ARGUMENTS.items() if name in accepted_arguments(backend)
    }
    sources = [
        (ARGUMENTS_SETTING, global_arguments, ()),
        (
            f"DATABASES[{alias!r}]['OPTIONS']['pool']",
            {k: v for k, v in alias_options.items() if k != "backend"},
            ("backend",),
        ),
    ]
    for source, given, also_accepted in sources:
        arguments.update(_validated_arguments(backend, given, source, also_accepted))
    return PoolConfig(alias=alias, backend=backend, arguments=MappingProxyType(arguments))


def check_conn_max_age(alias: str, settings_dict: Mapping[str, Any]) -> None:
    """ImproperlyConfigured unless the alias's CONN_MAX_AGE is 0."""
    # Django's own PostgreSQL pool makes the same choice: a pooled connection is
    # returned at the end of each request, and the pool's ``recycle`` bounds its age.
    # A persistent checkout would let each thread hoard a connection, which is what
    # pooling is here to prevent.
    max_age = settings_dict.get("CONN_MAX_AGE", 0)
    if max_age != 0:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]['CONN_MAX_AGE'] is {max_age!r}, but a pooled "
            "connection goes back to the pool at the end of every request: set "
            "CONN_MAX_AGE to 0 (the default) and use the pool's 'recycle' argument "
            "to limit how long a connection lives."
        )


def _alias_pool_options(alias: str, settings_dict: Mapping[str, Any]) -> Mapping[str, Any]:
    options = settings_dict.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(
            # Not shown: it may hold a password.
            f"DATABASES[{alias!r}]['OPTIONS'] must be a dict of connection options, "
            f"not a {type(options).__name__}."
        )
    pool_options = options.get("pool", {})
    if not isinstance(pool_options, Mapping):
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]['OPTIONS']['pool'] must be a dict of pool "
            f"arguments, not {type(pool_options).__name__} {pool_options!r}."
        )
    return pool_options


def _backend_class(name: Any, source: str) -> type[sqla_pool.Pool]:
    if isinstance(name, str) and name in SUPPORTED_BACKENDS:
        return SUPPORTED_BACKENDS[name]
    allowed = ", ".join(SUPPORTED_BACKENDS)
    if isinstance(name, str) and name in UNSUITABLE_BACKENDS:
        raise ImproperlyConfigured(
            f"{source} is {name!r}, which mysqlpool cannot use: "
            f"{UNSUITABLE_BACKENDS[name]}. Use one of: {allowed}."
        )
    raise ImproperlyConfigured(
        f"{source} is {name!r}, which is not a pool class of sqlalchemy.pool "
        f"that mysqlpool supports. Use one of: {allowed}."
    )


def _validated_arguments(
    backend: type[sqla_pool.Pool], given: Mapping[str, Any], source: str, also_accepted: tuple[str, ...]
) -> dict[str, Any]:
    """``given``'s arguments, validated; ``also_accepted``: names the source takes besides
    (they are named when an unknown one is refused)."""
    accepted = accepted_arguments(backend)
    arguments: dict[str, Any] = {}
    for name, value in given.items():
        if name in OBSOLETE_ARGUMENTS:
            warnings.warn(
                f"{source}[{name!r}] is obsolete and ignored: {OBSOLETE_ARGUMENTS[name]}.",
                ObsoleteSettingWarning,
                stacklevel=2,
            )
            continue
        if name in _RESERVED_ARGUMENTS or name not in accepted:
            raise ImproperlyConfigured(
                f"{source} has an unknown argument {name!r} for {backend.__name__}; "
                f"it accepts: {', '.join(sorted([*accepted, *also_accepted]))}."
                + _PROCESS_SETTINGS.get(name, "")
            )
        is_valid, allowed = _VALIDATORS[name]
        if not is_valid(value):
            raise ImproperlyConfigured(f"{source}[{name!r}] is {value!r}; it must be {allowed}.")
        arguments[name] = value
    return arguments


# Pool arguments that are settings of the whole process instead.
_PROCESS_SETTINGS = {
    "budget": " The budget is the process's, for every alias together: MYSQLPOOL_BUDGET.",
    "hold_warning": " The hold warning is the process's, for every alias: MYSQLPOOL_HOLD_WARNING.",
}


def pooled_aliases() -> dict[str, Mapping[str, Any]]:
    """The aliases of settings.DATABASES that use mysqlpool's ENGINE."""
    return {alias: db for alias, db in settings.DATABASES.items() if db.get("ENGINE") == ENGINE}


# The per-process budget's settings (mysqlpool.budget).
BUDGET_SETTING = "MYSQLPOOL_BUDGET"
HOLD_WARNING_SETTING = "MYSQLPOOL_HOLD_WARNING"
# Every setting mysqlpool reads: another MYSQLPOOL_* name is likely a typo (mysqlpool.W007).
SETTINGS = (BACKEND_SETTING, ARGUMENTS_SETTING, BUDGET_SETTING, HOLD_WARNING_SETTING)


def validated_limit(value: Any, source: str = BUDGET_SETTING) -> int | None:
    """``value`` if it is None or a positive int, else ImproperlyConfigured."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    raise ImproperlyConfigured(f"{source} is {value!r}; it must be None (no budget) or an int > 0.")


def validated_hold_warning(value: Any) -> float | None:
    """``value`` if it is None or a number of seconds > 0, else ImproperlyConfigured."""
    if value is None:
        return None
    if is_seconds(value) and value > 0:
        return float(value)
    raise ImproperlyConfigured(
        f"{HOLD_WARNING_SETTING} is {value!r}; it must be None (no warning) or a number of "
        f"seconds > 0 and {MAX_SECONDS_TEXT}."
    )
