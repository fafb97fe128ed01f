"""The network between the app and the server: how a silently dead path is noticed.

Firewalls, NAT gateways and load balancers drop idle connections silently: no FIN,
no RST. The kernel then never tells the pool's checkout check (a ``poll()`` that
sees a hung-up or readable socket, mysqlpool.connection) that anything happened,
and a query sent on such a connection waits for about 15 minutes of TCP
retransmissions. So every pooled TCP connection gets, once, when it is opened:

* TCP keepalive, whose probes a live peer's kernel answers (a long query is not
  disturbed) and a dead path leaves unanswered: after ``seconds`` without an
  answer the kernel gives up on the socket, which ``poll()`` then reports with
  POLLERR|POLLHUP, so the checkout replaces it with no error and no round trip;
* ``TCP_USER_TIMEOUT``: sent data left unacknowledged for ``seconds`` ends the
  connection too, so a query sent on a dead path fails within about ``seconds``.
  Only unacknowledged data counts: a server that is thinking acknowledged the
  query long ago. (The kernel applies it to a server that stops reading, with a
  full receive window, as well.)

Keepalive traffic also keeps a NAT or firewall from forgetting an idle connection
when its idle timeout is longer than the interval between probes. A connection
over a Unix socket (host ``'localhost'`` or a socket path) has no path to lose and
gets nothing.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from MySQLdb import OperationalError

# Seconds within which a silently dead connection is known dead, unless the pool
# says otherwise (its "keepalive" argument; None turns this off).
DEFAULT_KEEPALIVE = 60
# TCP_KEEPIDLE and TCP_KEEPINTVL count whole seconds, at least one each: a probe
# sent after one second and given up on after the next is the quickest they allow.
MIN_KEEPALIVE = 2
# A day: far longer than any idle timeout of a network device, and well within
# what every option takes.
MAX_KEEPALIVE = 86400

# Seconds a new connection may take to reach the server when OPTIONS set no
# connect_timeout (MySQLdb's default waits for the kernel's SYN retries, about
# 2 minutes). PyMySQL's default too.
DEFAULT_CONNECT_TIMEOUT = 10
CONNECT_TIMEOUT = "connect_timeout"

_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


@dataclass(frozen=True)
class KeepAlive:
    """The socket options that make the kernel give up on a dead path within ``seconds``."""

    seconds: int

    @property
    def interval(self) -> int:
        """Seconds between two unanswered probes."""
        return max(1, self.seconds // 3)

    @property
    def idle(self) -> int:
        """Seconds of silence before the first probe: the rest of ``seconds`` once two intervals are taken."""
        return max(1, self.seconds - 2 * self.interval)

    @property
    def probes(self) -> int:
        """Unanswered probes after which the kernel gives up: at ``idle + probes * interval == seconds``."""
        return max(1, (self.seconds - self.idle) // self.interval)

    def options(self) -> tuple[tuple[int, int, int], ...]:
        """(level, option, value) for each setsockopt()."""
        return (
            (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
            (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, self.idle),
            (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, self.interval),
            (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, self.probes),
            # In milliseconds. With keepalive on, the kernel also gives up on an idle
            # socket once this much time passed without an answer to a probe.
            (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, self.seconds * 1000),
        )

    def set_on(self, fd: int) -> None:
        """Set the options on socket ``fd`` if it is a TCP socket (nothing for a Unix socket)."""
        # A duplicate, closed here: a socket object on the connection's own
        # descriptor would close it when collected. The options are the socket's,
        # shared by both descriptors.
        with socket.socket(fileno=os.dup(fd)) as duplicate:
            if duplicate.family in _TCP_FAMILIES:
                for level, option, value in self.options():
                    duplicate.setsockopt(level, option, value)


def is_keepalive(value: Any) -> bool:
    """Whether ``value`` may be given as the pool's ``keepalive`` argument."""
    return value is None or (
        isinstance(value, int) and not isinstance(value, bool) and MIN_KEEPALIVE <= value <= MAX_KEEPALIVE
    )


KEEPALIVE_ALLOWED = f"an int of seconds from {MIN_KEEPALIVE} to {MAX_KEEPALIVE}, or None to turn it off"


def with_connect_timeout(params: Mapping[str, Any]) -> dict[str, Any]:
    """MySQLdb's connect arguments, with the default connect_timeout if they set none."""
    return {CONNECT_TIMEOUT: DEFAULT_CONNECT_TIMEOUT, **params}


def explained_connect_error(error: OperationalError, connect_timeout: Any) -> OperationalError:
    """``error`` of a failed connect, saying so if the server never answered within connect_timeout.

    MariaDB Connector/C ends its message with the system's error number only
    ("Can't connect to server on '10.0.0.5' (110)"). Same code, so that the error
    is handled as before.
    """
    code, message = error.args[0], str(error.args[1])
    if not message.endswith(f"({errno.ETIMEDOUT})"):
        return error
    return OperationalError(
        code,
        f"{message}: no answer within connect_timeout={connect_timeout} s; the server is down or "
        "unreachable, or a firewall drops the packets",
    )
