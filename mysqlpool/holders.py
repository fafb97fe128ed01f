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
from collections.abc import Callable
from pathlib import Path
from threading import get_ident
from time import monotonic
from types import CodeType, FrameType
from typing import NamedTuple

try:
    from mysqlpool._holders import Recorder as CRecorder
except ImportError:  # built without a C compiler: the Python Recorder below
    CRecorder = None  # type: ignore[assignment,misc]

logger = logging.getLogger("mysqlpool")

# Frames in these directories are the machinery between the user's code and the
# checkout; the checkout site reported is the first frame outside them.
_MACHINERY = tuple(
    str(Path(module.__file__).resolve().parent)
    for module in (sys.modules["django"], sys.modules["mysqlpool"])
    if module.__file__
)

# Whether a source file is machinery, by its name as code objects give it: asked
# on every checkout.
_machinery_files: dict[str, bool] = {}

# Where a checkout was made: the code object of the innermost frame of the user's
# code and the offset of its running instruction (``f_lasti``; the line is found
# only when shown: ``f_lineno`` searches the code's line table on every checkout),
# or None if the stack has none.
Site = tuple[CodeType, int] | None

_getframe = sys._getframe


def _line_of(code: CodeType, offset: int) -> int | None:
    """The source line of the instruction at ``offset`` (a frame's ``f_lasti``) in ``code``."""
    for start, end, line in code.co_lines():
        if start <= offset < end:
            return line
    return None


def _is_machinery(filename: str) -> bool:
    machinery = _machinery_files.get(filename)
    if machinery is None:
        # Code typed in a shell (``<console>``, ``<string>``, ``<stdin>``) is the
        # user's; ``<frozen importlib._bootstrap>`` runs an import that queries.
        machinery = filename.startswith(_MACHINERY) or filename.startswith("<frozen ")
        _machinery_files[filename] = machinery
    return machinery


class Recorder:
    """Records each checkout's holder, and forgets it at check-in.

    The reference for mysqlpool/_holders.c, which does the same in C and is used
    wherever a C compiler built it at install: a budget's tracking then costs about
    4,000 instructions per request cycle instead of 8,700 (bench/README.rst).
    """

    def __init__(self, holders: dict[int, tuple[str, int, float, Site]]) -> None:
        self._holders = holders
        # Called after each hold unless None: Holders starts its watchdog so.
        self.on_hold: Callable[[], object] | None = None
        # How deep, from hold(), the user's frame was at the last checkout: the next
        # checkout is most likely made the same way (the same request cycle again).
        # Read and written by any thread without a lock: any depth is only a guess.
        self._last_depth = 1

    def hold(self, key: int, alias: str) -> None:
        """Record a checkout: by whom, when, from where.

        This runs on every checkout under a budget. Each frame a walk up the stack
        touches is made into a Python object (Python 3.11+ keeps frames as plain C
        structures until asked for), which costs more than the rest of a checkout:
        so the depth of the last checkout's site is tried first, and taken if its
        frame is the user's and the one below it machinery. A user frame deeper
        still (a callback of Django's that checks out: rare) is then missed, and
        the checkout attributed to the user's code around it.
        """
        depth = self._last_depth
        try:
            frame = _getframe(depth)
            user_code = _machinery_files.get(frame.f_code.co_filename) is False
            if user_code and _machinery_files.get(_getframe(depth - 1).f_code.co_filename):
                site: Site = (frame.f_code, frame.f_lasti)
            else:
                site = self._walked_site()
        except ValueError:  # the stack is not as deep this time
            site = self._walked_site()
        self._holders[key] = (alias, get_ident(), monotonic(), site)
        if self.on_hold is not None:
            self.on_hold()

    def release(self, key: int) -> None:
        self._holders.pop(key, None)

    def _walked_site(self) -> Site:
        """The innermost frame outside the machinery, walked frame by frame from
        hold()'s caller; its depth is kept for the next checkout's first guess."""
        depth = 1  # hold()'s caller, 1 deep from hold()
        try:
            frame: FrameType | None = _getframe(2)
        except ValueError:  # called from C, with no Python frame above
            return None
        while frame is not None:
            code = frame.f_code
            if not _is_machinery(code.co_filename):
                self._last_depth = depth
                return (code, frame.f_lasti)
            frame = frame.f_back
            depth += 1
        return None


class Holder(NamedTuple):
    """Who holds a checked-out connection, since when, and from where.

    Recorded as a plain tuple on every checkout (a class instance costs more to
    make); made into a Holder when shown.
    """

    alias: str
    thread: int  # its ident: the name is looked up when shown, which is rare
    since: float
    site: Site

    def describe(self, now: float) -> str:
        if self.site is None:
            site = "unknown"
        else:
            code, offset = self.site
            site = f"{code.co_filename}:{_line_of(code, offset)} in {code.co_name}"
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
        self._hold_warning: float | None = None
        self._watchdog: threading.Thread | None = None
        self._watchdog_lock = threading.Lock()
        # Set when the hold warning changes: the watchdog, which sleeps a quarter of
        # the old one between its looks (15 minutes for an hour), starts over at once.
        self._changed = threading.Event()
        # Written without a lock, on every checkout and check-in: a dict's item
        # assignment and deletion are atomic. Readers take a copy, as atomic. The
        # values are Holder's fields, as a tuple.
        self._holders: dict[int, tuple[str, int, float, Site]] = {}
        if CRecorder is not None:
            self._recorder: Recorder | CRecorder = CRecorder(
                holders=self._holders,
                machinery_files=_machinery_files,
                is_machinery=_is_machinery,
                getframe=_getframe,
                monotonic=monotonic,
            )
        else:
            self._recorder = Recorder(self._holders)
        # hold(key, alias) and release(key), called on every checkout and check-in
        # under a budget: the recorder's own, without a call in between.
        self.hold = self._recorder.hold
        self.release = self._recorder.release

    def __len__(self) -> int:
        return len(self._holders)

    @property
    def hold_warning(self) -> float | None:
        return self._hold_warning

    @hold_warning.setter
    def hold_warning(self, seconds: float | None) -> None:
        self._hold_warning = seconds
        self._changed.set()
        # Started by the next hold, not now: a process that sets a hold warning and
        # then forks before any checkout (a daemon detaching) forks with one thread.
        with self._watchdog_lock:
            if seconds is not None and self._watchdog is None:
                self._recorder.on_hold = self._start_watchdog

    def forget_all(self) -> None:
        """Check-ins no longer release holds: forget them all, lest stale ones be shown later."""
        self._holders.clear()

    def all(self) -> list[Holder]:
        """Every holder, the longest holding first."""
        return sorted((Holder(*fields) for fields in self._holders.copy().values()), key=lambda h: h.since)

    def describe_all(self, alias: str | None = None) -> list[str]:
        """One line per holder (of ``alias``'s connections, if given), the longest holding first."""
        now = monotonic()
        return [holder.describe(now) for holder in self.all() if alias in (None, holder.alias)]

    def _start_watchdog(self) -> None:
        with self._watchdog_lock:
            self._recorder.on_hold = None
            if self._watchdog is None and self._hold_warning is not None:
                self._watchdog = threading.Thread(
                    target=self._watch, name="mysqlpool-hold-watchdog", daemon=True
                )
                self._watchdog.start()

    def _watch(self) -> None:
        """Warn once about each connection held longer than the hold warning."""
        # A checkout is told apart by its thread and start: a lease's key comes back.
        warned: set[tuple[int, float]] = set()
        while (hold_warning := self._still_watching()) is not None:
            if self._changed.wait(max(hold_warning / 4, 0.05)):
                self._changed.clear()
                continue
            now = monotonic()
            held = {(holder.thread, holder.since): holder for holder in self.all()}
            warned &= held.keys()
            for checkout, holder in held.items():
                if checkout not in warned and now - holder.since > hold_warning:
                    warned.add(checkout)
                    logger.warning(
                        "A connection is held longer than %ss: %s", hold_warning, holder.describe(now)
                    )

    def _still_watching(self) -> float | None:
        """The hold warning; if None, the watchdog ends, and the next warning set starts another."""
        with self._watchdog_lock:
            if self._hold_warning is None:
                self._watchdog = None
            return self._hold_warning
