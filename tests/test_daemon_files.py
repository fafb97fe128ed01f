"""The pidfile and the log of a daemon run as root, against traps another user set.

The traps are set by ``nobody`` in a world-writable directory with the sticky bit,
as /tmp is; the daemon runs as root, as an init script runs it.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests import dbserver
from tests.helpers import Server
from tests.processes import wait_for
from tests.test_daemon import log_text, refused, run_until_done, start_worker, states, stop

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(os.geteuid() != 0, reason="the traps are set by another user: needs root"),
]

OPTIONS = ["--pidfile", "--log-file"]
WHAT = {"--pidfile": "pidfile", "--log-file": "log file"}


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory like /tmp: every user can write to it, the sticky bit set."""
    path = Path(tempfile.mkdtemp(prefix="mysqlpool-shared-", dir="/tmp"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path)


class Places(NamedTuple):
    shared: Path  # like /tmp
    private: Path  # root's own
    victim: Path  # a file of root's, that a trap points at


@pytest.fixture
def places(shared_tmp: Path, tmp_path: Path) -> Places:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    return Places(shared_tmp, tmp_path, victim)


def as_nobody(*command: str) -> None:
    subprocess.run(command, user="nobody", group="nogroup", check=True)


def symbolic_link(places: Places) -> tuple[Path, str]:
    """The file the link names would be overwritten, then deleted at exit."""
    trap = places.shared / "app.file"
    as_nobody("ln", "-s", str(places.victim), str(trap))
    return trap, "it is a symbolic link"


def symbolic_link_on_the_way(places: Places) -> tuple[Path, str]:
    """O_NOFOLLOW protects the last name only."""
    as_nobody("ln", "-s", str(places.victim.parent), str(places.shared / "run"))
    return places.shared / "run" / places.victim.name, (
        "it is reached through 'run', a symbolic link of nobody (uid 65534)"
    )


def file_of_another_user(places: Places) -> tuple[Path, str]:
    """Its owner could write another pid in it, for ``kill $(cat pidfile)`` to kill."""
    trap = places.shared / "app.file"
    as_nobody("sh", "-c", f"umask 0 && echo 1 > {trap}")
    return trap, "it belongs to nobody (uid 65534), and the daemon's files must belong to root (uid 0)"


def file_every_user_can_write_to(places: Places) -> tuple[Path, str]:
    path = places.private / "app.file"
    path.touch()
    path.chmod(0o666)
    return path, "every user can write to it"


def hard_link(places: Places) -> tuple[Path, str]:
    link = places.private / "app.file"
    os.link(places.victim, link)
    return link, "it has 2 hard links"


def fifo(places: Places) -> tuple[Path, str]:
    """Not a start that waits for ever for a reader, nor a raw OSError."""
    path = places.private / "app.file"
    os.mkfifo(path)
    return path, "it is a FIFO"


def directory_every_user_can_write_to(places: Places) -> tuple[Path, str]:
    """Without the sticky bit: any user could rename the file away and put theirs in its place."""
    shared = places.private / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    return shared / "app.file", (
        "every user can write to its directory, which has no sticky bit, so any of them could "
        "replace it; use a directory that only the daemon's user can write to"
    )


def snapshot(*paths: Path) -> list[tuple[int, ...] | None]:
    """What each path is (not following a link), and when it was changed."""
    found = []
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            found.append(None)
        else:
            found.append((info.st_mode, info.st_uid, info.st_nlink, info.st_size, info.st_mtime_ns))
    return found


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize(
    "trap",
    [
        symbolic_link,
        symbolic_link_on_the_way,
        file_of_another_user,
        file_every_user_can_write_to,
        hard_link,
        fifo,
        directory_every_user_can_write_to,
    ],
    ids=lambda trap: trap.__name__,
)
def test_a_trap_is_refused_and_left_as_it_is(
    database_server: dbserver.Server,
    units: Server,
    places: Places,
    trap: Callable[[Places], tuple[Path, str]],
    option: str,
) -> None:
    path, reason = trap(places)
    before = snapshot(path, places.victim)
    stderr = refused(database_server, "tests.jobs.record_unit", option, str(path))
    assert f"Refusing the {WHAT[option]} {path}: {reason}." in stderr
    assert snapshot(path, places.victim) == before
    assert places.victim.read_text() == "precious\n"
    assert states(units) == {}


def test_a_held_pidfile_shows_its_content_only_if_it_is_a_pid(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    pidfile = tmp_path / "app.pid"
    pidfile.write_text("\x1b]0;owned\x07\x1b[2J\n")  # terminal escapes
    with pidfile.open() as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        stderr = refused(database_server, "tests.jobs.record_unit", "--pidfile", str(pidfile))
    assert f"Already running: the pidfile {pidfile} is held by pid unknown." in stderr
    assert "\x1b" not in stderr


def test_the_pidfile_is_removed_at_exit_only_if_it_is_still_the_daemons(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    pidfile = tmp_path / "app.pid"
    worker = start_worker(database_server, "tests.jobs.record_unit", "--pidfile", str(pidfile))
    wait_for(lambda: log_text(pidfile).strip() == str(worker.pid))
    pidfile.rename(tmp_path / "app.pid.old")
    pidfile.write_text("another file\n")
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert pidfile.read_text() == "another file\n"
    assert f"The pidfile {pidfile} is gone or is another file now: left as it is" in stderr


def test_the_sticky_directory_and_a_fresh_file_of_the_daemon_are_fine(
    database_server: dbserver.Server, units: Server, shared_tmp: Path
) -> None:
    """The checks refuse traps, not /tmp."""
    pidfile, log = shared_tmp / "app.pid", shared_tmp / "app.log"
    worker = start_worker(
        database_server, "tests.jobs.record_unit", "--pidfile", str(pidfile), "--log-file", str(log)
    )
    wait_for(lambda: states(units).get("done", 0) >= 1)
    assert pidfile.read_text().strip() == str(worker.pid)
    worker.send_signal(signal.SIGHUP)
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert " stopped after " in log.read_text()
    assert not pidfile.exists()


def process_ids(pid: int) -> dict[str, list[int]]:
    """The Uid, Gid and Groups lines of the process's /proc status."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines)
    return {name: [int(n) for n in fields[name].split()] for name in ("Uid", "Gid", "Groups")}


def test_user_and_group_give_up_roots_privileges(
    database_server: dbserver.Server, units: Server, tmp_path: Path
) -> None:
    """The files are opened as root and given to the user; the master and workers run as it."""
    nobody, nogroup = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    run = tmp_path / "run"
    run.mkdir()
    os.chown(run, nobody, nogroup)  # where the user may remove its pidfile
    pidfile, log = run / "app.pid", tmp_path / "app.log"
    master = start_worker(
        database_server,
        *("tests.jobs.record_uid_unit", "--processes", "1", "--user", "nobody", "--group", "nogroup"),
        *("--pidfile", str(pidfile), "--log-file", str(log)),
    )
    wait_for(lambda: states(units).get(f"uid{nobody}", 0) >= 1)
    assert set(states(units)) == {f"uid{nobody}"}
    assert process_ids(master.pid) == {"Uid": [nobody] * 4, "Gid": [nogroup] * 4, "Groups": [nogroup]}
    for path in (pidfile, log):
        assert (path.stat().st_uid, path.stat().st_gid) == (nobody, nogroup)
    code, stderr = stop(master)
    assert code == 0, stderr
    assert "Running as root" not in stderr
    assert not pidfile.exists()


def test_without_user_a_root_daemon_says_it_runs_as_root(
    database_server: dbserver.Server, units: Server
) -> None:
    stderr = run_until_done(database_server, units, "tests.jobs.record_unit")
    assert "Running as root: so do the units of work (--user gives root's privileges up)" in stderr
