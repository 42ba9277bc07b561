"""``{% load affect %}``: ``{% affected 'rev_b' %}...{% else %}...{% endaffected %}``.

The name may be a template variable; the tag reads ``request`` from the context (the
``django.template.context_processors.request`` context processor) and never raises.
"""

from __future__ import annotations

from django import template
from django.template.base import Parser, Token

from avsb.contrib.affect import flag_is_affected

register = template.Library()


class AffectedNode(template.Node):
    def __init__(self, name: template.base.FilterExpression, if_true: template.NodeList, if_false: template.NodeList) -> None:
        self.name, self.if_true, self.if_false = name, if_true, if_false

    def render(self, context: template.Context) -> str:
        request = context.get("request")
        name = self.name.resolve(context, ignore_failures=True)
        active = request is not None and isinstance(name, str) and flag_is_affected(request, name)
        return (self.if_true if active else self.if_false).render(context)


@register.tag
def affected(parser: Parser, token: Token) -> AffectedNode:
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError(f"'{bits[0]}' takes one argument: the flag's name")
    if_true = parser.parse(("else", "endaffected"))
    if_false = template.NodeList()
    if parser.next_token().contents == "else":
        if_false = parser.parse(("endaffected",))
        parser.delete_first_token()
    return AffectedNode(parser.compile_filter(bits[1]), if_true, if_false)
