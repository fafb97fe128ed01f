"""An ASGI application that closes the process's pools when its server shuts down.

uvicorn stops a worker on SIGTERM gracefully, then raises the signal again, so that
the process ends as signalled: it dies without Python's exit, and its idle pooled
connections drop without a goodbye (COM_QUIT). The server then logs an "Aborted
connection ... Got an error reading communication packets" warning for each, and
counts it in ``Aborted_clients``, which DBAs watch. An ASGI server tells its
application that it shuts down through the lifespan protocol, which Django's ASGI
handler does not speak; this wrapper speaks it, for that alone.
"""

from __future__ import annotations

from asgiref.typing import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope

from mysqlpool.registry import close_pool


def close_pools_at_shutdown(application: ASGI3Application) -> ASGI3Application:
    """``application`` (Django's), with the pools closed when the server shuts down.

    In ``asgi.py``: ``application = close_pools_at_shutdown(get_asgi_application())``.
    The server must run the lifespan protocol (uvicorn's default, ``--lifespan
    auto``, does once the application answers it). An application that handles
    lifespan itself (django-asgi-lifespan, Starlette) should call
    ``mysqlpool.close_pool()`` at its own shutdown instead.
    """

    async def closing_pools_at_shutdown(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "lifespan":
            await application(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # The requests have ended, or were given up after the server's
                # graceful timeout (a connection still checked out in a thread is
                # closed when it is returned). Closing the idle ones sends a
                # COM_QUIT each, without waiting for an answer.
                try:
                    close_pool()
                except Exception as error:  # the server logs it, and shuts down all the same
                    await send({"type": "lifespan.shutdown.failed", "message": repr(error)})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    return closing_pools_at_shutdown
