"""The failures of units of work, logged so that an outage does not flood the log.

The first failure of a kind (its exception's type and message) is logged with its
traceback; the same failure again is only counted, and the counts are logged at each
report (each progress line). A kind that did not recur since the last report is
forgotten, so that its next failure shows its traceback again.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("mysqlpool.daemon")

# Kinds remembered at once; beyond, failures are told apart by type only, so that
# messages that differ every time (an id in them) cannot fill the memory.
MAX_KINDS = 100


class FailureLog:
    """Counts the failures of the units of a process, and logs each kind once per report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._repeats: dict[str, int] = {}  # kind -> failures since its first, or the last report
        self._since = time.monotonic()

    def failed(self, error: BaseException) -> None:
        """Log ``error`` with its traceback if it is the first of its kind; else count it."""
        with self._lock:
            kind = self._kind(error)
            first = kind not in self._repeats
            self._repeats[kind] = 0 if first else self._repeats[kind] + 1
        if first:
            logger.error(
                "A unit of work failed; the thread carries on (the same failure again is counted, "
                "not logged)",
                exc_info=error,
            )

    def report(self) -> None:
        """Log how often each kind of failure recurred since the last report."""
        with self._lock:
            repeats = self._repeats
            self._repeats = {kind: 0 for kind, count in repeats.items() if count}
            elapsed, self._since = time.monotonic() - self._since, time.monotonic()
        for kind, count in repeats.items():
            if count:
                times = "time" if count == 1 else "times"
                logger.error("%s: %d more %s in the last %.0fs", kind, count, times, elapsed)

    def _kind(self, error: BaseException) -> str:
        name = f"{type(error).__module__}.{type(error).__qualname__}"
        try:
            kind = f"{name}: {error}"
        except Exception:  # a broken __str__ must not end the thread that reports it
            return name
        return kind if kind in self._repeats or len(self._repeats) < MAX_KINDS else name
