import os
import time

from django.http import JsonResponse
from django.shortcuts import render

from avsb.contrib.affect import flag_is_affected
from avsb.contrib.affect.decorators import affected


def home(request):
    return JsonResponse({"flags": list(request.affected_flags), "rev_b": flag_is_affected(request, "rev_b")})


def flags(request):
    return JsonResponse({"flags": list(request.affected_flags)})


def django_template(request):
    return render(request, "shop/page.html", using="django")


def jinja_template(request):
    return render(request, "shop/page.html", using="jinja2")


@affected("beta")
def beta_only(request):
    return JsonResponse({"beta": True})


@affected("!beta")
def not_beta(request):
    return JsonResponse({"beta": False})


@affected("beta", redirect_to="home")
def beta_or_home(request):
    return JsonResponse({"beta": True})


def worker(request):
    """Which process answered and the flags it found (test_workers.py tells gunicorn's workers
    apart); ``?hold=0.05`` keeps the worker busy that long, so that requests sent together
    spread over the workers."""
    time.sleep(min(float(request.GET.get("hold", 0)), 0.5))
    return JsonResponse({"pid": os.getpid(), "flags": list(request.affected_flags)})
