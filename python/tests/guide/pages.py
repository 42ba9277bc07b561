"""Reading what the guide's home page (myapp/home.html) shows."""

from __future__ import annotations

import json
import re
from typing import Any


def page_flags(html: str) -> dict[str, Any]:
    """The assignments {% avsb_bootstrap %} put on the page."""
    match = re.search(r'<script id="avsb-flags" type="application/json">(.*?)</script>', html, re.S)
    assert match, html
    return json.loads(match.group(1))


def button_group(html: str) -> str:
    """The buttoncolortst group the page shows through the context processor's avsb_flags."""
    match = re.search(r'<p id="button-group">(.*?)</p>', html)
    assert match, html
    return match.group(1)
