"""uvicorn (ASGI) serving tests/servers_app: async views on the ORM, and a sync view.

Django tickets #33497 and #35059: under ASGI, connections piled up, one per thread
that served a request. With the pool, every request returns its connection, the
server's sessions stay within the pool, and the overflow closes after the load.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from django.db import connections

from tests import dbserver
from tests.helpers import Server, SessionSampler
from tests.processes import wait_for
from tests.webservers import Reply, WebServer, failures, get, load

pytestmark = pytest.mark.django_db(transaction=True)

POOL_SIZE = 2
MAX_OVERFLOW = 4


def start_uvicorn(
    database_server: dbserver.Server, log: Path, application: str = "application", lifespan: str = "off"
) -> WebServer:
    return WebServer(
        database_server, log, "uvicorn", f"tests.servers_app.asgi:{application}",
        "--host", "127.0.0.1", "--lifespan", lifespan, "--no-access-log",
        MYSQLPOOL_TEST_POOL_SIZE=str(POOL_SIZE), MYSQLPOOL_TEST_MAX_OVERFLOW=str(MAX_OVERFLOW),
    )  # fmt: skip


def checked_out(web: WebServer) -> int:
    """Connections of the server's pool checked out now (0 before it has one)."""
    return int(get(f"{web.url}/stats").body.get("checked_out", 0))


def checked_out_during(replies: list[Reply]) -> set[int]:
    return {reply.body["checked_out"] for reply in replies}


@pytest.mark.parametrize("view", ["async-hit", "hit"])
def test_each_request_returns_its_connection(
    database_server: dbserver.Server, server: Server, tmp_path: Path, servers: ExitStack, view: str
) -> None:
    """One request after another: each finds none checked out but its own, and returns it.

    Django's ASGI handler returns connections (request_finished) after it has sent
    the response: the client may see the response a moment before that.
    """
    web = servers.enter_context(start_uvicorn(database_server, tmp_path / "uvicorn.log"))
    replies = []
    for _ in range(20):
        replies.append(get(f"{web.url}/{view}"))
        wait_for(lambda: checked_out(web) == 0, what="the request's connection returned")
    assert failures(replies) == []
    assert checked_out_during(replies) == {1}
    assert len({reply.body["connection"] for reply in replies}) == 1  # the same one, reused
    web.stop()
    wait_for(lambda: not server.sessions(), what="no session left after SIGTERM")


def test_concurrent_requests_stay_within_the_pool_and_the_overflow_closes_after(
    database_server: dbserver.Server, server: Server, tmp_path: Path, servers: ExitStack
) -> None:
    web = servers.enter_context(start_uvicorn(database_server, tmp_path / "uvicorn.log"))
    with SessionSampler(connections["default"].settings_dict) as sampler:
        async_replies = web.load("async-hit", 300, clients=32)
        sync_replies = load(f"{web.url}/hit", 100, clients=32)
    assert failures(async_replies + sync_replies) == []
    assert sampler.peak <= POOL_SIZE + MAX_OVERFLOW
    wait_for(lambda: checked_out(web) == 0, what="every connection returned")
    assert get(f"{web.url}/stats").body["open"] <= POOL_SIZE  # the overflow closed when returned
    wait_for(lambda: len(server.sessions()) <= POOL_SIZE, what="the overflow's sessions gone")
    web.stop()
    wait_for(lambda: not server.sessions(), what="no session left after SIGTERM")


def test_the_pools_close_politely_when_uvicorn_shuts_down(
    database_server: dbserver.Server, server: Server, tmp_path: Path, servers: ExitStack
) -> None:
    """uvicorn ends on SIGTERM by raising it again after its graceful shutdown, without
    Python's exit: the idle connections dropped without a goodbye, and the server
    counted each in Aborted_clients (and logged a warning). close_pools_at_shutdown()
    closes them at the lifespan protocol's shutdown."""
    aborted = server.aborted_clients()
    web = servers.enter_context(
        start_uvicorn(database_server, tmp_path / "uvicorn.log", "closing_application", lifespan="on")
    )
    replies = web.load("async-hit", 100, clients=8)
    assert failures(replies) == []
    assert get(f"{web.url}/stats").body["open"] >= 1  # idle connections to close
    web.stop()
    wait_for(lambda: not server.sessions(), what="no session left after SIGTERM")
    assert server.aborted_clients() == aborted
