"""The ASGI application, for uvicorn."""

from django.core.asgi import get_asgi_application

from mysqlpool.asgi import close_pools_at_shutdown

application = get_asgi_application()

# As README's uvicorn guide shows it: the pools closed when uvicorn shuts down.
closing_application = close_pools_at_shutdown(application)
