"""The guide's fully async startup: the same project, with an AppConfig whose ready() only creates
the server; guideproject.asgi_lifespan awaits ``server.on_ready()`` before serving."""

from guideproject.settings import *  # noqa: F401,F403
from guideproject.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "myapp"] + ["myapp.async_apps.MyAsyncAppConfig"]
