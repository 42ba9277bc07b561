"""Nothing in the request path raises because of A vs B: broken callables, no server, a server
that went away."""

from __future__ import annotations

import logging

import pytest
from avsb_process import free_port
from django.test import Client

from pages import page_flags

from avsb import AvsbServer

DEFAULTS = {"showNewCheckout": False, "theme": "default"}


@pytest.fixture
def avsb_log(caplog):
    caplog.set_level(logging.WARNING, logger="avsb")
    return caplog


def test_a_context_from_that_raises_falls_back_to_the_anonymous_context(settings, avsb_log, bucket):
    def context_from(request):
        raise ZeroDivisionError("a bug in the application")

    settings.AVSB_MIDDLEWARE_OPTIONS = {"context_from": context_from}
    response = Client().get("/checkout/")
    assert response.status_code == 200
    key = response.cookies["avsb_anon"].value
    assert response.json() == {
        "showNewCheckout": bucket("checkout-v2", key)["name"] == "on",
        "theme": bucket("ui-theme", key)["payload"]["stringValue"],
    }
    (record,) = [r for r in avsb_log.records if "context_from" in r.getMessage()]
    assert "raised; using the anonymous context" in record.getMessage()
    assert record.exc_info[0] is ZeroDivisionError


def test_a_context_from_that_returns_no_dict_falls_back_too(settings, avsb_log):
    settings.AVSB_MIDDLEWARE_OPTIONS = {"context_from": lambda request: "u_1"}
    response = Client().get("/checkout/")
    assert response.status_code == 200
    assert "avsb_anon" in response.cookies
    assert any("must return a dict" in r.getMessage() for r in avsb_log.records)


def test_an_is_privileged_that_raises_means_not_privileged(settings, avsb_log, bucket):
    def is_privileged(request):
        raise RuntimeError("no user table")

    settings.AVSB_MIDDLEWARE_OPTIONS = {"context_from": lambda r: {"kind": "user", "key": "u_1"}, "is_privileged": is_privileged}
    natural = bucket("buttoncolortst", "u_1")["value"]
    forced = 2 if natural != 2 else 1
    response = Client().get(f"/?prforceGroups=buttoncolortst{forced}")
    assert response.status_code == 200
    assert page_flags(response.content.decode())["buttoncolortst"]["value"] == natural
    assert "prforceGroups" not in response.cookies
    assert any("is_privileged" in r.getMessage() for r in avsb_log.records)


@pytest.fixture
def unreachable_sdk():
    """An AvsbServer whose server never answers (nothing listens on its port)."""
    made = []

    def make():
        sdk = AvsbServer(sdk_key="sdk-nobody-listens", base_url=f"http://127.0.0.1:{free_port()}", cache_dir=False)
        made.append(sdk)
        return sdk

    yield make
    for sdk in made:
        sdk.close_sync(timeout=1)


@pytest.mark.django_db
def test_a_server_that_never_answered_gives_defaults(settings, unreachable_sdk, django_user_model):
    settings.AVSB_MIDDLEWARE_OPTIONS = {
        **settings.AVSB_MIDDLEWARE_OPTIONS,
        "server": unreachable_sdk,  # a factory, called on the first request
    }
    client = Client()
    client.force_login(django_user_model.objects.create_user(username="u_1", id="u_1", plan="pro"))
    response = client.get("/checkout/")
    assert response.status_code == 200
    assert response.json() == DEFAULTS  # u_1 would get True and the pro plan 'dark'
    assert client.post("/purchase/").status_code == 200
    page = client.get("/")
    assert page.status_code == 200
    assert 'class="theme-default"' in page.content.decode()


def test_a_server_factory_that_raises_gives_defaults(settings, avsb_log):
    def broken():
        raise OSError("cannot read the key file")

    settings.AVSB_MIDDLEWARE_OPTIONS = {"context_from": lambda r: {"kind": "user", "key": "u_1"}, "server": broken}
    client = Client()
    for _ in range(3):
        response = client.get("/checkout/")
        assert response.status_code == 200
        assert response.json() == DEFAULTS
    # Logged once, not on every request.
    assert len([r for r in avsb_log.records if "['server'] raised" in r.getMessage()]) == 1


def test_a_server_that_went_away_keeps_the_last_matrix(settings, fresh_server, make_sdk):
    sdk = make_sdk(fresh_server)
    assert sdk.on_ready_sync(timeout=5)
    settings.AVSB_MIDDLEWARE_OPTIONS = {
        "context_from": lambda r: {"kind": "user", "key": "u_1", "plan": "pro"},
        "server": sdk,
    }
    expected = {"showNewCheckout": True, "theme": "dark"}
    assert Client().get("/checkout/").json() == expected
    fresh_server.kill()
    response = Client().get("/checkout/")
    assert response.status_code == 200
    assert response.json() == expected
