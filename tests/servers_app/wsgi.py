"""The WSGI application, for gunicorn.

With MYSQLPOOL_TEST_QUERY_AT_IMPORT set, importing it runs a query and keeps the
connection, as applications that query at startup do: under ``--preload`` the
master then holds a connection when it forks its workers (gunicorn #1953).

With MYSQLPOOL_TEST_POSTFORK set (under uWSGI), it then imports uwsgidecorators,
which sets ``uwsgi.post_fork_hook`` anew, after mysqlpool's, and registers a
``@postfork`` function that prints ``postfork in PID``.
"""

import os
import sys

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

if os.environ.get("MYSQLPOOL_TEST_QUERY_AT_IMPORT"):
    from tests.servers_app.views import served_by

    served_by()

if os.environ.get("MYSQLPOOL_TEST_POSTFORK"):
    from uwsgidecorators import postfork

    @postfork
    def announce() -> None:
        print(f"postfork in {os.getpid()}", file=sys.stderr, flush=True)
