"""The ``proc`` context processor: ``{{ proc.buttoncolortst.payload|default_if_none:"#C0C0C0" }}``
and ``{% if proc.buttoncolortst.group == 'blue' %}`` in templates."""

from __future__ import annotations

from typing import Any


def proc(request: Any) -> dict[str, Any]:
    """``{'proc': request.proc}``, or nothing if the proctor middleware did not run."""
    return {"proc": request.proc} if hasattr(request, "proc") else {}
