"""mysqlpool: pooled MySQL/MariaDB connections for Django, safe across threads and forks."""

from mysqlpool.autoclose import auto_close_db
from mysqlpool.budget import set_budget
from mysqlpool.errors import ConnectionBudgetExceeded, ObsoleteSettingWarning, PoolTimeout

# Importing forking also protects every fork of the process (os.register_at_fork).
from mysqlpool.forking import fork
from mysqlpool.registry import close_pool, get_stats

__all__ = [
    "ConnectionBudgetExceeded",
    "ObsoleteSettingWarning",
    "PoolTimeout",
    "PooledDaemonCommand",
    "auto_close_db",
    "close_pool",
    "fork",
    "get_stats",
    "set_budget",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The daemon toolkit pulls in Django's management framework and python-daemon:
    # imported on first use, not by every process that loads the ENGINE.
    if name == "PooledDaemonCommand":
        from mysqlpool.daemon import PooledDaemonCommand

        return PooledDaemonCommand
    raise AttributeError(f"module 'mysqlpool' has no attribute {name!r}")
