"""The ``mysqlpool`` Django app: add it to INSTALLED_APPS for its commands and checks.

The ENGINE works without it.
"""

from __future__ import annotations

from django.apps import AppConfig


class MysqlpoolConfig(AppConfig):
    name = "mysqlpool"
    verbose_name = "MySQL connection pool"

    def ready(self) -> None:
        from mysqlpool import checks  # noqa: F401 - registers the system checks
