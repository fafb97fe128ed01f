"""Settings of the web servers and Celery workers the server tests start (tests/servers_app).

The server and database come from the environment, as in tests/daemon_settings.py;
so do the pool's figures, which each test chooses:

* MYSQLPOOL_TEST_POOL_IN: ``options`` (``OPTIONS["pool"]``, the default) or
  ``arguments`` (``MYSQLPOOL_ARGUMENTS``, for every alias);
* MYSQLPOOL_TEST_POOL_SIZE and MYSQLPOOL_TEST_MAX_OVERFLOW (default 2 and 0);
* MYSQLPOOL_TEST_BUDGET: ``MYSQLPOOL_BUDGET`` (default: none);
* MYSQLPOOL_TEST_BROKER: the Celery broker's URL.
"""

import os

from tests.daemon_settings import DATABASES as _DAEMON_DATABASES
from tests.daemon_settings import LOGGING  # noqa: F401 - a setting

SECRET_KEY = "mysqlpool-server-tests"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["mysqlpool", "tests.testapp", "tests.servers_app"]
ROOT_URLCONF = "tests.servers_app.urls"
ALLOWED_HOSTS = ["127.0.0.1"]
MIDDLEWARE: list[str] = []

_pool = {
    "pool_size": int(os.environ.get("MYSQLPOOL_TEST_POOL_SIZE", "2")),
    "max_overflow": int(os.environ.get("MYSQLPOOL_TEST_MAX_OVERFLOW", "0")),
    "timeout": 30,
}
_in_options = os.environ.get("MYSQLPOOL_TEST_POOL_IN", "options") == "options"
DATABASES = {"default": {**_DAEMON_DATABASES["default"], "OPTIONS": {"pool": _pool} if _in_options else {}}}
if not _in_options:
    MYSQLPOOL_ARGUMENTS = _pool
if "MYSQLPOOL_TEST_BUDGET" in os.environ:
    MYSQLPOOL_BUDGET = int(os.environ["MYSQLPOOL_TEST_BUDGET"])

CELERY_BROKER_URL = os.environ.get("MYSQLPOOL_TEST_BROKER", "redis://127.0.0.1:1/0")
# One task at a time per worker process, so that tasks spread over the children.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
