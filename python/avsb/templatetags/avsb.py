"""``{% load avsb %}``: A vs B flags in Django templates.

    {% avsb_flag 'ui-theme' 'default' as theme %}   the payload of the visitor's bucket, or the default
    {% ifflag 'checkout-v2' %}new{% else %}old{% endifflag %}   a boolean flag (default False)
    {% avsb_bootstrap %}   all assignments as <script type="application/json" id="avsb-flags">

The tags read ``request.avsb`` from the template context's ``request`` (the
``django.template.context_processors.request`` processor), else the ``avsb`` variable of
``avsb.contrib.context_processors.avsb``. They never raise while rendering: without the
middleware, or when evaluation fails, flags have their defaults.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.template.base import FilterExpression, NodeList, Parser, Token
from django.utils.html import json_script
from django.utils.safestring import SafeString

from avsb.contrib.wsgi import defaults_scope

__all__ = ["avsb_bootstrap", "avsb_flag", "ifflag", "register"]

logger = logging.getLogger("avsb")

register = template.Library()

BOOTSTRAP_ELEMENT_ID = "avsb-flags"


def _scope(context: template.Context) -> Any:
    request = context.get("request")
    scope = getattr(request, "avsb", None) if request is not None else None
    if scope is None:
        scope = context.get("avsb")
    if scope is None or not hasattr(scope, "get_json_flag"):
        scope = defaults_scope()
    return scope


@register.simple_tag(takes_context=True)
def avsb_flag(context: template.Context, key: str, default: Any = None) -> Any:
    """The payload of the bucket the visitor is in, or ``default`` (unassigned, no payload, no server)."""
    try:
        return _scope(context).get_json_flag(str(key), default)
    except Exception:  # noqa: BLE001 - a template must render
        logger.exception("avsb: {%% avsb_flag %r %%} failed; using the default", key)
        return default


@register.simple_tag(takes_context=True)
def avsb_bootstrap(context: template.Context, element_id: str = BOOTSTRAP_ELEMENT_ID) -> SafeString:
    """Every assignment (``{test: {group, value, payload}}``) as JSON for the page's scripts."""
    try:
        flags = _scope(context).all_flags()
    except Exception:  # noqa: BLE001 - a template must render
        logger.exception("avsb: {%% avsb_bootstrap %%} failed; no flags are shown")
        flags = {}
    return json_script(flags, element_id)


class IfFlagNode(template.Node):
    """Renders one branch or the other by a boolean flag."""

    def __init__(self, key: FilterExpression, default: FilterExpression | None, on: NodeList, off: NodeList) -> None:
        self.key, self.default, self.nodelist_on, self.nodelist_off = key, default, on, off

    def render(self, context: template.Context) -> str:
        default = False
        try:
            if self.default is not None:
                default = self.default.resolve(context)
            key = self.key.resolve(context)
            on = _scope(context).get_bool_flag(str(key), default) is True
        except Exception:  # noqa: BLE001 - a template must render
            logger.exception("avsb: {%% ifflag %s %%} failed; using the default", self.key.token)
            on = default is True
        return (self.nodelist_on if on else self.nodelist_off).render(context)


@register.tag
def ifflag(parser: Parser, token: Token) -> IfFlagNode:
    """``{% ifflag 'test' [default] %} ... {% else %} ... {% endifflag %}``."""
    bits = token.split_contents()
    if len(bits) not in (2, 3):
        raise template.TemplateSyntaxError(f"{bits[0]} takes a test name and an optional default: {{% ifflag 'checkout-v2' %}}")
    key = parser.compile_filter(bits[1])
    default = parser.compile_filter(bits[2]) if len(bits) == 3 else None
    on = parser.parse(("else", "endifflag"))
    off = NodeList()
    if parser.next_token().contents == "else":
        off = parser.parse(("endifflag",))
        parser.delete_first_token()
    return IfFlagNode(key, default, on, off)
