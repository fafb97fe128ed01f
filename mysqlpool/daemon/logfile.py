"""Where a daemon's log goes: ``--log-file`` (opened before anything forks, reopened
on SIGHUP), or stderr when the project's LOGGING gives it nowhere to go."""

from __future__ import annotations

import logging
import os
import sys
from io import TextIOWrapper
from pathlib import Path

from django.core.management.base import CommandError

from mysqlpool.daemon.daemonfile import DaemonFile, Owner

FORMAT = "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"

logger = logging.getLogger("mysqlpool.daemon")

# By -v verbosity: the levels of the pools' logger (mysqlpool) and the daemon's.
_LEVELS = {
    0: (logging.WARNING, logging.WARNING),
    1: (logging.WARNING, logging.INFO),
    2: (logging.INFO, logging.INFO),
}


class LogFile(logging.FileHandler):
    """A FileHandler whose file is opened as a daemon's must be (see daemonfile)."""

    def __init__(self, path: Path, owner: Owner) -> None:
        self.path, self.owner = path, owner
        super().__init__(path, encoding="utf-8")

    def _open(self) -> TextIOWrapper:
        fd = DaemonFile(self.path, "log file", self.owner, os.O_APPEND).detach()
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def open_log_file(path: Path, owner: Owner) -> LogFile:
    """A handler on ``path`` for the root logger, or a CommandError saying why not."""
    handler = LogFile(path, owner)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def log_to_stderr_unless_configured(verbosity: int) -> None:
    """Log to stderr when nothing handles the daemon's records, at ``-v`` VERBOSITY.

    As gunicorn and Celery do, a daemon speaks by default: in a terminal, and
    under systemd, whose journal takes stderr. Python's own fallback shows
    warnings only. LOGGING that handles ``mysqlpool.daemon`` (or the root logger),
    and ``--log-file``, rule instead. Verbosity 0 shows warnings and errors; 1
    (Django's default) the daemon's start, progress and stop lines too; 2 also
    the pools' own (created, closed, connections invalidated); 3 everything.
    """
    daemon_logger = logging.getLogger("mysqlpool.daemon")
    if daemon_logger.hasHandlers():
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    pool_logger = logging.getLogger("mysqlpool")
    pool_logger.addHandler(handler)
    pool_level, daemon_level = _LEVELS.get(verbosity, (logging.DEBUG, logging.DEBUG))
    pool_logger.setLevel(pool_level)
    daemon_logger.setLevel(daemon_level)


def reopen_log_files() -> None:
    """After logrotate moved them: every FileHandler of the root logger opens its path anew."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            _reopen(handler)


def _reopen(handler: logging.FileHandler) -> None:
    # The new file first: a daemon that cannot open it (its directory gone, the
    # disk full) keeps writing to the old one rather than dying.
    try:
        stream = handler._open()
    except CommandError as error:  # LogFile's, naming the file and why
        reason = str(error)
    except OSError as error:
        reason = f"Cannot open the log file {handler.baseFilename}: {error.strerror}."
    else:
        previous = handler.setStream(stream)
        if previous is not None:
            previous.close()
        return
    logger.warning("%s Still writing to the previous one.", reason)
