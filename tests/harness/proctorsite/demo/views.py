"""Views that show what django-proctor put on the request."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render


def groups(request):
    """Every test of PROCTOR_TESTS as [group, value, payload], and str(request.proc)."""
    proc = request.proc
    assignments = {}
    for test in settings.PROCTOR_TESTS:
        assignment = getattr(proc, test)
        assignments[test] = [assignment.group, assignment.value, assignment.payload]
    return JsonResponse({"groups": assignments, "proc": str(proc)})


def untouched(request):
    """A page that never reads request.proc (a lazy middleware must not call Pipet for it)."""
    return JsonResponse({"proc_type": type(request.proc).__name__})


def button(request):
    """A template that uses the `proc` context processor, as django-proctor's README does."""
    return render(request, "demo/button.html")
