"""``--user`` and ``--group``: a daemon started as root gives up root's privileges.

The pidfile and the log are opened first (and given to the user), then the process
becomes the user, before it detaches, forks workers or runs a unit of work.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
from collections.abc import Callable
from typing import TypeVar

from django.core.management.base import CommandError

from mysqlpool.daemon.daemonfile import Owner

Entry = TypeVar("Entry")


def user_named(text: str) -> pwd.struct_passwd:
    """An argparse type: the user with this name or uid, or a clear error."""
    return _entry(text, pwd.getpwnam, pwd.getpwuid, "a user name or uid")


def group_named(text: str) -> grp.struct_group:
    """An argparse type: the group with this name or gid, or a clear error."""
    return _entry(text, grp.getgrnam, grp.getgrgid, "a group name or gid")


def _entry(text: str, by_name: Callable[[str], Entry], by_id: Callable[[int], Entry], allowed: str) -> Entry:
    """The entry of the system's database named ``text``, or numbered ``text``."""
    try:
        return by_name(text)
    except KeyError:
        pass
    try:
        return by_id(int(text))
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {allowed} of this system") from None


def daemon_owner(user: pwd.struct_passwd | None, group: grp.struct_group | None) -> Owner:
    """Who the daemon runs as: ``user`` in ``group`` (default: the user's own group)."""
    current = Owner.current()
    uid = current.uid if user is None else user.pw_uid
    gid = group.gr_gid if group is not None else current.gid if user is None else user.pw_gid
    owner = Owner(uid, gid)
    if owner != current and os.geteuid() != 0:
        raise CommandError(f"--user and --group need root: this process runs as uid {os.geteuid()}.")
    return owner


def become(owner: Owner, user: pwd.struct_passwd | None) -> None:
    """Give up root's privileges for those of ``owner``; nothing to do if it is this process's.

    Not python-daemon's change_process_owner(): with ``initgroups`` it keeps group 0
    as the primary group, and without it root's supplementary groups.
    """
    if owner == Owner.current():
        return
    if user is not None:
        os.initgroups(user.pw_name, owner.gid)
    else:
        os.setgroups([owner.gid])
    os.setgid(owner.gid)
    os.setuid(owner.uid)
