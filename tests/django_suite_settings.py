"""Settings of Django's own test suite as tests/django_suite.py runs it.

Django's runtests.py adds its own apps, URLs, templates and middleware; it needs
the aliases 'default' and 'other' (its multi-database tests use both). Both use
the ENGINE named by MYSQLPOOL_SUITE_ENGINE (mysqlpool's unless django_suite.py is
run with --plain) on the server named by the MYSQLPOOL_TEST_* variables; with
MYSQLPOOL_SUITE_RESET_SESSION set (--reset-session), pools reset each session at
check-in. The other settings are those of the suite's own example,
tests/test_sqlite.py.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from tests.dbserver import Server, configured_server

_server = configured_server()
if _server is None:
    raise ImproperlyConfigured("No server: run Django's suite through tests/django_suite.py.")


def _database(server: Server, name: str) -> dict[str, object]:
    return {
        "ENGINE": os.environ.get("MYSQLPOOL_SUITE_ENGINE", "mysqlpool.backends.mysqlpool"),
        "NAME": name,
        "HOST": server.host,
        "PORT": server.port,
        "USER": server.user,
        "PASSWORD": server.password,
        # A server started with --no-defaults (as dbserver.py does) defaults to
        # latin1; deployments use utf8mb4.
        "TEST": {"CHARSET": "utf8mb4"},
    }


DATABASES = {"default": _database(_server, "django_suite"), "other": _database(_server, "django_suite_other")}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
if os.environ.get("MYSQLPOOL_SUITE_RESET_SESSION"):
    MYSQLPOOL_ARGUMENTS = {"reset_on_return": "session"}
