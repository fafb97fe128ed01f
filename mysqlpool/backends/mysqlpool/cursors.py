"""Django's two cursor wrappers for MySQL, with each query's calls as methods of their own.

Django wraps a MySQLdb cursor twice: in its MySQL backend's ``CursorWrapper``
(which turns some error codes into IntegrityError) and in
``django.db.backends.utils.CursorWrapper`` (which translates errors into Django's).
Both pass what they do not define to the cursor inside through ``__getattr__``,
which Python calls only once its normal lookup has failed, having made an
AttributeError and formatted its message. So each ``fetchone()``, and the
``close()`` at the end of every ``with connection.cursor()``, made and discarded
two exceptions, and the outer wrapper made a new function to translate the errors
of ``fetchone()`` around it: 23,800 instructions of a request cycle's 180,000 on
Python 3.11, 16,200 of 139,000 on 3.13 (bench/instructions.py). Here the calls of
every query are methods that call the cursor at once, translating the same errors:
``fetchone()``, ``fetchmany()`` and ``fetchall()`` through the wrapper's error
translation (as Django's ``WRAP_ERROR_ATTRS`` asks), ``close()`` without it (as
Django's ``__getattr__`` passes it on). Everything else still goes through Django's
``__getattr__``, and the debug cursor (``DEBUG``, ``assertNumQueries``) is
Django's own.
"""

from __future__ import annotations

from typing import Any

from django.db.backends import utils
from django.db.backends.mysql import base as mysql


class MySQLCursorWrapper(mysql.CursorWrapper):
    """The MySQL backend's wrapper of a MySQLdb cursor."""

    cursor: Any

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        return self.cursor.fetchmany(*args, **kwargs)

    def fetchall(self) -> Any:
        return self.cursor.fetchall()

    def close(self) -> Any:
        return self.cursor.close()


class CursorWrapper(utils.CursorWrapper):
    """The cursor ``connection.cursor()`` returns, translating errors into Django's."""

    cursor: Any

    def fetchone(self) -> Any:
        with self.db.wrap_database_errors:
            return self.cursor.fetchone()

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        with self.db.wrap_database_errors:
            return self.cursor.fetchmany(*args, **kwargs)

    def fetchall(self) -> Any:
        with self.db.wrap_database_errors:
            return self.cursor.fetchall()

    def close(self) -> Any:
        return self.cursor.close()


class DirectCursorsDatabaseWrapper(mysql.DatabaseWrapper):
    """Django's MySQL DatabaseWrapper, whose cursors are the two above."""

    def create_cursor(self, name: str | None = None) -> MySQLCursorWrapper:
        # Django's, with its async_unsafe left to cursor(), which asks first.
        return MySQLCursorWrapper(self.connection.cursor())

    def make_cursor(self, cursor: Any) -> CursorWrapper:
        return CursorWrapper(cursor, self)
