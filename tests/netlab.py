"""A network lab: a private network namespace whose packets the tests may drop.

The tests' loopback never loses a packet, and every dead connection on it announces
itself with a FIN or an RST. In the lab's namespace (``ip netns add``, its own
loopback, 127.0.0.1 and nothing else), nftables rules make a network that does
not: one connection blackholed in both directions without a word, a server port
dropping every packet, a share of all packets lost. The server runs in the
namespace; the client code under test enters it thread by thread (``inside()``:
setns(2), which a thread may do on its own, and which threads it then starts
inherit), and everything else of the test process stays outside.

It needs root and nftables (``make test`` installs nftables, as it installs
mariadbd); ``unavailable()`` says why it cannot run. A namespace is named after
the process that made it, so a run that was killed before it could remove its own
leaves one that the next run removes (``remove_stale()``), the processes left in
it (its server) with it; the rules live and die with their namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator

PREFIX = "mysqlpool-lab-"
_OWNED = re.compile(rf"^{re.escape(PREFIX)}(\d+)-\d+$")
_TABLE = "inet mysqlpool_lab"
_numbers = itertools.count()
# sched.h: setns() into a network namespace.
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable() -> str | None:
    """Why the lab cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "the network lab needs root, to create a network namespace and its nftables rules"
    for command, package in (("ip", "iproute2"), ("nft", "nftables")):
        if _command(command) is None:
            return f"the network lab needs {command!r} (Debian package {package}; `make test` installs it)"
    return None


def _command(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _run(*command: str, stdin: str | None = None) -> str:
    """Run a command (ip, nft); its output, or a RuntimeError with its error output."""
    program = _command(command[0]) or command[0]
    done = subprocess.run([program, *command[1:]], input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def namespaces() -> list[str]:
    """The names of the network namespaces of this host."""
    # Lines like "name" or "name (id: 3)".
    return [line.split()[0] for line in _run("ip", "netns", "list").splitlines() if line.strip()]


def processes_in(name: str) -> list[int]:
    """The processes that run in namespace ``name``."""
    return [int(pid) for pid in _run("ip", "netns", "pids", name).split()]


def _delete(name: str) -> None:
    """Delete a namespace, ending the processes in it first (they would keep it alive, unnamed)."""
    for pid in processes_in(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _run("ip", "netns", "delete", name)


def is_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is no zombie (killed, its parent yet to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def remove_stale() -> list[str]:
    """Remove the labs whose process is gone, and what still runs in them; their names."""
    stale = [
        name
        for name in namespaces()
        if (owned := _OWNED.match(name)) is not None and not is_running(int(owned.group(1)))
    ]
    for name in stale:
        _delete(name)
    return stale


class Lab:
    """A network namespace with its loopback up and an nftables chain for the tests' rules."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    @contextlib.contextmanager
    def created(cls) -> Iterator[Lab]:
        """A new lab, removed with everything in it afterwards (stale ones first)."""
        remove_stale()
        lab = cls(f"{PREFIX}{os.getpid()}-{next(_numbers)}")
        _run("ip", "netns", "add", lab.name)
        try:
            _run("ip", "-n", lab.name, "link", "set", "lo", "up")
            # Every packet on a loopback leaves through the output hook once: a rule
            # there drops it whichever way it goes.
            lab._nft(
                f"add table {_TABLE}\n"
                f"add chain {_TABLE} output {{ type filter hook output priority 0; policy accept; }}\n"
            )
            yield lab
        finally:
            _delete(lab.name)

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Move the calling thread into the lab, and back afterwards.

        Sockets keep the namespace they were made in: connections opened before
        (the test database's) still work inside, those opened inside work outside.
        """
        # os.setns() is Python 3.12+; libc's setns() is the same call on any.
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            lab = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                _setns(lab)
            finally:
                os.close(lab)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(home)

    def _nft(self, script: str) -> str:
        return _run("ip", "netns", "exec", self.name, "nft", "-f", "-", stdin=script)

    def _drop(self, *matches: str) -> None:
        """A rule for each of ``matches``, dropping (and counting) the packets it matches."""
        self._nft("".join(f"add rule {_TABLE} output {match} counter drop\n" for match in matches))

    def dropped(self) -> int:
        """How many packets the rules in place have dropped."""
        listed = self._nft(f"list chain {_TABLE} output\n")
        return sum(int(packets) for packets in re.findall(r"counter packets (\d+)", listed))

    def blackhole(self, client_port: int) -> None:
        """Drop every packet of one connection, both ways, silently: no FIN, no RST."""
        self._drop(f"tcp sport {client_port}", f"tcp dport {client_port}")

    def unreachable(self, server_port: int) -> None:
        """Drop every packet sent to ``server_port``: connection attempts go unanswered."""
        self._drop(f"tcp dport {server_port}")

    def lose(self, server_port: int, share: float) -> None:
        """Drop a random ``share`` (0 to 1) of the packets to and from ``server_port``."""
        per_10000 = round(share * 10000)
        chance = f"numgen random mod 10000 < {per_10000}"
        self._drop(f"tcp dport {server_port} {chance}", f"tcp sport {server_port} {chance}")

    def clear(self) -> None:
        """Remove every rule: the network works again."""
        self._nft(f"flush chain {_TABLE} output\n")


def client_port(fd: int) -> int:
    """The local port of TCP socket ``fd``: what ``Lab.blackhole()`` takes to cut its connection."""
    with socket.socket(fileno=os.dup(fd)) as duplicate:
        port: int = duplicate.getsockname()[1]
        return port


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns(): {os.strerror(error)}")
