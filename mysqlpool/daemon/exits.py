"""How a worker daemon's processes end: their exit statuses, and the master's giving up.

The statuses are part of the interface (systemd's ``RestartPreventExitStatus=``, a
supervisor's scripts): the README lists them under "Exit statuses".
"""

from __future__ import annotations

# Every unit finished after SIGTERM or SIGINT.
EXIT_STOPPED = 0
# Units cut short by a second signal or the graceful timeout; or the master gave up
# on workers that kept failing within a second of their start.
EXIT_CUT_SHORT = 1
# A worker failed before its first unit (a start hook raised): respawning it would
# fail the same way, so the master stops.
EXIT_BOOT_FAILED = 3
# A unit raised SystemExit or another BaseException.
EXIT_UNIT_ABORTED = 4


class WorkersKeepFailing(Exception):
    """The workers die at boot: the master stops with ``status`` instead of respawning for ever."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
