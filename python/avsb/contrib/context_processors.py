"""A template context processor: ``avsb`` (the request's scope) and ``avsb_flags`` (all flags).

    TEMPLATES = [{..., 'OPTIONS': {'context_processors': [..., 'avsb.contrib.context_processors.avsb']}}]

``{{ avsb_flags.buttoncolortst.payload }}`` reads one assignment (``group``, ``value``,
``payload``); test names with a ``-`` need the ``avsb`` template tags instead. Both are lazy: a
template that reads no flag evaluates nothing. Without the middleware, every flag has its default.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from avsb.contrib.wsgi import request_scope

__all__ = ["avsb"]

logger = logging.getLogger("avsb")


def avsb(request: HttpRequest) -> dict[str, Any]:
    """``{'avsb': request.avsb, 'avsb_flags': {test: {'group', 'value', 'payload'}}}``."""
    scope = request_scope(request)
    return {"avsb": scope, "avsb_flags": SimpleLazyObject(lambda: _all_flags(scope))}


def _all_flags(scope: Any) -> dict[str, Any]:
    try:
        return scope.all_flags()
    except Exception:  # noqa: BLE001 - a template must render even if evaluation fails
        logger.exception("avsb: all_flags() failed in a template; no flags are shown")
        return {}
