"""The pools of this process: one per database alias, created on first use."""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils.connection import ConnectionDoesNotExist
from django.views.decorators.debug import sensitive_variables

from mysqlpool import celery_worker
from mysqlpool.budget import process_budget, start_afresh_in_child
from mysqlpool.config import PoolConfig, pool_config
from mysqlpool.pooling import AliasPool
from mysqlpool.stats import PoolStats


class PooledWrapper(Protocol):
    """What the registry needs of a DatabaseWrapper to build its alias's pool."""

    alias: str
    settings_dict: dict[str, Any]
    isolation_level: str | None

    def connection_params_from_settings(self) -> dict[str, Any]: ...


logger = logging.getLogger("mysqlpool")

_pools: dict[str, AliasPool] = {}
# Each alias's counters, kept across close_pool(): they only grow, and a closed
# pool's connections still checked out count as open until they are returned.
_stats: dict[str, PoolStats] = {}
# The last pool of each alias closed by close_pool(): get_stats() shows it while
# its connections are still checked out and no new pool has taken its place.
_closed: dict[str, AliasPool] = {}
# (alias, message) of the settings mistakes already logged: one line each, not one per request.
_mistakes_logged: set[tuple[str, str]] = set()
# Creation is rare; the lock makes racing threads agree on one pool per alias.
_creation_lock = threading.Lock()


# Its frames hold the password: Django's error reports (and the error trackers
# that follow sensitive_variables) hide their variables, and those of the frames
# it calls, from a traceback.
@sensitive_variables()
def pool_for(wrapper: PooledWrapper) -> AliasPool:
    """The pool of the wrapper's alias, created from its settings if needed."""
    pool = _pools.get(wrapper.alias)
    if pool is None:
        with _creation_lock:
            pool = _pools.get(wrapper.alias)
            if pool is None:
                config = _checked_config(wrapper)
                params = wrapper.connection_params_from_settings()
                pool = AliasPool(
                    config,
                    params,
                    wrapper.isolation_level,
                    wrapper.settings_dict,
                    budget=process_budget(),
                    neighbours=lambda: list(_pools.values()),
                    counters=_stats.setdefault(wrapper.alias, PoolStats()),
                )
                _pools[wrapper.alias] = pool
                celery_worker.on_child_exit(close_pool)
    return pool


def _checked_config(wrapper: PooledWrapper) -> PoolConfig:
    """The alias's pool configuration; a settings mistake is logged, once, as well as raised.

    gunicorn, uvicorn and Celery do not run Django's system checks, and with
    ``DEBUG = False`` Django's default logging shows a request's error to nobody:
    the log then says why every request fails.
    """
    try:
        return pool_config(wrapper.alias, wrapper.settings_dict)
    except ImproperlyConfigured as error:
        if (wrapper.alias, str(error)) not in _mistakes_logged:
            _mistakes_logged.add((wrapper.alias, str(error)))
            logger.error("No pool for database alias %r: %s", wrapper.alias, error)
        raise


def orphan_all() -> None:
    """In a forked child: abandon the parent's pools and start with none."""
    global _pools, _stats, _closed, _mistakes_logged, _creation_lock
    _pools, _stats, _closed, _mistakes_logged = {}, {}, {}, set()
    # Another thread of the parent may have held the lock at the fork.
    _creation_lock = threading.Lock()
    for pool in list(AliasPool.alive):  # disposed ones too: their checkouts may be out
        pool.orphan()
    start_afresh_in_child()


def close_pool(alias: str | None = None) -> None:
    """Close the idle connections of one alias's pool, or of every pool.

    Connections checked out at the time are closed when they are returned. The next
    connection of the alias builds a new pool from the current settings.
    """
    if alias is not None and alias not in connections.settings:
        raise ConnectionDoesNotExist(f"The connection '{alias}' doesn't exist.")
    for name in list(_pools) if alias is None else [alias]:
        dispose(name)


def dispose(alias: str) -> None:
    """Close the pool of ``alias``, if this process has one."""
    with _creation_lock:
        pool = _pools.pop(alias, None)
        if pool is not None:
            _closed[alias] = pool
    if pool is not None:
        pool.dispose()


def get_stats() -> dict[str, dict[str, Any]]:
    """Per alias, the pool's live figures and counters (never a password).

    The counters run from the start of the process (or the fork that made it),
    across close_pool(). An alias whose pool was closed is shown while its
    connections are still checked out.
    """
    shown = {alias: pool for alias, pool in list(_closed.items()) if pool.stats.open_connections() > 0}
    shown.update(_pools)
    return {alias: pool.status() for alias, pool in shown.items()}
