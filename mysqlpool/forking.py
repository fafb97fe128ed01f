"""``fork()``, and what happens in the child of any fork.

django-mysqlpool's README tells of a forked child whose SQL went to a Redis socket.
With mysqlclient a child can hurt its parent two ways: dropping an inherited
connection sends COM_QUIT on the parent's socket (close() and garbage collection
both do), and closing its descriptor frees the number for the next socket the
child opens, while Django still holds the connection object. So after every fork,
``os.fork()``, multiprocessing, python-daemon, Celery or gunicorn alike, the child:

1. disarms every pooled connection of the process (idle, or checked out by any
   thread of the parent): /dev/null takes the place of its socket, and the
   connection is kept, never collected (see PooledConnection.disarm_all);
2. abandons the parent's pools without touching them (their locks may be held by
   parent threads that do not exist in the child);
3. resets the forking thread's Django connections, so its first query opens a
   connection of its own.

uWSGI forks its workers without running ``os.register_at_fork`` handlers unless
told to: there the same handling runs from uWSGI's post-fork hook
(mysqlpool/uwsgi_worker.py), at most once per process.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.db import connections

from mysqlpool import registry, uwsgi_worker
from mysqlpool.connection import PooledConnection

# The process whose connections and pools this module's state describes: this
# one, once its fork has been handled. Run twice in one child, the handler would
# take for inherited what the child has made since (its budget's counts among
# them); run in a process that was not forked (uWSGI's only worker when there is
# no master), it would disarm the process's own connections.
_owner = os.getpid()


def fork() -> int:
    """``os.fork()``, after closing the pools' idle connections.

    0 in the child, the child's pid in the parent; OSError as ``os.fork()``. The
    child starts with no connection and no pool; the parent reconnects lazily.
    Connections other threads hold keep working, and close when returned.
    """
    registry.close_pool()
    return os.fork()


def _after_fork_in_child() -> None:
    global _owner
    _owner = os.getpid()
    PooledConnection.disarm_all()
    registry.orphan_all()
    if settings.configured:
        for connection in connections.all(initialized_only=True):
            forget = getattr(connection, "forget_inherited_connection", None)
            if forget is not None:
                forget()


def _after_fork_unless_handled() -> None:
    """The child's handling, if this process is a child that has not had it yet.

    uWSGI calls it in every process it forks; with ``py-call-osafterfork``, the
    ``register_at_fork`` handler has already run there.
    """
    if os.getpid() != _owner:
        _after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
uwsgi_worker.install(_after_fork_unless_handled)
