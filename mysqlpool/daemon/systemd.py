"""systemd's notification protocol (sd_notify), for ``Type=notify`` services.

Only what a worker daemon needs: READY=1, STOPPING=1 and WATCHDOG=1, sent to the
datagram socket named by NOTIFY_SOCKET; nothing is sent when it is not set.
"""

from __future__ import annotations

import os
import socket
import time


def notify(state: str) -> bool:
    """Send ``state`` to systemd; False when not running under it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(state.encode(), address)
    return True


class Watchdog:
    """WATCHDOG=1 at half the interval systemd asks for in WATCHDOG_USEC."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC")
        self.interval = int(usec) / 2_000_000 if usec and usec.isdigit() else None
        self._next = 0.0

    def ping_if_due(self) -> None:
        if self.interval is not None and time.monotonic() >= self._next:
            notify("WATCHDOG=1")
            self._next = time.monotonic() + self.interval
