"""The daemon toolkit: management commands that run as pooled worker daemons."""

from mysqlpool.daemon.command import PooledDaemonCommand

__all__ = ["PooledDaemonCommand"]
