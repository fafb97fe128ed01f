"""Settings of fresh ``manage.py`` processes whose system checks connect.

Those of tests/daemon_settings.py, with a model: Django 6.1's model checks connect
to every database to learn the server's version. MYSQLPOOL_TEST_MISTAKE names a
settings mistake to make (tests/test_checks.py).
"""

import os

from tests.daemon_settings import *  # noqa: F403
from tests.daemon_settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

_mistake = os.environ.get("MYSQLPOOL_TEST_MISTAKE", "")
if _mistake == "CONN_MAX_AGE":
    DATABASES["default"]["CONN_MAX_AGE"] = 60
elif _mistake == "MYSQLPOOL_BACKEND":
    MYSQLPOOL_BACKEND = "NoSuchPool"
elif _mistake == "pool argument":
    DATABASES["default"]["OPTIONS"] = {"pool": {"pool_sise": 3}}
else:
    assert not _mistake, f"unknown MYSQLPOOL_TEST_MISTAKE {_mistake!r}"
