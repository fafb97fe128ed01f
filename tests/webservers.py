"""Web servers on tests/servers_app, started as real processes, and the HTTP load the tests put on them."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from port_for import get_port

from tests.helpers import connections_by_pid
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


class WebServer(ServerProcess):
    """``python -m MODULE ARGS`` listening on a free port; ready once /ping answers."""

    def own_arguments(self, module: str) -> list[str]:
        port = get_port(None)
        assert port is not None
        self.url = f"http://127.0.0.1:{port}"
        self.module = module
        if module == "uvicorn":
            # Since 0.29 it ends a graceful stop by raising the signal it caught again.
            self.exit_codes = (0, -signal.SIGTERM)
            return ["--port", str(port)]
        return ["--bind", f"127.0.0.1:{port}"]

    def wait_until_ready(self) -> None:
        wait_for(self.ready, timeout=60, what=f"{self.module} answering")

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        return get(f"{self.url}/ping").status == 200

    def load(self, path: str, requests: int, clients: int = 16) -> list[Reply]:
        return load(f"{self.url}/{path}", requests, clients)

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)
