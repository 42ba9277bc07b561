"""The guide's samples, run as written: CheckoutView, context_from, track, for_user."""

from __future__ import annotations

import pytest
from server_events import stored_events
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def login(client, django_user_model):
    """Creates a user with that id and plan and logs the test client in as them."""

    def as_user(user_id: str, plan: str = "free", **fields):
        user = django_user_model.objects.create_user(username=user_id, id=user_id, plan=plan, **fields)
        client.force_login(user)
        return user

    return as_user


def key_in_bucket(bucket, test: str, name: str) -> str:
    """The first of u_2, u_3, ... that the server puts in bucket ``name`` of ``test``."""
    for n in range(2, 200):
        assignment = bucket(test, f"u_{n}")
        if assignment is not None and assignment["name"] == name:
            return f"u_{n}"
    raise AssertionError(f"no user key in {test}/{name}")


def test_u_1_is_targeted_into_the_new_checkout(client, login, bucket):
    assert bucket("checkout-v2", "u_1")["name"] == "on"
    login("u_1")
    response = client.get("/checkout/")
    assert response.status_code == 200
    assert response.json() == {"showNewCheckout": True, "theme": "default"}


def test_a_user_outside_the_target_gets_the_server_s_bucket(client, login, bucket):
    user_id = key_in_bucket(bucket, "checkout-v2", "off")
    login(user_id)
    assert client.get("/checkout/").json()["showNewCheckout"] is False


def test_the_pro_plan_gets_the_dark_theme(client, login):
    login("u_2", plan="pro")
    assert client.get("/checkout/").json()["theme"] == "dark"


def test_logged_out_visitors_get_buckets_of_their_own(bucket):
    # The guide's context_from gives each logged-out visitor the key of the middleware's cookie.
    seen = set()
    for _ in range(16):
        client = Client()
        first = client.get("/checkout/")
        key = first.cookies["avsb_anon"].value
        expected = bucket("checkout-v2", key)["name"] == "on"
        theme = bucket("ui-theme", key)["payload"]["stringValue"]  # 'dark' for 10% of the free plan
        assert first.json() == {"showNewCheckout": expected, "theme": theme}
        assert "Cookie" in first["Vary"]
        again = client.get("/checkout/")
        assert again.json()["showNewCheckout"] is expected  # sticky
        assert "avsb_anon" not in again.cookies
        seen.add(expected)
    # checkout-v2 is a 50/50 split: sixteen visitors in one bucket would be a shared key.
    assert seen == {True, False}


def test_a_logged_in_user_gets_no_anonymous_cookie(client, login):
    login("u_1")
    response = client.get("/checkout/")
    assert response.json()["showNewCheckout"] is True
    assert "avsb_anon" not in response.cookies


def test_for_user_outside_a_request(bucket):
    from myapp.models import User
    from myapp.services import show_new_checkout

    off = key_in_bucket(bucket, "checkout-v2", "off")
    assert show_new_checkout(User(id="u_1", plan="free")) is True
    assert show_new_checkout(User(id=off, plan="free")) is False


def test_a_tracked_purchase_reaches_the_server(client, login, guide_server, guide_sdk):
    login("u_1")
    response = client.post("/purchase/")
    assert response.status_code == 200
    assert guide_sdk.flush_sync(timeout=5)
    events = stored_events(guide_server)
    purchases = [e for e in events if e.get("kind") == "track" and e.get("key") == "purchase"]
    assert len(purchases) == 1, events
    (purchase,) = purchases
    assert purchase["identifiers"] == {"USER": "u_1"}
    assert purchase["value"] == pytest.approx(149.99)
    assert purchase["properties"] == {"currency": "usd"}


def test_request_avsb_is_built_only_when_a_view_reads_it(client, settings):
    calls = []

    def context_from(request):
        calls.append(request.path)
        return {"kind": "user", "key": "u_1"}

    settings.AVSB_MIDDLEWARE_OPTIONS = {"context_from": context_from}
    response = client.get("/health/")
    assert response.status_code == 200
    assert calls == []
    assert not response.wsgi_request.avsb.is_evaluated
    # Two reads in CheckoutView, one context.
    assert client.get("/checkout/").json()["showNewCheckout"] is True
    assert calls == ["/checkout/"]
