"""uWSGI (a master and 2 worker processes, threads, lazy-apps) serving tests/servers_app.

uWSGI forks its workers from C and, unless ``py-call-osafterfork`` is set, runs no
``os.register_at_fork`` handler in them: mysqlpool's handler runs from uWSGI's
post-fork hook instead (mysqlpool/uwsgi_worker.py), even when the application sets
that hook anew (uwsgidecorators). Only one mode sets the option. Without lazy-apps
the application, loaded in the master, runs a query at import
(tests/servers_app/wsgi.py), so every worker is forked from a master that holds a
connection and a pool. As in tests/test_gunicorn.py, each reply says which
process and which server connection served it.
"""

from __future__ import annotations

import re
import signal
import sys
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests import dbserver
from tests.helpers import Server, SessionSampler
from tests.processes import wait_for
from tests.webservers import (
    Reply,
    WebServer,
    assert_no_connection_shared,
    connections_of,
    failures,
    gone,
    kill_a_worker,
    pids,
    stop_leaving_no_session,
    the_masters_session,
)

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 2
BUDGET = 2
THREADS = 4

# What each variant adds to the master and its 2 worker processes. In the default
# mode the master loads the application and holds the connection of its query.
MODES = {
    "default": [],
    "threads": ["--threads", str(THREADS)],
    "lazy-apps": ["--lazy-apps"],
}
# Python's at-fork handlers run in the workers too: the child is handled once. On
# Python 3.13 and later, uWSGI 2.0 (up to 2.0.31) cannot run with this option: its
# workers abort at fork ("_PyRecursiveMutex_Unlock: unlocking a recursive mutex
# that is not owned by the current thread", unbit/uwsgi#2692, #2710), with or
# without mysqlpool; there the mode does not exist to test.
if sys.version_info < (3, 13):
    MODES["py-call-osafterfork"] = ["--py-call-osafterfork"]

# uwsgi.h's UWSGI_END_CODE.
UWSGI_END_CODE = 30

# Each worker stops after 120 requests, and the master forks another: by default
# only once it has lived 60 s.
MAX_REQUESTS = 120
RECYCLED = ["--max-requests", str(MAX_REQUESTS), "--min-worker-lifetime", "0"]


# What each worker logs once it has set its signal handlers and accepts requests
# (uWSGI's "accepting" hook).
ACCEPTING = "a uWSGI worker accepts requests"
# How uWSGI's log begins the line of each worker it forks (without a master, of its only one).
SPAWNED = r"^(?:spawned|Respawned) uWSGI worker \d+"


def start_uwsgi(
    database_server: dbserver.Server, log: Path, *args: str, master: bool = True, **environ: str
) -> WebServer:
    """A master and 2 worker processes, a budget of 2 each; the application queries at import.

    ``die-on-term``: SIGTERM stops uWSGI 2.0 (without it, SIGTERM reloads), as a
    process manager expects. Without ``master``, one process, which is its only worker.
    """
    processes = ["--master", "--processes", str(WORKERS)] if master else ["--processes", "1"]
    return WebServer(
        database_server, log, "uwsgi", *processes, "--module", "tests.servers_app.wsgi:application",
        "--need-app", "--die-on-term", "--disable-logging", "--hook-accepting", f"log:{ACCEPTING}", *args,
        MYSQLPOOL_TEST_BUDGET=str(BUDGET), MYSQLPOOL_TEST_POOL_SIZE=str(BUDGET),
        MYSQLPOOL_TEST_QUERY_AT_IMPORT="1", **environ,
    )  # fmt: skip


def workers_done(text: str) -> set[int]:
    """The pids of the workers whose work uWSGI's log ``text`` says is done (recycled)."""
    return {int(pid) for pid in re.findall(r"The work of process (\d+) is done", text)}


def workers_running(text: str, lazy_apps: bool) -> set[int]:
    """The pids of the workers uWSGI's log ``text`` says serve: spawned or respawned,
    their work not done, and with lazy-apps their application loaded."""
    started = re.findall(SPAWNED + r" \((?:new )?pid: (\d+)", text, re.MULTILINE)
    running = {int(pid) for pid in started} - workers_done(text)
    if lazy_apps:
        running &= {
            int(pid) for pid in re.findall(r"^WSGI app \d+ .* ready in .* pid: (\d+)", text, re.MULTILINE)
        }
    return running


def every_worker_accepting(text: str) -> bool:
    """Whether every worker uWSGI's log ``text`` says was spawned has logged ACCEPTING."""
    spawned = re.findall(SPAWNED, text, re.MULTILINE)
    return len(re.findall(f"^{re.escape(ACCEPTING)}$", text, re.MULTILINE)) >= len(spawned)


def stop_uwsgi(web: WebServer, server: Server) -> None:
    """stop_leaving_no_session(), once every worker spawned has set its signal handlers.

    Until then a new worker still has the master's: uWSGI 2.0's master then sends
    the SIGINT that stops its workers to one that runs the master's handler
    instead, logs "killing workers" a second time, waits for workers it has none
    of, and never ends (a run hung so, 1 in 30, right after a respawn).
    """
    wait_for(lambda: every_worker_accepting(web.log.read_text()), what="every uWSGI worker accepting")
    stop_leaving_no_session(web, server)


def stop_recycled(
    web: WebServer, server: Server, log: Path, replies: list[Reply], lazy_apps: bool = False
) -> None:
    """stop_uwsgi(), once every recycled worker has been replaced.

    uWSGI 2.0's master, stopped while it sleeps before respawning a worker that
    recycled "too fast", still respawns it after killing the others, then waits
    for that worker, which it never kills; with lazy-apps, a worker stopped while
    it loads the application does not end either (CI runs hung so). So SIGTERM
    goes once the log shows all workers serving, and every worker that answered
    its last request (its MAX_REQUESTS-th, counting ``replies`` and the readiness
    pings) recycled: such a worker still counts as serving until it logs that its
    work is done, a moment after its last reply (a CI run hung so). With no more
    requests, no worker recycles after that.
    """
    answered = Counter([*(reply.body["pid"] for reply in replies), *web.pinged_by])
    recycling = {pid for pid, count in answered.items() if count >= MAX_REQUESTS}

    def recycled_and_serving() -> bool:
        text = log.read_text()  # once: both answers from the same moment
        return recycling <= workers_done(text) and len(workers_running(text, lazy_apps)) == WORKERS

    wait_for(recycled_and_serving, what="every recycled uWSGI worker replaced, all serving")
    stop_uwsgi(web, server)


def the_masters_sessions(server: Server, mode: str) -> set[int]:
    """The master's session, made at import; with lazy-apps the master loads nothing."""
    return set() if mode == "lazy-apps" else {the_masters_session(server)}


@pytest.mark.parametrize("mode", list(MODES))
def test_concurrent_requests_stay_within_workers_times_budget_and_reuse_connections(
    database_server: dbserver.Server,
    watched: tuple[Server, SessionSampler],
    tmp_path: Path,
    mode: str,
    servers: ExitStack,
) -> None:
    server, sampler = watched
    log = tmp_path / "uwsgi.log"
    web = servers.enter_context(start_uwsgi(database_server, log, *MODES[mode], *RECYCLED))
    master = the_masters_sessions(server, mode)
    connects_before = server.connects()
    replies = web.load("hit", 400)
    connects = server.connects() - connects_before
    assert failures(replies) == []
    by_pid = connections_of(replies)
    assert len(by_pid) > WORKERS, "--max-requests recycled no worker"
    assert_no_connection_shared(by_pid, master, server)
    # Connections are reused: each worker process opened at most its budget.
    assert connects <= len(by_pid) * BUDGET, f"{connects} connects for {len(replies)} requests"
    assert sampler.peak <= WORKERS * BUDGET + len(master)
    stop_recycled(web, server, log, replies, lazy_apps=mode == "lazy-apps")


def test_a_post_fork_hook_set_after_mysqlpool_runs_after_its_handler(
    database_server: dbserver.Server, server: Server, tmp_path: Path, servers: ExitStack
) -> None:
    """Importing uwsgidecorators after Django's setup sets ``uwsgi.post_fork_hook`` anew:
    mysqlpool's handler still runs in each worker, then the ``@postfork`` functions."""
    log = tmp_path / "uwsgi.log"
    web = servers.enter_context(start_uwsgi(database_server, log, *RECYCLED, MYSQLPOOL_TEST_POSTFORK="1"))
    master = {the_masters_session(server)}
    replies = web.load("hit", 400)
    assert failures(replies) == []
    by_pid = connections_of(replies)
    assert_no_connection_shared(by_pid, master, server)
    announced = {int(pid) for pid in re.findall(r"^postfork in (\d+)$", log.read_text(), re.MULTILINE)}
    assert set(by_pid) <= announced
    stop_recycled(web, server, log, replies)


def test_without_a_master_the_only_worker_keeps_the_connection_it_made_at_import(
    database_server: dbserver.Server, server: Server, tmp_path: Path, servers: ExitStack
) -> None:
    """uWSGI calls its post-fork hook in that worker too, though it was not forked."""
    web = servers.enter_context(start_uwsgi(database_server, tmp_path / "uwsgi.log", master=False))
    web.exit_codes = (UWSGI_END_CODE,)  # a worker's status when it stops, which no master turns into 0
    at_import = the_masters_session(server)
    replies = web.load("hit", 50)
    assert failures(replies) == []
    assert connections_of(replies) == {web.process.pid: {at_import}}
    stop_uwsgi(web, server)


def test_a_killed_worker_is_replaced_and_a_reload_leaves_no_connection_behind(
    database_server: dbserver.Server,
    watched: tuple[Server, SessionSampler],
    tmp_path: Path,
    servers: ExitStack,
) -> None:
    server, sampler = watched
    web = servers.enter_context(start_uwsgi(database_server, tmp_path / "uwsgi.log", *MODES["threads"]))
    master = the_masters_session(server)
    before_reload = kill_a_worker(web, server)
    # SIGHUP: the workers finish their requests and stop, then the master loads
    # the application again (its new query at import) and forks new ones.
    web.signal(signal.SIGHUP)
    old_sessions = {master}.union(*before_reload.values())
    wait_for(lambda: gone(server, old_sessions), what="the old master's and workers' sessions gone")
    wait_for(web.ready, timeout=60, what="uwsgi answering after the reload")
    after_reload = web.load("hit", 100)
    assert failures(after_reload) == []
    assert not pids(after_reload) & set(before_reload)
    assert len(server.sessions()) <= WORKERS * BUDGET + 1
    assert sampler.peak <= WORKERS * BUDGET + 1
    stop_uwsgi(web, server)
