"""Settings of the worker that tests/test_secrets.py runs: every log line, at DEBUG.

The server and the (secret) password come from the MYSQLPOOL_TEST_* variables, as
for tests/daemon_settings.py. Two more aliases: ``second``, with a short timeout,
to run out of budget; ``wrongpw``, whose password is wrong.
"""

from tests.daemon_settings import *  # noqa: F403
from tests.daemon_settings import DATABASES

_default = DATABASES["default"]
_default["OPTIONS"] = {"pool": {"pool_size": 2, "timeout": 5, "echo": "debug"}}
DATABASES["second"] = {**_default, "OPTIONS": {"pool": {"timeout": 0.3, "echo": "debug"}}}
DATABASES["wrongpw"] = {**_default, "PASSWORD": f"{_default['PASSWORD']}-wrong"}
MYSQLPOOL_HOLD_WARNING = 0.2
LOGGING = {
    "version": 1,
    "formatters": {
        "all": {"format": "%(asctime)s %(process)d %(threadName)s %(name)s %(levelname)s %(message)s"}
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "all"}},
    "root": {"handlers": ["stderr"], "level": "DEBUG"},
}
