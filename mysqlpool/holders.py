"""Who holds the connections checked out in this process, and since when.

Recorded for every checkout while a budget or a hold warning is set, so that an
exhausted budget names each holder (thread, alias, how long, where the user's code
checked it out), and a connection held longer than MYSQLPOOL_HOLD_WARNING is
warned about once.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from types import FrameType

logger = logging.getLogger("mysqlpool")

# Frames in these directories are the machinery between the user's code and the
# checkout; the checkout site reported is the first frame outside them.
_MACHINERY = tuple(
    str(Path(module.__file__).resolve().parent)
    for module in (sys.modules["django"], sys.modules["mysqlpool"])
    if module.__file__
)

# Whether a source file is machinery, by its name as code objects give it: asked
# for every frame between the user's code and a checkout, on every checkout.
_machinery_files: dict[str, bool] = {}


def checkout_site() -> tuple[str, int, str] | None:
    """Where the user's code asked for the connection: file, line and function.

    Formatted only when shown: this runs on every checkout under a budget.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        machinery = _machinery_files.get(filename)
        if machinery is None:
            machinery = filename.startswith(_MACHINERY) or filename.startswith("<")
            _machinery_files[filename] = machinery
        if not machinery:
            return (filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
    return None


class Holder:
    """Who holds a checked-out connection, since when, and from where."""

    __slots__ = ("alias", "since", "site", "thread", "warned")

    def __init__(self, alias: str) -> None:
        self.alias = alias
        # The thread's name is looked up when shown: that is rare, a checkout is not.
        self.thread = threading.get_ident()
        self.since = time.monotonic()
        self.site = checkout_site()
        self.warned = False

    def describe(self, now: float) -> str:
        if self.site is None:
            site = "unknown"
        else:
            filename, line, function = self.site
            site = f"{filename}:{line} in {function}"
        return (
            f"{self._thread_name()} holds a connection of alias {self.alias!r} for "
            f"{now - self.since:.1f}s, checked out at {site}"
        )

    def _thread_name(self) -> str:
        for thread in threading.enumerate():
            if thread.ident == self.thread:
                return f"thread {thread.name!r}"
        return f"a thread that has ended (ident {self.thread})"


class Holders:
    """The holders of the process's checked-out connections, by checkout."""

    def __init__(self) -> None:
        self.hold_warning: float | None = None
        self._watchdog: threading.Thread | None = None
        self._watchdog_lock = threading.Lock()
        # Written without a lock, on every checkout and check-in: a dict's item
        # assignment and pop are atomic. Readers take a copy, as atomic.
        self._holders: dict[int, Holder] = {}

    def __len__(self) -> int:
        return len(self._holders)

    def hold(self, key: int, alias: str) -> None:
        self._holders[key] = Holder(alias)
        if self.hold_warning is not None and self._watchdog is None:
            self._start_watchdog()

    def release(self, key: int) -> None:
        self._holders.pop(key, None)

    def forget_all(self) -> None:
        """Check-ins no longer release holds: forget them all, lest stale ones be shown later."""
        self._holders.clear()

    def describe_all(self) -> list[str]:
        """One line per holder, the longest holding first."""
        now = time.monotonic()
        holders = sorted(self._holders.copy().values(), key=lambda holder: holder.since)
        return [holder.describe(now) for holder in holders]

    def _start_watchdog(self) -> None:
        with self._watchdog_lock:
            if self._watchdog is None:
                self._watchdog = threading.Thread(
                    target=self._watch, name="mysqlpool-hold-watchdog", daemon=True
                )
                self._watchdog.start()

    def _watch(self) -> None:
        """Warn once about each connection held longer than the hold warning."""
        while self.hold_warning is not None:
            time.sleep(max(self.hold_warning / 4, 0.05))
            now = time.monotonic()
            overdue = [
                holder
                for holder in self._holders.copy().values()
                if not holder.warned and now - holder.since > (self.hold_warning or 0)
            ]
            for holder in overdue:
                holder.warned = True
            for holder in overdue:
                logger.warning(
                    "A connection is held longer than %ss: %s", self.hold_warning, holder.describe(now)
                )
        self._watchdog = None
