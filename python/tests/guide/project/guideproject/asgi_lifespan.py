"""The guide's fully async startup: Django's ASGI application inside the package's lifespan
handler, which awaits ``server.on_ready()`` at startup and ``server.close()`` at shutdown.

    uvicorn guideproject.asgi_lifespan:application --lifespan on
"""

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guideproject.settings_async")

from avsb.contrib.asgi import AvsbLifespan  # noqa: E402

# The test reads what the handler logs (the avsb logger) from uvicorn's output.
logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")

application = AvsbLifespan(get_asgi_application())
