"""The MariaDB server the tests, benchmarks and scripts talk to.

If ``MYSQLPOOL_TEST_HOST`` is set, that server is used (with ``MYSQLPOOL_TEST_PORT``,
``MYSQLPOOL_TEST_USER`` and ``MYSQLPOOL_TEST_PASSWORD``); otherwise a throwaway
server is started from the system's ``mariadbd`` with a temporary datadir on a free
port, and removed afterwards. mirakuru runs the process; pytest-mysql's executor
is not used because it reads the system's ``my.cnf`` (Debian's sets user=mysql,
port 3306 and a shared socket) and has no way to pass ``--no-defaults``.

As a script, it runs a command with such a server and the variables above set::

    python tests/dbserver.py -- python -m pytest
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import MySQLdb
from mirakuru import TCPExecutor
from mirakuru.base import cleanup_subprocesses
from port_for import get_port

# mirakuru's TCPExecutor starts the tests' servers (tests/redisserver.py imports it
# from here). Importing mirakuru registers an exit handler, ``cleanup_subprocesses``:
# when the process exits, it SIGKILLs every process on the machine whose
# ``mirakuru_uuid`` variable *contains* the exiting process's pid (mirakuru 3.1,
# ``processes_with_env``, matches a substring). A server's variable is its
# starter's pid and a uuid4, like ``4012:9f1c0394-...``: any process that imported
# mirakuru and exits normally with a pid among those digits (4012, 394, 12, ...)
# kills that server. The daemon, web and Celery processes the tests start import
# this module through their settings; one of them, exiting, killed the tests'
# MariaDB mid-run (seen in CI: every later test failed with error 2002), and a run
# that exits may kill another run's servers. Every server here is stopped by the
# context manager that started it, so the handler adds nothing but that: it is
# unregistered (tests/test_harness.py fails without this).
atexit.unregister(cleanup_subprocesses)

ENV_HOST = "MYSQLPOOL_TEST_HOST"
ENV_PORT = "MYSQLPOOL_TEST_PORT"
ENV_USER = "MYSQLPOOL_TEST_USER"
ENV_PASSWORD = "MYSQLPOOL_TEST_PASSWORD"

# Small buffers keep startup fast and memory low; the tests need no durability.
_SERVER_OPTIONS = (
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=0",
    "--max-connections=500",
    "--skip-log-bin",
)


@dataclass(frozen=True)
class Server:
    """Where a MariaDB server listens, and who may log in."""

    host: str
    port: int
    user: str
    password: str

    def environ(self) -> dict[str, str]:
        return {
            ENV_HOST: self.host,
            ENV_PORT: str(self.port),
            ENV_USER: self.user,
            ENV_PASSWORD: self.password,
        }


def configured_server() -> Server | None:
    """The server named by the environment, if any."""
    host = os.environ.get(ENV_HOST)
    if not host:
        return None
    return Server(
        host=host,
        port=int(os.environ.get(ENV_PORT) or 3306),
        user=os.environ.get(ENV_USER) or "root",
        password=os.environ.get(ENV_PASSWORD, ""),
    )


def _which(*names: str) -> str:
    for name in names:
        for directory in (None, "/usr/sbin", "/usr/local/sbin", "/usr/bin"):
            found = shutil.which(name, path=directory)
            if found:
                return found
    raise RuntimeError(
        f"None of {', '.join(names)} was found: install MariaDB's server "
        "(e.g. `apt-get install mariadb-server`), or set "
        f"{ENV_HOST} to use a running server."
    )


@dataclass
class OwnedServer:
    """A throwaway server that its tests may stop, start and restart (fault tests)."""

    server: Server
    executor: TCPExecutor
    log: Path
    # Where it also listens on a Unix socket: from any network namespace, past any
    # packet filter (tests/netlab.py).
    socket: Path

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's error log, to show when tests failed."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"(no server log: {error})"

    def restart(self) -> None:
        self.executor.stop()
        self.executor.start()


@contextlib.contextmanager
def throwaway_server() -> Iterator[Server]:
    """Start a private MariaDB server in a temporary directory; stop and remove it."""
    with owned_server() as owned:
        yield owned.server


@contextlib.contextmanager
def owned_server() -> Iterator[OwnedServer]:
    """A throwaway server, with the means to stop and restart it."""
    base = Path(tempfile.mkdtemp(prefix="mysqlpool-db-"))
    datadir = base / "data"
    subprocess.run(
        [
            _which("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    try:
        executor, server = _start(base, datadir)
        try:
            yield OwnedServer(server, executor, base / "server.log", base / "server.sock")
        finally:
            executor.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start(base: Path, datadir: Path, attempts: int = 5) -> tuple[TCPExecutor, Server]:
    """Start mariadbd on a free port, and make sure the port answers with it.

    Another run may take the same free port between our choice and the server's
    bind; its server would then answer our checks. Asking for the datadir tells.
    """
    tmpdir = base / "tmp"
    tmpdir.mkdir(exist_ok=True)
    for _ in range(attempts):
        port = get_port(None)
        assert port is not None
        command = [
            _which("mariadbd", "mysqld"),
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={base / 'server.sock'}",
            f"--pid-file={base / 'server.pid'}",
            f"--log-error={base / 'server.log'}",
            # Its own: a server deletes the temporary files it finds in its tmpdir when
            # it starts, those of a server still running from the same /tmp included
            # (which then crashed, deleting a temporary table).
            f"--tmpdir={tmpdir}",
            *_SERVER_OPTIONS,
        ]
        # The server logs to server.log; what it prints before opening it is noise.
        executor = TCPExecutor(
            command, host="127.0.0.1", port=port, timeout=60, shell=False, stderr=subprocess.DEVNULL
        )
        executor.start()
        server = Server(host="127.0.0.1", port=port, user="root", password="")
        if _datadir(server) == datadir and executor.running():
            return executor, server
        executor.stop()
    raise RuntimeError(f"could not start mariadbd on a free port in {attempts} attempts; see {base}")


def _datadir(server: Server) -> Path | None:
    try:
        connection = MySQLdb.connect(host=server.host, port=server.port, user=server.user)
    except MySQLdb.OperationalError:  # another server, with other accounts
        return None
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("SELECT @@datadir")
        return Path(cursor.fetchone()[0])


@contextlib.contextmanager
def test_server() -> Iterator[Server]:
    """The configured server, or else a throwaway one."""
    server = configured_server()
    if server is not None:
        yield server
        return
    with throwaway_server() as server:
        yield server


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: dbserver.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with test_server() as server:
        return subprocess.call(argv, env={**os.environ, **server.environ()})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
