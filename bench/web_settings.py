"""Settings of the web servers that bench/web_requests.py measures: tests/servers_app.

The database entry is the tests' (server and database from the environment, see
tests/servers_settings.py) updated with the JSON of BENCH_WEB_DATABASE: the way to
connect under measurement. BENCH_WEB_BUDGET, if set, is MYSQLPOOL_BUDGET.
"""

import json
import os

from tests.servers_settings import *  # noqa: F403 - these settings, then the changes below
from tests.servers_settings import DATABASES as _TESTS_DATABASES

DATABASES = {
    "default": {**_TESTS_DATABASES["default"], "OPTIONS": {}, **json.loads(os.environ["BENCH_WEB_DATABASE"])}
}
if "BENCH_WEB_BUDGET" in os.environ:
    MYSQLPOOL_BUDGET = int(os.environ["BENCH_WEB_BUDGET"])
LOGGING = {"version": 1}  # nothing on the benchmark's terminal
