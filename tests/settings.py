"""Django settings of the test suite: pooled aliases and a plain one, one server."""

import os

from tests.dbserver import ENV_HOST, ENV_PASSWORD, ENV_PORT, ENV_USER

SECRET_KEY = "mysqlpool-tests"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["mysqlpool", "tests.testapp"]


def _database(engine: str, name: str, **extra: object) -> dict:
    return {
        "ENGINE": engine,
        "NAME": name,
        "HOST": os.environ.get(ENV_HOST, "127.0.0.1"),
        "PORT": os.environ.get(ENV_PORT, "3306"),
        "USER": os.environ.get(ENV_USER, "root"),
        "PASSWORD": os.environ.get(ENV_PASSWORD, ""),
        "TEST": {"NAME": f"test_{name}"},
        **extra,
    }


POOLED = "mysqlpool.backends.mysqlpool"
DATABASES = {
    "default": _database(
        POOLED, "mysqlpool", OPTIONS={"pool": {"pool_size": 4, "max_overflow": 2, "timeout": 5}}
    ),
    "other": _database(POOLED, "mysqlpool_other"),
    # Django's own backend on the same database, to watch the pool from outside.
    "plain": _database("django.db.backends.mysql", "mysqlpool", TEST={"MIRROR": "default"}),
}
