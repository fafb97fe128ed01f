"""Stop signals: the first asks for a graceful stop, a later one for an end at once.

One request to stop can arrive as several signals within a moment: GNU ``timeout``
signals its command and then the process group it runs in (unless given
``--foreground``), and a script or an operator may send a burst. Those that come
within ``SAME_REQUEST`` seconds of the first repeat it; only one that comes later
asks to end at once. Whoever wants that (a second Ctrl-C) sends it once the daemon
has said that it is stopping.
"""

from __future__ import annotations

import enum
import signal
import time

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SAME_REQUEST = 1.0  # seconds


class Arrival(enum.Enum):
    FIRST = enum.auto()
    REPEAT = enum.auto()  # within SAME_REQUEST seconds of the first: the same request
    AGAIN = enum.auto()  # later: a second request, to end at once


class StopRequests:
    """Tells, for each stop signal a process gets, whether it asks again. Called from
    a signal handler: it takes no lock."""

    def __init__(self) -> None:
        self._first: float | None = None
        # The first signal that asked again, once one has.
        self.again: int | None = None

    def arrived(self, signum: int) -> Arrival:
        """Record the stop signal ``signum``, and tell what it is."""
        now = time.monotonic()
        if self._first is None:
            self._first = now
            return Arrival.FIRST
        if now - self._first < SAME_REQUEST:
            return Arrival.REPEAT
        if self.again is None:
            self.again = signum
        return Arrival.AGAIN
