"""What each worker process tells the master, about once a second: its metrics and
how long its threads have been stuck.

One datagram socket pair per worker, made before its fork: a datagram is a whole
report or nothing, the worker never waits for the master (a report that finds the
socket full is dropped; the next one comes a second later), and the master drops
a worker's report when it reaps it, so that a dead worker's series go with it.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time

# A report is the Prometheus text of a process with a few pools: well below this.
MAX_REPORT = 1 << 20


@dataclasses.dataclass
class Report:
    """A worker's last word: its metrics (Prometheus text), and how long every one of
    its threads has been in a unit without any starting or finishing one (0 when a
    thread is free)."""

    metrics: str = ""
    stalled: float = 0.0
    received: float = dataclasses.field(default_factory=time.monotonic)


class Reporter:
    """The worker's end."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._socket.setblocking(False)

    def send(self, metrics: str, stalled: float) -> None:
        try:
            self._socket.send(json.dumps({"metrics": metrics, "stalled": stalled}).encode())
        except (BlockingIOError, ConnectionRefusedError, BrokenPipeError):
            pass  # the master is busy or gone: the next report, or the parent check, will do


class Reports:
    """The master's ends: the last report of each worker alive."""

    def __init__(self) -> None:
        self._sockets: dict[int, socket.socket] = {}
        self.last: dict[int, Report] = {}

    def channel(self) -> tuple[socket.socket, socket.socket]:
        """A new pair of ends, made before forking a worker: (master's, worker's)."""
        master, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        master.setblocking(False)
        return master, worker

    def add(self, pid: int, sock: socket.socket) -> None:
        self._sockets[pid] = sock
        self.last[pid] = Report()  # nothing said yet: counted as fresh from its start

    def forget(self, pid: int) -> None:
        sock = self._sockets.pop(pid, None)
        if sock is not None:
            sock.close()
        self.last.pop(pid, None)

    def close_in_child(self) -> None:
        """In a new worker: the other workers' ends are none of its business."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self.last.clear()

    def receive(self) -> None:
        """Read every report waiting; keep each worker's last."""
        for pid, sock in self._sockets.items():
            while True:
                try:
                    data = sock.recv(MAX_REPORT)
                except BlockingIOError:
                    break
                said = json.loads(data)
                self.last[pid] = Report(str(said["metrics"]), float(said["stalled"]))
