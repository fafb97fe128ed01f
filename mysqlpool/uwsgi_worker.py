"""What mysqlpool must do in uWSGI's workers: the at-fork handling uWSGI skips.

uWSGI forks its workers (and mules and spoolers) from C. By default (no
``py-call-osafterfork``, no ``py-call-uwsgi-fork-hooks``), Python's
``os.register_at_fork`` handlers do not run in them (uWSGI 2.0's
``plugins/python/python_plugin.c``, ``uwsgi_python_post_fork``): without
``lazy-apps`` the application is loaded in the master, and every worker would go
on with the master's connections and pools (tried: error 2013 and a failed
request). What the Python plugin does call, in every child it forks and before
the application runs there, is the callable in ``uwsgi.post_fork_hook``, if the
``uwsgi`` module has one; with ``py-call-osafterfork`` it calls it after the
``register_at_fork`` handlers, so the handler given here must know whether this
child has been handled already (see forking.py).

That attribute holds one callable: the handler goes in front of whatever callable
is there. uwsgidecorators' ``@postfork`` is built on it: importing uwsgidecorators
sets ``uwsgi.post_fork_hook`` to a function that runs its list of ``@postfork``
functions. Imported before mysqlpool, that function is the one the handler goes
in front of; imported after, it replaces the handler: the README says to import
it first, or (before Python 3.13, where uWSGI 2.0 aborts its workers with it) to
set ``py-call-osafterfork``. It is not imported here to join its
list instead: the import also replaces ``uwsgi.spooler`` with its own, and fails
in a uWSGI without a master.

The ``uwsgi`` module exists only in a process uWSGI runs (its Python plugin puts
it in ``sys.modules`` before it loads anything): elsewhere this does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def install(handler: Callable[[], None]) -> None:
    """Have uWSGI call ``handler`` in every process it forks, before any other post-fork hook."""
    uwsgi: Any = sys.modules.get("uwsgi")
    if uwsgi is None:
        return
    previous = getattr(uwsgi, "post_fork_hook", None)
    uwsgi.post_fork_hook = handler if previous is None else _chained(handler, previous)


def _chained(handler: Callable[[], None], previous: Callable[[], Any]) -> Callable[[], None]:
    """``handler``, then the hook that was there before (the application's own)."""

    def post_fork_hook() -> None:
        handler()
        previous()

    return post_fork_hook
