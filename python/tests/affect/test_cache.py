"""Criteria and flags in the Django cache, under django-affect's keys (docs/django-affect.md §1.2):
no query per request on a warm cache; every kind of change seen at once, with any cache backend
(DummyCache included) and in another process sharing the cache; nothing left behind by a
transaction that is rolled back, as a ``django.test.TestCase`` test's is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.test import Client, TestCase, override_settings
from django.test.utils import CaptureQueriesContext

import avsb
from affect_helpers import flags_of
from avsb.contrib.affect.models import Criteria, Flag

pytestmark = pytest.mark.django_db

DUMMY_CACHE = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


def _queries(client, path="/flags/", **extra):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, **extra)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()["flags"]


def _many(make, n):
    for i in range(n):
        make.criteria(f"c{i:02d}", flags=[f"f{i % 5}"], query_args={"k": str(i)}, percent="10.0" if i % 3 == 0 else None)
    # A change leaves 5-second null placeholders that cache.add cannot replace (django-affect's
    # invalidation); these tests measure the cache after they expired.
    cache.clear()


def test_zero_queries_on_a_warm_cache(make):
    _many(make, 10)
    paths = ("/flags/", "/flags/?k=3", "/landing/", "/flags/?k=4")
    client = Client()
    # Warms: each flag's conflicts are cached the first time the flag applies (every flag here:
    # a new visitor below may fall in any percent criteria).
    for path in paths + tuple(f"/flags/?k={i}" for i in range(10)):
        _queries(client, path)
    for path in paths:
        count, _ = _queries(client, path)
        assert count == 0, path
    count, flags = _queries(Client(), "/flags/?k=4")  # a new visitor too (percent mints an id)
    assert count == 0 and "f4" in flags


def test_the_cache_holds_django_affects_keys(make, client):
    make.criteria("c", flags=["rev_b"], everyone=True)
    cache.clear()  # the placeholders of the change expired
    flags_of(client)
    assert [c.name for c in cache.get("criteria:all")] == ["c"]
    assert cache.get("criteria:c").name == "c"
    assert [f.name for f in cache.get("criteria:c:flags")] == ["rev_b"]
    assert list(cache.get("flag_conflicts:rev_b")) == []


def test_warm_cache_queries_for_a_logged_in_user_are_bounded(make):
    user = User.objects.create_user("u")
    group = Group.objects.create(name="g")
    make.criteria("g", groups=[group], superusers=False)
    cache.clear()  # the placeholders of the change expired
    client = Client()
    client.force_login(user)
    _queries(client)
    count, _ = _queries(client)
    assert count <= 3  # the session, the user, and the user's groups for the one criteria naming groups


@override_settings(CACHES=DUMMY_CACHE)
def test_dummy_cache_sees_every_change_at_once(make, client):
    """With a cache that keeps nothing (django-affect's own test setting), each request reads
    the database: a change applies to the very next request, committed or not."""
    c = make.criteria("c", flags=["rev_b"], query_args={"a": "1"})
    assert flags_of(client, "/flags/?a=1") == ["rev_b"]
    c.query_args = {"a": "2"}
    c.save()
    assert flags_of(client, "/flags/?a=1") == []
    assert flags_of(client, "/flags/?a=2") == ["rev_b"]
    flag = Flag.objects.get(name="rev_b")
    flag.active = False
    flag.save()
    assert flags_of(client, "/flags/?a=2") == []


def test_a_change_is_seen_at_once_in_its_own_transaction(make, client):
    """The invalidation happens when the change is made, not only when it commits."""
    c = make.criteria("c", everyone=True)
    assert flags_of(client) == ["rev_b"]
    c.everyone = False
    c.save()
    assert flags_of(client) == []


def test_invalidation_on_save(make, committed):
    client = Client()
    c = make.criteria("c", query_args={"a": "1"})
    assert flags_of(client, "/flags/?a=1") == ["rev_b"]
    with committed():
        c.query_args = {"a": "2"}
        c.save()
    assert flags_of(client, "/flags/?a=1") == []
    assert flags_of(client, "/flags/?a=2") == ["rev_b"]


def test_invalidation_on_delete(make, committed):
    client = Client()
    c = make.criteria("c", everyone=True)
    assert flags_of(client) == ["rev_b"]
    with committed():
        c.delete()
    assert flags_of(client) == []
    make.criteria("d", everyone=True)
    assert flags_of(client) == ["rev_b"]
    with committed():
        Flag.objects.get(name="rev_b").delete()
    assert flags_of(client) == []


def test_invalidation_on_m2m_changes_from_either_side(make, committed):
    client = Client()
    c = make.criteria("c", everyone=True)
    other = make.flag("other")
    assert flags_of(client) == ["rev_b"]
    with committed():
        c.flags.add(other)
    assert flags_of(client) == ["other", "rev_b"]
    with committed():
        other.conflicts.add(Flag.objects.get(name="rev_b"))
    assert flags_of(client) == ["other"]
    with committed():
        c.flags.remove(other)
    assert flags_of(client) == ["rev_b"]
    with committed():
        other.criteria_set.add(c)  # the reverse side
    assert flags_of(client) == ["other"]
    user = User.objects.create_user("u")
    client.force_login(user)
    with committed():
        c.everyone = None
        c.superusers = False
        c.save()
    assert flags_of(client) == []
    with committed():
        user.criteria_set.add(c)  # the reverse side of Criteria.users
    assert flags_of(client) == ["other"]


@pytest.mark.django_db(transaction=True)
def test_real_commit_invalidates_without_help():
    client = Client()
    c = Criteria.objects.create(name="c", everyone=True)
    c.flags.add(Flag.objects.create(name="rev_b"))
    assert flags_of(client) == ["rev_b"]
    c.everyone = False
    c.save()  # autocommit
    assert flags_of(client) == []


@pytest.mark.keep_cache
class RolledBackChangesDoNotLeak(TestCase):
    """Two ``django.test.TestCase`` tests in order: what the first creates and caches is rolled
    back, and the second must see none of it (LocMemCache keeps its entries across tests)."""

    def test_1_creates_and_caches(self):
        c = Criteria.objects.create(name="leaky", everyone=True)
        c.flags.add(Flag.objects.create(name="leaked"))
        cache.clear()  # as if the placeholders of the change had expired: requests cache again
        assert flags_of(self.client) == ["leaked"]
        assert [c.name for c in cache.get("criteria:all")] == ["leaky"]

    def test_2_sees_nothing_of_it(self):
        assert not Criteria.objects.exists()
        assert flags_of(self.client) == []
        assert flags_of(self.client) == []


def test_a_rolled_back_change_is_cleared_for_direct_callers_too(make):
    """meets_criteria called directly (not through the middleware) clears it too."""
    from django.db import transaction
    from django.test import RequestFactory

    from avsb.contrib.affect.utils import meets_criteria

    make.criteria("c", everyone=False)
    request = RequestFactory().get("/")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            c = Criteria.objects.get(name="c")
            c.everyone = True
            c.save()
            cache.clear()  # as if the placeholders had expired
            assert meets_criteria(request, "c") is True  # cached inside the transaction
            assert cache.get("criteria:c").everyone is True
            raise RuntimeError("roll back")
    assert meets_criteria(request, "c") is False


def _flags_now():
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from avsb.contrib.affect.middleware import AffectMiddleware

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    AffectMiddleware().process_request(request)
    return list(request.affected_flags)


def test_a_change_in_a_nested_block_is_kept_until_its_transaction_ends(make):
    """``criteria.flags.add`` runs in an atomic block of its own inside the caller's transaction:
    the end of that inner block settles nothing, the end of the transaction does."""
    from django.db import transaction

    make.criteria("c", flags=[], everyone=True)
    flag = make.flag("rev_c")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            Criteria.objects.get(name="c").flags.add(flag)
            cache.clear()  # as if the placeholders had expired
            assert _flags_now() == ["rev_c"]  # cached inside the transaction
            assert _flags_now() == ["rev_c"]
            raise RuntimeError("roll back")
    assert _flags_now() == []


def test_a_change_rolled_back_to_a_savepoint_is_cleared(make):
    """The transaction goes on (and may commit) after a savepoint holding the change was rolled back."""
    from django.db import transaction

    make.criteria("c", everyone=False)
    with transaction.atomic():
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                c = Criteria.objects.get(name="c")
                c.everyone = True
                c.save()
                cache.clear()  # as if the placeholders had expired
                assert _flags_now() == ["rev_b"]
                raise RuntimeError("roll back to the savepoint")
        assert _flags_now() == []


OTHER_PROCESS = r"""
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
call_command("migrate", verbosity=0)   # an empty database: anything it sees comes from the shared cache
print(json.dumps(Client().get("/flags/?k=1").json()["flags"]))
"""


def test_a_second_process_sees_changes_through_a_shared_cache(make, committed, tmp_path):
    """A real second process (its own, empty sqlite file) sharing a FileBasedCache."""
    cache_dir = tmp_path / "cache"
    caches_setting = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(cache_dir)}}
    (tmp_path / "proc_settings.py").write_text(
        "from affectsite.settings import *\n"
        f"CACHES = {caches_setting!r}\n"
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}}\n"
    )
    project = Path(__file__).parent / "project"
    env = {"PYTHONPATH": f"{tmp_path}:{project}:{Path(avsb.__file__).parent.parent}", "DJANGO_SETTINGS_MODULE": "proc_settings", "PATH": "/usr/bin:/bin"}

    def other_process():
        result = subprocess.run([sys.executable, "-c", OTHER_PROCESS], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    with override_settings(CACHES=caches_setting):
        c = make.criteria("c", query_args={"k": "1"})
        cache.clear()  # the 5-second placeholders of the change expired
        assert flags_of(Client(), "/flags/?k=1") == ["rev_b"]  # this process fills the shared cache
        assert other_process() == ["rev_b"]  # read from the shared cache: its own database is empty
        with committed():
            c.flags.set([make.flag("rev_c")])
        # The change invalidated the shared keys: the other process no longer sees the old flag.
        assert other_process() == []
        assert flags_of(Client(), "/flags/?k=1") == ["rev_c"]
        cache.clear()  # the placeholders expired; this process caches the new rows
        assert flags_of(Client(), "/flags/?k=1") == ["rev_c"]
        assert other_process() == ["rev_c"]
