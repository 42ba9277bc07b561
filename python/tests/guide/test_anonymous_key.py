"""avsb_anonymous_key(request) in context_from (the guide's pattern), and the warning when one
context key stands for many different visitors (the old 'anon' pattern)."""

from __future__ import annotations

import logging

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from avsb.contrib import wsgi
from avsb.contrib.wsgi import AvsbMiddleware, avsb_anonymous_key
from avsb.test_utils import MockAvsbServer, TestData

WARNING = "different visitors were evaluated with the one key"


@pytest.fixture(autouse=True)
def fresh_watch(monkeypatch):
    """Each test watches for shared keys from scratch (the warning is once per process)."""
    monkeypatch.setattr(wsgi, "_shared_keys", wsgi._SharedKeyWatch())


@pytest.fixture
def options(settings):
    """``options(context_from)``: the middleware's options, evaluating with a mock so that the
    hundreds of visitors here send no events to the guide's server."""
    mock = MockAvsbServer(flags=[TestData.flag("checkout-v2").percentage_rollout({True: 50, False: 50})])

    def set_options(context_from=None, **more):
        settings.AVSB_MIDDLEWARE_OPTIONS = {"server": mock, **({"context_from": context_from} if context_from else {}), **more}

    return set_options


@pytest.fixture
def avsb_log(caplog):
    caplog.set_level(logging.WARNING, logger="avsb")
    return caplog


def old_anon_pattern(request):
    """What the guide used to say: every logged-out visitor gets the key 'anon'."""
    return {
        'kind': 'user',
        'key': str(request.user.id) if request.user.is_authenticated else 'anon',
        'plan': getattr(request.user, 'plan', 'free'),
    }


def shared_key_warnings(log) -> list[str]:
    return [r.getMessage() for r in log.records if WARNING in r.getMessage()]


def test_the_old_anon_pattern_is_noticed_once(options, avsb_log):
    options(old_anon_pattern)
    threshold = wsgi._SharedKeyWatch.THRESHOLD
    # Returning visitors, each with the cookie an earlier visit left (the default context sets it).
    for n in range(threshold - 1):
        client = Client()
        client.cookies["avsb_anon"] = f"visitor{n:04d}"
        assert client.get("/checkout/").status_code == 200
    assert shared_key_warnings(avsb_log) == []
    client = Client()
    client.cookies["avsb_anon"] = "visitor-last"
    client.get("/checkout/")
    (message,) = shared_key_warnings(avsb_log)
    assert f"{threshold} different visitors were evaluated with the one key 'anon'" in message
    assert "avsb_anonymous_key(request)" in message  # what to do instead
    # Once per process.
    for n in range(2 * threshold):
        client = Client()
        client.cookies["avsb_anon"] = f"more{n:04d}"
        client.get("/checkout/")
    assert len(shared_key_warnings(avsb_log)) == 1


def test_new_visitors_without_a_cookie_are_told_apart_by_address_and_browser(options, avsb_log):
    options(old_anon_pattern)
    for n in range(wsgi._SharedKeyWatch.THRESHOLD):
        Client(REMOTE_ADDR=f"203.0.113.{n}", HTTP_USER_AGENT="Firefox").get("/checkout/")
    assert len(shared_key_warnings(avsb_log)) == 1


def test_one_visitor_many_times_is_not_noticed(options, avsb_log):
    options(old_anon_pattern)
    client = Client()
    for _ in range(3 * wsgi._SharedKeyWatch.THRESHOLD):
        client.get("/checkout/")
    assert shared_key_warnings(avsb_log) == []


@pytest.mark.django_db
def test_the_guide_s_pattern_and_logged_in_users_are_not_noticed(options, avsb_log, django_user_model):
    from django.conf import settings

    options(settings.AVSB_MIDDLEWARE_OPTIONS["context_from"])  # the guide's context_from
    threshold = wsgi._SharedKeyWatch.THRESHOLD
    for n in range(2 * threshold):
        Client(REMOTE_ADDR=f"198.51.100.{n % 250}").get("/checkout/")  # new visitors: new keys
        returning = Client()
        returning.cookies["avsb_anon"] = f"returning{n:04d}"
        returning.get("/checkout/")
    user = django_user_model.objects.create_user(username="u_many", id="u_many")
    for n in range(5):  # one user, five browsers
        client = Client(HTTP_USER_AGENT=f"browser {n}")
        client.cookies["avsb_anon"] = f"device{n}"
        client.force_login(user)
        client.get("/checkout/")
    assert shared_key_warnings(avsb_log) == []


def test_the_helper_returns_the_cookie_s_key_and_makes_one_when_there_is_none(options):
    options(lambda r: {"kind": "user", "key": avsb_anonymous_key(r)})
    keys = []

    def view(request):
        keys.append(avsb_anonymous_key(request))
        keys.append(request.avsb.context["key"])
        return HttpResponse("ok")

    middleware = AvsbMiddleware(view)
    response = middleware(RequestFactory().get("/"))
    assert keys[0] == keys[1] == response.cookies["avsb_anon"].value
    assert "Cookie" in response["Vary"]
    keys.clear()
    request = RequestFactory().get("/")
    request.COOKIES["avsb_anon"] = "kept1234"
    response = middleware(request)
    assert keys == ["kept1234", "kept1234"]
    assert "avsb_anon" not in response.cookies


def test_the_helper_without_the_cookie_or_the_middleware(options, avsb_log, monkeypatch):
    options(anonymous_cookie=None)
    seen = []
    middleware = AvsbMiddleware(lambda request: seen.append(avsb_anonymous_key(request)) or HttpResponse("ok"))
    response = middleware(RequestFactory().get("/"))
    assert seen == ["anonymous"] and not response.cookies
    monkeypatch.setattr(wsgi, "_warned_without_middleware", False)
    assert avsb_anonymous_key(RequestFactory().get("/")) == "anonymous"
    assert avsb_anonymous_key(RequestFactory().get("/")) == "anonymous"
    assert len([r for r in avsb_log.records if "AvsbMiddleware did not see" in r.getMessage()]) == 1
