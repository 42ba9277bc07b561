"""Force groups (prforceGroups) are honoured only when is_privileged(request) says so."""

from __future__ import annotations

import pytest
from django.test import Client
from pages import button_group, page_flags

pytestmark = pytest.mark.django_db

GROUPS = {0: "control", 1: "blue", 2: "green"}


@pytest.fixture(autouse=True)
def staff_may_force(settings):
    """The guide's context_from, and force groups for staff users."""
    settings.AVSB_MIDDLEWARE_OPTIONS = {
        **settings.AVSB_MIDDLEWARE_OPTIONS,
        "is_privileged": lambda request: request.user.is_staff,
    }


@pytest.fixture
def user_client(django_user_model):
    def make(user_id: str, is_staff: bool) -> Client:
        client = Client()
        client.force_login(django_user_model.objects.create_user(username=user_id, id=user_id, is_staff=is_staff))
        return client

    return make


def natural_and_forced(bucket, key: str) -> tuple[str, str]:
    """The user's own buttoncolortst group, and another one to force."""
    natural = bucket("buttoncolortst", key)["value"]
    forced = next(v for v in GROUPS if v != natural)
    return GROUPS[natural], GROUPS[forced]


def test_a_privileged_request_forces_by_parameter_then_by_cookie(user_client, bucket):
    client = user_client("u_staff", is_staff=True)
    natural, forced = natural_and_forced(bucket, "u_staff")
    value = {v: k for k, v in GROUPS.items()}[forced]

    response = client.get(f"/?prforceGroups=buttoncolortst{value}")
    assert button_group(response.content.decode()) == forced
    cookie = response.cookies["prforceGroups"]
    assert cookie.value == f"buttoncolortst{value}"
    assert not cookie["max-age"] and not cookie["expires"]  # a session cookie

    # The next page, without the parameter: the cookie keeps the forcing.
    assert button_group(client.get("/").content.decode()) == forced
    # An empty parameter ends it.
    response = client.get("/?prforceGroups=")
    assert button_group(response.content.decode()) == natural
    assert button_group(client.get("/").content.decode()) == natural


def test_several_tests_in_one_parameter(user_client, bucket):
    client = user_client("u_staff2", is_staff=True)
    _, forced = natural_and_forced(bucket, "u_staff2")
    value = {v: k for k, v in GROUPS.items()}[forced]
    country_natural = bucket("countryalgotst", "u_staff2", country="US")["value"]
    country_forced = next(v for v in (-1, 0, 1) if v != country_natural)
    response = client.get(f"/?prforceGroups=buttoncolortst{value},countryalgotst{country_forced}")
    flags = page_flags(response.content.decode())
    assert flags["buttoncolortst"]["group"] == forced
    assert flags["countryalgotst"]["value"] == country_forced


def test_an_unprivileged_request_is_never_forced(user_client, bucket):
    client = user_client("u_plain", is_staff=False)
    natural, forced = natural_and_forced(bucket, "u_plain")
    value = {v: k for k, v in GROUPS.items()}[forced]

    response = client.get(f"/?prforceGroups=buttoncolortst{value}")
    assert button_group(response.content.decode()) == natural
    assert "prforceGroups" not in response.cookies

    client.cookies["prforceGroups"] = f"buttoncolortst{value}"
    assert button_group(client.get("/").content.decode()) == natural


def test_an_anonymous_request_is_never_forced(bucket):
    client = Client()
    client.cookies["avsb_anon"] = "visitor42"  # the guide's context_from keys a logged-out visitor by it
    natural, forced = natural_and_forced(bucket, "visitor42")
    value = {v: k for k, v in GROUPS.items()}[forced]
    response = client.get(f"/?prforceGroups=buttoncolortst{value}")
    assert button_group(response.content.decode()) == natural
    assert "prforceGroups" not in response.cookies


def test_the_parameter_name_is_configurable(settings, user_client, bucket):
    settings.AVSB_MIDDLEWARE_OPTIONS = {**settings.AVSB_MIDDLEWARE_OPTIONS, "force_groups_param": "force"}
    client = user_client("u_staff3", is_staff=True)
    natural, forced = natural_and_forced(bucket, "u_staff3")
    value = {v: k for k, v in GROUPS.items()}[forced]
    assert button_group(client.get(f"/?prforceGroups=buttoncolortst{value}").content.decode()) == natural
    response = client.get(f"/?force=buttoncolortst{value}")
    assert button_group(response.content.decode()) == forced
    assert "force" in response.cookies
