"""Django management commands run as real processes against the tests' server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from django.db import connections

from tests import dbserver

ROOT = Path(__file__).resolve().parent.parent


def start_command(
    database_server: dbserver.Server,
    *args: str,
    settings: str = "tests.daemon_settings",
    umask: int = -1,
    python: Sequence[str] = (sys.executable,),
    **environ: str,
) -> subprocess.Popen[str]:
    """``python -m django ARGS`` in a fresh process, on the test database (see tests/daemon_settings.py).

    ``python`` may be a command that runs Python (under strace, say); ``umask`` is
    the process's, if not -1.
    """
    env = {
        **os.environ,
        **database_server.environ(),
        "MYSQLPOOL_TEST_DATABASE": connections["default"].settings_dict["NAME"],
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": str(ROOT),
        **environ,
    }
    return subprocess.Popen(
        [*python, "-m", "django", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        umask=umask,
    )


def server_connections_of(pid: int, port: int) -> int:
    """TCP connections that process ``pid`` holds open to ``port`` on this host (read from /proc)."""
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
    count = 0
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            remote_port, state, inode = int(fields[2].rsplit(":", 1)[1], 16), fields[3], fields[9]
            count += remote_port == port and state == _ESTABLISHED and inode in sockets
    return count


_ESTABLISHED = "01"  # the state column of /proc/net/tcp
