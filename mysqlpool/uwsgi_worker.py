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
is there, and stays in front of any set later. uwsgidecorators' ``@postfork`` is
built on it: importing uwsgidecorators sets ``uwsgi.post_fork_hook`` to a function
that runs its list of ``@postfork`` functions, and other libraries do the same.
Imported after mysqlpool, such a module used to replace the handler (tried: both
workers then used the master's connection). So the ``uwsgi`` module's class
becomes a ModuleType subclass whose ``__setattr__`` puts the handler in front of
any hook assigned later (the way the Python documentation shows to customize a
module's attribute access): the C plugin reads the attribute from the module's
dict, where it lands as before. uwsgidecorators is not imported here to join its
list instead: the import also replaces ``uwsgi.spooler`` with its own, and fails
in a uWSGI without a master.

The ``uwsgi`` module exists only in a process uWSGI runs (its Python plugin puts
it in ``sys.modules`` before it loads anything): elsewhere this does nothing.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

HOOK = "post_fork_hook"


def install(handler: Callable[[], None]) -> None:
    """Have uWSGI call ``handler`` in every process it forks, before any other post-fork hook."""
    uwsgi: Any = sys.modules.get("uwsgi")
    if uwsgi is None:
        return
    previous = getattr(uwsgi, HOOK, None)
    setattr(uwsgi, HOOK, handler if previous is None else _chained(handler, previous))
    uwsgi.__class__ = _keeping_in_front(handler, type(uwsgi))


def _keeping_in_front(handler: Callable[[], None], module_class: type[Any]) -> type[types.ModuleType]:
    """A class for the ``uwsgi`` module that puts ``handler`` in front of every hook set later."""

    class UwsgiModule(module_class):  # type: ignore[misc]  # ModuleType, or a subclass of it
        def __setattr__(self, name: str, value: Any) -> None:
            if name == HOOK and value is not None:
                value = _chained(handler, value)
            super().__setattr__(name, value)

    return UwsgiModule


def _chained(handler: Callable[[], None], previous: Callable[[], Any]) -> Callable[[], None]:
    """``handler``, then the hook that was there before (the application's own)."""

    def post_fork_hook() -> None:
        handler()
        previous()

    return post_fork_hook
