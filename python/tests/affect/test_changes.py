"""Changes made in other processes: the change counter every change increments, which each process
reads at most once every AFFECTED_CHANGE_CHECK_SECONDS to drop what its own cache holds; and the
system checks that warn about a cache each process keeps for itself (or none at all)."""

from __future__ import annotations

import logging

import pytest
from django.core import checks
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import F
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from affect_helpers import flags_of
from avsb.contrib.affect import utils
from avsb.contrib.affect.models import ChangeCounter, Criteria, Flag

pytestmark = pytest.mark.django_db

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "changes-tests"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
DATABASE_CACHE = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "affect_cache"}}


def counter() -> int:
    return ChangeCounter.objects.get(pk=1).count


@pytest.fixture
def fresh_watch(monkeypatch):
    """This process has not read the counter yet."""
    monkeypatch.setattr(utils, "_watch", utils._ChangeWatch())


def elsewhere(**flag_fields):
    """A change as another process makes it: the rows change and the counter moves, and nothing
    reaches this process's cache (QuerySet.update sends no signal)."""
    Flag.objects.filter(name="rev_b").update(**flag_fields)
    ChangeCounter.objects.filter(pk=1).update(count=F("count") + 1)


def test_every_change_counts_once_in_its_transaction(make, committed):
    start = counter()
    make.flag("rev_b")
    assert counter() > start
    before = counter()
    flag = Flag.objects.get(name="rev_b")
    flag.active = False
    flag.save()
    assert counter() == before + 1
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            flag.active = True
            flag.save()
            assert counter() == before + 2
            raise RuntimeError("roll back")
    assert counter() == before + 1  # a change rolled back is not counted


@override_settings(AFFECTED_CHANGE_CHECK_SECONDS=0)
def test_a_change_made_elsewhere_is_noticed_at_the_next_check(make, fresh_watch):
    make.criteria("c", flags=["rev_b"], everyone=True)
    cache.clear()  # the placeholders of the change expired
    client = Client()
    assert flags_of(client) == ["rev_b"]  # the first read of the counter, then cached
    Flag.objects.filter(name="rev_b").update(active=False)  # not counted: the cache still says active
    assert flags_of(client) == ["rev_b"]
    ChangeCounter.objects.filter(pk=1).update(count=F("count") + 1)
    assert flags_of(client) == []  # the counter moved: this process dropped what it had cached
    assert cache.get("criteria:c:flags", "absent") is None  # django-affect's placeholder, on its key


@override_settings(AFFECTED_CHANGE_CHECK_SECONDS=0)
def test_a_criteria_deleted_elsewhere_is_dropped_for_direct_callers(make, fresh_watch):
    from django.test import RequestFactory

    make.criteria("gone", flags=(), everyone=True)
    cache.clear()
    assert utils.meets_criteria(RequestFactory().get("/"), "gone") is True  # cached
    with connection.cursor() as cursor:  # deleted as another process's SQL would: no signal here
        cursor.execute(f"DELETE FROM {Criteria._meta.db_table} WHERE name = %s", ["gone"])
    ChangeCounter.objects.filter(pk=1).update(count=F("count") + 1)
    assert utils.meets_criteria(RequestFactory().get("/"), "gone") is False


@override_settings(AFFECTED_CHANGE_CHECK_SECONDS=3600)
def test_the_counter_is_read_at_most_once_per_interval(make, fresh_watch):
    make.criteria("c", flags=["rev_b"], everyone=True)
    cache.clear()
    client = Client()
    flags_of(client)  # warms the cache and reads the counter for the first time
    elsewhere(active=False)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert flags_of(client) == ["rev_b"]  # not noticed before the interval ends
    assert not any("affect_changes" in q["sql"] for q in queries.captured_queries)
    assert len(queries) == 0  # a warm cache, and no read of the counter


@override_settings(AFFECTED_CHANGE_CHECK_SECONDS=0, CACHES=DUMMY)
def test_nothing_is_read_with_a_cache_that_keeps_nothing(make, fresh_watch):
    make.criteria("c", flags=["rev_b"], everyone=True)
    with CaptureQueriesContext(connection) as queries:
        assert flags_of(Client()) == ["rev_b"]
    assert not any("affect_changes" in q["sql"] for q in queries.captured_queries)


@override_settings(AFFECTED_CHANGE_CHECK_SECONDS=0)
def test_a_missing_counter_table_is_logged_once_and_never_fails_a_request(make, fresh_watch, caplog, monkeypatch):
    from django.db import DatabaseError

    make.criteria("c", flags=["rev_b"], everyone=True)

    def broken(*args, **kwargs):
        raise DatabaseError("no such table: affect_changes")

    monkeypatch.setattr(utils, "_read_the_counter", broken)
    caplog.set_level(logging.WARNING, logger="avsb.affect")
    client = Client()
    for _ in range(3):
        assert flags_of(client) == ["rev_b"]
    assert len([r for r in caplog.records if "cannot read the change counter" in r.getMessage()]) == 1


@pytest.mark.parametrize("value", [-1, "1", True, [1]])
def test_a_bad_check_interval_fails_at_start(value):
    from django.core.exceptions import ImproperlyConfigured

    from avsb.contrib.affect.middleware import AffectMiddleware

    with override_settings(AFFECTED_CHANGE_CHECK_SECONDS=value), pytest.raises(ImproperlyConfigured, match="AFFECTED_CHANGE_CHECK_SECONDS"):
        AffectMiddleware()


# -- the system checks ---------------------------------------------------------------------------


def affect_warnings() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks(tags=[checks.Tags.caches]) if m.id.startswith("avsb.")]


@override_settings(CACHES=LOCMEM)
def test_a_per_process_cache_is_warned_about(settings):
    del settings.AFFECTED_CHANGE_CHECK_SECONDS  # the default: once a second
    (warning,) = affect_warnings()
    assert warning.id == "avsb.W001" and warning.level == checks.WARNING
    assert "LocMemCache" in warning.msg and "every 1 s at most" in warning.msg
    assert "Redis, Memcached or the database" in warning.hint
    with override_settings(AFFECTED_CHANGE_CHECK_SECONDS=None):
        assert "never" in affect_warnings()[0].msg


@override_settings(CACHES=DUMMY)
def test_a_cache_that_keeps_nothing_is_warned_about():
    (warning,) = affect_warnings()
    assert warning.id == "avsb.W002" and "every request reads" in warning.msg


@override_settings(CACHES=DATABASE_CACHE)
def test_a_shared_cache_is_not_warned_about():
    assert affect_warnings() == []


@override_settings(CACHES={**LOCMEM, "shared": DATABASE_CACHE["default"]}, AFFECTED_CACHE_NAME="shared")
def test_the_check_looks_at_the_cache_the_layer_uses():
    assert affect_warnings() == []
    with override_settings(AFFECTED_CACHE_NAME="default"):
        assert [w.id for w in affect_warnings()] == ["avsb.W001"]


@override_settings(CACHES=LOCMEM)
def test_manage_py_check_shows_the_warning(capsys):
    call_command("check")
    assert "(avsb.W001)" in capsys.readouterr().err
