"""A locked pidfile: one running instance per pidfile, stale ones taken over.

python-daemon's pidfile (lockfile's PIDLockFile) cannot tell a stale pidfile from a
live one (and a zombie answers ``kill(pid, 0)``). An ``flock()`` held for the
daemon's life can: the kernel drops it when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from django.core.management.base import CommandError


class PidFile:
    """The pidfile at ``path``, locked by the process that writes its pid in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._owner: int | None = None

    def check_free(self) -> None:
        """CommandError naming the running instance, if one holds the pidfile."""
        fd = self._open()
        try:
            self._lock(fd)
        finally:
            os.close(fd)

    def acquire(self) -> None:
        """Lock the pidfile for this process and write its pid in it."""
        fd = self._open()
        try:
            self._lock(fd)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._owner = fd, os.getpid()

    def release(self) -> None:
        """Remove the pidfile, in the process that wrote it only (never a forked child)."""
        if self._fd is None or self._owner != os.getpid():
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise CommandError(f"Cannot open the pidfile {self.path}: {error.strerror}.") from None

    def _lock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = self.path.read_text().strip() or "unknown"
            raise CommandError(
                f"Already running: the pidfile {self.path} is held by pid {pid}. Stop that process first."
            ) from None
