"""Each [BUG] of django-affect 1.1.0 (docs/django-affect.md §1.4), shown fixed through real requests."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from affect_helpers import flags_of
from avsb.contrib.affect.middleware import resolve_conflicts
from avsb.contrib.affect.models import Flag

pytestmark = pytest.mark.django_db


def test_inactive_flag_never_applies_after_the_cache_was_filled(make, client, committed):
    """[BUG] django-affect cached criteria.flags.all() unfiltered: a deactivated flag kept applying."""
    make.criteria("all", flags=["rev_b", "keep"], everyone=True)
    assert flags_of(client) == ["keep", "rev_b"]  # cache warm, flag active
    assert flags_of(client) == ["keep", "rev_b"]
    with committed():
        flag = Flag.objects.get(name="rev_b")
        flag.active = False
        flag.save()
    for _ in range(3):  # every later request, warm or cold
        assert flags_of(client) == ["keep"]
    with committed():
        flag.active = True
        flag.save()
    assert flags_of(client) == ["keep", "rev_b"]


def test_inactive_flag_never_applies_on_a_cold_cache(make, client):
    make.flag("rev_b", active=False)
    make.criteria("all", everyone=True)
    assert flags_of(client) == []


def test_inactive_flag_does_not_block_its_conflicts(make, client):
    make.flag("winner", priority=100, active=False)
    make.flag("loser", priority=0)
    Flag.objects.get(name="winner").conflicts.add(Flag.objects.get(name="loser"))
    make.criteria("all", flags=["winner", "loser"], everyone=True)
    assert flags_of(client) == ["loser"]


def test_flag_with_two_present_conflicts_does_not_crash(make, client, committed):
    """[BUG] flags.pop(name) ran once per present conflict: KeyError on the second."""
    for name, priority in (("a", 1), ("b", 5), ("c", 5)):
        make.flag(name, priority=priority)
    with committed():
        Flag.objects.get(name="a").conflicts.add(*Flag.objects.filter(name__in=["b", "c"]))
    make.criteria("all", flags=["a", "b", "c"], everyone=True)
    response = client.get("/flags/")
    assert response.status_code == 200
    assert response.json()["flags"] == ["b", "c"]  # b and c do not conflict with each other
    with committed():
        a = Flag.objects.get(name="a")
        a.priority = 10
        a.save()
    assert flags_of(client) == ["a"]


@pytest.mark.parametrize("order", [("alpha", "beta"), ("beta", "alpha")])
def test_equal_priorities_resolve_by_name_whatever_the_creation_order(make, client, committed, order):
    """[BUG] with equal priorities the survivor depended on dict iteration order."""
    for name in order:
        make.flag(name, priority=7)
    with committed():
        Flag.objects.get(name=order[1]).conflicts.add(Flag.objects.get(name=order[0]))
    make.criteria("one", flags=[order[0]], everyone=True)
    make.criteria("two", flags=[order[1]], everyone=True)
    assert flags_of(client) == ["alpha"]


def test_higher_priority_wins_a_conflict(make, client, committed):
    make.flag("alpha", priority=1)
    make.flag("zulu", priority=2)
    with committed():
        Flag.objects.get(name="alpha").conflicts.add(Flag.objects.get(name="zulu"))
    make.criteria("all", flags=["alpha", "zulu"], everyone=True)
    assert flags_of(client) == ["zulu"]


def test_resolve_conflicts_is_order_independent():
    for names in (["x", "y", "z"], ["z", "y", "x"], ["y", "z"]):
        present = {n: Flag(name=n, priority=3) for n in names}
        conflicts = {n: set(names) - {n} for n in names}
        assert resolve_conflicts(present, conflicts) == [sorted(names)[0]]


def test_percent_without_persistent_is_still_sticky(make):
    """[BUG] set_persist_criteria wrote request.affect_persist (typo): percent re-rolled every request."""
    make.criteria("half", percent="50.0", persistent=False, superusers=False)
    for i in range(8):
        client = Client()
        response = client.get("/flags/")
        first = response.json()["flags"]
        assert response.cookies["dac_half"].value == str(bool(first))
        for _ in range(4):
            assert flags_of(client) == first


def test_percent_cookie_is_honoured(make):
    make.criteria("p", percent="10.0", superusers=False)
    yes, no = Client(), Client()
    yes.cookies["dac_p"] = "True"
    no.cookies["dac_p"] = "False"
    for _ in range(3):
        assert flags_of(yes) == ["rev_b"]
        assert flags_of(no) == []


@pytest.mark.parametrize("everyone", [True, False])
def test_everyone_still_writes_the_persistence_cookie(make, client, everyone):
    make.criteria("p", everyone=everyone, persistent=True)
    response = client.get("/flags/")
    assert response.cookies["dac_p"].value == str(everyone)


def test_superuser_default_true_but_everyone_false_vetoes(make, client):
    root = User.objects.create_superuser("root", "r@example.com", "pw")
    make.flag("x")
    make.criteria("on", flags=["x"])
    make.criteria("off", flags=["rev_b"], everyone=False)
    client.force_login(root)
    assert flags_of(client) == ["x"]


def test_referrer_list_whitespace_is_trimmed(make, client):
    """django-affect split on ',' without trimming: 'a.example, b.example' never matched b."""
    make.criteria("r", referrer="a.example, b.example")
    assert flags_of(client, HTTP_REFERER="https://b.example/") == ["rev_b"]
