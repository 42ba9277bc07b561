"""``{% load forcegroups %}``: links that add a test's group to, or remove a test from, the
current ``prforceGroups`` (the query parameter, else the cookie).

    <a href="?prforceGroups={% addforcegroups 'buttoncolortst' 2 %}">green</a>
    <a href="?prforceGroups={% removeforcegroups 'buttoncolortst' %}">natural</a>

A test's entries are found as django-proctor finds them: the regex ``\\b<test>-?\\d{0,3}\\b``,
case-insensitive, anywhere in an entry.
"""

from __future__ import annotations

import re
from typing import Any

from django import template

from avsb.contrib.proctor.views.private import ForceGroupsView

register = template.Library()


@register.simple_tag(takes_context=True)
def addforcegroups(context: Any, test_name: str, bucket_value: Any) -> str:
    """The current force groups without ``test_name``, then ``<test_name><bucket_value>``."""
    return ",".join(get_clean_groups(context, test_name) + [f"{test_name}{bucket_value}"])


@register.simple_tag(takes_context=True)
def removeforcegroups(context: Any, test_name: str) -> str:
    """The current force groups without ``test_name``."""
    return ",".join(get_clean_groups(context, test_name))


def get_clean_groups(context: Any, test_name: str) -> list[str]:
    """The current force groups (query, else cookie) without the entries of ``test_name``."""
    request = context.get("request")
    current = ForceGroupsView.get_prforcegroups(request) if request is not None else ""
    pattern = re.compile(r"\b" + re.escape(str(test_name)) + r"-?\d{0,3}\b", re.IGNORECASE)
    return [entry for entry in current.split(",") if entry and not pattern.search(entry)]
