"""Where settings come from: the argument, else Django's settings (when Django is configured),
else the environment. Configuration problems raise ``ConfigError`` (a ``ValueError``) at start,
never in the request path."""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["ConfigError", "setting"]


class ConfigError(ValueError):
    """A setting that cannot work (raised when the SDK is set up, never during a request)."""


def setting(name: str, default: Any = None) -> Any:
    """``name`` from Django's settings if Django is configured and defines it, else from the
    environment, else ``default``. Importing avsb never imports Django."""
    django_conf = sys.modules.get("django.conf")
    if django_conf is not None:
        settings = django_conf.settings
        try:
            if settings.configured and hasattr(settings, name):
                return getattr(settings, name)
        except Exception:  # noqa: BLE001 - an unconfigured or broken settings module: fall through
            pass
    return os.environ.get(name, default)
