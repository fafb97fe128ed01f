"""The files a daemon writes (its pidfile and log), opened so that no other user can redirect them.

A daemon started as root writes where it is told. Another user who can write to a
directory on the way may have left a trap there: a symbolic link to /etc/passwd, a
hard link, a FIFO (a start that hangs), or a file of their own (whose content they
then control). So the path is made absolute but never resolved; each directory on
the way is entered without following a symbolic link unless root or the daemon's
user owns it; the file is opened with O_NOFOLLOW and O_NONBLOCK, and kept only if
it is a regular file with one link, owned by the daemon's user and writable by no
one else, in a directory that not every user can write to without the sticky bit.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path
from typing import NamedTuple

from django.core.management.base import CommandError

# Created files get this mode, less the umask.
MODE = 0o644
# O_PATH: a directory that can be searched but not read is entered all the same.
_DIRECTORY = os.O_DIRECTORY | os.O_CLOEXEC | getattr(os, "O_PATH", os.O_RDONLY)
_FILE = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFLNK: "a symbolic link",
}


class Owner(NamedTuple):
    """The user and group the daemon runs as: its files must be theirs."""

    uid: int
    gid: int

    @classmethod
    def current(cls) -> Owner:
        return cls(os.geteuid(), os.getegid())

    def owners(self) -> tuple[int, ...]:
        """The uids whose files may be the daemon's: its user's, and that of who starts it."""
        return tuple(dict.fromkeys((self.uid, os.geteuid())))

    def may_own(self, uid: int) -> bool:
        return uid in self.owners()


def absolute(path: str) -> Path:
    """``path`` made absolute without resolving it: a link is checked where it is, not followed."""
    return Path(path).absolute()


class DaemonFile:
    """The file at ``path``, open for reading and writing (created if missing), and its directory."""

    def __init__(self, path: Path, what: str, owner: Owner, flags: int = 0) -> None:
        self.path = path
        self.dir_fd = _open_directory(path, what, owner)
        try:
            self.fd = _open_file(self.dir_fd, path, what, flags)
        except BaseException:
            os.close(self.dir_fd)
            raise
        try:
            _check_file(self.fd, path, what, owner)
        except BaseException:
            self.close()
            raise

    def detach(self) -> int:
        """The file's descriptor, for the caller to close; the directory's is closed."""
        os.close(self.dir_fd)
        return self.fd

    def unlink(self) -> bool:
        """Remove the file's name, if it still names this file (and not one put in its place)."""
        try:
            named = os.stat(self.path.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        opened = os.fstat(self.fd)
        if (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
            return False
        os.unlink(self.path.name, dir_fd=self.dir_fd)
        return True

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.dir_fd)


def _refuse(what: str, path: Path, reason: str) -> CommandError:
    return CommandError(f"Refusing the {what} {path}: {reason}.")


def _open_directory(path: Path, what: str, owner: Owner) -> int:
    fd = os.open("/", _DIRECTORY)
    try:
        for name in path.parent.parts[1:]:
            child = _enter(fd, name, path, what, owner)
            os.close(fd)
            fd = child
        _check_directory(fd, path, what)
    except OSError as error:
        os.close(fd)
        raise CommandError(f"Cannot open the {what} {path}: {error.strerror}.") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _enter(parent: int, name: str, path: Path, what: str, owner: Owner) -> int:
    """The directory ``name`` in ``parent``: a link is followed only if it is no trap."""
    found = os.stat(name, dir_fd=parent, follow_symlinks=False)
    follow = stat.S_ISLNK(found.st_mode)
    if follow and not (found.st_uid == 0 or owner.may_own(found.st_uid)):
        link = f"{name!r}, a symbolic link of {_user(found.st_uid)}"
        raise _refuse(what, path, f"it is reached through {link}")
    # Should the name become a link after the check, O_NOFOLLOW refuses it.
    return os.open(name, _DIRECTORY if follow else _DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)


def _check_directory(fd: int, path: Path, what: str) -> None:
    mode = os.fstat(fd).st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        raise _refuse(
            what,
            path,
            "every user can write to its directory, which has no sticky bit, so any of them "
            "could replace it; use a directory that only the daemon's user can write to",
        )


def _open_file(dir_fd: int, path: Path, what: str, flags: int) -> int:
    try:
        try:
            return os.open(path.name, _FILE | flags | os.O_CREAT | os.O_EXCL, MODE, dir_fd=dir_fd)
        except FileExistsError:
            return os.open(path.name, _FILE | flags, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _refuse(what, path, "it is a symbolic link") from None
        raise CommandError(f"Cannot open the {what} {path}: {error.strerror}.") from None


def _check_file(fd: int, path: Path, what: str, owner: Owner) -> None:
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode):
        raise _refuse(what, path, f"it is {_KINDS.get(stat.S_IFMT(found.st_mode), 'no regular file')}")
    if not owner.may_own(found.st_uid):
        # Naming who may own it tells a forgotten --user from a planted file.
        allowed = " or ".join(_user(uid) for uid in owner.owners())
        raise _refuse(
            what,
            path,
            f"it belongs to {_user(found.st_uid)}, and the daemon's files must belong to {allowed}",
        )
    if found.st_nlink != 1:
        raise _refuse(what, path, f"it has {found.st_nlink} hard links")
    if found.st_mode & stat.S_IWOTH:
        raise _refuse(what, path, "every user can write to it")
    if owner != Owner.current():  # the daemon becomes its user once its files are open
        os.fchown(fd, owner.uid, owner.gid)


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
