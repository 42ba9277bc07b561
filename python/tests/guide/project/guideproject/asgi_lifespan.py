"""The guide's fully async startup: an ASGI lifespan handler around Django's application.

    uvicorn guideproject.asgi_lifespan:application --lifespan on

Startup awaits ``server.on_ready()`` (no thread blocks on the first datafile), shutdown awaits
``server.close()`` (the waiting events are sent). Django's own ASGI handler does not speak the
lifespan protocol, so this wrapper answers it and hands every other connection to Django.
"""

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guideproject.settings_async")

django_application = get_asgi_application()

from myapp.async_apps import MyAsyncAppConfig  # noqa: E402 - needs the app registry

logger = logging.getLogger("uvicorn.error")


async def application(scope, receive, send):
    if scope["type"] != "lifespan":
        await django_application(scope, receive, send)
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            server = MyAsyncAppConfig.avsb_server
            ready = await server.on_ready()
            logger.info("avsb: ready before serving: %s (status %s)", ready, server.status)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await MyAsyncAppConfig.avsb_server.close()
            logger.info("avsb: closed")
            await send({"type": "lifespan.shutdown.complete"})
            return
