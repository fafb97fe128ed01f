"""How a returned connection is reset: ``reset_on_return``, parsed once.

The setting takes SQLAlchemy's values (``"rollback"``, ``"commit"``, True, False,
None) and mysqlpool's own ``"session"``. It becomes a ResetStyle when the pool's
configuration is read (as SQLAlchemy's pool turns it into its ``ResetStyle``);
every later decision (the check-in's action, system check W005) reads the style.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from mysqlpool.connection import PooledConnection


class ResetStyle(enum.Enum):
    """What a check-in does to the connection's session."""

    ROLLBACK = "rollback"  # roll back a transaction left open (the default)
    COMMIT = "commit"  # commit a transaction left open
    SESSION = "session"  # reset the whole session (COM_RESET_CONNECTION)
    NONE = "none"  # nothing: whatever was left open goes to the next user

    @classmethod
    def of_setting(cls, value: Any) -> ResetStyle:
        """The style of a validated ``reset_on_return`` value."""
        if value is True:
            return cls.ROLLBACK
        if value is None or value is False:
            return cls.NONE
        return cls(value)


# What each style does at check-in; each returns whether the session settings made
# at checkout survive it.


def rollback_if_in_transaction(connection: PooledConnection) -> bool:
    # The server's transaction flag makes the common case free: no ROLLBACK is
    # sent when no transaction is open.
    if connection.in_transaction():
        connection.rollback()  # type: ignore[no-untyped-call]
    return True


def _commit_if_in_transaction(connection: PooledConnection) -> bool:
    if connection.in_transaction():
        connection.commit()  # type: ignore[no-untyped-call]
    return True


def _reset_session(connection: PooledConnection) -> bool:
    connection.reset_session()
    return False


def no_reset(connection: PooledConnection) -> bool:
    return True


RESETS: dict[ResetStyle, Callable[[PooledConnection], bool]] = {
    ResetStyle.ROLLBACK: rollback_if_in_transaction,
    ResetStyle.COMMIT: _commit_if_in_transaction,
    ResetStyle.SESSION: _reset_session,
    ResetStyle.NONE: no_reset,
}
