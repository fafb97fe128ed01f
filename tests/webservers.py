"""Web servers on tests/servers_app, started as real processes, and the HTTP load the tests put on them."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from port_for import get_port

from tests.helpers import Server, connections_by_pid
from tests.processes import ServerProcess, wait_for


@dataclass(frozen=True)
class Reply:
    """What one request got: the HTTP status (0: no response at all) and the JSON body."""

    status: int
    body: dict[str, Any]


def get(url: str) -> Reply:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return Reply(response.status, json.load(response))
    except urllib.error.HTTPError as error:
        return Reply(error.code, {"error": error.read().decode(errors="replace")[-2000:]})
    except OSError as error:  # refused, reset: the server did not answer
        return Reply(0, {"error": repr(error)})


def load(url: str, requests: int, clients: int = 16) -> list[Reply]:
    """``requests`` GETs of ``url`` from ``clients`` threads at once."""
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(get, [url] * requests))


def failures(replies: list[Reply]) -> list[Reply]:
    return [reply for reply in replies if reply.status != 200]


def pids(replies: list[Reply]) -> set[int]:
    return {reply.body["pid"] for reply in replies}


def connections_of(replies: list[Reply]) -> dict[int, set[int]]:
    """For each process that replied, the server connections it used."""
    return connections_by_pid((reply.body["pid"], reply.body["connection"]) for reply in replies)


def the_masters_session(server: Server) -> int:
    """Before any request the only session is the one the master made at import."""
    [session] = server.sessions()
    return session


def gone(server: Server, sessions: set[int]) -> bool:
    return not sessions & server.sessions()


def assert_no_connection_shared(by_pid: dict[int, set[int]], master: set[int], server: Server) -> None:
    """No connection was used by two processes, nor the master's by any worker; the master's lives on."""
    used = [connection for connections_of_pid in by_pid.values() for connection in connections_of_pid]
    assert len(used) == len(set(used))
    assert not master & set(used)
    assert master <= server.sessions()  # no worker's start, exit or collection ended it


def kill_a_worker(web: WebServer, server: Server) -> dict[int, set[int]]:
    """SIGKILL a worker that served requests; the others serve on, and a new one replaces it.

    The killed worker's sessions end with it. Returns the processes that served
    the requests after the kill, and the connections each used.
    """
    first = web.load("hit", 100)
    assert failures(first) == []
    by_pid = connections_of(first)
    killed = min(by_pid)
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: gone(server, by_pid[killed]), what="the killed worker's sessions gone")
    after_kill = web.load("hit", 200)
    assert failures(after_kill) == []  # the other worker carried on, the new one too
    assert killed not in pids(after_kill)
    wait_for(lambda: len(pids(web.load("ping", 20)) - set(by_pid)) >= 1, what="a replacement worker")
    return connections_of(after_kill)


def stop_leaving_no_session(web: ServerProcess, server: Server) -> None:
    """SIGTERM, a graceful stop; then the server lists no session on the test database."""
    web.stop()
    wait_for(lambda: not server.sessions(), what="no session left after SIGTERM")


class WebServer(ServerProcess):
    """``python -m MODULE ARGS`` (uwsgi: the program) listening on a free port; ready once /ping answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The pids that answered the readiness pings: requests outside load()'s
        # replies, for tests that count a worker's requests.
        self.pinged_by: list[int] = []
        super().__init__(*args, **kwargs)

    def command(self, module: str) -> list[str]:
        if module == "uwsgi":
            # A program, not a module; pip installs it beside this interpreter.
            return [str(Path(sys.executable).with_name("uwsgi"))]
        return super().command(module)

    def own_arguments(self, module: str) -> list[str]:
        port = get_port(None)
        assert port is not None
        self.url = f"http://127.0.0.1:{port}"
        self.module = module
        if module == "uvicorn":
            # Since 0.29 it ends a graceful stop by raising the signal it caught again.
            self.exit_codes = (0, -signal.SIGTERM)
            return ["--port", str(port)]
        if module == "uwsgi":
            # Its embedded interpreter finds this environment's packages through --virtualenv.
            return ["--http-socket", f"127.0.0.1:{port}", "--virtualenv", sys.prefix]
        return ["--bind", f"127.0.0.1:{port}"]

    def wait_until_ready(self) -> None:
        wait_for(self.ready, timeout=60, what=f"{self.module} answering")

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        reply = get(f"{self.url}/ping")
        if reply.status != 200:
            return False
        self.pinged_by.append(reply.body["pid"])
        return True

    def load(self, path: str, requests: int, clients: int = 16) -> list[Reply]:
        return load(f"{self.url}/{path}", requests, clients)

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)
