"""The guide's AppConfig: one AvsbServer per process (none without an SDK key, as in tests that
use MockAvsbServer), its first matrix awaited once the application serves requests, closed (its
events sent) when the process exits. The guide's ready() and atexit samples, combined."""

import atexit

from django.apps import AppConfig


class MyAppConfig(AppConfig):
 default_auto_field = 'django.db.models.BigAutoField'
 name = 'myapp'
 avsb_server = None
 def ready(self) -> None:
  from django.conf import settings
  from avsb import AvsbServer
  if settings.AVSB_SDK_KEY: # tests that use MockAvsbServer run without one
   self.__class__.avsb_server = AvsbServer(sdk_key=settings.AVSB_SDK_KEY)
   self.__class__.avsb_server.on_ready_sync() # waits for the first matrix once the app serves requests
   atexit.register(self.__class__.avsb_server.close_sync)
