"""Criteria and flags cached by version: zero queries per request on a warm cache, a fixed number
on a cold one, invalidation on every kind of change, in every process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

import avsb
from affect_helpers import flags_of
from avsb.contrib.affect.models import Criteria, Flag
from avsb.contrib.affect.registry import Registry, registry

pytestmark = pytest.mark.django_db


def _queries(client, path="/flags/", **extra):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, **extra)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()["flags"]


def _many(make, n):
    for i in range(n):
        make.criteria(f"c{i:02d}", flags=[f"f{i % 5}"], query_args={"k": str(i)}, percent="10.0" if i % 3 == 0 else None)


def test_zero_queries_on_a_warm_cache(make):
    _many(make, 10)
    client = Client()
    _queries(client)  # warms
    for path in ("/flags/", "/flags/?k=3", "/landing/"):
        count, _ = _queries(client, path)
        assert count == 0, path
    count, flags = _queries(Client(), "/flags/?k=4")  # a new visitor too (percent mints an id)
    assert count == 0 and "f4" in flags


@pytest.mark.parametrize("n", [1, 30])
def test_cold_cache_costs_a_fixed_number_of_queries(make, n):
    _many(make, n)
    cache.clear()
    registry._snapshot = None
    count, _ = _queries(Client())
    assert count <= 6  # six loader queries, whatever the number of criteria


def test_cold_cost_is_the_same_for_1_and_30_criteria(make):
    counts = []
    for n in (1, 30):
        Criteria.objects.all().delete()
        _many(make, n)
        cache.clear()
        counts.append(_queries(Client())[0])
    assert counts[0] == counts[1]


def test_warm_cache_queries_for_a_logged_in_user_are_bounded(make):
    user = User.objects.create_user("u")
    group = Group.objects.create(name="g")
    make.criteria("g", groups=[group], superusers=False)
    client = Client()
    client.force_login(user)
    _queries(client)
    count, _ = _queries(client)
    assert count <= 2  # session + user; group ids are cached


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


def test_invalidation_on_m2m_changes(make, committed):
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
    user = User.objects.create_user("u")
    client.force_login(user)
    with committed():
        c.everyone = None
        c.superusers = False
        c.save()
    assert flags_of(client) == []
    with committed():
        c.users.add(user)
    assert flags_of(client) == ["rev_b"]


def test_uncommitted_changes_are_not_published(make):
    client = Client()
    c = make.criteria("c", everyone=True)
    assert flags_of(client) == ["rev_b"]
    c.everyone = False
    c.save()  # on_commit never runs here (the test's transaction is never committed)
    assert flags_of(client) == ["rev_b"]


def test_two_registries_sharing_the_cache_both_see_a_change(make, committed):
    one, two = Registry(), Registry()
    make.criteria("c", everyone=True)
    assert one.current().criteria[0].everyone is True
    assert two.current().criteria[0].everyone is True
    with committed():
        c = Criteria.objects.get(name="c")
        c.everyone = False
        c.save()
    assert one.current().criteria[0].everyone is False
    # the second one reloads from the cache, not the database
    with CaptureQueriesContext(connection) as ctx:
        assert two.current().criteria[0].everyone is False
    assert len(ctx.captured_queries) == 0


@pytest.mark.django_db(transaction=True)
def test_real_commit_invalidates_without_help():
    client = Client()
    c = Criteria.objects.create(name="c", everyone=True)
    c.flags.add(Flag.objects.create(name="rev_b"))
    assert flags_of(client) == ["rev_b"]
    c.everyone = False
    c.save()  # autocommit: on_commit runs at once
    assert flags_of(client) == []


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
        assert flags_of(Client(), "/flags/?k=1") == ["rev_b"]  # this process fills the shared cache
        assert other_process() == ["rev_b"]
        with committed():
            c.query_args = {"k": "2"}
            c.save()
        assert flags_of(Client(), "/flags/?k=1") == []
        assert other_process() == []
