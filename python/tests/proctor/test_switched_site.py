"""A Django site that used django-proctor, switched to avsb.contrib.proctor by import paths.

The site is tests/harness/proctorsite, the one where tests/interop runs the real django-proctor
1.2.1; its settings choose the package, so here it runs avsb.contrib.proctor with nothing else
changed. The tests run django-proctor's behaviours on it twice: evaluating locally (the
deployment only adds AVSB_SDK_KEY and AVSB_BASE_URL to the environment) and asking the server's
Pipet API (no SDK, PROCTOR_API_ROOT). Expected groups are always the server's own
/groups/identify answer.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client, RequestFactory, override_settings
from django.urls import resolve

from avsb.contrib.proctor import identify, local
from avsb.contrib.proctor.lazy import LazyProctorGroups
from avsb.contrib.proctor.middleware import BaseProctorMiddleware
from demo.middleware import DemoProctorMiddleware
from proctor_cases import PRIVILEGE_HEADER, UNASSIGNED, page, proc_string, server_groups

CASES = [
    {"user": "anon"},
    {"user": "u_1"},
    {"user": "pa5xq0lz4n80", "loggedIn": "true"},
    {"user": "u_2", "country": "CA", "loggedIn": "true", "plan": "pro"},
    {"user": "7c1f0e", "country": "US", "plan": "pro", "account": "a_17"},
    {"user": "", "country": "DE"},
]


def test_the_site_runs_the_drop_in_in_place_of_django_proctor():
    """The app, the context processor, the middleware's base class and the private views all
    come from avsb.contrib.proctor."""
    assert settings.PROCTOR_PACKAGE == "avsb.contrib.proctor"
    assert settings.INSTALLED_APPS[0] == "avsb.contrib.proctor"
    processors = settings.TEMPLATES[0]["OPTIONS"]["context_processors"]
    assert "avsb.contrib.proctor.context_processors.proc" in processors
    assert issubclass(DemoProctorMiddleware, BaseProctorMiddleware)
    assert resolve("/private/forcegroups/").func.view_class.__module__ == "avsb.contrib.proctor.views.private"


# -- the two ways of running it -----------------------------------------------------------------


@pytest.fixture(scope="module", params=["local", "pipet"])
def mode(request, server, tmp_path_factory):
    if request.param == "local":
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AVSB_SDK_KEY", server.sdk_key)
            env.setenv("AVSB_BASE_URL", server.base_url)
            env.setenv("AVSB_CACHE_DIR", str(tmp_path_factory.mktemp("datafiles")))
            yield "local"
    else:
        with override_settings(PROCTOR_AVSB_SERVER=False, PROCTOR_API_ROOT=server.proctor_api_root):
            yield "pipet"


@pytest.fixture
def proctor(mode, server):
    """The site with no cache and eager loading, as django-proctor's defaults."""
    caches["default"].clear()
    with override_settings(PROCTOR_CACHE_METHOD=None, PROCTOR_LAZY=False):
        yield server


def proc_of(query: dict, privileged: bool = False, **meta):
    """`request.proc` as the demo middleware leaves it, for a request with `query`."""
    request = RequestFactory().get("/", query, **meta)
    if privileged:
        request.META["HTTP_X_PROCTOR_PRIVILEGED"] = "1"
    DemoProctorMiddleware(lambda r: None).process_request(request)
    return request.proc


# -- assignments --------------------------------------------------------------------------------


@pytest.mark.parametrize("query", CASES, ids=lambda q: "-".join(f"{k}={v}" for k, v in q.items()))
def test_request_proc_equals_the_servers_own_assignment(proctor, query):
    _, data = page(Client(), **query)
    expected = server_groups(proctor, query)
    assert data["groups"] == expected
    assert data["proc"] == proc_string(expected)
    assert any(assignment != UNASSIGNED for assignment in data["groups"].values())


def test_local_evaluation_asks_the_server_nothing_per_request(proctor, mode):
    client = Client()
    page(client, user="warm-up")
    before = proctor.identify_calls()
    for query in CASES:
        page(client, **query)
    calls = proctor.identify_calls() - before
    assert calls == (0 if mode == "local" else len(CASES))


def test_the_pinned_pipet_example(proctor):
    """docs/proctor.md §6.3: pa5xq0lz4n80, logged in, forced into buttoncolortst2."""
    query = {"user": "pa5xq0lz4n80", "loggedIn": "true"}
    _, data = page(Client(), **query)
    assert data["groups"]["newfeaturerollout"] == ["active", 0, None]

    _, forced = page(Client(), privileged=True, prforceGroups="buttoncolortst2", **query)
    assert forced["groups"]["buttoncolortst"] == ["green", 2, "#3DFF33"]
    assert forced["groups"]["newfeaturerollout"] == ["active", 0, None]
    assert forced["proc"].startswith("buttoncolortst2,newfeaturerollout0")


def test_str_proc_and_the_group_string_list(proctor):
    proc = proc_of({"user": "pa5xq0lz4n80", "loggedIn": "true", "account": "a_1"})
    expected = server_groups(proctor, {"user": "pa5xq0lz4n80", "loggedIn": "true", "account": "a_1"})
    parts = proc.get_group_string_list()
    assert parts == [
        f"{t}{expected[t][1]}" for t in settings.PROCTOR_TESTS if expected[t][1] is not None and expected[t][1] >= 0
    ]
    assert str(proc) == ",".join(parts)
    assert "newfeaturerollout0" in parts and any(p.startswith("accounttst") for p in parts)
    # Every test of PROCTOR_TESTS is a GroupAssignment(group, value, payload).
    assert tuple(proc.buttoncolortst) == tuple(expected["buttoncolortst"])
    assert proc.buttoncolortst.group == expected["buttoncolortst"][0]
    assert getattr(proc, "checkout-v2").payload == expected["checkout-v2"][2]


def test_a_test_missing_from_the_answer_is_unassigned_and_others_are_no_attributes(proctor):
    proc = proc_of({"user": "u_1", "loggedIn": "false"})
    # Never in the matrix; ineligible (${loggedIn} is false); no ACCOUNT identifier.
    for test in ("notinmatrix", "newfeaturerollout", "accounttst"):
        assert tuple(getattr(proc, test)) == (None, None, None)
    assert "notinmatrix" not in str(proc) and "newfeaturerollout" not in str(proc)
    assert proc.buttoncolortst.group in {"inactive", "control", "blue", "green"}
    # A test in the matrix but not in PROCTOR_TESTS is no attribute at all.
    with pytest.raises(AttributeError):
        proc.buttoncolortst_typo
    with pytest.raises(AttributeError):
        getattr(proc, "no-such-test")
    with override_settings(PROCTOR_TESTS=("buttoncolortst",)):
        narrow = proc_of({"user": "u_1"})
    assert narrow.buttoncolortst.group is not None
    with pytest.raises(AttributeError):
        narrow.countryalgotst
    assert str(narrow) == f"buttoncolortst{narrow.buttoncolortst.value}"


def test_payloads_of_every_shape_arrive_as_python_values(proctor):
    _, data = page(Client(), user="u_1", plan="pro", account="a_9")
    groups = data["groups"]
    assert groups["checkout-v2"] == ["on", 1, True]
    assert groups["ui-theme"] == ["dark", 1, "dark"]
    assert groups["limits"] in (["small", 0, [10, 20]], ["large", 1, [100, 200]])
    assert groups["copy"] == ["plain", 0, {"title": "Welcome", "maxItems": 3, "ratio": 0.5, "tags": ["a", "b"]}]
    assert groups["accounttst"] in (["control", 0, "A"], ["test", 1, "B"])
    assert groups == server_groups(proctor, {"user": "u_1", "plan": "pro", "account": "a_9"})
    proc = proc_of({"user": "u_1", "plan": "pro"})
    assert getattr(proc, "checkout-v2").payload is True


def test_the_context_processor_puts_proc_in_templates(proctor):
    response, _ = page(
        Client(), "/button/", privileged=True, user="pa5xq0lz4n80", loggedIn="true", prforceGroups="buttoncolortst1"
    )
    assert response.content.decode() == '<button style="background: #2B60DE">New</button>\n'
    response, _ = page(Client(), "/button/", user="u_1", loggedIn="false")
    assert ">Old</button>" in response.content.decode()


def test_proc_by_accountid_uses_the_account_identifier(proctor):
    proc = identify.proc_by_accountid("a_42")
    expected = proctor.identify(
        {"id.account": "a_42", "ctx.ua": "", "test": ",".join(settings.PROCTOR_TESTS)}
    )["groups"]
    assert set(expected) == {"accounttst"}
    bucket = expected["accounttst"]
    assert tuple(proc.accounttst) == (bucket["name"], bucket["value"], bucket["payload"]["stringValue"])
    assert tuple(proc.buttoncolortst) == (None, None, None)


# -- lazy loading ---------------------------------------------------------------------------------


def test_lazy_groups_evaluate_only_when_read(proctor, mode, monkeypatch):
    evaluations = []
    real = local.evaluate
    monkeypatch.setattr(local, "evaluate", lambda *a: evaluations.append(1) or real(*a))
    with override_settings(PROCTOR_LAZY=True):
        client = Client()
        before = proctor.identify_calls()
        _, data = page(client, "/untouched/", user="lazy")
        assert data == {"proc_type": "LazyProctorGroups"}
        assert proctor.identify_calls() == before and evaluations == []

        _, data = page(client, user="lazy", loggedIn="true")
        calls = proctor.identify_calls() - before
        if mode == "local":
            assert len(evaluations) == 1 and calls == 0
        else:
            assert evaluations == [] and calls == 1
        assert data["groups"] == server_groups(proctor, {"user": "lazy", "loggedIn": "true"})
        assert data["proc"] == proc_string(data["groups"])

        proc = proc_of({"user": "lazy"})
        assert isinstance(proc, LazyProctorGroups) and not proc.loaded
        assert proc.buttoncolortst.value == server_groups(proctor, {"user": "lazy"})["buttoncolortst"][1]
        assert proc.loaded


# -- force groups -------------------------------------------------------------------------------


def forced_choice(natural: dict) -> tuple[str, dict]:
    """A force-groups string that moves buttoncolortst and countryalgotst off their natural buckets."""
    button = next(v for v in (2, 1, 0) if v != natural["buttoncolortst"][1])
    country = next(v for v in (1, 0) if v != natural["countryalgotst"][1])
    return f"buttoncolortst{button},countryalgotst{country}", {"buttoncolortst": button, "countryalgotst": country}


def test_privileged_force_groups_from_the_query_then_from_the_cookie(proctor):
    query = {"user": "force-me"}
    natural = server_groups(proctor, query)
    force, values = forced_choice(natural)
    client = Client()

    response, data = page(client, privileged=True, prforceGroups=force, **query)
    assert data["groups"] == server_groups(proctor, query, force=force)
    for test, value in values.items():
        assert data["groups"][test][1] == value
    cookie = response.cookies["prforceGroups"]
    assert cookie.value == force
    # Django quotes the comma; the browser sends it back that way and Django reads it back.
    assert cookie.coded_value == '"' + force.replace(",", "\\054") + '"'
    assert not cookie["expires"] and not cookie["max-age"] and cookie["path"] == "/"

    # The next privileged request carries only the cookie.
    response, data = page(client, privileged=True, **query)
    for test, value in values.items():
        assert data["groups"][test][1] == value
    assert "prforceGroups" not in response.cookies

    # A request that is not privileged ignores the same cookie.
    _, data = page(client, **query)
    assert data["groups"] == natural

    # An empty parameter stops forcing and empties the cookie.
    response, data = page(client, privileged=True, prforceGroups="", **query)
    assert data["groups"] == natural
    assert response.cookies["prforceGroups"].value == ""


def test_force_groups_of_a_request_that_is_not_privileged_are_ignored(proctor):
    query = {"user": "not-privileged"}
    natural = server_groups(proctor, query)
    force, _ = forced_choice(natural)
    client = Client()
    client.cookies["prforceGroups"] = force
    response, data = page(client, prforceGroups=force, **query)
    assert data["groups"] == natural
    assert "prforceGroups" not in response.cookies


# -- the private views (wired by the site's urls with path()) ----------------------------------------


def test_the_private_test_matrix_view_shows_the_servers_matrix(proctor):
    response = Client().get("/private/showtestmatrix/", headers={PRIVILEGE_HEADER: "1"})
    assert response.status_code == 200
    shown = response.json()
    matrix = proctor.http.get(f"{proctor.proctor_api_root}/proctor/matrix", timeout=10).json()
    assert shown["audit"] == matrix["audit"]
    assert shown["tests"]["buttoncolortst"] == matrix["tests"]["buttoncolortst"]
    assert shown["tests"]["notinmatrix"] == {}
    assert set(shown["tests"]) == set(settings.PROCTOR_TESTS)
    assert Client().get("/private/showtestmatrix/").status_code == 404


def test_the_private_force_groups_view_renders_the_buckets_and_force_links(proctor):
    client = Client()
    client.cookies["prforceGroups"] = "countryalgotst1"
    response = client.get("/private/forcegroups/", {"user": "pa5xq0lz4n80"}, headers={PRIVILEGE_HEADER: "1"})
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("buttoncolortst", "newfeaturerollout", "green", "countryalgotst"):
        assert text in html
    # Forcing green keeps the cookie's countryalgotst1; the reset form drops only its own test.
    assert 'value="countryalgotst1,buttoncolortst2"' in html
    assert 'value="countryalgotst0"' in html
    assert '<input type="hidden" name="prforceGroups" value="">' in html
    assert client.get("/private/forcegroups/").status_code == 404
