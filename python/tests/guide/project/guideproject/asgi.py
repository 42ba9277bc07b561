"""ASGI entry point of the guide's project (``uvicorn guideproject.asgi:application``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guideproject.settings")

application = get_asgi_application()
