"""Django management commands and servers run as real processes against the tests' server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from django.db import connections

from tests import dbserver

if TYPE_CHECKING:
    from typing_extensions import Self

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
    return start_module(
        database_server, "django", *args, settings=settings, umask=umask, python=python, **environ
    )


def start_module(
    database_server: dbserver.Server,
    module: str,
    *args: str,
    settings: str,
    umask: int = -1,
    python: Sequence[str] = (sys.executable,),
    **environ: str,
) -> subprocess.Popen[str]:
    """``python -m MODULE ARGS`` in a fresh process, as start_process() starts it."""
    command = [*python, "-m", module, *args]
    return start_process(database_server, command, settings=settings, umask=umask, **environ)


def start_process(
    database_server: dbserver.Server,
    command: Sequence[str],
    *,
    settings: str,
    umask: int = -1,
    output: IO[str] | None = None,
    new_session: bool = False,
    database: str | None = None,
    **environ: str,
) -> subprocess.Popen[str]:
    """``command`` in a fresh process, with Django's settings on the test database.

    Its output goes to pipes, or both streams to ``output``: a server that logs
    more than a pipe holds while nobody reads would stop. With ``new_session``, it
    leads a process group of its own, which its children join. ``database``: the
    database's name, if not the test database.
    """
    env = {
        **os.environ,
        **database_server.environ(),
        "MYSQLPOOL_TEST_DATABASE": database or connections["default"].settings_dict["NAME"],
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": str(ROOT),
        **environ,
    }
    return subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=output or subprocess.PIPE,
        stderr=output or subprocess.PIPE,
        text=True,
        umask=umask,
        start_new_session=new_session,
    )


def wait_for(condition: Callable[[], object], timeout: float = 30, what: str = "condition") -> None:
    """Return once ``condition()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met in {timeout}s"
        time.sleep(0.02)


class ServerProcess:
    """A server a test starts (``python -m MODULE``), its output in ``log``.

    As a context manager, it kills the server and every process of its group at
    exit if the test did not stop it: a failed test leaves no server running.
    """

    # How the server may end after a graceful stop.
    exit_codes: tuple[int, ...] = (0,)

    def __init__(
        self,
        database_server: dbserver.Server,
        log: Path,
        module: str,
        *args: str,
        settings: str = "tests.servers_settings",
        database: str | None = None,
        **environ: str,
    ) -> None:
        self.log = log
        with log.open("w") as output:
            self.process = start_process(
                database_server,
                [*self.command(module), *args, *self.own_arguments(module)],
                settings=settings,
                output=output,
                new_session=True,
                database=database,
                **environ,
            )
        try:
            self.wait_until_ready()
        except BaseException:
            self.kill()
            raise

    def command(self, module: str) -> list[str]:
        """What starts the server: ``python -m MODULE`` here."""
        return [sys.executable, "-m", module]

    def own_arguments(self, module: str) -> list[str]:
        """Arguments a kind of server adds to the test's (none here)."""
        return []

    def wait_until_ready(self) -> None:
        """Return once the server serves (at once here)."""

    def stop(self) -> None:
        """SIGTERM, a graceful stop, after which the server must end as ``exit_codes`` say."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code: int | str = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = "none: still running 60 s after SIGTERM"
        finally:
            self.kill()
        assert code in self.exit_codes, f"exit status {code}: {self.log.read_text()}"

    def kill(self) -> None:
        """SIGKILL to the server's process group (its workers too), unless it has ended.

        Only while the server is not yet reaped is its pid surely its group's: once
        reaped, the number may go to an unrelated process (pids wrap around).
        """
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


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
    return len(sockets & set(established_to(port).values()))


def established_to(port: int) -> dict[int, str]:
    """This host's client sockets connected to ``port``: local port -> socket inode.

    A socket its process closed (or that died with it) is no longer ESTABLISHED,
    even while the server has not yet ended the session.
    """
    found = {}
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if _port(fields[2]) == port and fields[3] == _ESTABLISHED:
                found[_port(fields[1])] = fields[9]
    return found


def _port(address: str) -> int:
    """The port of an address column of /proc/net/tcp (hexadecimal)."""
    return int(address.rsplit(":", 1)[1], 16)


_ESTABLISHED = "01"  # the state column of /proc/net/tcp
