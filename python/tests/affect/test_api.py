"""The public API: flag_is_affected, request.affected_flags, templates, the tag, the decorator,
override_affected, the admin, the management commands, migrations."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.template import Context, Template, TemplateSyntaxError
from django.test import Client, RequestFactory, TestCase

from affect_helpers import flags_of
from avsb.contrib.affect import flag_is_affected
from avsb.contrib.affect.models import DEVICE_MOBILE, THIRTY_DAYS, Criteria, Flag
from avsb.contrib.affect.testutils import override_affected

pytestmark = pytest.mark.django_db


def test_flag_is_affected_and_request_attribute(make, client):
    make.criteria("c", query_args={"b": "1"})
    assert client.get("/?b=1").json() == {"flags": ["rev_b"], "rev_b": True}
    assert client.get("/").json() == {"flags": [], "rev_b": False}


def test_flag_is_affected_without_the_middleware():
    assert flag_is_affected(RequestFactory().get("/"), "rev_b") is False


@pytest.mark.parametrize("path", ["/django/", "/jinja/"])
def test_templates_in_django_and_jinja(make, client, path):
    make.criteria("c", query_args={"b": "1"})
    assert "[rev_b on]" in client.get(path + "?b=1").content.decode()
    assert "[rev_b off]" in client.get(path).content.decode()


def test_affected_tag_through_a_request(make, client):
    make.criteria("c", query_args={"b": "1"})
    assert "[tag on]" in client.get("/django/?b=1").content.decode()
    assert "[tag off]" in client.get("/django/").content.decode()


def _render(source, flags, **context):
    request = RequestFactory().get("/")
    request.affected_flags = flags
    return Template("{% load affect %}" + source).render(Context({"request": request, **context}))


def test_affected_tag_forms():
    assert _render("{% affected 'x' %}on{% else %}off{% endaffected %}", ["x"]) == "on"
    assert _render("{% affected 'x' %}on{% else %}off{% endaffected %}", []) == "off"
    assert _render("{% affected 'x' %}on{% endaffected %}", []) == ""
    assert _render("{% affected name %}on{% else %}off{% endaffected %}", ["y"], name="y") == "on"
    assert _render("{% affected missing %}on{% else %}off{% endaffected %}", ["y"]) == "off"
    assert Template("{% load affect %}{% affected 'x' %}on{% else %}off{% endaffected %}").render(Context({})) == "off"
    with pytest.raises(TemplateSyntaxError):
        Template("{% load affect %}{% affected %}x{% endaffected %}")


def test_decorator(make, client):
    assert client.get("/beta/").status_code == 404
    assert client.get("/not-beta/").json() == {"beta": False}
    response = client.get("/beta-or-home/")
    assert response.status_code == 302 and response["Location"] == "/"
    make.criteria("c", flags=["beta"], query_args={"beta": "1"})
    assert client.get("/beta/?beta=1").json() == {"beta": True}
    assert client.get("/not-beta/?beta=1").status_code == 404
    assert client.get("/beta-or-home/?beta=1").json() == {"beta": True}


def test_override_affected_as_context_manager(make, client):
    make.criteria("c", flags=["rev_b"], everyone=True)
    with override_affected("beta"):
        assert flags_of(client) == ["beta", "rev_b"]
        with override_affected("rev_b", active=False):
            assert flags_of(client) == ["beta"]
            assert client.get("/").json()["rev_b"] is False
        assert client.get("/beta/").status_code == 200
    assert flags_of(client) == ["rev_b"]
    assert client.get("/beta/").status_code == 404


@override_affected("beta")
def test_override_affected_as_decorator(client):
    assert client.get("/beta/").json() == {"beta": True}
    assert "[rev_b off]" in client.get("/django/").content.decode()


@override_affected("rev_b")
class OverrideOnATestCase(TestCase):
    def test_method(self):
        assert "[rev_b on][tag on]" in self.client.get("/django/").content.decode()
        assert "[rev_b on]" in self.client.get("/jinja/").content.decode()


# --- admin ----------------------------------------------------------------------------------


@pytest.fixture
def admin_client(db):
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


def test_admin_changelists_search_and_filters(make, admin_client):
    make.flag("other", priority=3)
    make.criteria("spring-sale", flags=["rev_b", "other"], note="spring campaign", persistent=True, device_type=DEVICE_MOBILE)
    make.criteria("autumn", flags=["other"], referrer="news.example")
    flag_pk = Flag.objects.get(name="rev_b").pk
    for url, present, absent in [
        ("/admin/affect/criteria/", ["spring-sale", "autumn"], []),
        ("/admin/affect/criteria/?q=spring", ["spring-sale"], ["autumn"]),
        ("/admin/affect/criteria/?q=news.example", ["autumn"], ["spring-sale"]),
        ("/admin/affect/criteria/?persistent__exact=1", ["spring-sale"], ["autumn"]),
        (f"/admin/affect/criteria/?flags__id__exact={flag_pk}", ["spring-sale"], ["autumn"]),
        ("/admin/affect/criteria/?device_type__exact=2", ["spring-sale"], ["autumn"]),
        ("/admin/affect/flag/", ["rev_b", "other"], []),
        ("/admin/affect/flag/?q=oth", ["other"], ["rev_b"]),
        ("/admin/affect/flag/?active__exact=1", ["rev_b", "other"], []),
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert "to change</h1>" in body or "to change</" in body, url
        for name in present:
            assert f">{name}<" in body, (url, name)
        for name in absent:
            assert f">{name}<" not in body, (url, name)
    c = Criteria.objects.get(name="spring-sale")
    assert admin_client.get(f"/admin/affect/criteria/{c.pk}/change/").status_code == 200
    assert admin_client.get("/admin/affect/criteria/add/").status_code == 200
    assert admin_client.get(f"/admin/affect/flag/{flag_pk}/change/").status_code == 200


def test_admin_actions_deactivate_and_activate(make, admin_client, committed):
    make.criteria("all", everyone=True)
    visitor = Client()
    assert flags_of(visitor) == ["rev_b"]
    flag = Flag.objects.get(name="rev_b")
    with committed():
        response = admin_client.post("/admin/affect/flag/", {"action": "deactivate", "_selected_action": [flag.pk]})
    assert response.status_code == 302
    assert Flag.objects.get(pk=flag.pk).active is False
    assert flags_of(visitor) == []
    with committed():
        admin_client.post("/admin/affect/flag/", {"action": "activate", "_selected_action": [flag.pk]})
    assert flags_of(visitor) == ["rev_b"]


# --- management commands --------------------------------------------------------------------


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_affect_flag_command(committed):
    with pytest.raises(CommandError, match="No flag named 'rev_b'"):
        run("affect_flag", "rev_b", "--activate")
    run("affect_flag", "other", "--create")
    with committed():
        run("affect_flag", "rev_b", "--create", "--priority", "5", "--note", "the B page", "--conflicts", "other")
    flag = Flag.objects.get(name="rev_b")
    assert (flag.active, flag.priority, flag.note, [f.name for f in flag.conflicts.all()]) == (True, 5, "the B page", ["other"])
    run("affect_flag", "rev_b", "--deactivate")
    flag.refresh_from_db()
    assert (flag.active, flag.priority, flag.note) == (False, 5, "the B page")  # others unchanged
    listing = run("affect_flag", "--list").splitlines()
    assert listing == ["other: active=True priority=0 conflicts=rev_b", "rev_b: active=False priority=5 conflicts=other note='the B page'"]
    assert run("affect_flag", "-l") == "\n".join(listing) + "\n"
    with pytest.raises(CommandError, match="name"):
        run("affect_flag", "not a slug", "--create")
    with pytest.raises(CommandError, match="Unknown flag"):
        run("affect_flag", "rev_b", "--conflicts", "nope")
    with pytest.raises(CommandError):
        run("affect_flag")


def test_affect_flag_command_reaches_requests(make, client, committed):
    make.criteria("all", everyone=True)
    assert flags_of(client) == ["rev_b"]
    with committed():
        run("affect_flag", "rev_b", "--deactivate")
    assert flags_of(client) == []


def test_affect_criteria_command(committed, client):
    User.objects.create_user("ann")
    Group.objects.create(name="beta")
    run("affect_flag", "rev_b", "--create")
    run("affect_flag", "x", "--create")
    with pytest.raises(CommandError, match="No criteria named 'c'"):
        run("affect_criteria", "c", "--everyone", "yes")
    with committed():
        run("affect_criteria", "c", "--create", "--flags", "rev_b", "--query-args", '{"foo": ["bar", "baz"]}', "--no-superusers")
    c = Criteria.objects.get(name="c")
    assert c.query_args == {"foo": ["bar", "baz"]} and c.superusers is False and c.max_cookie_age == THIRTY_DAYS
    assert flags_of(client, "/flags/?foo=baz") == ["rev_b"]
    with committed():
        run(
            "affect_criteria", "c", "--flags", "x", "--append", "--everyone", "no", "--percent", "12.5", "--testing",
            "--persistent", "--max-cookie-age", "0", "--staff", "--authenticated", "--device", "mobile",
            "--entry-url", "/landing/", "--referrer", "news.example", "--group", "beta", "--user", "ann", "--note", "hi",
        )  # fmt: skip
    c.refresh_from_db()
    assert sorted(f.name for f in c.flags.all()) == ["rev_b", "x"]
    assert (c.everyone, c.percent, c.testing, c.persistent, c.max_cookie_age, c.staff, c.authenticated) == (False, Decimal("12.5"), True, True, 0, True, True)
    assert (c.device_type, c.entry_url, c.referrer, c.note, c.superusers) == (DEVICE_MOBILE, "/landing/", "news.example", "hi", False)
    assert [g.name for g in c.groups.all()] == ["beta"] and [u.username for u in c.users.all()] == ["ann"]
    assert c.query_args == {"foo": ["bar", "baz"]}  # not given: unchanged
    assert flags_of(client, "/flags/?foo=baz") == []  # everyone=no reached the request
    with committed():
        run("affect_criteria", "c", "--everyone", "unknown", "--flags", "x", "--no-testing", "--max-cookie-age", "")
    c.refresh_from_db()
    assert (c.everyone, [f.name for f in c.flags.all()], c.testing, c.max_cookie_age) == (None, ["x"], False, None)
    line = run("affect_criteria", "--list").strip()
    assert line.startswith("c: flags=x everyone=unknown percent=12.5 ") and "max_cookie_age=session" in line and "device=mobile" in line
    assert "groups=beta" in line and "users=ann" in line and 'query_args={"foo": ["bar", "baz"]}' in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--percent", "150"], "percent"),
        (["--percent", "abc"], "percent"),
        (["--query-args", '{"foo": 1}'], "query_args"),
        (["--query-args", '["foo"]'], "query_args"),
        (["--query-args", "{not json"], "query_args"),
        (["--max-cookie-age", "-5"], "max_cookie_age"),
        (["--flags", "nope"], "Unknown flag"),
        (["--group", "nope"], "Unknown group"),
        (["--user", "nobody"], "Unknown user"),
    ],
)
def test_affect_criteria_command_validation(args, message):
    run("affect_criteria", "c", "--create")
    with pytest.raises(CommandError, match=message):
        run("affect_criteria", "c", *args)
    c = Criteria.objects.get(name="c")
    assert (c.percent, c.query_args, c.max_cookie_age) == (None, None, THIRTY_DAYS)  # nothing half-saved


def test_migrations_are_in_sync():
    call_command("makemigrations", "affect", "--check", "--dry-run", stdout=io.StringIO())
