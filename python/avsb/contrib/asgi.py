"""An ASGI lifespan handler around Django's application, for fully async startup and a shutdown
that sends the waiting events.

    # asgi.py
    from django.core.asgi import get_asgi_application
    from avsb.contrib.asgi import AvsbLifespan
    application = AvsbLifespan(get_asgi_application())

    uvicorn myproject.asgi:application --lifespan on

Startup awaits ``server.on_ready()`` (no thread blocks on the first datafile); shutdown awaits
``server.close()``. Django's own ASGI handler does not speak the lifespan protocol, so this
answers it and hands every other connection to Django. Prefer it to ``atexit`` under uvicorn:
uvicorn ends on SIGTERM by re-raising the signal, so ``atexit`` hooks never run there.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from avsb import _native
from avsb.client import AvsbClient
from avsb.server import default_server

__all__ = ["AvsbLifespan"]

logger = logging.getLogger("avsb")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class AvsbLifespan:
    """Wraps an ASGI application: answers ``lifespan`` for the A vs B server, passes the rest on.

    ``server`` is the server to wait for and close (an instance or a zero-argument callable);
    by default the first ``AvsbServer`` the process made (the one your ``AppConfig.ready()``
    created). ``ready_timeout`` bounds the wait at startup; serving starts either way, with
    defaults until a matrix arrives.
    """

    def __init__(
        self,
        application: Callable[[Scope, Receive, Send], Awaitable[None]],
        server: AvsbClient | Callable[[], AvsbClient | None] | None = None,
        ready_timeout: float = 5.0,
    ) -> None:
        self.application = application
        self._server = server
        self.ready_timeout = ready_timeout

    def server(self) -> AvsbClient | None:
        """The server this handler manages, or ``None``."""
        if self._server is None:
            return default_server()
        if isinstance(self._server, _native.Evaluator):
            return self._server
        return self._server()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.application(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                server = self.server()
                if server is None:
                    logger.warning("avsb: no AvsbServer to wait for at startup")
                else:
                    ready = await server.on_ready(self.ready_timeout)
                    logger.info("avsb: ready before serving: %s (status %s)", ready, server.status)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                server = self.server()
                if server is not None:
                    try:
                        await server.close()
                        logger.info("avsb: closed")
                    except Exception:  # noqa: BLE001 - shutdown must complete
                        logger.exception("avsb: closing the server failed")
                await send({"type": "lifespan.shutdown.complete"})
                return
