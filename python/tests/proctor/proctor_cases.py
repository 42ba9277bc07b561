"""Data and helpers the proctor test modules share."""

from __future__ import annotations

import re

from django.conf import settings
from django.test import Client
from proctor_extra_tests import EXTRA_TESTS  # tests/harness, shared by both proctor suites

PRIVILEGE_HEADER = "X-Proctor-Privileged"
UNASSIGNED = [None, None, None]


def page(client: Client, path: str = "/", privileged: bool = False, **query):
    """GETs one page of the demo project; returns the response and its JSON (if any)."""
    headers = {PRIVILEGE_HEADER: "1"} if privileged else {}
    response = client.get(path, query, headers=headers)
    assert response.status_code == 200, response.content
    data = response.json() if response["Content-Type"] == "application/json" else None
    return response, data


def pipet_query(query: dict, force: str | None = None) -> dict:
    """The /groups/identify parameters the demo middleware's hooks give for a page's `query`."""
    params = {
        "id.USER": query.get("user", "anon"),
        "ctx.country": query.get("country", "US"),
        "ctx.loggedIn": "True" if query.get("loggedIn") == "true" else "False",
        "ctx.plan": query.get("plan", "free"),
        "test": ",".join(settings.PROCTOR_TESTS),
    }
    if "account" in query:
        params["id.account"] = query["account"]
    if force:
        params["prforceGroups"] = force
    return params


def server_groups(server, query: dict, force: str | None = None) -> dict:
    """What the server itself assigns (over its Pipet API) to the request for `query`, as the
    demo view shows it: {test: [group, value, payload]} for every test of PROCTOR_TESTS."""
    groups = server.identify(pipet_query(query, force))["groups"]
    out = {}
    for test in settings.PROCTOR_TESTS:
        if test not in groups:
            out[test] = UNASSIGNED
            continue
        bucket = groups[test]
        payload = bucket.get("payload")
        assert payload is None or len(payload) == 1, bucket
        out[test] = [bucket["name"], bucket["value"], next(iter(payload.values())) if payload else None]
    return out


def proc_string(groups: dict) -> str:
    """django-proctor's documented `str(proc)`: assigned tests with value >= 0, in settings order."""
    return ",".join(
        f"{test}{groups[test][1]}"
        for test in settings.PROCTOR_TESTS
        if groups[test][1] is not None and groups[test][1] >= 0
    )


_REQUESTS = re.compile(r'^avsb_http_requests_total\{(?P<labels>.*)\} (?P<count>\d+)$', re.M)


def requests_by_route(server) -> dict[str, int]:
    """How many requests the server has answered, per route (all methods and statuses)."""
    text = server.http.get(f"{server.base_url}/metrics", timeout=10).text
    counts: dict[str, int] = {}
    for m in _REQUESTS.finditer(text):
        route = re.search(r'route="([^"]*)"', m["labels"])
        key = route.group(1) if route else m["labels"]
        counts[key] = counts.get(key, 0) + int(m["count"])
    counts.pop("/metrics", None)
    return counts
