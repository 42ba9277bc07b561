"""Bad settings fail when the middleware is built (at start), never during a request."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpResponse
from django.test import RequestFactory

import avsb
from avsb.contrib import wsgi
from avsb.contrib.wsgi import AvsbMiddleware


def view(request):
    return HttpResponse("ok")


def context_u_1(request):
    """A context_from given by its dotted path."""
    return {"kind": "user", "key": "u_1"}


BAD_OPTIONS = [
    ({"contex_from": context_u_1}, r"unknown option 'contex_from'; the options are 'context_from', 'is_privileged', 'anonymous_cookie', 'force_groups_param', 'server'"),
    (["context_from"], r"AVSB_MIDDLEWARE_OPTIONS must be a dict, not list"),
    ({"context_from": 42}, r"\['context_from'\] must be a callable"),
    ({"context_from": "myapp.nowhere.context_from"}, r"\['context_from'\] = 'myapp.nowhere.context_from' cannot be imported"),
    ({"is_privileged": True}, r"\['is_privileged'\] must be a callable"),
    ({"anonymous_cookie": ""}, r"\['anonymous_cookie'\] must be a cookie name"),
    ({"anonymous_cookie": "my cookie;"}, r"\['anonymous_cookie'\] must be a cookie name"),
    ({"force_groups_param": None}, r"\['force_groups_param'\] must be a non-empty name"),
    ({"server": 42}, r"\['server'\] must be an AvsbServer or a callable"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_options_fail_when_the_middleware_is_built(settings, options, message):
    settings.AVSB_MIDDLEWARE_OPTIONS = options
    with pytest.raises(ImproperlyConfigured, match=message):
        AvsbMiddleware(view)
    # What a deployment sees: the WSGI and ASGI applications refuse to start.
    with pytest.raises(ImproperlyConfigured, match=message):
        WSGIHandler()
    with pytest.raises(ImproperlyConfigured, match=message):
        ASGIHandler()


def test_settings_are_read_once_at_start(settings):
    settings.AVSB_MIDDLEWARE_OPTIONS = {"context_from": context_u_1}
    middleware = AvsbMiddleware(view)
    # A broken setting after start changes nothing for the running middleware.
    settings.AVSB_MIDDLEWARE_OPTIONS = {"contex_from": None}
    request = RequestFactory().get("/")
    assert middleware(request).status_code == 200
    assert request.avsb.get_bool_flag("checkout-v2", False) is True


def test_callables_may_be_given_by_dotted_path(settings):
    settings.AVSB_MIDDLEWARE_OPTIONS = {"context_from": "test_configuration.context_u_1"}
    request = RequestFactory().get("/")
    AvsbMiddleware(view)(request)
    assert request.avsb.get_bool_flag("checkout-v2", False) is True


@pytest.fixture
def no_default_server(monkeypatch):
    """The middleware in a process where no AvsbServer has been created (as if the guide's
    ready() had not run)."""
    monkeypatch.setattr(wsgi, "default_server", lambda: None)


def test_without_any_server_or_sdk_key_the_middleware_refuses_to_start(settings, monkeypatch, no_default_server):
    del settings.AVSB_SDK_KEY
    monkeypatch.delenv("AVSB_SDK_KEY")
    with pytest.raises(ImproperlyConfigured, match="AvsbMiddleware has no server: set AVSB_SDK_KEY"):
        AvsbMiddleware(view)


def test_a_bad_base_url_for_the_server_to_make_fails_at_start(settings, no_default_server):
    settings.AVSB_BASE_URL = "ftp://example.com"
    with pytest.raises(ImproperlyConfigured, match="AVSB_BASE_URL must start with http"):
        AvsbMiddleware(view)


def test_an_explicit_server_needs_no_sdk_key(settings, monkeypatch, no_default_server, guide_sdk):
    del settings.AVSB_SDK_KEY
    monkeypatch.delenv("AVSB_SDK_KEY")
    settings.AVSB_MIDDLEWARE_OPTIONS = {"server": guide_sdk, "context_from": context_u_1}
    request = RequestFactory().get("/")
    AvsbMiddleware(view)(request)
    assert request.avsb.get_bool_flag("checkout-v2", False) is True


def test_without_a_default_server_one_is_made_once_on_first_use(settings, monkeypatch, no_default_server, guide_sdk):
    made = []
    scopes = []

    class CountingServer(avsb.AvsbServer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

        def for_user(self, context, force_groups=None):
            scopes.append(context)
            return super().for_user(context, force_groups)

    monkeypatch.setattr(wsgi, "AvsbServer", CountingServer)
    settings.AVSB_MIDDLEWARE_OPTIONS = {"context_from": context_u_1}
    middleware = AvsbMiddleware(view)
    request = RequestFactory().get("/")
    middleware(request)
    assert made == []  # nothing is made until a view reads a flag
    try:
        # Eight threads read their first flag at once.
        requests = [RequestFactory().get("/") for _ in range(8)]
        for r in requests:
            middleware(r)
        barrier = threading.Barrier(len(requests))

        def first_read(r):
            barrier.wait()
            r.avsb.get_bool_flag("checkout-v2", False)

        threads = [threading.Thread(target=first_read, args=(r,)) for r in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(made) == 1
        assert len(scopes) == 8  # every request evaluated with the one server made
        (server,) = made
        assert server is not guide_sdk
        assert server.on_ready_sync(timeout=5)
        request = RequestFactory().get("/")
        middleware(request)
        assert request.avsb.get_bool_flag("checkout-v2", False) is True
        assert len(made) == 1
        assert len(scopes) == 9
    finally:
        for server in made:
            server.close_sync(timeout=2)


def test_importing_avsb_does_not_import_django():
    code = "import sys, avsb; assert 'django' not in sys.modules, sorted(m for m in sys.modules if 'django' in m)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
