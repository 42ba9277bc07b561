"""Local evaluation: the server SDK in the process assigns the groups, exactly as the server's
Pipet API does, with no network call per request, and through server outages."""

from __future__ import annotations

import copy
import logging
import time

import pytest
from django.test import Client, RequestFactory, override_settings

from demo.middleware import DemoProctorMiddleware
from proctor_cases import EXTRA_TESTS, page, requests_by_route, server_groups


@pytest.fixture
def sdk(server, make_sdk):
    """An AvsbServer for the module's server, ready, given to the site by PROCTOR_AVSB_SERVER."""
    made = make_sdk(server, send_events=False)
    assert made.on_ready_sync(10)
    with override_settings(PROCTOR_AVSB_SERVER=made, PROCTOR_CACHE_METHOD=None, PROCTOR_LAZY=False):
        yield made


def case(i: int) -> dict:
    """A varied request: countries, logged in or not, plans, and an account on every third."""
    query = {
        "user": f"user-{i}-{i * 7919 % 1000}",
        "country": ("US", "CA", "DE", "GB", "US")[i % 5],
        "loggedIn": "true" if i % 2 else "false",
        "plan": ("free", "pro", "team")[i % 3],
    }
    if i % 3 == 0:
        query["account"] = f"acct-{i}"
    return query


def test_local_groups_equal_the_servers_pipet_answer_for_200_requests(server, sdk):
    client = Client()
    before = server.identify_calls()
    pages = [page(client, **case(i))[1] for i in range(200)]
    assert server.identify_calls() == before, "local evaluation must not call /groups/identify"
    seen = set()
    for i, data in enumerate(pages):
        expected = server_groups(server, case(i))
        assert data["groups"] == expected, case(i)
        seen.update((test, tuple(map(str, g))) for test, g in expected.items())
    # The sample is not degenerate: each test shows several outcomes (unassigned included).
    for test in ("buttoncolortst", "countryalgotst", "newfeaturerollout", "ui-theme", "limits", "accounttst"):
        assert len({g for t, g in seen if t == test}) >= 2, test


def test_local_force_groups_follow_pipet(server, sdk):
    client = Client()
    force = "buttoncolortst0,countryalgotst1,limits7,newfeaturerollout0,accounttst1"
    for i in range(20):
        query = case(i)
        _, data = page(client, privileged=True, prforceGroups=force, **query)
        assert data["groups"] == server_groups(server, query, force=force), query


def test_no_http_call_per_request(server, sdk):
    client = Client()
    page(client, user="warm-up")
    before = requests_by_route(server)
    identify_before = server.identify_calls()
    for i in range(50):
        page(client, **case(i))
    assert server.identify_calls() == identify_before
    # Nothing at all: no datafile poll, no identify, no events. (The server counts a stream when
    # it ends, so earlier tests' SDKs may still add theirs; the SDK holds one open, not one per
    # request.)
    after = requests_by_route(server)
    assert {route: n for route, n in after.items() if route != "/sdk/v1/stream"} == {
        route: n for route, n in before.items() if route != "/sdk/v1/stream"
    }
    assert "/sdk/v1/datafile" in after and "/pipet/{sdk_key}/groups/identify" in after


def test_payloads_are_the_requests_own(server, sdk):
    def proc(user):
        request = RequestFactory().get("/", {"user": user})
        DemoProctorMiddleware(lambda r: None).process_request(request)
        return request.proc

    first = proc("mutator").copy.payload
    first["tags"].append("changed")
    first["title"] = "changed"
    assert proc("someone").copy.payload == EXTRA_TESTS["copy"]["buckets"][0]["payload"]["map"]
    _, data = page(Client(), user="mutator")
    assert data["groups"]["copy"][2]["title"] == "Welcome"


def test_a_matrix_change_reaches_the_site_without_a_restart(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server, send_events=False)
    assert sdk.on_ready_sync(10)
    query = {"user": "u_1", "plan": "free"}
    with override_settings(PROCTOR_AVSB_SERVER=sdk):
        client = Client()
        _, data = page(client, **query)
        assert data["groups"]["buttoncolortst"] == server_groups(fresh_server, query)["buttoncolortst"]

        definition = copy.deepcopy(sdk.engine.definition("buttoncolortst"))
        definition["allocations"] = [{"rule": None, "ranges": [{"bucketValue": 2, "length": 1.0}]}]
        version = sdk.engine.version
        fresh_server.put_test("buttoncolortst", definition)
        deadline = time.monotonic() + 10
        while sdk.engine.version == version and time.monotonic() < deadline:
            time.sleep(0.02)
        _, data = page(client, **query)
        assert data["groups"]["buttoncolortst"] == ["green", 2, "#3DFF33"]
        assert data["groups"] == server_groups(fresh_server, query)


def test_a_server_outage_changes_nothing_for_local_evaluation(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server, send_events=False)
    assert sdk.on_ready_sync(10)
    queries = [case(i) for i in range(10)]
    expected = [server_groups(fresh_server, q) for q in queries]
    fresh_server.kill()
    with override_settings(PROCTOR_AVSB_SERVER=sdk):
        client = Client()
        for query, groups in zip(queries, expected):
            assert page(client, **query)[1]["groups"] == groups


def test_an_sdk_without_a_matrix_waits_briefly_then_leaves_tests_unassigned(fresh_server, make_sdk, caplog):
    fresh_server.stop()
    sdk = make_sdk(fresh_server, send_events=False)
    with override_settings(PROCTOR_AVSB_SERVER=sdk):
        client = Client()
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            _, data = page(client, user="u_1", plan="pro")
        waited = time.monotonic() - started
        assert set(map(tuple, data["groups"].values())) == {(None, None, None)}
        assert data["proc"] == ""
        assert 1.0 < waited < 5.0
        assert any("no matrix yet" in r.getMessage() for r in caplog.records)

        # Past the first wait, requests do not wait again.
        started = time.monotonic()
        _, data = page(client, user="u_1", plan="pro")
        assert time.monotonic() - started < 0.5
        assert data["groups"]["checkout-v2"] == [None, None, None]

        # Once the server is back, the SDK loads the matrix and groups are assigned.
        fresh_server.start()
        assert sdk.on_ready_sync(15)
        _, data = page(client, user="u_1", plan="pro")
        assert data["groups"]["checkout-v2"] == ["on", 1, True]


def test_groups_evaluated_locally_are_recorded_as_exposures_once_per_user(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server, flush_interval=60)
    assert sdk.on_ready_sync(10)
    with override_settings(PROCTOR_AVSB_SERVER=sdk, PROCTOR_CACHE_METHOD=None, PROCTOR_LAZY=False):
        client = Client()
        for _ in range(3):
            _, data = page(client, user="visitor-1", country="US", loggedIn="true", plan="pro")
    sdk.close_sync()
    exposures = [e for e in fresh_server.events() if e["kind"] == "exposure"]
    recorded = {e["test"] for e in exposures}
    assert recorded and recorded <= set(data["groups"]), (recorded, data["groups"])
    assert len(exposures) == len(recorded), "once per test and user, however many pages"
    assert all(e["reason"] in ("split", "targeted", "default") for e in exposures)
    assert {e["identifiers"].get("USER") for e in exposures if "USER" in e["identifiers"]} <= {"visitor-1"}
