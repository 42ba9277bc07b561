"""Asking a Pipet API (no server SDK in the process, PROCTOR_API_ROOT set): django-proctor's
wire behaviour, its caches and its failures. The real django-proctor, installed beside us, is
the oracle for what goes on the wire."""

from __future__ import annotations

import copy
import http.server
import json
import logging
import socket
import threading

import pytest
from django.conf import settings
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.core.cache import caches
from django.test import Client, RequestFactory, override_settings

from avsb.contrib.proctor import api as our_api
from demo.middleware import DemoProctorMiddleware
from proctor_cases import UNASSIGNED, page, server_groups


@pytest.fixture
def pipet(server):
    """The site asking the module's server over its Pipet API."""
    caches["default"].clear()
    with override_settings(
        PROCTOR_AVSB_SERVER=False,
        PROCTOR_API_ROOT=server.proctor_api_root,
        PROCTOR_CACHE_METHOD=None,
        PROCTOR_LAZY=False,
    ):
        yield server


# -- the wire ---------------------------------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with an empty identify answer and records the request line's path."""

    paths: list[str]

    def do_GET(self):  # noqa: N802 - the http.server API
        self.server.paths.append(self.path)
        body = json.dumps({"data": {"groups": {}, "audit": {"version": "1"}}, "meta": {"status": 200}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.paths = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


WIRE_CASES = [
    # (context, identifiers, tests, force groups)
    ({"country": "US", "loggedIn": True, "plan": "free"}, {"USER": "anon"}, ["buttoncolortst", "checkout-v2"], None),
    ({"ua": ""}, {"account": 1234}, ["fake_proctor_test"], None),
    ({"loggedIn": False, "plan": None, "n": 2.5}, {"USER": "a b/ü&=?", "account": None}, ["a"], "buttoncolortst2,x-1"),
    ({}, {"USER": ""}, [], ""),
    ({"tags": ["x", None, "y"]}, {"USER": b"bytes"}, ("t1", "t2"), "abc1;doubleValue:0.2"),
]


@pytest.mark.parametrize("context, identifiers, tests, force", WIRE_CASES)
def test_the_query_is_django_proctors_to_the_byte(recorder, context, identifiers, tests, force):
    from proctor import api as their_api  # the real django-proctor 1.2.1

    root = f"http://127.0.0.1:{recorder.server_port}/pipet/sdk-secret"
    theirs = their_api.ProctorParameters(root, tests, context, identifiers, force)
    ours = our_api.ProctorParameters(root, tests, context, identifiers, force)
    assert their_api.call_proctor(theirs) is not None
    assert our_api.call_proctor(ours) is not None
    their_path, our_path = recorder.paths
    assert our_path == their_path
    assert our_path.startswith("/pipet/sdk-secret/groups/identify?")
    assert "test=" in our_path


def test_a_call_that_raises_is_tried_four_times_as_django_proctor_does(caplog):
    """A listener that hangs up at once: every attempt raises, four of them, then None."""
    from proctor import api as their_api

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def hang_up():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        root = f"http://127.0.0.1:{listener.getsockname()[1]}/pipet/sdk-secret"
        args = (root, ["buttoncolortst"], {}, {"USER": "u"}, None)
        assert their_api.call_proctor(their_api.ProctorParameters(*args)) is None
        theirs = len(accepted)
        # django-proctor logs the URL, SDK key included; ours must not.
        assert "sdk-secret" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="application.proctor"):
            assert our_api.call_proctor(our_api.ProctorParameters(*args)) is None
        assert theirs == 4 and len(accepted) - theirs == 4
        assert "failed 4 times" in caplog.text
        assert "sdk-secret" not in caplog.text
    finally:
        stop.set()
        thread.join(5)
        listener.close()


# -- answers ------------------------------------------------------------------------------------------


def test_pipet_answers_equal_the_servers_own(pipet):
    client = Client()
    for i in range(30):
        query = {"user": f"p-{i}", "loggedIn": "true" if i % 2 else "false", "plan": ("free", "pro")[i % 2]}
        if i % 3 == 0:
            query["account"] = f"a-{i}"
        _, data = page(client, **query)
        assert data["groups"] == server_groups(pipet, query)


def test_a_site_http_session_is_used(pipet):
    import requests

    calls = []

    class Session(requests.Session):
        def get(self, url, **kwargs):
            calls.append(url)
            return super().get(url, **kwargs)

    class SessionMiddleware(DemoProctorMiddleware):
        def get_http(self):
            return Session()

    request = RequestFactory().get("/", {"user": "u_1", "plan": "pro"})
    SessionMiddleware(lambda r: None).process_request(request)
    assert calls == [f"{pipet.proctor_api_root}/groups/identify"]
    assert tuple(getattr(request.proc, "checkout-v2")) == ("on", 1, True)


# -- caches ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["cache", "session"])
def test_a_cached_assignment_does_not_call_the_server_again(pipet, method):
    with override_settings(PROCTOR_CACHE_METHOD=method):
        client = Client()
        before = pipet.identify_calls()
        _, first = page(client, user=f"cached-{method}", loggedIn="true")
        after_first = pipet.identify_calls()
        assert after_first - before == 1
        _, second = page(client, user=f"cached-{method}", loggedIn="true")
        assert pipet.identify_calls() == after_first, "the second request must be served from the cache"
        assert second == first
        assert first["groups"] == server_groups(pipet, {"user": f"cached-{method}", "loggedIn": "true"})
        if method == "session":
            assert settings.SESSION_COOKIE_NAME in client.cookies

        # Other identifiers, other context or force groups are another request to Pipet.
        for query in ({"user": f"other-{method}"}, {"user": f"cached-{method}", "loggedIn": "false"}):
            before = pipet.identify_calls()
            page(client, **query)
            assert pipet.identify_calls() - before == 1, query


@pytest.mark.parametrize("method", ["cache", "session"])
def test_a_new_matrix_version_invalidates_cached_assignments(pipet, method):
    """The version is learnt only from Pipet answers (docs/proctor.md §7.5): a cached entry survives a
    matrix change until a Pipet call (for another user, or after 5 minutes) reveals it."""
    with override_settings(PROCTOR_CACHE_METHOD=method):
        middleware = DemoProctorMiddleware(lambda r: None)
        sessions = {}

        def proc(user):
            request = RequestFactory().get("/", {"user": user})
            request.session = sessions.setdefault(user, SessionStore())
            middleware.process_request(request)
            return request.proc

        calls = pipet.identify_calls()

        def new_calls():
            nonlocal calls
            now = pipet.identify_calls()
            new, calls = now - calls, now
            return new

        old = proc("alice").limits
        assert new_calls() == 1
        assert proc("alice").limits == old and new_calls() == 0

        definition = copy.deepcopy(pipet.http.get(f"{pipet.proctor_api_root}/proctor/matrix").json()["tests"]["limits"])
        moved = 1 - old.value
        definition["allocations"] = [{"rule": None, "ranges": [{"bucketValue": moved, "length": 1.0}]}]
        pipet.put_test("limits", definition)
        new_calls()

        # Not known yet: the cached entry still answers.
        assert proc("alice").limits == old and new_calls() == 0
        # Another user's call brings the new version...
        assert proc("bob").limits.value == moved and new_calls() == 1
        # ...which invalidates alice's entry.
        assert proc("alice").limits.value == moved and new_calls() == 1
        assert proc("alice").limits.value == moved and new_calls() == 0

        # A version that expires is asked for again.
        if method == "cache":
            caches["default"].delete("procversion")
        else:
            middleware.cacher.version_expiry_time = 0
        assert proc("alice").limits.value == moved and new_calls() == 1


def test_the_session_cache_answers_while_pipet_is_down(fresh_server, caplog):
    with override_settings(
        PROCTOR_AVSB_SERVER=False, PROCTOR_API_ROOT=fresh_server.proctor_api_root, PROCTOR_CACHE_METHOD="session"
    ):
        middleware = DemoProctorMiddleware(lambda r: None)
        session = SessionStore()

        def proc(user):
            request = RequestFactory().get("/", {"user": user})
            request.session = session
            middleware.process_request(request)
            return request.proc

        cached = proc("u_1").buttoncolortst
        assert cached.group is not None
        fresh_server.kill()
        middleware.cacher.version_expiry_time = 0
        with caplog.at_level(logging.ERROR):
            assert proc("u_1").buttoncolortst == cached
            assert "failed 4 times" in caplog.text
            # Nothing cached for another user: unassigned.
            assert tuple(proc("u_2").buttoncolortst) == (None, None, None)


# -- failures ------------------------------------------------------------------------------------------


def test_pipet_down_renders_the_page_with_unassigned_groups(fresh_server, caplog):
    root = fresh_server.proctor_api_root
    fresh_server.kill()
    with override_settings(PROCTOR_AVSB_SERVER=False, PROCTOR_API_ROOT=root, PROCTOR_CACHE_METHOD=None):
        with caplog.at_level(logging.ERROR, logger="application.proctor"):
            _, data = page(Client(), user="u_1")
            response, _ = page(Client(), "/button/", user="u_1")
    assert data["groups"] == {test: UNASSIGNED for test in settings.PROCTOR_TESTS}
    assert data["proc"] == ""
    assert ">Old</button>" in response.content.decode()
    assert "failed 4 times" in caplog.text
    assert fresh_server.sdk_key not in caplog.text


def test_a_refused_request_logs_pipets_error_without_the_key(pipet, caplog):
    root = f"{pipet.base_url}/pipet/sdk-this-key-does-not-exist"
    with override_settings(PROCTOR_API_ROOT=root), caplog.at_level(logging.ERROR, logger="application.proctor"):
        _, data = page(Client(), user="u_1")
    assert data["groups"] == {test: UNASSIGNED for test in settings.PROCTOR_TESTS}
    assert "returned HTTP error (4" in caplog.text and "with API error message" in caplog.text
    assert "sdk-this-key-does-not-exist" not in caplog.text

    # Pipet's own 400: no identifier at all.
    class Anonymous(DemoProctorMiddleware):
        def get_identifiers(self, request):
            return {"USER": None}

    caplog.clear()
    request = RequestFactory().get("/")
    with caplog.at_level(logging.ERROR, logger="application.proctor"):
        Anonymous(lambda r: None).process_request(request)
    assert str(request.proc) == "" and tuple(request.proc.buttoncolortst) == (None, None, None)
    assert "Request must have at least one identifier." in caplog.text
