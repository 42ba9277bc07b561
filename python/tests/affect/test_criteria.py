"""Every criteria field, through real requests to the test project (django.test.Client)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client, override_settings

import avsb
from affect_helpers import flags_of
from avsb.contrib.affect.models import DEVICE_DESKTOP, DEVICE_MOBILE, DEVICE_SIMPLE
from avsb.contrib.affect import utils

pytestmark = pytest.mark.django_db

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
IPAD = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
ANDROID = "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Mobile Safari/537.36"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
OPERA_MINI = "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54"
NOKIA = "Nokia6230i/2.0 (03.40) Profile/MIDP-2.0 Configuration/CLDC-1.1"


# --- everyone -------------------------------------------------------------------------------


def test_everyone_yes_applies_to_every_request(make, client):
    make.criteria("all", everyone=True)
    assert flags_of(client) == ["rev_b"]


def test_everyone_no_beats_superuser_and_users(make, client):
    admin = User.objects.create_superuser("root", "r@example.com", "pw")
    make.criteria("nobody", everyone=False, users=[admin], authenticated=True)
    client.force_login(admin)
    assert flags_of(client) == []


def test_everyone_unknown_uses_the_other_checks(make, client):
    make.criteria("maybe", everyone=None, query_args={"b": "1"})
    assert flags_of(client) == []
    assert flags_of(client, "/flags/?b=1") == ["rev_b"]


# --- testing --------------------------------------------------------------------------------


def test_testing_query_turns_on_and_is_remembered(make, client):
    make.criteria("t", testing=True)
    assert flags_of(client) == []
    response = client.get("/flags/?dact_t=1")
    assert response.json()["flags"] == ["rev_b"]
    assert response.cookies["dact_t"].value == "True"
    assert response.cookies["dact_t"]["max-age"] == 2592000
    assert flags_of(client) == ["rev_b"]  # the cookie remembers it
    response = client.get("/flags/?dact_t=0")
    assert response.json()["flags"] == []
    assert response.cookies["dact_t"].value == "False"
    assert flags_of(client) == []


def test_testing_query_zero_beats_other_checks(make, client):
    make.criteria("t", testing=True, query_args={"x": "*"})
    assert flags_of(client, "/flags/?x=y") == ["rev_b"]
    assert flags_of(client, "/flags/?x=y&dact_t=0") == []
    assert flags_of(client, "/flags/?x=y") == []  # dact_t=False remembered


def test_testing_query_ignored_when_testing_is_off(make, client):
    make.criteria("t", testing=False)
    response = client.get("/flags/?dact_t=1")
    assert response.json()["flags"] == []
    assert "dact_t" not in response.cookies


# --- persistent -----------------------------------------------------------------------------


def test_persistent_remembers_an_entry(make, client):
    make.criteria("landing", persistent=True, entry_url="/landing/")
    response = client.get("/landing/")
    assert response.json()["flags"] == ["rev_b"]
    assert response.cookies["dac_landing"].value == "True"
    assert flags_of(client, "/flags/") == ["rev_b"]


def test_persistent_false_cookie_overrides_staff(make, client):
    staff = User.objects.create_user("s", password="pw", is_staff=True)
    make.criteria("p", persistent=True, staff=True)
    client.force_login(staff)
    client.cookies["dac_p"] = "False"
    response = client.get("/flags/")
    assert response.json()["flags"] == []
    assert response.cookies["dac_p"].value == "False"


def test_persistent_writes_false_too(make, client):
    make.criteria("p", persistent=True, query_args={"a": "1"})
    response = client.get("/flags/")
    assert response.cookies["dac_p"].value == "False"
    assert flags_of(client, "/flags/?a=1") == []  # the stored False wins


# --- users: authenticated, staff, superusers ------------------------------------------------


@pytest.fixture
def people(db):
    return {
        "plain": User.objects.create_user("plain", password="pw"),
        "staff": User.objects.create_user("staff", password="pw", is_staff=True),
        "root": User.objects.create_superuser("root", "root@example.com", "pw"),
    }


def _as(user):
    c = Client()
    if user is not None:
        c.force_login(user)
    return flags_of(c)


def test_superusers_match_by_default(make, people):
    make.criteria("c")  # superusers defaults to True
    assert _as(None) == []
    assert _as(people["plain"]) == []
    assert _as(people["staff"]) == []
    assert _as(people["root"]) == ["rev_b"]


def test_superusers_off(make, people):
    make.criteria("c", superusers=False)
    assert _as(people["root"]) == []


def test_staff(make, people):
    make.criteria("c", staff=True, superusers=False)
    assert [_as(None), _as(people["plain"]), _as(people["staff"])] == [[], [], ["rev_b"]]


def test_authenticated(make, people):
    make.criteria("c", authenticated=True, superusers=False)
    assert [_as(None), _as(people["plain"]), _as(people["staff"])] == [[], ["rev_b"], ["rev_b"]]


def test_users(make, people):
    make.criteria("c", superusers=False, users=[people["plain"]])
    assert [_as(None), _as(people["plain"]), _as(people["staff"])] == [[], ["rev_b"], []]


def test_groups_and_membership_changes(make, people, committed):
    beta = Group.objects.create(name="beta")
    make.criteria("c", superusers=False, groups=[beta])
    client = Client()
    client.force_login(people["plain"])
    assert flags_of(client) == []
    with committed():
        people["plain"].groups.add(beta)
    assert flags_of(client) == ["rev_b"]
    with committed():
        people["plain"].groups.remove(beta)
    assert flags_of(client) == []
    with committed():
        beta.user_set.add(people["plain"])
    assert flags_of(client) == ["rev_b"]
    with committed():
        beta.user_set.clear()
    assert flags_of(client) == []


# --- referrer and entry_url -----------------------------------------------------------------


def test_referrer_exact_host_with_whitespace_in_list(make, client):
    make.criteria("r", referrer="news.example , partner.example")
    assert flags_of(client, HTTP_REFERER="https://partner.example/article") == ["rev_b"]
    assert flags_of(client, HTTP_REFERER="http://news.example/") == ["rev_b"]
    assert flags_of(client, HTTP_REFERER="https://www.partner.example/") == []  # no subdomains
    assert flags_of(client, HTTP_REFERER="https://other.example/") == []
    assert flags_of(client) == []


def test_entry_url_without_referrer(make, client):
    make.criteria("e", entry_url="/landing/, /promo/")
    assert flags_of(client, "/landing/") == ["rev_b"]
    assert flags_of(client, "/promo/") == ["rev_b"]
    assert flags_of(client, "/flags/") == []


def test_entry_url_with_referrers(make, client):
    make.criteria("e", entry_url="/landing/")
    assert flags_of(client, "/landing/", HTTP_REFERER="https://search.example/?q=x") == ["rev_b"]
    # from our own site: not an entry (HTTP_HOST with a port too)
    assert flags_of(client, "/landing/", HTTP_REFERER="http://testserver/") == []
    assert flags_of(client, "/landing/", HTTP_HOST="shop.example:8000", HTTP_REFERER="http://shop.example:8000/x") == []
    # AFFECTED_NONENTRY_DOMAINS (the project sets mail.example, pay.example)
    assert flags_of(client, "/landing/", HTTP_REFERER="https://pay.example/done") == []
    with override_settings(AFFECTED_NONENTRY_DOMAINS=[]):
        assert flags_of(client, "/landing/", HTTP_REFERER="https://pay.example/done") == ["rev_b"]


# --- query_args -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query_args, matching, not_matching",
    [
        ({"foo": "bar"}, ["foo=bar"], ["", "foo=baz", "foo="]),
        ({"foo": "*"}, ["foo=bar", "foo=anything"], ["", "foo=", "other=1"]),
        ({"foo": ["bar", "baz"]}, ["foo=bar", "foo=baz"], ["", "foo=qux", "foo="]),
        ({"foo": "bar", "x": "*"}, ["foo=bar", "x=1", "foo=no&x=1"], ["foo=no"]),
    ],
)
def test_query_args(make, client, query_args, matching, not_matching):
    make.criteria("q", query_args=query_args)
    for query in matching:
        assert flags_of(client, f"/flags/?{query}") == ["rev_b"], query
    for query in not_matching:
        assert flags_of(client, f"/flags/?{query}") == [], query


# --- device_type ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, device",
    [
        ({"HTTP_USER_AGENT": IPHONE}, DEVICE_MOBILE),
        ({"HTTP_USER_AGENT": IPAD}, DEVICE_MOBILE),
        ({"HTTP_USER_AGENT": ANDROID}, DEVICE_MOBILE),
        ({"HTTP_USER_AGENT": DESKTOP}, DEVICE_DESKTOP),
        ({}, DEVICE_DESKTOP),
        ({"HTTP_USER_AGENT": OPERA_MINI}, DEVICE_SIMPLE),
        ({"HTTP_USER_AGENT": NOKIA}, DEVICE_SIMPLE),
        ({"HTTP_USER_AGENT": "SomePhone/1.0", "HTTP_ACCEPT": "application/vnd.wap.xhtml+xml,*/*"}, DEVICE_SIMPLE),
    ],
    ids=["iphone", "ipad", "android", "desktop-chrome", "no-ua", "opera-mini", "nokia-midp", "wap-accept"],
)
def test_device_type(make, client, headers, device):
    make.flag("desk")
    make.flag("mob")
    make.flag("dumb")
    make.criteria("d1", flags=["desk"], device_type=DEVICE_DESKTOP)
    make.criteria("d2", flags=["mob"], device_type=DEVICE_MOBILE)
    make.criteria("d4", flags=["dumb"], device_type=DEVICE_SIMPLE)
    expected = {DEVICE_DESKTOP: ["desk"], DEVICE_MOBILE: ["mob"], DEVICE_SIMPLE: ["dumb"]}[device]
    assert flags_of(client, **headers) == expected


WINDOWS_PHONE = "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; Touch; NOKIA; Lumia 920)"
WEBOS = "Mozilla/5.0 (webOS/1.4.0; U; en-US) AppleWebKit/532.2 (KHTML, like Gecko) Version/1.0 Safari/532.2 Pre/1.0"
IPOD = "Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1"
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 12; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36"


@pytest.mark.parametrize("headers", [{"HTTP_USER_AGENT": IPOD}, {"HTTP_USER_AGENT": ANDROID_TABLET}], ids=["ipod", "android-tablet"])
def test_device_type_more_mobiles(make, client, headers):
    make.criteria("d2", device_type=DEVICE_MOBILE)
    assert flags_of(client, **headers) == ["rev_b"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"HTTP_USER_AGENT": WINDOWS_PHONE}, id="windows-phone"),
        pytest.param({"HTTP_USER_AGENT": WEBOS}, id="webos"),
        pytest.param({"HTTP_USER_AGENT": IPHONE, "HTTP_ACCEPT": "application/vnd.wap.xhtml+xml,*/*"}, id="iphone-wap-accept"),
    ],
)
def test_device_type_django_affect_mobile_tokens_win(make, client, headers):
    """docs/django-affect.md §1.3 step 10: a UA with a mobile token is MOBILE before Opera Mini or the WAP Accept header count."""
    make.flag("mob")
    make.flag("dumb")
    make.criteria("d2", flags=["mob"], device_type=DEVICE_MOBILE)
    make.criteria("d4", flags=["dumb"], device_type=DEVICE_SIMPLE)
    assert flags_of(client, **headers) == ["mob"]


def test_device_type_unknown_is_ignored(make, client):
    make.criteria("d0", device_type=0)
    assert flags_of(client, HTTP_USER_AGENT=DESKTOP) == []


# --- percent --------------------------------------------------------------------------------


def _engine_bucket(name: str, percent: float, key: str) -> bool:
    """What the engine alone says (Engine.identify on the criteria's 2-bucket test): no Python hash."""
    engine = avsb.Engine.from_matrix(json.dumps(utils.percent_matrix(name, f"{percent:.1f}")))
    groups = engine.identify({"USER": key}, {})["data"]["groups"]
    return groups[f"affect_percent_{name}"]["value"] == 1


def test_percent_is_sticky_and_mints_an_anonymous_id(make):
    make.criteria("half", percent="50.0", superusers=False)
    client = Client()
    response = client.get("/flags/")
    uid = response.cookies["affect_uid"].value
    assert response.cookies["affect_uid"]["max-age"] == 365 * 24 * 3600
    first = response.json()["flags"]
    assert response.cookies["dac_half"].value == str(first == ["rev_b"])
    assert first == (["rev_b"] if _engine_bucket("half", 50.0, f"anon:{uid}") else [])
    # Sticky: same answer with only the uid cookie (dac_ removed), and no new uid minted.
    for _ in range(3):
        del client.cookies["dac_half"]
        response = client.get("/flags/")
        assert response.json()["flags"] == first
        assert "affect_uid" not in response.cookies
    # A new visitor gets a new id.
    other = Client().get("/flags/")
    assert other.cookies["affect_uid"].value != uid


def test_percent_split_within_tolerance_and_equal_to_engine(make):
    make.criteria("p30", percent="30.0", superusers=False)
    hits = 0
    n = 1000
    for i in range(n):
        uid = f"visitor{i:06d}"
        client = Client()
        client.cookies["affect_uid"] = uid
        got = flags_of(client) == ["rev_b"]
        assert got == _engine_bucket("p30", 30.0, f"anon:{uid}"), uid
        hits += got
    assert abs(hits / n - 0.30) < 0.05, hits


def test_percent_logged_in_users_hash_on_their_pk(make):
    make.criteria("p", percent="50.0", superusers=False)
    answers = set()
    for i in range(12):
        user = User.objects.create_user(f"u{i}")
        client = Client()
        client.force_login(user)
        response = client.get("/flags/")
        got = response.json()["flags"] == ["rev_b"]
        assert got == _engine_bucket("p", 50.0, f"user:{user.pk}")
        assert "affect_uid" not in response.cookies  # no anonymous id needed
        answers.add(got)
    assert answers == {True, False}


def test_percent_deterministic_after_cache_clear(make):
    from django.core.cache import cache

    make.criteria("p", percent="50.0", superusers=False)
    answers = []
    for i in range(20):
        c = Client()
        c.cookies["affect_uid"] = f"samevisitor{i:04d}"
        answers.append(flags_of(c))
    cache.clear()
    utils._percent_evaluator.cache_clear()
    for i in range(20):
        c = Client()
        c.cookies["affect_uid"] = f"samevisitor{i:04d}"
        assert flags_of(c) == answers[i]


SUBPROCESS = r"""
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
from avsb.contrib.affect.models import Criteria, Flag
call_command("migrate", verbosity=0, run_syncdb=True)
c = Criteria.objects.create(name="p", percent="50.0", superusers=False)
c.flags.add(Flag.objects.create(name="rev_b"))
out = []
for i in range(20):
    client = Client()
    client.cookies["affect_uid"] = "samevisitor%04d" % i
    out.append(client.get("/flags/").json()["flags"])
print(json.dumps(out))
"""


def test_percent_same_answer_in_another_process(make, tmp_path):
    make.criteria("p", percent="50.0", superusers=False)
    here = []
    for i in range(20):
        c = Client()
        c.cookies["affect_uid"] = f"samevisitor{i:04d}"
        here.append(flags_of(c))
    settings_py = tmp_path / "proc_settings.py"
    settings_py.write_text(f"from affectsite.settings import *\nDATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}}\n")
    project = Path(__file__).parent / "project"
    env = {"PYTHONPATH": f"{tmp_path}:{project}:{Path(avsb.__file__).parent.parent}", "DJANGO_SETTINGS_MODULE": "proc_settings", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", SUBPROCESS], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == here
    assert {bool(x) for x in here} == {True, False}


# --- cookie lifetimes -----------------------------------------------------------------------


@pytest.mark.parametrize("age, expected", [(None, None), (0, None), (3600, 3600)])
def test_cookie_lifetimes(make, client, age, expected):
    make.criteria("p", persistent=True, testing=True, max_cookie_age=age)
    response = client.get("/flags/?dact_p=1")
    for name in ("dac_p", "dact_p"):
        morsel = response.cookies[name]
        if expected is None:
            assert morsel["max-age"] == "" and morsel["expires"] == "", name
        else:
            assert morsel["max-age"] == expected
        assert not morsel["secure"]


def test_cookie_default_age_is_30_days(make, client):
    make.criteria("p", persistent=True, everyone=True)
    assert client.get("/flags/").cookies["dac_p"]["max-age"] == 2592000


@override_settings(AFFECTED_SECURE_COOKIE=True)
def test_secure_cookie_setting(make, client):
    make.criteria("p", persistent=True, everyone=True)
    make.criteria("q", percent="50", flags=["other"])
    response = client.get("/flags/")
    assert response.cookies["dac_p"]["secure"] is True
    assert response.cookies["affect_uid"]["secure"] is True


@override_settings(AFFECTED_COOKIE="my_%s", AFFECTED_TESTING_COOKIE="try_%s")
def test_cookie_name_settings(make, client):
    make.criteria("p", persistent=True, testing=True)
    response = client.get("/flags/?try_p=1")
    assert response.json()["flags"] == ["rev_b"]
    assert response.cookies["my_p"].value == "True"
    assert response.cookies["try_p"].value == "True"
