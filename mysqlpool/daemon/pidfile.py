"""A locked pidfile: one running instance per pidfile, stale ones taken over.

python-daemon's pidfile (lockfile's PIDLockFile) cannot tell a stale pidfile from a
live one (and a zombie answers ``kill(pid, 0)``). An ``flock()`` held for the
daemon's life can: the kernel drops it when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from django.core.management.base import CommandError

from mysqlpool.daemon.daemonfile import DaemonFile, Owner

logger = logging.getLogger("mysqlpool.daemon")


class PidFile:
    """The pidfile at ``path``, locked by the process that writes its pid in it."""

    def __init__(self, path: Path, owner: Owner) -> None:
        self.path, self.owner = path, owner
        self._file: DaemonFile | None = None
        self._writer: int | None = None

    def lock(self) -> None:
        """Lock the pidfile, or a CommandError naming the running instance that holds it.

        Before detaching, so that a refused start fails where its launcher can tell;
        the lock lasts as long as the descriptor, which the daemon keeps.
        """
        file = DaemonFile(self.path, "pidfile", self.owner)
        try:
            fcntl.flock(file.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(file.fd)
            file.close()
            raise CommandError(
                f"Already running: the pidfile {self.path} is held by pid {pid}. Stop that process first."
            ) from None
        except BaseException:
            file.close()
            raise
        if os.fstat(file.fd).st_size:  # left by a daemon that did not remove it
            logger.info(
                "Taking over the pidfile %s, left by pid %s, which is gone", self.path, _pid_in(file.fd)
            )
        self._file = file

    def descriptors(self) -> list[int]:
        """The descriptors to keep open while detaching."""
        return [self._file.fd, self._file.dir_fd] if self._file is not None else []

    def write_pid(self) -> None:
        """Write the pid of this process (the daemon's, once detached) in the locked pidfile."""
        assert self._file is not None, "lock() first"
        os.ftruncate(self._file.fd, 0)
        os.pwrite(self._file.fd, f"{os.getpid()}\n".encode(), 0)
        self._writer = os.getpid()

    def release(self) -> None:
        """Remove the pidfile, in the process that wrote it only (never a forked child)."""
        if self._file is None or self._writer not in (None, os.getpid()):
            return
        try:
            if not self._file.unlink():
                logger.warning("The pidfile %s is gone or is another file now: left as it is", self.path)
        except PermissionError:
            logger.warning(
                "Cannot remove the pidfile %s: the daemon's user cannot write to its directory. "
                "The next start takes it over.",
                self.path,
            )
        finally:
            self._file.close()
            self._file = None


def _pid_in(fd: int) -> str:
    """The pid written in the pidfile, or 'unknown': its content is shown only if it is one."""
    text = os.pread(fd, 32, 0).strip()
    return text.decode() if text.isdigit() else "unknown"
