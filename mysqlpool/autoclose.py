"""``auto_close_db``: return the current thread's connections after a unit of work."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import ContextDecorator
from types import TracebackType
from typing import Any, TypeVar, overload

from django.db import connections

F = TypeVar("F", bound=Callable[..., Any])


def release_connections() -> None:
    """Do for the current thread what Django does at the end of a request.

    A pooled connection goes back to its pool (CONN_MAX_AGE is 0 for them); an
    alias on another backend follows its own CONN_MAX_AGE. A connection inside
    an ``atomic()`` block is left alone: the block that opened it finishes first.
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class _AutoCloseDb(ContextDecorator):
    def __enter__(self) -> _AutoCloseDb:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        release_connections()


@overload
def auto_close_db(func: F) -> F: ...
@overload
def auto_close_db(func: None = None) -> _AutoCloseDb: ...
def auto_close_db(func: F | None = None) -> F | _AutoCloseDb:
    """Return the thread's connections when the block or function ends, even on error.

    Use as ``@auto_close_db`` (as in django-mysqlpool), ``@auto_close_db()`` or
    ``with auto_close_db():``.
    """
    if func is None:
        return _AutoCloseDb()
    return functools.wraps(func)(_AutoCloseDb()(func))  # type: ignore[return-value]
