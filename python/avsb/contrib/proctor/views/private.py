"""Private pages for privileged users: the defined tests' matrix as JSON, and a page that shows
the user's groups and forces others. Wire them with ``avsb.contrib.proctor.urls`` or ``path()``.

A request is privileged when the site sets ``request.is_privileged`` truthy, or else when the
proctor middleware's ``is_privileged(request)`` said so. Other requests get a 404 from both pages.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views import generic

from avsb.contrib.proctor import conf, constants, matrix
from avsb.contrib.proctor.api import ProctorParameters
from avsb.contrib.proctor.middleware import PRIVILEGED_ATTRIBUTE

__all__ = ["ForceGroupsView", "ShowTestMatrixView"]


def _privileged(request: Any) -> bool:
    value = getattr(request, "is_privileged", None)
    if value is None:
        value = getattr(request, PRIVILEGED_ATTRIBUTE, False)
    return bool(value)


def _matrix(request: Any) -> dict[str, Any]:
    params = ProctorParameters(
        api_root=conf.api_root(),
        defined_tests=conf.defined_tests(),
        context_dict={},
        identifier_dict={},
        force_groups=None,
    )
    return matrix.identify_matrix(params, request=request)


class ShowTestMatrixView(generic.View):
    """The matrix of the tests in ``PROCTOR_TESTS`` as JSON (``{}`` for a test it lacks)."""

    def get(self, request: Any) -> HttpResponse:
        if not _privileged(request):
            raise Http404
        body = json.dumps(_matrix(request), indent=2, separators=(",", ": "))
        return HttpResponse(body, content_type="application/json;charset=UTF-8")


class ForceGroupsView(generic.TemplateView):
    """Each test's buckets, allocation and the request's assignment, with forms to force one."""

    template_name = "proctor_groups.html"

    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _privileged(request):
            raise Http404
        test_matrix = _matrix(request)
        proc = getattr(request, "proc", None)
        forced = set(self.get_prforcegroups(request).split(","))
        allocations = {}
        for test in conf.defined_tests():
            assignment = getattr(proc, test, None)
            value = assignment.value if assignment is not None else None
            definition = test_matrix["tests"].get(test, {})
            buckets = definition.get("buckets", [])
            first_allocation = next(iter(definition.get("allocations", [])), {})
            allocations[test] = {
                "buckets": buckets,
                "ranges": self._get_test_ranges(first_allocation.get("ranges", []), buckets),
                "assignment": value,
                "forced": value is not None and f"{test}{value}" in forced,
            }
        context = {"allocations": allocations, "basetemplate": conf.base_template()}
        return render(request, self.template_name, context)

    def _get_test_ranges(self, ranges: list[dict[str, Any]], buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The ranges with their bucket's ``name`` and ``index`` and their ``percentage``."""
        by_value = {bucket.get("value"): (index, bucket.get("name")) for index, bucket in enumerate(buckets)}
        out = []
        for test_range in ranges:
            index, name = by_value.get(test_range.get("bucketValue"), (None, None))
            out.append({**test_range, "name": name, "index": index, "percentage": (test_range.get("length") or 0) * 100})
        return out

    @staticmethod
    def get_prforcegroups(request: Any) -> str:
        """The force groups of the query parameter, else of the cookie, else ``''``."""
        name = constants.PROP_NAME_FORCE_GROUPS
        value = request.GET.get(name)
        if value is None:
            value = request.COOKIES.get(name, "")
        return value
