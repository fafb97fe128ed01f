"""Test database creation that never leaves pooled connections in the way."""

from __future__ import annotations

from typing import Any

from django.db.backends.mysql.creation import DatabaseCreation as MySQLDatabaseCreation

from mysqlpool import registry


class DatabaseCreation(MySQLDatabaseCreation):
    """Disposes the pool around creating and destroying the test database.

    After creation Django switches the alias to the test database's NAME, so the
    pool must be rebuilt from the new settings; before DROP DATABASE, idle pooled
    connections would keep metadata locks that block the drop.
    """

    # django-stubs leaves these private hooks out, hence the ignores.
    def _create_test_db(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._create_test_db(*args, **kwargs)  # type: ignore[misc]
        finally:
            registry.dispose(self.connection.alias)

    def _destroy_test_db(self, *args: Any, **kwargs: Any) -> None:
        registry.dispose(self.connection.alias)
        super()._destroy_test_db(*args, **kwargs)  # type: ignore[misc]
