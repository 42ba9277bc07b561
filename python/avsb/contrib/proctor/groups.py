"""``request.proc``: each test of ``PROCTOR_TESTS`` as an attribute holding a ``GroupAssignment``.

>>> request.proc.buttoncolortst
GroupAssignment(group='blue', value=1, payload='#2B60DE')
>>> request.proc.testnotinsettings
AttributeError
>>> str(request.proc)
'buttoncolortst1,countryalgotst0,newfeaturerollout0'

A test that gets no bucket (not in the matrix, not eligible, no identifier of its type, or any
failure) is ``GroupAssignment(None, None, None)``; code should treat it like control. Names that
are not identifiers (``checkout-v2``) are read with ``getattr(request.proc, "checkout-v2")``.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any, Iterable, Mapping

from avsb.assignment import GroupAssignment

__all__ = ["GroupAssignment", "ProctorGroups", "extract_groups", "unassigned_groups"]

logger = logging.getLogger("application.proctor.groups")

#: The assignment of a test that got no bucket.
UNASSIGNED = GroupAssignment(None, None, None)
_UNASSIGNED_GROUP = UNASSIGNED  # django-proctor's name for it


class ProctorGroups:
    """The group assignments of one request, read with the dot operator."""

    def __init__(self, group_dict: Mapping[str, Any]) -> None:
        # Tests live in this dict, not as attributes, so that a test named like a method (or
        # like `loaded`) cannot shadow it or be shadowed by it.
        self._group_dict = dict(group_dict)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails; `__dict__` avoids recursion before __init__ ran.
        group_dict = self.__dict__.get("_group_dict")
        if group_dict is not None and name in group_dict:
            return group_dict[name]
        raise AttributeError(f"{name!r} is not in PROCTOR_TESTS (so it is not an attribute of proc)")

    def __str__(self) -> str:
        """``test<value>`` for each assigned test with a value >= 0, in ``PROCTOR_TESTS`` order,
        joined by commas: what sites log for their A/B metrics."""
        return ",".join(self.get_group_string_list())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self)!r}>"

    def get_group_string_list(self) -> list[str]:
        """``str(proc)`` before the join, e.g. ``['buttoncolortst1', 'newfeaturerollout0']``."""
        return [
            f"{test}{assignment.value}"
            for test, assignment in self._group_dict.items()
            if isinstance(assignment.value, numbers.Number)
            and not isinstance(assignment.value, bool)
            and assignment.value >= 0
        ]


def unassigned_groups(defined_tests: Iterable[str]) -> dict[str, GroupAssignment]:
    """Every test unassigned: what a request gets when nothing can be evaluated."""
    return {test: UNASSIGNED for test in defined_tests}


def _payload(bucket: Mapping[str, Any]) -> Any:
    """Pipet's ``{"<payloadType>": value}`` unwrapped to the value (django-proctor takes the
    dict's last item; Pipet never sends more than one)."""
    payload = bucket.get("payload")
    if isinstance(payload, Mapping) and payload:
        return list(payload.values())[-1]
    return None


def extract_groups(api_response: Mapping[str, Any] | None, defined_tests: Iterable[str]) -> dict[str, GroupAssignment]:
    """The ``{test: GroupAssignment}`` of a Pipet ``/groups/identify`` answer for the defined
    tests (all unassigned for ``None``). A malformed entry leaves its test unassigned."""
    if api_response is None:
        return unassigned_groups(defined_tests)
    try:
        api_groups = api_response["data"]["groups"]
    except (KeyError, TypeError):
        logger.error("Proctor API answer has no data.groups; every test is unassigned")
        return unassigned_groups(defined_tests)
    out: dict[str, GroupAssignment] = {}
    for test in defined_tests:
        bucket = api_groups.get(test) if isinstance(api_groups, Mapping) else None
        if not isinstance(bucket, Mapping):
            out[test] = UNASSIGNED
            continue
        out[test] = GroupAssignment(bucket.get("name"), bucket.get("value"), _payload(bucket))
    return out
