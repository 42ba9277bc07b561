"""The guide's ASGI entry point: Django's ASGI application inside the package's lifespan
handler, which awaits ``server.on_ready()`` at startup and ``server.close()`` at shutdown.

    uvicorn guideproject.asgi_lifespan:application --lifespan on

The settings come from DJANGO_SETTINGS_MODULE (the tests run it with the guide's AppConfig and
with the fully async one, guideproject.settings_async).
"""

import logging
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guideproject.settings_async")

# The test reads what the handler logs (the avsb logger) from uvicorn's output.
logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")

# asgi.py
from django.core.asgi import get_asgi_application  # noqa: E402
from avsb.contrib.asgi import AvsbLifespan  # noqa: E402
application = AvsbLifespan(get_asgi_application()) # uvicorn ... --lifespan on
