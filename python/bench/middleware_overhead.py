"""What ``AvsbMiddleware`` adds to a Django request that reads three flags.

    "$(scripts/python-env)/bin/python" python/bench/middleware_overhead.py [--requests 5000] [--rounds 9]

Each case sends prepared ``RequestFactory`` requests through a real Django handler
(``WSGIHandler.get_response``: URL resolution, the middleware chain, the view), so the numbers
are what a request costs inside Django, without the WSGI server around it. The evaluator is an
offline ``AvsbServer`` over the spec's example matrix (no network, no events). Visitors carry
the anonymous cookie already (returning visitors), except in the "first visit" case, which also
makes a key and sets the cookie. As timeit does, the garbage collector is off while a round runs
(a round holds thousands of prepared requests, which would make every collection slow). Reports
microseconds per request: the best round (the least disturbed by the rest of the machine, as
timeit advises) and the median.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import django
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
VISITOR_KEY = "6f1c2a9e0b7d4c3f8e5a1b2c3d4e5f60"
AVSB_MIDDLEWARE = "avsb.contrib.wsgi.AvsbMiddleware"

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
    AVSB_MIDDLEWARE_OPTIONS={},
)
django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from avsb import AvsbServer  # noqa: E402

SERVER = AvsbServer(
    offline=True,
    matrix_path=REPO / "spec/examples/pipet-example-matrix.json",
    schema_path=REPO / "spec/examples/pipet-example-context.json",
)


def read_three(request: HttpRequest) -> HttpResponse:
    """A view that reads three flags."""
    flags = request.avsb
    show_new = flags.get_bool_flag("checkout-v2", False)
    theme = flags.get_string_flag("ui-theme", "default")
    color = flags.get_string_flag("buttoncolortst", "#000000")
    return HttpResponse(f"{show_new} {theme} {color}")


def read_none(request: HttpRequest) -> HttpResponse:
    """The same response, with no flag read."""
    return HttpResponse("False default #000000")


urlpatterns = [path("flags/", read_three), path("plain/", read_none)]


def handler(middleware: list[str]) -> WSGIHandler:
    with override_settings(MIDDLEWARE=middleware, AVSB_MIDDLEWARE_OPTIONS={"server": SERVER}):
        return WSGIHandler()


def requests_for(url: str, count: int, returning: bool) -> list[HttpRequest]:
    factory = RequestFactory()
    extra = {}
    if returning:
        extra["HTTP_COOKIE"] = f"avsb_anon={VISITOR_KEY}"
    return [factory.get(url, **extra) for _ in range(count)]


def time_handler(h: WSGIHandler, url: str, count: int, returning: bool = True) -> float:
    """Seconds per request for one round."""
    batch = requests_for(url, count, returning)
    get_response = h.get_response
    gc.disable()
    try:
        start = time.perf_counter()
        for request in batch:
            get_response(request)
        return (time.perf_counter() - start) / count
    finally:
        gc.enable()


def time_reads(count: int) -> float:
    """Seconds for three flag reads on a scope that exists already (no Django at all)."""
    scope = SERVER.for_user({"kind": "user", "key": VISITOR_KEY, "anonymous": True})
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(count):
            scope.get_bool_flag("checkout-v2", False)
            scope.get_string_flag("ui-theme", "default")
            scope.get_string_flag("buttoncolortst", "#000000")
        return (time.perf_counter() - start) / count
    finally:
        gc.enable()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds, interleaved between the cases (default 9)")
    args = parser.parse_args()

    bare = handler([])
    with_avsb = handler([AVSB_MIDDLEWARE])
    # The middleware must really evaluate for the visitor (a wrong setup would time the defaults).
    scope = SERVER.for_user({"kind": "user", "key": VISITOR_KEY})
    expected = read_three(type("Request", (), {"avsb": scope})()).content
    body = with_avsb.get_response(requests_for("/flags/", 1, True)[0]).content
    assert body == expected != read_none(None).content, (body, expected)

    cases: dict[str, Callable[[], float]] = {
        "no middleware, view reads no flag": lambda: time_handler(bare, "/plain/", args.requests),
        "AvsbMiddleware, view reads no flag": lambda: time_handler(with_avsb, "/plain/", args.requests),
        "AvsbMiddleware + 3 flag reads": lambda: time_handler(with_avsb, "/flags/", args.requests),
        "AvsbMiddleware + 3 flag reads, first visit (new cookie)": lambda: time_handler(
            with_avsb, "/flags/", args.requests, returning=False
        ),
        "3 flag reads on a ready scope (no Django)": lambda: time_reads(args.requests),
    }
    for run in cases.values():  # warm up
        run()
    results = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, run in cases.items():
            results[name].append(run() * 1e6)

    best = {name: min(values) for name, values in results.items()}
    width = max(map(len, best))
    print(f"Django {django.get_version()}, Python {sys.version.split()[0]}, "
          f"{args.requests} requests x {args.rounds} rounds, us/request")
    print(f"  {'':<{width}}  {'best':>8}  {'median':>8}")
    for name, value in best.items():
        print(f"  {name:<{width}}  {value:8.2f}  {statistics.median(results[name]):8.2f}")
    base = best["no middleware, view reads no flag"]
    for label, case in (
        ("added by the middleware alone (lazy, unused)", "AvsbMiddleware, view reads no flag"),
        ("added by the middleware + 3 flag reads", "AvsbMiddleware + 3 flag reads"),
        ("added on a first visit (key made, cookie set)", "AvsbMiddleware + 3 flag reads, first visit (new cookie)"),
    ):
        print(f"  {label:<{width}}  {best[case] - base:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
