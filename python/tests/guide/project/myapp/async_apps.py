"""The guide's fully async startup: ready() creates the server without waiting for it; the ASGI
lifespan handler (guideproject.asgi_lifespan) awaits ``on_ready()`` and ``close()``."""

from django.apps import AppConfig


class MyAsyncAppConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'myapp'

    def ready(self) -> None:
        from django.conf import settings
        from avsb import AvsbServer
        self.__class__.avsb_server = AvsbServer(sdk_key=settings.AVSB_SDK_KEY)
