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
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import dbserver
from tests.conftest import Server
from tests.test_daemon import log_text, refused, start_worker, states, stop, wait_for

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


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file of root's that a trap points at."""
    path = tmp_path / "victim"
    path.write_text("precious\n")
    return path


def as_nobody(*command: str) -> None:
    subprocess.run(command, user="nobody", group="nogroup", check=True)


@pytest.mark.parametrize("option", OPTIONS)
def test_a_symbolic_link_is_refused(
    database_server: dbserver.Server, units: Server, shared_tmp: Path, victim: Path, option: str
) -> None:
    trap = shared_tmp / "app.file"
    as_nobody("ln", "-s", str(victim), str(trap))
    stderr = refused(database_server, "tests.jobs.record_unit", option, str(trap))
    assert f"Refusing the {WHAT[option]} {trap}: it is a symbolic link." in stderr
    assert victim.read_text() == "precious\n"
    assert trap.is_symlink()
    assert states(units) == {}


@pytest.mark.parametrize("option", OPTIONS)
def test_a_symbolic_link_on_the_way_is_refused(
    database_server: dbserver.Server, units: Server, shared_tmp: Path, victim: Path, option: str
) -> None:
    as_nobody("ln", "-s", str(victim.parent), str(shared_tmp / "run"))
    stderr = refused(database_server, "tests.jobs.record_unit", option, str(shared_tmp / "run" / victim.name))
    assert "it is reached through 'run', a symbolic link of nobody (uid 65534)." in stderr
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("option", OPTIONS)
def test_a_file_of_another_user_is_refused(
    database_server: dbserver.Server, units: Server, shared_tmp: Path, option: str
) -> None:
    """Its owner could write another pid in it, for ``kill $(cat pidfile)`` to kill."""
    trap = shared_tmp / "app.file"
    as_nobody("sh", "-c", f"umask 0 && echo 1 > {trap}")
    stderr = refused(database_server, "tests.jobs.record_unit", option, str(trap))
    assert (
        f"Refusing the {WHAT[option]} {trap}: it belongs to nobody (uid 65534), not to the daemon's user."
        in stderr
    )
    assert trap.read_text() == "1\n"


@pytest.mark.parametrize("option", OPTIONS)
def test_a_file_every_user_can_write_to_is_refused(
    database_server: dbserver.Server, units: Server, tmp_path: Path, option: str
) -> None:
    path = tmp_path / "app.file"
    path.touch(mode=0o666)
    path.chmod(0o666)
    stderr = refused(database_server, "tests.jobs.record_unit", option, str(path))
    assert f"Refusing the {WHAT[option]} {path}: every user can write to it." in stderr


@pytest.mark.parametrize("option", OPTIONS)
def test_a_hard_link_is_refused(
    database_server: dbserver.Server, units: Server, tmp_path: Path, victim: Path, option: str
) -> None:
    link = tmp_path / "app.file"
    os.link(victim, link)
    stderr = refused(database_server, "tests.jobs.record_unit", option, str(link))
    assert f"Refusing the {WHAT[option]} {link}: it has 2 hard links." in stderr
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("option", OPTIONS)
def test_a_fifo_is_refused_at_once(
    database_server: dbserver.Server, units: Server, tmp_path: Path, option: str
) -> None:
    """Not a start that waits for ever for a reader, nor a raw OSError."""
    fifo = tmp_path / "app.file"
    os.mkfifo(fifo)
    stderr = refused(database_server, "tests.jobs.record_unit", option, str(fifo))
    assert f"Refusing the {WHAT[option]} {fifo}: it is a FIFO." in stderr


@pytest.mark.parametrize("option", OPTIONS)
def test_a_directory_every_user_can_write_to_without_the_sticky_bit_is_refused(
    database_server: dbserver.Server, units: Server, tmp_path: Path, option: str
) -> None:
    """Any user could rename the file away and put their own in its place."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    stderr = refused(database_server, "tests.jobs.record_unit", option, str(shared / "app.file"))
    assert (
        f"Refusing the {WHAT[option]} {shared / 'app.file'}: every user can write to its directory" in stderr
    )
    assert not (shared / "app.file").exists()


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
    worker = start_worker(database_server, "tests.jobs.record_unit")
    wait_for(lambda: states(units).get("done", 0) >= 1)
    code, stderr = stop(worker)
    assert code == 0, stderr
    assert "Running as root: so do the units of work (--user gives root's privileges up)" in stderr
