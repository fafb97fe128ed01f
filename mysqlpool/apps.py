"""The ``mysqlpool`` Django app: add it to INSTALLED_APPS for its commands and checks.

The ENGINE works without it.
"""

from __future__ import annotations

from django.apps import AppConfig
from django.core.checks import Tags, register


class MysqlpoolConfig(AppConfig):
    name = "mysqlpool"
    verbose_name = "MySQL connection pool"

    def ready(self) -> None:
        from mysqlpool import checks

        register(checks.check_settings, "mysqlpool")
        # Run by `check --database ALIAS` (and migrate): they ask the server.
        register(checks.check_server, Tags.database)
