"""WSGI entry point of the guide's project."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guideproject.settings")

application = get_wsgi_application()
