"""Warnings that an exhausted pool or budget repeats, logged at most once per interval.

Timeouts come in storms: while a pool or the budget stays full, every thread in
line gives up after the same timeout, each with the same message and list of
holders (64 threads, 64 copies). The first is logged; those that follow within
``INTERVAL`` seconds are only counted, and the next one logged says how many.
"""

from __future__ import annotations

import logging
import threading
import time

INTERVAL = 10.0  # seconds


class ThrottledWarning:
    """One kind of warning of ``logger``, logged at most once per ``INTERVAL`` seconds."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self._quiet_until = 0.0  # monotonic
        self._unlogged = 0

    def warn(self, message: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._quiet_until:
                self._unlogged += 1
                return
            self._quiet_until = now + INTERVAL
            unlogged, self._unlogged = self._unlogged, 0
        if unlogged:
            message += f"\n({unlogged} more like it since the last one logged were not logged)"
        self._logger.warning("%s", message)
