"""The WSGI application, for gunicorn.

With MYSQLPOOL_TEST_QUERY_AT_IMPORT set, importing it runs a query and keeps the
connection, as applications that query at startup do: under ``--preload`` the
master then holds a connection when it forks its workers (gunicorn #1953).
"""

import os

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

if os.environ.get("MYSQLPOOL_TEST_QUERY_AT_IMPORT"):
    from tests.servers_app.views import served_by

    served_by()
