"""A throwaway redis-server, the broker of the Celery tests: a free port, a temporary directory."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from port_for import get_port

from tests.dbserver import TCPExecutor  # with mirakuru's exit handler taken off


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    """Start redis-server without persistence; yield its URL; stop it and remove its files."""
    executable = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
    if executable is None:
        raise RuntimeError("redis-server was not found: install it (`apt-get install redis-server`)")
    base = Path(tempfile.mkdtemp(prefix="mysqlpool-redis-"))
    port = get_port(None)
    assert port is not None
    command = [
        executable,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(base),
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(base / "redis.log"),
    ]  # fmt: skip
    executor = TCPExecutor(
        command, host="127.0.0.1", port=port, timeout=30, shell=False, stderr=subprocess.DEVNULL
    )
    executor.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        executor.stop()
        shutil.rmtree(base, ignore_errors=True)
