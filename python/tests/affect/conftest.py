"""Shared fixtures for the django-affect layer's tests (project: tests/affect/project)."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from avsb.contrib.affect import overrides, utils
from avsb.contrib.affect.models import Criteria, Flag


@pytest.fixture(autouse=True)
def _clean_state(request):
    """No cache or override leaks between tests (unless a test shows that none leaks without help)."""
    keep = request.node.get_closest_marker("keep_cache") is not None
    if not keep:
        # The earlier tests' rolled-back changes are settled now, so that their keys are not
        # cleared in the middle of this test.
        utils.forget_rolled_back_changes()
        for cache in caches.all():
            cache.clear()
    yield
    if not keep:
        for cache in caches.all():
            cache.clear()
    with overrides._lock:
        overrides._stack.clear()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed(): ...`` runs the on_commit callbacks (cache invalidation) at the end."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


@pytest.fixture
def make(committed):
    """Factories: ``make.flag('rev_b', priority=5)``, ``make.criteria('c', flags=['rev_b'], everyone=True)``."""

    class Make:
        @staticmethod
        def flag(name, **fields):
            with committed():
                flag, _ = Flag.objects.get_or_create(name=name, defaults=fields)
            return flag

        @staticmethod
        def criteria(name, flags=("rev_b",), groups=(), users=(), **fields):
            with committed():
                c = Criteria(name=name, **fields)
                c.full_clean()
                c.save()
                c.flags.set([Make.flag(f) for f in flags])
                if groups:
                    c.groups.set(groups)
                if users:
                    c.users.set(users)
            return c

    return Make
