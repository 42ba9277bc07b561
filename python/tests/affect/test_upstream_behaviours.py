"""Each behaviour django-affect's own test suite (affect/tests in ConsumerAffairs/django-affect)
checks, written as our own tests against ``avsb.contrib.affect`` (docs/django-affect.md §3 maps
them). Where that suite stubs the cache with mox, these tests use the real cache and record the
calls made to it, so the keys and their order are checked while the answers stay real."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.cache import cache, caches
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from avsb.contrib.affect import middleware, models, utils
from avsb.contrib.affect.middleware import AffectMiddleware
from avsb.contrib.affect.models import Criteria, Flag

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(monkeypatch):
    """The cache calls made during the test, as ``(method, key)`` (set_many: the sorted keys and
    the timeout), while the real cache answers."""
    backend = caches["default"]
    log: list[tuple] = []
    depth = [0]  # the backend's own nested calls (set_many calls set) are not recorded
    for method in ("get", "add", "set", "set_many"):
        original = getattr(backend, method)

        def record(*args, _method=method, _original=original, **kwargs):
            if depth[0]:
                return _original(*args, **kwargs)
            if _method == "set_many":
                log.append((_method, tuple(sorted(args[0])), args[1] if len(args) > 1 else kwargs.get("timeout")))
            elif _method == "set":
                log.append((_method, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("timeout")))
            else:
                log.append((_method, args[0]))
            depth[0] += 1
            try:
                return _original(*args, **kwargs)
            finally:
                depth[0] -= 1

        monkeypatch.setattr(backend, method, record)
    return log


def request_for(path="/", data=None, user=None, **meta):
    request = RequestFactory().get(path, data or {}, **meta)
    request.user = user if user is not None else AnonymousUser()
    return request


def settled():
    """Clears the cache: the 5-second placeholders a change leaves behind have expired."""
    cache.clear()


@pytest.fixture
def crit():
    """A criteria with two active flags, as the middleware tests of django-affect set up."""
    c = Criteria.objects.create(name="test_crit", max_cookie_age=0)
    c.flags.add(Flag.objects.create(name="test_flag"), Flag.objects.create(name="other_flag"))
    settled()
    return c


# --- the module surface ---------------------------------------------------------------------


def test_the_modules_offer_django_affects_names():
    for name in (
        "ALL_CRITERIA_KEY",
        "CRITERIA_KEY",
        "CRITERIA_FLAGS_KEY",
        "CRITERIA_USERS_KEY",
        "CRITERIA_GROUPS_KEY",
        "FLAG_CONFLICTS_KEY",
        "detect_device",
        "flag_is_affected",
        "meets_criteria",
        "set_persist_criteria",
        "cache_criteria",
        "uncache_criteria",
        "uncache_flag",
        "random",
    ):
        assert hasattr(utils, name), name
    assert (utils.ALL_CRITERIA_KEY, utils.CRITERIA_KEY, utils.FLAG_CONFLICTS_KEY) == ("criteria:all", "criteria:%s", "flag_conflicts:%s")
    assert middleware.meets_criteria is utils.meets_criteria and middleware.cache_criteria is utils.cache_criteria
    assert (Criteria.UNKNOWN_DEVICE, Criteria.DESKTOP_DEVICE, Criteria.MOBILE_DEVICE, Criteria.SIMPLE_DEVICE) == (0, 1, 2, 4)
    assert [value for value, _ in Criteria.DEVICE_CHOICES] == [0, 1, 2, 4]
    assert models.datetime.now is not None and models.datetime.datetime is dt.datetime
    # django-affect's affect.views is an empty module; importing it keeps working.
    assert importlib.import_module("avsb.contrib.affect.views").__name__ == "avsb.contrib.affect.views"
    from avsb.contrib.affect import admin

    assert admin.CriteriaAdmin and admin.FlagAdmin


# --- the middleware, request side -----------------------------------------------------------


def test_cold_cache_reads_then_fills_django_affects_keys_in_order(crit, calls):
    crit.everyone = True
    crit.save()
    settled()
    calls.clear()
    request = request_for()
    AffectMiddleware().process_request(request)  # built without get_response, as django-affect's tests do
    assert sorted(request.affected_flags) == ["other_flag", "test_flag"]
    assert request.affected_persist == {}
    assert calls[:8] == [
        ("get", "criteria:all"),
        ("add", "criteria:all"),
        ("get", "criteria:test_crit"),
        ("add", "criteria:test_crit"),
        ("add", "criteria:test_crit:flags"),
        ("add", "criteria:test_crit:users"),
        ("add", "criteria:test_crit:groups"),
        ("get", "criteria:test_crit:flags"),
    ]
    assert sorted(calls[8:]) == [
        ("add", "flag_conflicts:other_flag"),
        ("add", "flag_conflicts:test_flag"),
        ("get", "flag_conflicts:other_flag"),
        ("get", "flag_conflicts:test_flag"),
    ]


def test_warm_cache_answers_with_reads_only_and_no_query(crit, calls):
    crit.everyone = True
    crit.save()
    settled()
    AffectMiddleware().process_request(request_for())
    calls.clear()
    request = request_for()
    with CaptureQueriesContext(connection) as queries:
        AffectMiddleware().process_request(request)
    assert sorted(request.affected_flags) == ["other_flag", "test_flag"]
    assert len(queries) == 0
    assert {method for method, *_ in calls} == {"get"}
    assert [key for _, key in calls[:3]] == ["criteria:all", "criteria:test_crit", "criteria:test_crit:flags"]


def test_criteria_not_met_gives_no_flags_and_reads_none_of_its_flags(crit, calls):
    crit.everyone = False
    crit.save()
    settled()
    calls.clear()
    request = request_for()
    AffectMiddleware().process_request(request)
    assert list(request.affected_flags) == []
    assert request.affected_persist == {}
    assert ("get", "criteria:test_crit:flags") not in calls
    assert not [c for c in calls if c[1].startswith("flag_conflicts:")]


def test_persistent_criteria_answer_is_kept_under_the_criteria(crit):
    crit.persistent = True
    crit.everyone = True
    crit.save()
    request = request_for()
    AffectMiddleware().process_request(request)
    assert request.affected_persist == {crit: True}
    assert isinstance(next(iter(request.affected_persist)), Criteria)


def test_a_conflict_keeps_only_the_higher_priority_flag(crit):
    crit.everyone = True
    crit.save()
    other = Flag.objects.get(name="other_flag")
    other.conflicts.add(Flag.objects.get(name="test_flag"))
    other.priority = 100
    other.save()
    request = request_for()
    AffectMiddleware().process_request(request)
    assert list(request.affected_flags) == ["other_flag"]


def test_a_conflicting_flag_that_is_not_present_removes_nothing(crit):
    crit.everyone = True
    crit.save()
    outsider = Flag.objects.create(name="that_flag", priority=100)
    outsider.conflicts.add(*Flag.objects.filter(name__in=["test_flag", "other_flag"]))
    request = request_for()
    AffectMiddleware().process_request(request)
    assert sorted(request.affected_flags) == ["other_flag", "test_flag"]


# --- the middleware, response side ----------------------------------------------------------


def _respond(request):
    response = HttpResponse("test response")
    returned = AffectMiddleware().process_response(request, response)
    assert returned is response and returned.content == b"test response"
    return response


@pytest.mark.parametrize("kind, prefix", [("affected_persist", "dac_"), ("affected_tests", "dact_")])
@pytest.mark.parametrize("age, active", [(0, True), (1200, False)])
def test_response_cookies_remember_answers(kind, prefix, age, active):
    c = Criteria.objects.create(name="test_crit", max_cookie_age=age)
    request = request_for()
    setattr(request, kind, {c: active})
    cookie = _respond(request).cookies[f"{prefix}test_crit"]
    assert cookie.value == str(active)
    assert cookie["max-age"] == (age or "")  # 0: a cookie for the browser session
    assert cookie["path"] == "/"
    assert not cookie["secure"]
    # Page JavaScript may read the cookie, as with django-affect.
    assert not cookie["httponly"]


@override_settings(AFFECTED_HTTPONLY_COOKIE=True, AFFECTED_SECURE_COOKIE=True)
def test_settings_make_the_cookies_httponly_and_secure():
    c = Criteria.objects.create(name="test_crit")
    request = request_for()
    request.affected_persist = {c: True}
    request.affected_tests = {c: False}
    response = _respond(request)
    for name in ("dac_test_crit", "dact_test_crit"):
        assert response.cookies[name]["httponly"] is True
        assert response.cookies[name]["secure"] is True


def test_no_answers_no_cookies():
    request = request_for()
    request.affected_persist = {}
    assert not _respond(request).cookies


# --- cache_criteria -------------------------------------------------------------------------


def _full_criteria():
    c = Criteria.objects.create(name="test_crit")
    c.flags.add(Flag.objects.create(name="test_flag"))
    c.users.add(User.objects.create(username="test_user"))
    c.groups.add(Group.objects.create(name="test_group"))
    settled()
    return c


def test_cache_criteria_caches_the_criteria_and_its_relations():
    c = _full_criteria()
    utils.cache_criteria(instance=c)
    assert cache.get("criteria:test_crit") == c
    assert [f.name for f in cache.get("criteria:test_crit:flags")] == ["test_flag"]
    assert [u.username for u in cache.get("criteria:test_crit:users")] == ["test_user"]
    assert [g.name for g in cache.get("criteria:test_crit:groups")] == ["test_group"]


@pytest.mark.parametrize("action, cached", [("pre_add", False), ("pre_remove", False), ("post_add", True), ("post_clear", True)])
def test_cache_criteria_as_a_receiver_acts_only_after_the_change(action, cached):
    c = _full_criteria()
    utils.cache_criteria(instance=c, action=action)
    assert (cache.get("criteria:test_crit") is not None) is cached


def test_cache_criteria_never_replaces_what_is_cached():
    c = _full_criteria()
    cache.set("criteria:test_crit:flags", [])
    utils.cache_criteria(instance=c)
    assert cache.get("criteria:test_crit:flags") == []


# --- detect_device --------------------------------------------------------------------------

UCWEB_IPHONE = "UCWEB/8.8 (iPhone; CPU OS_6; en-US)AppleWebKit/534.1 U3/3.0.0 Mobile"
IPAD = "Mozilla/5.0 (iPad; CPU OS 6_0 like Mac OS X) AppleWebKit/536.26 (KHTML, like Gecko) Version/6.0 Mobile/10A5355d Safari/8536.25"
IPOD = "Mozilla/5.0 (iPod; U; CPU iPhone OS 3_1_1 like Mac OS X; en-us) AppleWebKit/528.18 (KHTML, like Gecko) Mobile/7C145"
ANDROID_PHONE = "Mozilla/5.0 (Linux; Android 4.2.2; Galaxy Nexus Build/JDQ39) AppleWebKit/537.31 (KHTML, like Gecko) Chrome/26.0.1410.58 Mobile Safari/537.31"
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 4.2.2; Nexus 7 Build/JDQ39) AppleWebKit/537.31 (KHTML, like Gecko) Chrome/26.0.1410.58 Safari/537.31"
WEBOS = "Mozilla/5.0 (webOS/1.3; U; en-US) AppleWebKit/525.27.1 (KHTML, like Gecko) Version/1.0 Safari/525.27.1 Desktop/1.0"
WINDOWS_PHONE = "Mozilla/5.0 (compatible; MSIE 9.0; Windows Phone OS 7.5; Trident/5.0; IEMobile/9.0)"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:20.0) Gecko/20100101 Firefox/20.0"
OPERA_MINI = "Opera/10.61 (J2ME/MIDP; Opera Mini/5.1.21219/19.999; en-US; rv:1.9.3a5) WebKit/534.5 Presto/2.6.30"
NOKIA = "Nokia6630/1.0 (2.3.129) SymbianOS/8.0 Series60/2.6 Profile/MIDP-2.0 Configuration/CLDC-1.1"


@pytest.mark.parametrize(
    "user_agent, accept, device",
    [
        (UCWEB_IPHONE, "", Criteria.MOBILE_DEVICE),
        (IPAD, "", Criteria.MOBILE_DEVICE),
        (IPOD, "", Criteria.MOBILE_DEVICE),
        (ANDROID_PHONE, "", Criteria.MOBILE_DEVICE),
        (ANDROID_TABLET, "", Criteria.MOBILE_DEVICE),
        (WEBOS, "", Criteria.MOBILE_DEVICE),  # "Desktop/1.0" in it does not matter: webOS decides
        (WINDOWS_PHONE, "", Criteria.MOBILE_DEVICE),
        (None, "", Criteria.DESKTOP_DEVICE),
        (FIREFOX_LINUX, "", Criteria.DESKTOP_DEVICE),
        (OPERA_MINI, "", Criteria.SIMPLE_DEVICE),
        (NOKIA, "application/vnd.wap.xhtml+xml", Criteria.SIMPLE_DEVICE),
    ],
)
def test_detect_device(user_agent, accept, device):
    meta = {"HTTP_ACCEPT": accept} if accept else {}
    if user_agent is not None:
        meta["HTTP_USER_AGENT"] = user_agent
    assert utils.detect_device(request_for(**meta)) == device


# --- flag_is_affected -----------------------------------------------------------------------


def test_flag_is_affected_reads_the_requests_flags():
    request = request_for()
    assert utils.flag_is_affected(request, "test_flag") is False  # the middleware did not run
    request.affected_flags = ["test_flag"]
    assert utils.flag_is_affected(request, "test_flag") is True
    assert utils.flag_is_affected(request, "other_flag") is False


# --- meets_criteria -------------------------------------------------------------------------


@pytest.fixture
def plain():
    """A criteria with every check off but the default superusers one."""
    c = Criteria.objects.create(name="test_crit")
    settled()
    return c


def test_meeting_nothing_reads_the_criteria_its_users_and_its_groups(plain, calls):
    assert utils.meets_criteria(request_for(), "test_crit") is False
    assert [key for method, key in calls if method == "get"] == ["criteria:test_crit", "criteria:test_crit:users", "criteria:test_crit:groups"]
    # The first miss cached all four keys.
    assert cache.get("criteria:test_crit") == plain and list(cache.get("criteria:test_crit:users")) == []


def test_a_cached_criteria_is_used_as_cached(plain):
    stale = Criteria.objects.get(pk=plain.pk)
    stale.everyone = True  # not saved: only the cache says so
    cache.set("criteria:test_crit", stale)
    with CaptureQueriesContext(connection) as queries:
        assert utils.meets_criteria(request_for(), "test_crit") is True
    assert len(queries) == 0


def test_meets_criteria_takes_a_criteria_object_too(plain):
    plain.everyone = True
    plain.save()
    assert utils.meets_criteria(request_for(), plain) is True


def test_a_criteria_that_does_not_exist_is_not_met():
    assert utils.meets_criteria(request_for(), "fake_crit") is False


@pytest.mark.parametrize("everyone", [True, False])
def test_everyone_decides(plain, everyone):
    plain.everyone = everyone
    plain.save()
    superuser = User.objects.create(username="root", is_superuser=True)
    assert utils.meets_criteria(request_for(user=superuser), "test_crit") is everyone


@pytest.mark.parametrize("value, active", [("1", True), ("0", False)])
def test_testing_query_argument_decides_and_is_recorded(plain, value, active):
    plain.testing = True
    plain.save()
    request = request_for(data={"dact_test_crit": value})
    assert utils.meets_criteria(request, "test_crit") is active
    assert request.affected_tests == {"test_crit": active}


@pytest.mark.parametrize("cookie, active", [("True", True), ("False", False)])
def test_testing_cookie_decides(plain, cookie, active):
    plain.testing = True
    plain.save()
    request = request_for()
    request.COOKIES["dact_test_crit"] = cookie
    assert utils.meets_criteria(request, "test_crit") is active


@pytest.mark.parametrize("cookie, active", [("True", True), ("False", False)])
def test_persistent_cookie_decides(plain, cookie, active):
    plain.persistent = True
    plain.save()
    request = request_for(user=User.objects.create(username="root", is_superuser=True))
    request.COOKIES["dac_test_crit"] = cookie
    assert utils.meets_criteria(request, "test_crit") is active


def test_authenticated_users(plain):
    plain.authenticated = True
    plain.save()
    assert utils.meets_criteria(request_for(user=User.objects.create(username="u")), "test_crit") is True
    assert utils.meets_criteria(request_for(), "test_crit") is False


def test_staff_and_superusers(plain):
    staff = User.objects.create(username="s", is_staff=True)
    root = User.objects.create(username="r", is_superuser=True)
    assert utils.meets_criteria(request_for(user=staff), "test_crit") is False
    assert utils.meets_criteria(request_for(user=root), "test_crit") is True  # superusers is on by default
    plain.staff = True
    plain.save()
    assert utils.meets_criteria(request_for(user=staff), "test_crit") is True


def test_listed_users_from_the_database_and_from_the_cache(plain):
    listed = User.objects.create(username="listed")
    plain.users.add(listed)
    assert utils.meets_criteria(request_for(user=listed), "test_crit") is True
    other = User.objects.create(username="other")
    settled()
    cache.set("criteria:test_crit:users", [other])  # the cache's list is the one used
    assert utils.meets_criteria(request_for(user=other), "test_crit") is True
    assert utils.meets_criteria(request_for(user=listed), "test_crit") is False


def test_listed_groups_from_the_database_and_from_the_cache(plain):
    group = Group.objects.create(name="g")
    member = User.objects.create(username="member")
    member.groups.add(group)
    plain.groups.add(group)
    assert utils.meets_criteria(request_for(user=member), "test_crit") is True
    other_group = Group.objects.create(name="h")
    other = User.objects.create(username="other")
    other.groups.add(other_group)
    settled()
    cache.set("criteria:test_crit:groups", [other_group])
    assert utils.meets_criteria(request_for(user=other), "test_crit") is True
    assert utils.meets_criteria(request_for(user=member), "test_crit") is False


@pytest.mark.parametrize("cookie, active", [("True", True), ("False", False)])
def test_percent_cookie_decides_and_is_remembered(plain, cookie, active, monkeypatch):
    plain.percent = 50
    plain.save()
    monkeypatch.setattr(utils, "_percent_hash", lambda *_: pytest.fail("the cookie decides; nothing is drawn"))
    request = request_for()
    request.COOKIES["dac_test_crit"] = cookie
    assert utils.meets_criteria(request, "test_crit") is active
    assert request.affected_persist == {"test_crit": active}
    assert request.affect_persist == {"test_crit": active}


def test_percent_without_a_cookie_is_decided_by_the_hash_and_remembered(plain):
    """django-affect draws ``random.uniform(0, 100)``; we hash a stable id (docs/django-affect.md §1.4.4)."""
    plain.percent = 50
    plain.save()
    answers = []
    for pk_user in range(40):
        request = request_for(user=User.objects.create(username=f"u{pk_user}"))
        answer = utils.meets_criteria(request, "test_crit")
        assert request.affected_persist == {"test_crit": answer}
        assert utils.meets_criteria(request_for(user=request.user), "test_crit") is answer  # stable
        answers.append(answer)
    assert True in answers and False in answers


def test_entry_url_from_another_site_and_from_a_nonentry_domain(plain):
    plain.entry_url = "/test.html"
    plain.save()
    outside = request_for("/test.html", HTTP_REFERER="http://example.com/blah", HTTP_HOST="testserver.com")
    assert utils.meets_criteria(outside, "test_crit") is True
    with override_settings(AFFECTED_NONENTRY_DOMAINS=["example.com"]):
        assert utils.meets_criteria(outside, "test_crit") is False
    elsewhere = request_for("/other.html", HTTP_REFERER="http://example.com/blah", HTTP_HOST="testserver.com")
    assert utils.meets_criteria(elsewhere, "test_crit") is False


def test_referrer_list(plain):
    plain.referrer = "example.com,www.example.com"
    plain.save()
    assert utils.meets_criteria(request_for(HTTP_REFERER="http://example.com/blah"), "test_crit") is True
    assert utils.meets_criteria(request_for(HTTP_REFERER="http://www.example.com/"), "test_crit") is True
    assert utils.meets_criteria(request_for(HTTP_REFERER="http://example.org/"), "test_crit") is False


@pytest.mark.parametrize(
    "query_args, given, met",
    [
        ({"foo": "bar"}, "bar", True),
        ({"foo": "bar"}, "baz", False),
        ({"foo": "*"}, "bar", True),
        ({"foo": ["bar", "baz"]}, "bar", True),
        ({"foo": ["bar", "baz"]}, "boz", False),
    ],
)
def test_query_args(plain, query_args, given, met):
    plain.query_args = query_args
    plain.save()
    assert utils.meets_criteria(request_for(data={"foo": given}), "test_crit") is met


def test_device_type_asks_detect_device(plain, monkeypatch):
    plain.device_type = Criteria.MOBILE_DEVICE
    plain.save()
    seen = []
    monkeypatch.setattr(utils, "detect_device", lambda request: seen.append(request) or Criteria.MOBILE_DEVICE)
    request = request_for()
    assert utils.meets_criteria(request, "test_crit") is True
    assert seen == [request]


# --- set_persist_criteria -------------------------------------------------------------------


def test_set_persist_criteria_adds_to_what_is_there():
    request = request_for()
    utils.set_persist_criteria(request, "test_crit", False)
    assert request.affect_persist == {"test_crit": False}
    request.affect_persist = {"other_crit": True}
    utils.set_persist_criteria(request, "test_crit", True)
    assert request.affect_persist == {"other_crit": True, "test_crit": True}
    # The attribute the middleware writes cookies from holds the same answers.
    assert request.affected_persist == {"test_crit": True}


def test_an_answer_set_by_name_reaches_the_cookie():
    Criteria.objects.create(name="test_crit", max_cookie_age=600)
    request = request_for()
    request.affected_persist = {}
    utils.set_persist_criteria(request, "test_crit", True)
    cookie = _respond(request).cookies["dac_test_crit"]
    assert (cookie.value, cookie["max-age"]) == ("True", 600)


# --- uncache_criteria, uncache_flag ---------------------------------------------------------


def test_uncache_criteria_leaves_five_second_placeholders(plain, calls):
    utils.cache_criteria(instance=plain)
    calls.clear()
    utils.uncache_criteria(instance=plain)
    keys = ("criteria:all", "criteria:test_crit", "criteria:test_crit:flags", "criteria:test_crit:groups", "criteria:test_crit:users")
    assert calls == [("set_many", keys, 5)]
    assert cache.get("criteria:test_crit") is None
    # The placeholder keeps cache.add from filling the key again until it expires.
    assert cache.add("criteria:test_crit", plain) is False


def test_uncache_flag_clears_its_conflicts_and_every_criteria_applying_it(calls):
    applying = Criteria.objects.create(name="test_crit")
    unrelated = Criteria.objects.create(name="unrelated")
    flag = Flag.objects.create(name="test_flag")
    flag.conflicts.add(Flag.objects.create(name="nega-test_flag"))
    applying.flags.add(flag)
    settled()
    for c in (applying, unrelated):
        utils.cache_criteria(instance=c)
    calls.clear()
    utils.uncache_flag(instance=flag)
    assert calls[0] == ("set", "flag_conflicts:test_flag", None, 5)
    assert [c[1] for c in calls[1:]] == [("criteria:all", "criteria:test_crit", "criteria:test_crit:flags", "criteria:test_crit:groups", "criteria:test_crit:users")]
    assert cache.get("criteria:unrelated") == unrelated


# --- the models -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Criteria, Flag])
def test_models_print_as_their_name_and_saving_stamps_modified(model, monkeypatch):
    obj = model.objects.create(name="test_obj")
    assert str(obj) == "test_obj"
    when = dt.datetime(2012, 1, 1, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(models.datetime, "now", lambda: when)  # the clock django-affect's tests stub
    obj.save()
    assert model.objects.get(pk=obj.pk).modified == when


# --- a criteria named "all" (a django-affect bug we fix, docs/django-affect.md §1.4.6) ----------


def test_a_criteria_named_all_does_not_collide_with_the_list_of_all_criteria(calls):
    named_all = Criteria.objects.create(name="all", everyone=True)
    named_all.flags.add(Flag.objects.create(name="rev_b"))
    Criteria.objects.create(name="second", everyone=True).flags.add(Flag.objects.create(name="rev_c"))
    settled()
    for _ in range(3):  # cold, then warm
        request = request_for()
        AffectMiddleware().process_request(request)
        assert sorted(request.affected_flags) == ["rev_b", "rev_c"]
    assert [c.name for c in cache.get("criteria:all")] == ["all", "second"]
    assert utils.meets_criteria(request_for(), "all") is True
    # The criteria itself is never cached under the shared key; its relations are.
    assert not [c for c in calls if c[0] == "add" and c[1] == "criteria:all" and c != ("add", "criteria:all")]
    assert [f.name for f in cache.get("criteria:all:flags")] == ["rev_b"]
