"""``--log-file``: the daemon's log, opened before anything forks, reopened on SIGHUP."""

from __future__ import annotations

import logging
import os
from io import TextIOWrapper
from pathlib import Path

from django.core.management.base import CommandError

from mysqlpool.daemon.daemonfile import DaemonFile, Owner

FORMAT = "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"

logger = logging.getLogger("mysqlpool.daemon")


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
