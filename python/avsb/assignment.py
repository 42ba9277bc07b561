"""Small value types shared by the SDK and the Django layers."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["GroupAssignment"]


class GroupAssignment(NamedTuple):
    """Proctor's assignment of one test: the bucket's name, its integer value and its payload
    (all ``None`` when the context gets no bucket), as django-proctor's ``request.proc.<test>``."""

    group: str | None
    value: int | None
    payload: Any
