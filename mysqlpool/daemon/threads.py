"""Worker threads: each runs units of work, one ``auto_close_db`` around each, until stopped."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from mysqlpool.autoclose import auto_close_db
from mysqlpool.daemon.failures import FailureLog

logger = logging.getLogger("mysqlpool.daemon")

# After a unit raised: wait about this long before the next, doubling up to the
# maximum, so that a broken dependency does not turn into a busy loop. Each wait
# is drawn between half the backoff and the backoff: threads that failed together
# (a database outage) do not retry in lockstep.
ERROR_BACKOFF = 0.1
MAX_ERROR_BACKOFF = 30.0


class WorkerThreads:
    """``count`` threads running ``unit`` until ``stop`` is set.

    ``unit`` returns something truthy when it did work and falsy when there was
    nothing to do; then the thread sleeps ``interval`` (waking at once on stop). A
    unit that raises is logged (see FailureLog) and the thread carries on after a
    backoff: a worker thread never dies silently. A unit that raises SystemExit
    (``exit()``) or another BaseException stops the process instead, and sets
    ``aborted``. A unit in flight when ``stop`` is set finishes; none starts after
    it. After ``max_units`` units done, ``stop`` is set (a worker process is then
    recycled).
    """

    def __init__(
        self,
        unit: Callable[[], object],
        count: int,
        interval: float,
        stop: threading.Event,
        on_start: Callable[[], None],
        on_stop: Callable[[], None],
        max_units: int | None = None,
    ) -> None:
        self.unit, self.interval, self.stop = unit, interval, stop
        self.max_units = max_units
        self.on_start, self.on_stop = on_start, on_stop
        self.done = 0
        self.errors = 0
        # Set when on_start raised: the process cannot work, and says so.
        self.boot_failed = threading.Event()
        # Set when a unit raised a BaseException that is no Exception.
        self.aborted = threading.Event()
        self.failures = FailureLog()
        # The units in flight: thread ident -> when it started (time.monotonic()).
        # Written without a lock (a dict's item assignment and pop are atomic);
        # readers take a copy, as atomic.
        self.running: dict[int, float] = {}
        # When a unit last started or finished.
        self.last_progress = time.monotonic()
        self._count_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"worker-{number}", daemon=True)
            for number in range(1, count + 1)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for every thread, ``timeout`` seconds in all; True if all ended."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))
        return not self.alive()

    def alive(self) -> bool:
        """Whether any worker thread is still running."""
        return any(thread.is_alive() for thread in self._threads)

    @property
    def count(self) -> int:
        return len(self._threads)

    def thread_name(self, ident: int) -> str:
        return next((thread.name for thread in self._threads if thread.ident == ident), str(ident))

    def stalled_for(self) -> float:
        """Seconds since a unit last started or finished, if every thread is in one; else 0."""
        if len(self.running.copy()) < len(self._threads):
            return 0.0
        return time.monotonic() - self.last_progress

    def _run(self) -> None:
        try:
            self.on_start()
        except Exception:
            logger.exception("A worker thread failed to start")
            self.boot_failed.set()
            self.stop.set()
            return
        backoff = ERROR_BACKOFF
        try:
            while not self.stop.is_set():
                try:
                    did_work = self._run_unit()
                except Exception as error:
                    self.failures.failed(error)
                    self._count(errors=1)
                    self.stop.wait(random.uniform(backoff / 2, backoff))
                    backoff = min(backoff * 2, MAX_ERROR_BACKOFF)
                    continue
                except BaseException as error:
                    # SystemExit would end this thread silently, and the process
                    # would go on with fewer threads: it stops, with a failure.
                    logger.exception("A unit of work raised %s: stopping the process", type(error).__name__)
                    self._count(errors=1)
                    self.aborted.set()
                    self.stop.set()
                    return
                backoff = ERROR_BACKOFF
                if did_work:
                    self._count(done=1)
                else:
                    self.stop.wait(self.interval)
        finally:
            self.on_stop()

    def _run_unit(self) -> object:
        ident = threading.get_ident()
        self.running[ident] = self.last_progress = time.monotonic()
        try:
            with auto_close_db():
                return self.unit()
        finally:
            self.running.pop(ident, None)
            self.last_progress = time.monotonic()

    def _count(self, done: int = 0, errors: int = 0) -> None:
        with self._count_lock:
            self.done += done
            self.errors += errors
            if self.max_units is not None and self.done >= self.max_units:
                self.stop.set()
