"""The unmodified django-proctor 1.2.1 middleware against the real server's Pipet API.

Each request goes through Django's test client into `demo.middleware.DemoProctorMiddleware`
(a plain `BaseProctorMiddleware` subclass), which calls the server over HTTP with `requests`.
What lands on `request.proc` is compared with the server's own `/groups/identify` answer, with
the pinned example in docs/proctor.md §6.3, and with what django-proctor promises
(docs/proctor.md §7): unassigned tests, `str(proc)`, caching, lazy loading, force groups and failures.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client, override_settings
from django.urls import resolve
from proctor import identify
from proctor.middleware import BaseProctorMiddleware

from demo.middleware import PRIVILEGE_HEADER, DemoProctorMiddleware
from proctor_extra_tests import EXTRA_TESTS  # tests/harness, shared by both proctor suites

UNASSIGNED = [None, None, None]

# Users and contexts whose assignments are compared with the server's own answer.
CASES = [
    {"user": "anon"},
    {"user": "u_1"},
    {"user": "pa5xq0lz4n80", "loggedIn": "true"},
    {"user": "u_2", "country": "CA", "loggedIn": "true", "plan": "pro"},
    {"user": "7c1f0e", "country": "US", "plan": "pro", "account": "a_17"},
    {"user": "", "country": "DE"},
]


@pytest.fixture(scope="module")
def server(avsb_server):
    for name, definition in EXTRA_TESTS.items():
        avsb_server.put_test(name, definition)
    return avsb_server


def test_the_site_runs_the_real_django_proctor():
    """tests/harness/proctorsite runs whichever package its settings name; here, django-proctor."""
    assert settings.PROCTOR_PACKAGE == "proctor"
    assert settings.INSTALLED_APPS[0] == "proctor"
    assert issubclass(DemoProctorMiddleware, BaseProctorMiddleware)
    assert resolve("/private/forcegroups/").func.view_class.__module__ == "proctor.views.private"


@pytest.fixture
def proctor(server):
    """Points django-proctor at the server, with no cache and eager loading."""
    caches["default"].clear()
    with override_settings(
        PROCTOR_API_ROOT=server.proctor_api_root, PROCTOR_CACHE_METHOD=None, PROCTOR_LAZY=False
    ):
        yield server


def page(client: Client, path: str = "/", privileged: bool = False, **query):
    """GETs one page of the demo project; returns the response and its JSON (if any)."""
    headers = {PRIVILEGE_HEADER: "1"} if privileged else {}
    response = client.get(path, query, headers=headers)
    assert response.status_code == 200, response.content
    data = response.json() if response["Content-Type"] == "application/json" else None
    return response, data


def server_groups(server, query: dict, force: str | None = None) -> dict:
    """What the server itself assigns to the request the middleware would send for `query`."""
    params = {
        "id.USER": query.get("user", "anon"),
        "ctx.country": query.get("country", "US"),
        "ctx.loggedIn": query.get("loggedIn", "false"),
        "ctx.plan": query.get("plan", "free"),
        "test": ",".join(settings.PROCTOR_TESTS),
    }
    if "account" in query:
        params["id.account"] = query["account"]
    if force:
        params["prforceGroups"] = force
    groups = server.identify(params)["groups"]
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


# -- assignments ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", CASES, ids=lambda q: "-".join(f"{k}={v}" for k, v in q.items()))
def test_request_proc_equals_the_servers_own_assignment(proctor, query):
    _, data = page(Client(), **query)
    expected = server_groups(proctor, query)
    assert data["groups"] == expected
    assert data["proc"] == proc_string(expected)
    # Every case gets at least one real assignment, so an all-None answer cannot pass.
    assert any(assignment != UNASSIGNED for assignment in data["groups"].values())


def test_the_pinned_pipet_example(proctor):
    """docs/proctor.md §6.3: pa5xq0lz4n80, logged in, forced into buttoncolortst2."""
    query = {"user": "pa5xq0lz4n80", "loggedIn": "true"}
    _, data = page(Client(), **query)
    assert data["groups"]["newfeaturerollout"] == ["active", 0, None]

    _, forced = page(Client(), privileged=True, prforceGroups="buttoncolortst2", **query)
    assert forced["groups"]["buttoncolortst"] == ["green", 2, "#3DFF33"]
    assert forced["groups"]["newfeaturerollout"] == ["active", 0, None]
    assert forced["proc"].startswith("buttoncolortst2,newfeaturerollout0")


def test_str_proc_lists_assigned_tests_with_non_negative_values_in_settings_order(proctor):
    _, data = page(Client(), user="pa5xq0lz4n80", loggedIn="true", account="a_1")
    groups = data["groups"]
    parts = data["proc"].split(",")
    assert parts == [
        f"{t}{groups[t][1]}" for t in settings.PROCTOR_TESTS if groups[t][1] is not None and groups[t][1] >= 0
    ]
    assert "newfeaturerollout0" in parts
    assert any(p.startswith("accounttst") for p in parts)


def test_a_test_missing_from_the_answer_is_unassigned(proctor):
    _, data = page(Client(), user="u_1", loggedIn="false")
    # Never in the matrix.
    assert data["groups"]["notinmatrix"] == UNASSIGNED
    # In the matrix, but its eligibility rule ${loggedIn} is false.
    assert data["groups"]["newfeaturerollout"] == UNASSIGNED
    # No ACCOUNT identifier in the request.
    assert data["groups"]["accounttst"] == UNASSIGNED
    assert "notinmatrix" not in data["proc"] and "newfeaturerollout" not in data["proc"]
    # The others are assigned.
    assert data["groups"]["buttoncolortst"][0] in {"inactive", "control", "blue", "green"}


def test_payloads_of_every_shape_arrive_as_python_values(proctor):
    _, data = page(Client(), user="u_1", plan="pro", account="a_9")
    groups = data["groups"]
    # A vs B's boolean payload, with the u_1 target.
    assert groups["checkout-v2"] == ["on", 1, True]
    # The `plan == 'pro'` allocation.
    assert groups["ui-theme"] == ["dark", 1, "dark"]
    assert groups["limits"] in (["small", 0, [10, 20]], ["large", 1, [100, 200]])
    assert groups["copy"] == [
        "plain",
        0,
        {"title": "Welcome", "maxItems": 3, "ratio": 0.5, "tags": ["a", "b"]},
    ]
    assert groups["accounttst"] in (["control", 0, "A"], ["test", 1, "B"])
    assert isinstance(groups["checkout-v2"][2], bool)

    _, free = page(Client(), user="u_1", plan="free")
    assert free["groups"]["checkout-v2"] == ["on", 1, True]
    assert free["groups"]["ui-theme"] == server_groups(proctor, {"user": "u_1", "plan": "free"})["ui-theme"]


def test_the_context_processor_puts_proc_in_templates(proctor):
    response, _ = page(
        Client(),
        "/button/",
        privileged=True,
        user="pa5xq0lz4n80",
        loggedIn="true",
        prforceGroups="buttoncolortst1",
    )
    html = response.content.decode()
    assert 'style="background: #2B60DE"' in html
    assert ">New</button>" in html


def test_proc_by_accountid_uses_the_account_identifier(proctor):
    proc = identify.proc_by_accountid("a_42")
    expected = proctor.identify(
        {"id.account": "a_42", "ctx.ua": "", "test": ",".join(settings.PROCTOR_TESTS)}
    )["groups"]
    assert set(expected) == {"accounttst"}
    bucket = expected["accounttst"]
    assert tuple(proc.accounttst) == (bucket["name"], bucket["value"], bucket["payload"]["stringValue"])
    assert tuple(proc.buttoncolortst) == (None, None, None)


# -- caching and lazy loading -------------------------------------------------------------------


def test_without_a_cache_every_request_calls_the_server(proctor):
    client = Client()
    for _ in range(2):
        before = proctor.identify_calls()
        page(client, user="nocache")
        assert proctor.identify_calls() - before >= 1


@pytest.mark.parametrize("method", ["cache", "session"])
def test_a_cached_assignment_does_not_call_the_server_again(proctor, method):
    with override_settings(PROCTOR_CACHE_METHOD=method):
        client = Client()
        before = proctor.identify_calls()
        _, first = page(client, user=f"cached-{method}", loggedIn="true")
        after_first = proctor.identify_calls()
        assert after_first - before >= 1
        _, second = page(client, user=f"cached-{method}", loggedIn="true")
        assert proctor.identify_calls() == after_first, "the second request must be served from the cache"
        assert second == first
        assert first["groups"] == server_groups(proctor, {"user": f"cached-{method}", "loggedIn": "true"})
        if method == "session":
            assert settings.SESSION_COOKIE_NAME in client.cookies

        # Other identifiers are another cache entry.
        before = proctor.identify_calls()
        page(client, user=f"other-{method}")
        assert proctor.identify_calls() - before >= 1


def test_lazy_groups_call_the_server_only_when_read(proctor):
    with override_settings(PROCTOR_LAZY=True):
        client = Client()
        before = proctor.identify_calls()
        _, data = page(client, "/untouched/", user="lazy")
        assert data == {"proc_type": "LazyProctorGroups"}
        assert proctor.identify_calls() == before

        _, data = page(client, user="lazy", loggedIn="true")
        assert proctor.identify_calls() - before >= 1
        assert data["groups"] == server_groups(proctor, {"user": "lazy", "loggedIn": "true"})
        assert data["proc"] == proc_string(data["groups"])


# -- force groups -------------------------------------------------------------------------------


def forced_choice(natural: dict) -> tuple[str, dict]:
    """A force-groups string that moves buttoncolortst and countryalgotst off their natural buckets."""
    button = next(v for v in (2, 1, 0) if v != natural["buttoncolortst"][1])
    country = next(v for v in (1, 0) if v != natural["countryalgotst"][1])
    return f"buttoncolortst{button},countryalgotst{country}", {
        "buttoncolortst": button,
        "countryalgotst": country,
    }


def test_privileged_force_groups_from_the_query_then_from_the_cookie(proctor):
    query = {"user": "force-me"}
    natural = server_groups(proctor, query)
    force, values = forced_choice(natural)
    client = Client()

    response, data = page(client, privileged=True, prforceGroups=force, **query)
    assert data["groups"] == server_groups(proctor, query, force=force)
    for test, value in values.items():
        assert data["groups"][test][1] == value
    assert response.cookies["prforceGroups"].value == force

    # The next privileged request carries only the cookie.
    _, data = page(client, privileged=True, **query)
    for test, value in values.items():
        assert data["groups"][test][1] == value

    # A request that is not privileged ignores the same cookie.
    _, data = page(client, **query)
    assert data["groups"] == natural


def test_force_groups_of_a_request_that_is_not_privileged_are_ignored(proctor):
    query = {"user": "not-privileged"}
    natural = server_groups(proctor, query)
    force, _ = forced_choice(natural)
    response, data = page(Client(), prforceGroups=force, **query)
    assert data["groups"] == natural
    assert "prforceGroups" not in response.cookies


# -- failures -------------------------------------------------------------------------------------


def test_an_unknown_sdk_key_leaves_every_test_unassigned(proctor):
    before = proctor.requests_served("/pipet/{sdk_key}/groups/identify")
    with override_settings(PROCTOR_API_ROOT=f"{proctor.base_url}/pipet/sdk-this-key-does-not-exist"):
        _, data = page(Client(), user="u_1")
    assert data["groups"] == {test: UNASSIGNED for test in settings.PROCTOR_TESTS}
    assert data["proc"] == ""
    # The server was asked (and said no); django-proctor did not fail before calling it.
    assert proctor.requests_served("/pipet/{sdk_key}/groups/identify") > before


def test_a_revoked_sdk_key_leaves_every_test_unassigned(proctor):
    key = proctor.create_sdk_key()
    with override_settings(PROCTOR_API_ROOT=f"{proctor.base_url}/pipet/{key['key']}"):
        _, data = page(Client(), user="u_1")
        assert data["groups"]["checkout-v2"] == ["on", 1, True]

        proctor.revoke_sdk_key(key["id"])
        _, data = page(Client(), user="u_1")
    assert data["groups"] == {test: UNASSIGNED for test in settings.PROCTOR_TESTS}


# -- django-proctor's private views (wired with path(), since proctor.urls needs Django < 4) -------


def test_the_private_test_matrix_view_reads_the_servers_matrix(proctor):
    response = Client().get("/private/showtestmatrix/", headers={PRIVILEGE_HEADER: "1"})
    assert response.status_code == 200
    shown = response.json()
    matrix = proctor.http.get(f"{proctor.proctor_api_root}/proctor/matrix", timeout=10).json()
    assert shown["audit"] == matrix["audit"]
    assert shown["tests"]["buttoncolortst"] == matrix["tests"]["buttoncolortst"]
    assert [b["name"] for b in shown["tests"]["buttoncolortst"]["buckets"]] == [
        "inactive",
        "control",
        "blue",
        "green",
    ]
    assert shown["tests"]["notinmatrix"] == {}
    assert set(shown["tests"]) == set(settings.PROCTOR_TESTS)

    assert Client().get("/private/showtestmatrix/").status_code == 404


def test_the_private_force_groups_view_renders_the_servers_buckets(proctor):
    response = Client().get(
        "/private/forcegroups/", {"user": "pa5xq0lz4n80"}, headers={PRIVILEGE_HEADER: "1"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("buttoncolortst", "newfeaturerollout", "green", "countryalgotst"):
        assert text in html
