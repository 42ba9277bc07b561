"""The middleware's default context: an anonymous visitor keyed by a cookie."""

from __future__ import annotations

import re

import pytest
from django.test import Client

YEAR = 365 * 24 * 60 * 60


@pytest.fixture(autouse=True)
def default_context(settings):
    """The guide's project without context_from: the middleware's own anonymous context."""
    settings.AVSB_MIDDLEWARE_OPTIONS = {}


def test_a_first_visit_gets_an_anonymous_cookie():
    response = Client().get("/checkout/")
    assert response.status_code == 200
    cookie = response.cookies["avsb_anon"]
    assert re.fullmatch(r"[0-9a-f]{32}", cookie.value)
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == YEAR
    assert not cookie["secure"]
    assert "Cookie" in response["Vary"]


def test_the_cookie_is_secure_on_https():
    response = Client().get("/checkout/", secure=True)
    assert response.cookies["avsb_anon"]["secure"] is True


def test_the_cookie_s_key_decides_the_bucket_and_sticks(bucket):
    # Ten visitors: a key that did not come from the cookie would disagree with the server for
    # some of them (all but certainly).
    for _ in range(10):
        client = Client()
        first = client.get("/checkout/")
        key = first.cookies["avsb_anon"].value
        expected = bucket("checkout-v2", key)["name"] == "on"
        assert first.json()["showNewCheckout"] is expected
        for _ in range(3):
            again = client.get("/checkout/")
            assert again.json()["showNewCheckout"] is expected
            assert "avsb_anon" not in again.cookies  # the cookie is not set again


def test_a_view_that_reads_no_flag_sets_no_cookie():
    response = Client().get("/health/")
    assert response.status_code == 200
    assert "avsb_anon" not in response.cookies
    assert not response.has_header("Vary") or "Cookie" not in response["Vary"]


def test_a_cookie_that_is_not_a_plain_token_is_replaced():
    client = Client()
    client.cookies["avsb_anon"] = "x" * 65
    response = client.get("/checkout/")
    assert re.fullmatch(r"[0-9a-f]{32}", response.cookies["avsb_anon"].value)


def test_without_the_cookie_every_visitor_shares_one_key(settings, bucket):
    settings.AVSB_MIDDLEWARE_OPTIONS = {"anonymous_cookie": None}
    expected = bucket("checkout-v2", "anonymous")["name"] == "on"
    for _ in range(3):
        response = Client().get("/checkout/")
        assert response.json()["showNewCheckout"] is expected
        assert not response.cookies


def test_another_cookie_name(settings):
    settings.AVSB_MIDDLEWARE_OPTIONS = {"anonymous_cookie": "visitor"}
    response = Client().get("/checkout/")
    assert set(response.cookies) == {"visitor"}
