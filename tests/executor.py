"""mirakuru's TCPExecutor, which starts the tests' servers, without mirakuru's exit handler.

Importing mirakuru registers ``cleanup_subprocesses`` with atexit: when the process
exits, it SIGKILLs every process on the machine whose ``mirakuru_uuid`` variable
*contains* the exiting process's pid (mirakuru 3.1, ``processes_with_env``
matches a substring). A server's variable is its starter's pid and a uuid4, like
``4012:9f1c0394-...``: any process that imported mirakuru and exits normally with
a pid among those digits (4012, 394, 12, ...) kills that server. The daemon, web and
Celery processes the tests start import tests.dbserver through their settings;
one of them, exiting, killed the tests' MariaDB mid-run (seen in CI: every later
test failed with error 2002), and a run that exits may kill another run's servers.
Every server here is stopped by the context manager that started it, so the
handler adds nothing but that: it is unregistered. Import TCPExecutor from here,
never from mirakuru (tests/test_harness.py).
"""

from __future__ import annotations

import atexit

from mirakuru import TCPExecutor
from mirakuru.base import cleanup_subprocesses

atexit.unregister(cleanup_subprocesses)

__all__ = ["TCPExecutor"]
