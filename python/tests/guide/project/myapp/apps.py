"""The guide's AppConfig: one AvsbServer per process, ready before the first request, closed
(its events sent) when the process exits. The guide's two ready() samples, combined."""

import atexit

from django.apps import AppConfig


class MyAppConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'myapp'

    def ready(self) -> None:
        from django.conf import settings
        from avsb import AvsbServer
        self.__class__.avsb_server = AvsbServer(sdk_key=settings.AVSB_SDK_KEY)
        self.__class__.avsb_server.on_ready_sync() # blocks briefly on first boot
        atexit.register(self.__class__.avsb_server.close_sync)
