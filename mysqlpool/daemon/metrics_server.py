"""The HTTP endpoint of a daemon: ``/metrics`` (Prometheus text) and ``/healthz``.

Bound before anything forks or detaches, so that a port in use or not allowed is
an error in the operator's terminal. The master serves it from its own loop, one
request at a time and without a thread (its forks must not inherit one); a daemon
without ``--processes`` serves it from a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer

from django.core.management.base import CommandError

# Seconds a client gets to send its request: the master's loop waits meanwhile.
REQUEST_TIMEOUT = 2.0

# What a page is: its HTTP status, content type and body.
Page = tuple[int, str, bytes]


class MetricsServer:
    """Listens on ``host:port``; ``pages`` maps a path to the function that renders it."""

    def __init__(self, host: str, port: int) -> None:
        self.pages: dict[str, Callable[[], Page]] = {}
        try:
            self._server = HTTPServer((host, port), _Handler)
        except OSError as error:
            raise CommandError(
                f"--metrics-host {host!r} --metrics-port {port}: cannot listen there ({error.strerror}); "
                "choose a free port, one above 1023 unless started as root, on an address of this host."
            ) from None
        self._server.pages = self.pages  # type: ignore[attr-defined]  # read by _Handler
        self._server.timeout = 0  # handle_pending() never waits for a client to come
        self.address = f"{host}:{self._server.server_address[1]}"

    def fileno(self) -> int:
        return self._server.fileno()

    def handle_pending(self) -> None:
        """Answer a request that is waiting, if there is one (the master's loop calls it)."""
        self._server.handle_request()

    def serve_in_thread(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="mysqlpool-metrics", daemon=True).start()

    def close(self) -> None:
        """Stop listening (a forked worker closes its inherited copy)."""
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:  # noqa: N802  # the name http.server calls
        render = self.server.pages.get(self.path.partition("?")[0])  # type: ignore[attr-defined]
        status, content_type, body = render() if render else (404, "text/plain", b"not found\n")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  # http.server's name
        # Not logged: a scrape every 15 s is no news, and the master must answer
        # even while its log cannot be written (a full stderr pipe blocked it).
        pass
