"""``--log-file``: the daemon's log, opened before anything forks, reopened on SIGHUP."""

from __future__ import annotations

import logging
from pathlib import Path

from django.core.management.base import CommandError

FORMAT = "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"


def open_log_file(path: Path) -> logging.FileHandler:
    """A handler on ``path`` for the root logger, or a CommandError saying why not."""
    try:
        handler = logging.FileHandler(path, delay=False)
    except OSError as error:
        raise CommandError(f"Cannot write the log file {path}: {error.strerror}.") from None
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
            handler.acquire()
            try:
                handler.close()
                handler.stream = handler._open()
            finally:
                handler.release()
