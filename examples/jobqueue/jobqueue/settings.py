"""Settings of the example job queue.

The database server comes from the environment: DEMO_DB_HOST, DEMO_DB_PORT,
DEMO_DB_USER, DEMO_DB_PASSWORD and DEMO_DB_NAME (``make demo`` sets them for the
throwaway server it starts; set them yourself to use your own server).
"""

import os

SECRET_KEY = "mysqlpool-example-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["mysqlpool", "jobs"]

DATABASES = {
    "default": {
        "ENGINE": "mysqlpool.backends.mysqlpool",
        "NAME": os.environ.get("DEMO_DB_NAME", "mysqlpool_demo"),
        "HOST": os.environ.get("DEMO_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DEMO_DB_PORT", "3306"),
        "USER": os.environ.get("DEMO_DB_USER", "root"),
        "PASSWORD": os.environ.get("DEMO_DB_PASSWORD", ""),
        "OPTIONS": {"charset": "utf8mb4", "pool": {"pool_size": 4, "timeout": 30}},
    }
}
if os.environ.get("DEMO_PLAIN_BACKEND"):
    # What the benchmark compares with: Django's own backend, one persistent
    # connection per thread.
    DATABASES["default"].update(
        ENGINE="django.db.backends.mysql", CONN_MAX_AGE=None, OPTIONS={"charset": "utf8mb4"}
    )

LOGGING = {
    "version": 1,
    "formatters": {"short": {"format": "%(asctime)s %(process)d %(levelname)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "short"}},
    "loggers": {"mysqlpool": {"handlers": ["stderr"], "level": os.environ.get("DEMO_LOG_LEVEL", "WARNING")}},
}
