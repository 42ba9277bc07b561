"""System checks of the django-affect layer (``manage.py check``, and every ``runserver``)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache

from avsb.contrib.affect import conf

#: The ids of the warnings below.
PER_PROCESS_CACHE = "avsb.W001"
NO_CACHE = "avsb.W002"

_SHARED = "Redis, Memcached or the database (django.core.cache.backends.db.DatabaseCache)"


@checks.register(checks.Tags.caches)
def check_affect_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warns when the cache holding criteria and flags is not shared by the processes."""
    name = conf.get("AFFECTED_CACHE_NAME")
    try:
        cache = caches[name]
    except (InvalidCacheBackendError, Exception):  # noqa: BLE001 - conf.check() reports a bad name
        return []
    interval = conf.get("AFFECTED_CHANGE_CHECK_SECONDS")
    if isinstance(cache, LocMemCache):
        if interval is None:
            reach = "never, since AFFECTED_CHANGE_CHECK_SECONDS is None"
        else:
            reach = f"only when they next read the change counter (every {interval:g} s at most)"
        return [
            checks.Warning(
                f"The cache {name!r} (AFFECTED_CACHE_NAME) is a LocMemCache: each process keeps its own copy of "
                f"the affect criteria and flags, so a change made in one process (a flag switched off in the "
                f"admin) reaches the others {reach}.",
                hint=f"Point AFFECTED_CACHE_NAME at a cache every process shares: {_SHARED}.",
                obj=f"CACHES[{name!r}]",
                id=PER_PROCESS_CACHE,
            )
        ]
    if isinstance(cache, DummyCache):
        return [
            checks.Warning(
                f"The cache {name!r} (AFFECTED_CACHE_NAME) is a DummyCache: it keeps nothing, so every request "
                f"reads every affect criteria and flag from the database.",
                hint=f"Point AFFECTED_CACHE_NAME at a cache every process shares: {_SHARED}.",
                obj=f"CACHES[{name!r}]",
                id=NO_CACHE,
            )
        ]
    return []
