"""The template tags ({% load avsb %}) and the context processor, in the guide's home page."""

from __future__ import annotations

import time

import pytest
from django.template import Context, RequestContext, Template, TemplateSyntaxError
from django.test import Client, RequestFactory
from pages import button_group, page_flags

from avsb.contrib.wsgi import AvsbMiddleware

AVSB_MIDDLEWARE = "avsb.contrib.wsgi.AvsbMiddleware"


@pytest.fixture
def user_client(django_user_model):
    def make(user_id: str, plan: str = "free") -> Client:
        client = Client()
        client.force_login(django_user_model.objects.create_user(username=user_id, id=user_id, plan=plan))
        return client

    return make


@pytest.mark.django_db
def test_the_home_page_shows_u_1_s_flags(user_client, bucket):
    html = user_client("u_1").get("/").content.decode()
    button = bucket("buttoncolortst", "u_1")
    assert 'class="theme-default"' in html
    assert "Try the new checkout" in html  # {% ifflag 'checkout-v2' %}: u_1 is targeted
    assert f'style="background: {button["payload"]["stringValue"]}"' in html  # {% avsb_flag %}
    assert button_group(html) == button["name"]  # {{ avsb_flags.buttoncolortst.group }}
    flags = page_flags(html)  # {% avsb_bootstrap %}
    assert flags["checkout-v2"] == {"group": "on", "value": 1, "payload": True}
    assert flags["buttoncolortst"]["group"] == button["name"]


@pytest.mark.django_db
def test_the_home_page_follows_the_plan(user_client, bucket):
    off = next(f"u_{n}" for n in range(2, 200) if bucket("checkout-v2", f"u_{n}")["name"] == "off")
    html = user_client(off, plan="pro").get("/").content.decode()
    assert 'class="theme-dark"' in html
    assert '<a id="checkout" href="/checkout/">Checkout</a>' in html


def test_without_the_middleware_the_page_renders_with_defaults(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != AVSB_MIDDLEWARE]
    response = Client().get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="theme-default"' in html
    assert '<a id="checkout" href="/checkout/">Checkout</a>' in html
    assert 'style="background: #000000"' in html
    assert button_group(html) == ""
    assert page_flags(html) == {}


def test_bootstrap_escapes_payloads_for_the_script_element(guide_server, guide_sdk):
    nasty = "</script><script>alert('x')</script>"
    guide_server.put_test(
        "bootstrapescape",
        {
            "version": "1",
            "salt": "bootstrapescape",
            "testType": "USER",
            "rule": None,
            "constants": {},
            "buckets": [{"name": "only", "value": 0, "payload": {"stringValue": nasty}}],
            "allocations": [{"rule": None, "ranges": [{"length": 1.0, "bucketValue": 0}]}],
        },
    )
    deadline = time.monotonic() + 5
    while "bootstrapescape" not in guide_sdk.engine and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "bootstrapescape" in guide_sdk.engine, "the stream did not bring the new test"
    html = Client().get("/").content.decode()
    assert nasty not in html
    assert page_flags(html)["bootstrapescape"]["payload"] == nasty


def render(source: str, context: dict | None = None, key: str = "u_1") -> str:
    """Renders a template for a request that went through AvsbMiddleware as user ``key``."""
    request = RequestFactory().get("/")
    AvsbMiddleware(lambda r: None)(request)
    return Template("{% load avsb %}" + source).render(RequestContext(request, context or {}))


@pytest.fixture
def context_from_key(settings):
    settings.AVSB_MIDDLEWARE_OPTIONS = {"context_from": lambda r: {"kind": "user", "key": "u_1"}}


@pytest.mark.usefixtures("context_from_key")
def test_ifflag_reads_names_from_variables_and_takes_a_default():
    source = "{% ifflag name %}on{% else %}off{% endifflag %}|{% ifflag name True %}on{% else %}off{% endifflag %}"
    assert render(source, {"name": "checkout-v2"}) == "on|on"
    assert render(source, {"name": "no-such-test"}) == "off|on"
    assert render("{% ifflag 'checkout-v2' %}on{% endifflag %}") == "on"


@pytest.mark.usefixtures("context_from_key")
def test_avsb_flag_gives_the_payload_or_the_default():
    assert render("{% avsb_flag 'checkout-v2' False %}") == "True"
    assert render("{% avsb_flag 'no-such-test' 'fallback' %}") == "fallback"
    assert render("{% avsb_flag 'newfeaturerollout' 'none' %}") == "none"  # unassigned: loggedIn is false
    assert render("{% avsb_flag 'countryalgotst' 'none' %}") == "none"  # its buckets carry no payload


def test_the_tags_render_defaults_without_a_request():
    template = Template("{% load avsb %}{% avsb_flag 'ui-theme' 'plain' %}|{% ifflag 'checkout-v2' %}on{% else %}off{% endifflag %}|{% avsb_bootstrap %}")
    assert template.render(Context({})) == 'plain|off|<script id="avsb-flags" type="application/json">{}</script>'


def test_a_malformed_ifflag_is_a_template_syntax_error():
    with pytest.raises(TemplateSyntaxError, match="takes a test name"):
        Template("{% load avsb %}{% ifflag %}x{% endifflag %}")
