"""The pools of this process: one per database alias, created on first use."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from django.db import connections
from django.utils.connection import ConnectionDoesNotExist
from django.views.decorators.debug import sensitive_variables

from mysqlpool.budget import process_budget, start_afresh_in_child
from mysqlpool.config import pool_config
from mysqlpool.pooling import AliasPool


class PooledWrapper(Protocol):
    """What the registry needs of a DatabaseWrapper to build its alias's pool."""

    alias: str
    settings_dict: dict[str, Any]
    isolation_level: str | None

    def connection_params_from_settings(self) -> dict[str, Any]: ...


_pools: dict[str, AliasPool] = {}
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
                config = pool_config(wrapper.alias, wrapper.settings_dict)
                params = wrapper.connection_params_from_settings()
                pool = AliasPool(
                    config,
                    params,
                    wrapper.isolation_level,
                    wrapper.settings_dict,
                    budget=process_budget(),
                    neighbours=lambda: list(_pools.values()),
                )
                _pools[wrapper.alias] = pool
    return pool


def orphan_all() -> None:
    """In a forked child: abandon the parent's pools and start with none."""
    global _pools, _creation_lock
    _pools = {}
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
        pool.dispose()


def get_stats() -> dict[str, dict[str, Any]]:
    """Per alias, the pool's live figures and counters (never a password)."""
    return {alias: pool.status() for alias, pool in list(_pools.items())}
