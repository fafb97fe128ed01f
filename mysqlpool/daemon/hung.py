"""Units of work running longer than ``--unit-timeout``: each logged once, with where
its thread is, in the style of the budget's holder messages."""

from __future__ import annotations

import logging
import sys
import time
import traceback

from mysqlpool.daemon.threads import WorkerThreads

logger = logging.getLogger("mysqlpool.daemon")


class HungUnits:
    """Watches the units in flight of ``workers``; ``check()`` runs about once a second."""

    def __init__(self, workers: WorkerThreads, timeout: float) -> None:
        self.workers = workers
        self.timeout = timeout
        self._reported: set[tuple[int, float]] = set()  # (thread ident, unit start)

    def check(self) -> None:
        now = time.monotonic()
        running = set(self.workers.running.copy().items())
        self._reported &= running  # finished units are forgotten
        overdue = {unit for unit in running - self._reported if now - unit[1] > self.timeout}
        if not overdue:
            return
        frames = sys._current_frames()
        for ident, started in sorted(overdue, key=lambda unit: unit[1]):
            self._reported.add((ident, started))
            frame = frames.get(ident)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "  (unknown)\n"
            filename, line, function = _site(frame)
            logger.warning(
                "A unit of work runs longer than --unit-timeout %gs: thread %r has run it for %.1fs, "
                "now at %s:%s in %s; its stack:\n%s",
                self.timeout,
                self.workers.thread_name(ident),
                now - started,
                filename,
                line,
                function,
                stack.rstrip("\n"),
            )


def _site(frame: object) -> tuple[str, int | str, str]:
    if frame is None:
        return "unknown", "?", "?"
    summary = traceback.extract_stack(frame, limit=1)[-1]  # type: ignore[arg-type]
    return summary.filename, summary.lineno or "?", summary.name
