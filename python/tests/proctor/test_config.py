"""Configuration errors raise ImproperlyConfigured when Django loads the middleware; nothing in
the request path raises. Also the small pieces (str(proc), the force-groups template tags)
held to the real django-proctor on the same inputs."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Template
from django.test import RequestFactory, override_settings

import avsb
from avsb.contrib.proctor import groups
from avsb.contrib.proctor.middleware import BaseProctorMiddleware
from demo.middleware import DemoProctorMiddleware


def get_response(request):
    return None


@pytest.fixture
def pipet_only():
    with override_settings(PROCTOR_AVSB_SERVER=False, PROCTOR_API_ROOT="http://127.0.0.1:9/pipet/unset"):
        yield


# -- at start --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tests, message",
    [
        ("buttoncolortst,newfeaturerollout", "not a string"),
        ("buttoncolortst", "not a string"),
        (None, "PROCTOR_TESTS is not set"),
        (42, "not int"),
        (("buttoncolortst", 7), "strings"),
    ],
)
def test_proctor_tests_must_be_a_list_of_names(pipet_only, tests, message):
    with override_settings(PROCTOR_TESTS=tests), pytest.raises(ImproperlyConfigured, match=message):
        DemoProctorMiddleware(get_response)


def test_the_real_django_proctor_refuses_the_same_string(pipet_only):
    from proctor.middleware import BaseProctorMiddleware as Theirs

    class TheirMiddleware(Theirs):
        def get_identifiers(self, request):
            return {}

    with override_settings(PROCTOR_TESTS="a,b"), pytest.raises(ImproperlyConfigured):
        TheirMiddleware(get_response)


@pytest.mark.parametrize("method", ["memcached", "Session", True, ""])
def test_an_unknown_cache_method_is_refused(pipet_only, method):
    with override_settings(PROCTOR_CACHE_METHOD=method), pytest.raises(ImproperlyConfigured, match="PROCTOR_CACHE_METHOD"):
        DemoProctorMiddleware(get_response)


def test_an_unknown_cache_name_is_refused(pipet_only):
    with override_settings(PROCTOR_CACHE_METHOD="cache", PROCTOR_CACHE_NAME="nope"), pytest.raises(ImproperlyConfigured):
        DemoProctorMiddleware(get_response)


@pytest.mark.parametrize("method", [None, "cache", "session"])
def test_known_cache_methods_are_accepted(pipet_only, method):
    with override_settings(PROCTOR_CACHE_METHOD=method):
        assert type(DemoProctorMiddleware(get_response).cacher).__name__ == {
            None: "NoneType",
            "cache": "CacheCacher",
            "session": "SessionCacher",
        }[method]


def test_the_base_class_alone_is_refused(pipet_only):
    with pytest.raises(ImproperlyConfigured, match="get_identifiers"):
        BaseProctorMiddleware(get_response)


def test_a_site_without_any_source_of_groups_is_refused(monkeypatch):
    monkeypatch.delenv("AVSB_SDK_KEY", raising=False)
    assert avsb.default_server() is None
    with override_settings(PROCTOR_API_ROOT=None), pytest.raises(ImproperlyConfigured, match="AVSB_SDK_KEY"):
        DemoProctorMiddleware(get_response)


@pytest.mark.parametrize("value", ["no.such.module.server", "demo.views.groups", "demo.middleware.PRIVILEGE_HEADER", 42, avsb.AvsbServer])
def test_a_bad_server_setting_is_refused(value):
    with override_settings(PROCTOR_AVSB_SERVER=value), pytest.raises(ImproperlyConfigured, match="PROCTOR_AVSB_SERVER"):
        DemoProctorMiddleware(get_response)


def test_an_sdk_key_with_a_bad_base_url_is_refused(monkeypatch):
    monkeypatch.setenv("AVSB_SDK_KEY", "sdk-whatever")
    monkeypatch.setenv("AVSB_BASE_URL", "ftp://example.com")
    with pytest.raises(ImproperlyConfigured, match="base_url"):
        DemoProctorMiddleware(get_response)


# -- in requests -------------------------------------------------------------------------------------


class FakeServer:
    """A stand-in for an AvsbServer whose `identify` does what a test says."""

    def __init__(self, behaviour):
        self.behaviour = behaviour

    def is_ready(self):
        return True

    def identify(self, identifiers, context, tests=None, force_groups=None):
        return self.behaviour(identifiers, context, tests, force_groups)


def proc_with(server, middleware_class=DemoProctorMiddleware, **query):
    with override_settings(PROCTOR_AVSB_SERVER=server):
        request = RequestFactory().get("/", query)
        middleware_class(get_response).process_request(request)
        return request.proc


def raise_(error):
    def behaviour(*args):
        raise error

    return behaviour


@pytest.mark.parametrize(
    "error, logged",
    [
        (avsb.RequestError(400, "Request must have at least one identifier."), "400: Request must have at least one identifier."),
        (avsb.RequestError(400, "Required variable 'country' not found by 'QUERY:ctx.country'. See the pipet configuration."), "Required variable 'country'"),
        (avsb.RequestError("no matrix has been loaded yet"), "no matrix has been loaded yet"),
        (RuntimeError("engine bug"), "failed to assign groups"),
    ],
)
def test_an_evaluation_that_fails_leaves_every_test_unassigned_and_says_why(error, logged, caplog):
    with caplog.at_level(logging.WARNING, logger="application.proctor"):
        proc = proc_with(FakeServer(raise_(error)), user="u_1")
    assert str(proc) == ""
    assert tuple(proc.buttoncolortst) == (None, None, None)
    assert tuple(getattr(proc, "checkout-v2")) == (None, None, None)
    assert logged in caplog.text


def test_the_engine_gets_what_pipet_would_read(caplog):
    seen = []
    proc = proc_with(
        FakeServer(lambda *args: seen.append(args) or {"buttoncolortst": groups.GroupAssignment("blue", 1, "#2B60DE")}),
        user="u_1",
        loggedIn="true",
    )
    identifiers, context, tests, force = seen[0]
    assert identifiers == {"USER": "u_1"}
    assert context == {"country": "US", "loggedIn": "True", "plan": "free"}
    assert tests[0] == "buttoncolortst" and "notinmatrix" in tests
    assert force is None
    assert str(proc) == "buttoncolortst1"


def test_missing_identifiers_with_the_real_engine_give_unassigned_groups(server, make_sdk, caplog):
    sdk = make_sdk(server, send_events=False)
    assert sdk.on_ready_sync(10)

    class Anonymous(DemoProctorMiddleware):
        def get_identifiers(self, request):
            return {"USER": None, "account": None}

    with caplog.at_level(logging.WARNING, logger="application.proctor"):
        proc = proc_with(sdk, Anonymous)
    assert str(proc) == "" and tuple(proc.buttoncolortst) == (None, None, None)
    assert "Request must have at least one identifier." in caplog.text
    # An empty identifier is an identifier (Pipet hashes it).
    assert proc_with(sdk, user="").buttoncolortst.group is not None


def test_a_server_setting_broken_after_start_does_not_fail_requests(caplog):
    middleware = None
    with override_settings(PROCTOR_AVSB_SERVER=FakeServer(lambda *a: {})):
        middleware = DemoProctorMiddleware(get_response)
    with override_settings(PROCTOR_AVSB_SERVER="no.such.module.server"), caplog.at_level(logging.ERROR):
        request = RequestFactory().get("/", {"user": "u"})
        middleware.process_request(request)
    assert str(request.proc) == "" and request.proc.buttoncolortst.value is None
    assert "PROCTOR_AVSB_SERVER" in caplog.text


# -- the small pieces against the real django-proctor --------------------------------------------------


def test_str_proc_matches_django_proctor():
    from proctor.groups import GroupAssignment as TheirAssignment, ProctorGroups as Theirs

    rows = {
        "a": (None, None, None),
        "b": ("inactive", -1, None),
        "c": ("control", 0, "x"),
        "d": ("blue", 12, [1, 2]),
        "e": ("weird", 2.5, None),
    }
    ours = groups.ProctorGroups({t: groups.GroupAssignment(*v) for t, v in rows.items()})
    theirs = Theirs({t: TheirAssignment(*v) for t, v in rows.items()})
    assert str(ours) == str(theirs) == "c0,d12,e2.5"
    assert ours.get_group_string_list() == theirs.get_group_string_list()
    assert ours.d == theirs.d
    with pytest.raises(AttributeError):
        ours.f


FORCE_CASES = [
    ("", "abc", 1),
    ("abc1", "abc", 2),
    ("ABC1,other2", "abc", 3),
    ("abcd1,abc-1,abc1234,xabc1", "abc", 0),
    ("checkout-v21,checkout7", "checkout", 1),
    ("checkout-v21,buttoncolortst2", "checkout-v2", 0),
    (",,a1,,b2,", "b", 5),
]


@pytest.mark.parametrize("current, test, bucket", FORCE_CASES)
@pytest.mark.parametrize("source", ["query", "cookie"])
def test_force_group_template_tags_match_django_proctor(current, test, bucket, source):
    template = "{% load forcegroups %}[{% addforcegroups test bucket %}][{% removeforcegroups test %}]"
    request = RequestFactory().get("/", {"prforceGroups": current} if source == "query" else {})
    if source == "cookie":
        request.COOKIES["prforceGroups"] = current
    context = {"request": request, "test": test, "bucket": bucket}
    ours = Template(template).render(Context(context))

    # django-proctor's tags reach `proctor.views.private` without importing it (its urls do);
    # importing it needs the settings module to be the top-level `settings`, as here.
    import proctor.views.private  # noqa: F401
    from proctor.templatetags import forcegroups as theirs

    class Theirs:
        def __getitem__(self, key):
            return context[key]

    expected = f"[{theirs.addforcegroups(Theirs(), test, bucket)}][{theirs.removeforcegroups(Theirs(), test)}]"
    assert ours == expected
