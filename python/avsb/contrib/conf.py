"""The settings ``AvsbMiddleware`` reads, with their defaults and their checks.

``AVSB_MIDDLEWARE_OPTIONS`` is a dict of these options (each may be left out; every one is checked
when the middleware is built, and a bad one raises ``ImproperlyConfigured`` at start, never during
a request):

| option | default | meaning |
|---|---|---|
| ``context_from`` | ``None`` | ``callable(request) -> dict`` (or its dotted path): the request's context, e.g. ``{'kind': 'user', 'key': str(request.user.id) if request.user.is_authenticated else avsb_anonymous_key(request), 'plan': ...}`` (``avsb.contrib.wsgi.avsb_anonymous_key``: the anonymous cookie's key); ``None`` gives every request the anonymous context ``{'kind': 'user', 'key': <the anonymous cookie's key>, 'anonymous': True}`` |
| ``is_privileged`` | ``None`` | ``callable(request) -> bool`` (or its dotted path): whether the request may force groups; ``None``: no request may |
| ``anonymous_cookie`` | ``'avsb_anon'`` | the cookie that keeps an anonymous visitor's key for ``ANONYMOUS_COOKIE_MAX_AGE`` (a year); ``None`` turns the cookie off and every anonymous visitor gets the key ``ANONYMOUS_KEY`` (``'anonymous'``) |
| ``force_groups_param`` | ``'prforceGroups'`` | the query parameter and cookie that carry force groups |
| ``server`` | ``None`` | the ``AvsbServer`` (any :class:`avsb.AvsbClient`) to evaluate with, or a zero-argument callable (or its dotted path) that returns one, called on the first request; ``None``: ``avsb.default_server()`` (the guide's ``AppConfig.ready()`` creates it), else one ``AvsbServer()`` made on the first request from ``AVSB_SDK_KEY`` and ``AVSB_BASE_URL`` |

``AVSB_SDK_KEY`` and ``AVSB_BASE_URL`` are read as ``AvsbServer`` reads them (a Django setting,
else the environment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Union

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.module_loading import import_string

from avsb import _native
from avsb.client import AvsbClient
from avsb.config import setting

__all__ = [
    "ANONYMOUS_COOKIE_MAX_AGE",
    "ANONYMOUS_KEY",
    "OPTION_DEFAULTS",
    "SETTING",
    "MiddlewareOptions",
    "check_can_make_server",
]

#: The name of the setting that holds the middleware's options.
SETTING = "AVSB_MIDDLEWARE_OPTIONS"

#: Each option of ``AVSB_MIDDLEWARE_OPTIONS`` and its default (see the table above).
OPTION_DEFAULTS: dict[str, Any] = {
    "context_from": None,
    "is_privileged": None,
    "anonymous_cookie": "avsb_anon",
    "force_groups_param": "prforceGroups",
    "server": None,
}

#: The key every anonymous visitor shares when the anonymous cookie is turned off.
ANONYMOUS_KEY = "anonymous"
#: How long the anonymous cookie lives, in seconds (a year).
ANONYMOUS_COOKIE_MAX_AGE = 365 * 24 * 60 * 60

# RFC 6265 token characters: what a cookie name (and our query parameter) may hold.
_COOKIE_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

ServerOption = Union[AvsbClient, Callable[[], AvsbClient], None]


@dataclass(frozen=True)
class MiddlewareOptions:
    """``AVSB_MIDDLEWARE_OPTIONS``, checked."""

    context_from: Callable[[HttpRequest], Any] | None
    is_privileged: Callable[[HttpRequest], Any] | None
    anonymous_cookie: str | None
    force_groups_param: str
    server: ServerOption

    @classmethod
    def from_settings(cls) -> MiddlewareOptions:
        """Reads and checks the setting; raises ``ImproperlyConfigured`` naming what is wrong."""
        raw = getattr(settings, SETTING, None)
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ImproperlyConfigured(f"{SETTING} must be a dict, not {type(raw).__name__}")
        valid = ", ".join(repr(k) for k in OPTION_DEFAULTS)
        for key in raw:
            if key not in OPTION_DEFAULTS:
                raise ImproperlyConfigured(f"{SETTING} has an unknown option {key!r}; the options are {valid}")
        options = {**OPTION_DEFAULTS, **raw}
        return cls(
            context_from=_callable_option("context_from", options["context_from"]),
            is_privileged=_callable_option("is_privileged", options["is_privileged"]),
            anonymous_cookie=_name_option("anonymous_cookie", options["anonymous_cookie"], allow_none=True),
            force_groups_param=_name_option("force_groups_param", options["force_groups_param"], allow_none=False),
            server=_server_option(options["server"]),
        )


def _import_option(name: str, value: str) -> Any:
    try:
        return import_string(value)
    except ImportError as e:
        raise ImproperlyConfigured(f"{SETTING}[{name!r}] = {value!r} cannot be imported: {e}") from e


def _callable_option(name: str, value: Any) -> Callable[[HttpRequest], Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = _import_option(name, value)
    if not callable(value):
        raise ImproperlyConfigured(
            f"{SETTING}[{name!r}] must be a callable taking the request (or its dotted path), not {type(value).__name__}"
        )
    return value


def _name_option(name: str, value: Any, *, allow_none: bool) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not _COOKIE_NAME_RE.fullmatch(value):
        expected = "a cookie name (letters, digits and !#$%&'*+-.^_`|~) or None" if allow_none else "a non-empty name of letters, digits and !#$%&'*+-.^_`|~"
        raise ImproperlyConfigured(f"{SETTING}[{name!r}] must be {expected}, not {value!r}")
    return value


def _server_option(value: Any) -> ServerOption:
    if isinstance(value, str):
        value = _import_option("server", value)
    if value is None or isinstance(value, _native.Evaluator):
        return value
    if callable(value):
        return value
    raise ImproperlyConfigured(
        f"{SETTING}['server'] must be an AvsbServer or a callable that returns one, not {type(value).__name__}"
    )


def check_can_make_server() -> None:
    """Without a server option or a default server, the first request makes ``AvsbServer()``:
    what it needs must be there now, so that a mistake shows at start."""
    sdk_key = setting("AVSB_SDK_KEY")
    if not sdk_key:
        raise ImproperlyConfigured(
            "AvsbMiddleware has no server: set AVSB_SDK_KEY (in Django's settings or the environment), "
            f"create an AvsbServer in an AppConfig.ready(), or pass {SETTING}['server']"
        )
    if not isinstance(sdk_key, str):
        raise ImproperlyConfigured(f"AVSB_SDK_KEY must be a string, not {type(sdk_key).__name__}")
    base_url = setting("AVSB_BASE_URL")
    if base_url is not None and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
        raise ImproperlyConfigured(f"AVSB_BASE_URL must start with http:// or https://, not {base_url!r}")
