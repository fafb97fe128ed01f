"""Settings of the worker processes tests/test_daemon.py starts.

The server comes from the MYSQLPOOL_TEST_* variables and the database from
MYSQLPOOL_TEST_DATABASE, both set by the test for the process it starts.
"""

import os

from tests.dbserver import configured_server

_server = configured_server()
assert _server is not None, "started by tests/test_daemon.py"

SECRET_KEY = "mysqlpool-daemon-tests"
USE_TZ = True
INSTALLED_APPS = ["mysqlpool", "tests.daemon_app"]
DATABASES = {
    "default": {
        "ENGINE": "mysqlpool.backends.mysqlpool",
        "NAME": os.environ["MYSQLPOOL_TEST_DATABASE"],
        "HOST": _server.host,
        "PORT": _server.port,
        "USER": _server.user,
        "PASSWORD": _server.password,
        "OPTIONS": {"pool": {"pool_size": 8, "timeout": 30}},
    }
}
# MYSQLPOOL_TEST_LOGGING=none: a project that configures no logging.
if os.environ.get("MYSQLPOOL_TEST_LOGGING") != "none":
    LOGGING = {
        "version": 1,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "loggers": {"mysqlpool": {"handlers": ["stderr"], "level": "INFO"}},
    }
