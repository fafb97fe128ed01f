"""Django settings of the test suite: pooled aliases and a plain one, one server.

Where the server is comes from the ``database_server`` fixture (tests/conftest.py),
which starts a throwaway server unless MYSQLPOOL_TEST_HOST names one: the HOST
below is a placeholder that fails loudly if anything connects before that.
"""

SECRET_KEY = "mysqlpool-tests"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["mysqlpool", "tests.testapp"]


def _database(engine: str, name: str, **extra: object) -> dict[str, object]:
    return {
        "ENGINE": engine,
        "NAME": name,
        "HOST": "database-server-not-started.invalid",
        # A server started with --no-defaults defaults to latin1; deployments use utf8mb4.
        "TEST": {"NAME": f"test_{name}", "CHARSET": "utf8mb4"},
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
