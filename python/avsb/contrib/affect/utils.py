"""django-affect's ``affect.utils``, with its documented intent where its code was buggy
(docs/django-affect.md §1.3, §1.4, §2).

The same functions, cache keys and cache calls as django-affect 1.1.0, so code and tests written
against it (stubbing ``cache.get``, ``meets_criteria`` or ``cache_criteria``) keep working:

* ``meets_criteria(request, criteria)`` answers one criteria (an object or its name); the first
  check that matches decides, in django-affect's order.
* ``cache_criteria`` fills ``criteria:<name>``, ``criteria:<name>:flags``, ``:users`` and
  ``:groups`` with ``cache.add``; ``uncache_criteria`` and ``uncache_flag`` invalidate them with
  a null placeholder that lives 5 seconds. No criteria or flag is kept in the process, so a
  shared cache backend, or ``DummyCache``, sees a change at once (docs/django-affect.md §2.2).

Beyond django-affect, and without touching its keys: every change also increments one row in
the database, the change counter (``models.ChangeCounter``), and each process reads it at most
once every ``AFFECTED_CHANGE_CHECK_SECONDS`` (``notice_changes``). When it moved, the process
puts the same 5-second placeholders on every key of every criteria and flag, so a cache that
each process keeps for itself (``LocMemCache``) converges too, within about a second; the
system check ``avsb.W001`` still recommends a shared one.

What differs, on purpose (docs/django-affect.md §2.5):

* Lists of host names and paths are trimmed, and host names compared without case.
* Percent hashes a stable identifier (the user's primary key, else an anonymous id kept in a
  cookie) with the engine's bucketing instead of drawing a random number, and its answer is
  always remembered in the ``dac_`` cookie: ``set_persist_criteria`` writes
  ``request.affected_persist`` (and, for code that reads it, the misspelt
  ``request.affect_persist`` too).
* A criteria named ``all`` is never cached under ``criteria:all``, the list's key.
* A change made inside a transaction that is rolled back (a ``django.test.TestCase`` test) does
  not stay in the cache: the next request clears what it may have cached
  (``forget_rolled_back_changes``, docs/django-affect.md §2.3).
"""

from __future__ import annotations

import json
import logging
import random  # noqa: F401 - django-affect's tests stub ``affect.utils.random``; the draw is a hash here
import threading
import time
import uuid
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.db import DatabaseError, connections, transaction
from django.db.models import F

from avsb import _native
from avsb.contrib.affect import conf
from avsb.contrib.affect.models import DEVICE_DESKTOP, DEVICE_MOBILE, DEVICE_SIMPLE, ChangeCounter, Criteria, Flag

__all__ = [
    "ALL_CRITERIA_KEY",
    "CRITERIA_FLAGS_KEY",
    "CRITERIA_GROUPS_KEY",
    "CRITERIA_KEY",
    "CRITERIA_USERS_KEY",
    "FLAG_CONFLICTS_KEY",
    "cache_criteria",
    "detect_device",
    "flag_is_affected",
    "meets_criteria",
    "notice_changes",
    "set_persist_criteria",
    "uncache_criteria",
    "uncache_flag",
]


logger = logging.getLogger("avsb.affect")


class _AffectCache:
    """The cache named by ``AFFECTED_CACHE_NAME``, looked up on each use (settings may change in
    tests). With the default, ``'default'``, it is the very backend ``django.core.cache.cache``
    reaches, so code that stubs ``cache.get`` as django-affect's tests do sees every call."""

    def __getattr__(self, name: str) -> Any:
        return getattr(caches[conf.get("AFFECTED_CACHE_NAME")], name)


cache = _AffectCache()

ALL_CRITERIA_KEY = "criteria:all"
CRITERIA_KEY = "criteria:%s"
CRITERIA_FLAGS_KEY = "criteria:%s:flags"
CRITERIA_USERS_KEY = "criteria:%s:users"
CRITERIA_GROUPS_KEY = "criteria:%s:groups"
FLAG_CONFLICTS_KEY = "flag_conflicts:%s"
# How long an invalidated key holds its null placeholder, during which cache.add cannot fill it.
PLACEHOLDER_SECONDS = 5

# django-affect's mobile tokens (docs/django-affect.md §1.3 step 10): they decide first, as documented.
_MOBILE_TOKENS = ("ipod", "iphone", "ipad", "android", "webos", "windows phone")


@lru_cache(maxsize=2048)
def _device_from_user_agent(user_agent: str) -> int:
    lowered = user_agent.lower()
    if any(token in lowered for token in _MOBILE_TOKENS):
        return DEVICE_MOBILE
    ua = _native.parse_user_agent(user_agent)
    if ua.get("mobileDevice") and not ua.get("dumbPhone"):
        return DEVICE_MOBILE
    # Feature phones: the engine's dumb phones, Opera Mini's proxy browser and J2ME phones.
    if ua.get("dumbPhone") or "opera mini" in lowered or "midp" in lowered:
        return DEVICE_SIMPLE
    return DEVICE_DESKTOP


def detect_device(request: Any) -> int:
    """``Criteria.MOBILE_DEVICE`` (phones and tablets), ``SIMPLE_DEVICE`` (feature phones, WAP
    browsers) or ``DESKTOP_DEVICE`` (anything else, no user agent included), from the user
    agent (django-affect's tokens first, then the engine's reading) and the WAP Accept type."""
    device = _device_from_user_agent(request.META.get("HTTP_USER_AGENT", "")[:1024])
    if device != DEVICE_MOBILE and "application/vnd.wap.xhtml+xml" in request.META.get("HTTP_ACCEPT", ""):
        return DEVICE_SIMPLE
    return device


def flag_is_affected(request: Any, flag_name: str) -> bool:
    """Whether the flag applies to the request (False when the middleware did not run)."""
    from avsb.contrib.affect import flag_is_affected as affected

    return affected(request, flag_name)


def _name(criteria: Any) -> str:
    """A criteria's name, from the object or the name itself (django-affect passes either)."""
    return criteria.name if isinstance(criteria, Criteria) else str(criteria)


def _hosts(text: str) -> list[str]:
    return [part.strip().lower() for part in (text or "").split(",") if part.strip()]


def _paths(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _referrer_host(request: Any) -> str | None:
    try:
        return urlparse(request.META.get("HTTP_REFERER", "")).hostname
    except ValueError:
        return None


def _request_host(request: Any) -> str:
    """The request's host name, without its port: the Host header, else the server's name."""
    host = (request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME") or "").strip().lower()
    return host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host


def meets_criteria(request: Any, criteria_name: Any) -> bool:
    """Whether the request meets the criteria (a ``Criteria`` or its name); False for a
    criteria that does not exist. The first check that matches decides."""
    forget_rolled_back_changes()
    notice_changes()
    criteria = cache.get(CRITERIA_KEY % criteria_name)
    # A criteria named "all" shares its key with the list of all criteria (django-affect's
    # keys); what that key holds is used only if it is a criteria (docs/django-affect.md §1.4.6).
    if not isinstance(criteria, Criteria):
        try:
            criteria = Criteria.objects.get(name=_name(criteria_name))
        except Criteria.DoesNotExist:
            return False
        cache_criteria(instance=criteria)

    if criteria.everyone:
        return True
    if criteria.everyone is False:
        return False

    if criteria.testing:
        name = conf.get("AFFECTED_TESTING_COOKIE") % criteria.name
        if name in request.GET:
            active = request.GET[name] == "1"
            if not hasattr(request, "affected_tests"):
                request.affected_tests = {}
            request.affected_tests[criteria_name] = active
            return active
        if name in request.COOKIES:
            return request.COOKIES[name] == "True"

    if criteria.persistent:
        cookie = request.COOKIES.get(conf.get("AFFECTED_COOKIE") % criteria.name, "")
        if cookie:
            return cookie == "True"

    user = getattr(request, "user", None)
    if user is None:
        from django.contrib.auth.models import AnonymousUser

        user = AnonymousUser()
    if criteria.authenticated and user.is_authenticated:
        return True
    if criteria.staff and user.is_staff:
        return True
    if criteria.superusers and user.is_superuser:
        return True

    referrer = _referrer_host(request)
    if criteria.referrer and referrer in _hosts(criteria.referrer):
        return True

    if criteria.entry_url:
        nonentry = [host.strip().lower() for host in conf.get("AFFECTED_NONENTRY_DOMAINS")]
        if referrer != _request_host(request) and referrer not in nonentry and request.path in _paths(criteria.entry_url):
            return True

    if criteria.query_args and isinstance(criteria.query_args, dict):
        for key, wanted in criteria.query_args.items():
            given = request.GET.get(key, "")
            if given and ((isinstance(wanted, list) and given in wanted) or wanted == given or wanted == "*"):
                return True

    if criteria.device_type and criteria.device_type == detect_device(request):
        return True

    criteria_users = cache.get(CRITERIA_USERS_KEY % criteria_name)
    if criteria_users is None:
        criteria_users = criteria.users.all()
        cache_criteria(instance=criteria)
    if user in criteria_users:
        return True

    criteria_groups = cache.get(CRITERIA_GROUPS_KEY % criteria_name)
    if criteria_groups is None:
        criteria_groups = criteria.groups.all()
        cache_criteria(instance=criteria)
    if criteria_groups:
        user_groups = user.groups.all()
        if any(group in user_groups for group in criteria_groups):
            return True

    if (criteria.percent or Decimal("0")) > 0:
        cookie = request.COOKIES.get(conf.get("AFFECTED_COOKIE") % criteria.name)
        if cookie:
            active = cookie == "True"
        else:
            active = _percent_hash(request, criteria)
        set_persist_criteria(request, criteria_name, active)
        return active
    return False


def set_persist_criteria(request: Any, criteria_name: Any, active: bool = True) -> None:
    """Remembers a criteria's answer, which the middleware writes to the ``dac_`` cookie.
    django-affect wrote only the misspelt ``request.affect_persist``, which nothing read
    (docs/django-affect.md §1.4.4); both are written here."""
    if not isinstance(getattr(request, "affected_persist", None), dict):
        request.affected_persist = {}
    request.affected_persist[criteria_name] = active
    if not hasattr(request, "affect_persist"):
        request.affect_persist = {}
    request.affect_persist[criteria_name] = active


def cache_criteria(**kwargs: Any) -> None:
    """Caches a criteria with its flags, users and groups (``cache.add``: what is cached stays
    until invalidated). As an ``m2m_changed`` receiver, only after the change (``post_*``)."""
    action = kwargs.get("action")
    if action and action not in ("post_add", "post_remove", "post_clear"):
        return
    criteria = kwargs.get("instance")
    if CRITERIA_KEY % criteria != ALL_CRITERIA_KEY:
        cache.add(CRITERIA_KEY % criteria, criteria)
    cache.add(CRITERIA_FLAGS_KEY % criteria, criteria.flags.all())
    cache.add(CRITERIA_USERS_KEY % criteria, criteria.users.all())
    cache.add(CRITERIA_GROUPS_KEY % criteria, criteria.groups.all())


def uncache_criteria(**kwargs: Any) -> None:
    """Invalidates a criteria's keys and the list of all criteria."""
    criteria = kwargs.get("instance")
    cache.set_many(
        {
            CRITERIA_KEY % criteria.name: None,
            CRITERIA_FLAGS_KEY % criteria.name: None,
            CRITERIA_USERS_KEY % criteria.name: None,
            CRITERIA_GROUPS_KEY % criteria.name: None,
            ALL_CRITERIA_KEY: None,
        },
        PLACEHOLDER_SECONDS,
    )


def uncache_flag(**kwargs: Any) -> None:
    """Invalidates a flag's conflicts and every criteria that applies it."""
    flag = kwargs.get("instance")
    cache.set(FLAG_CONFLICTS_KEY % flag.name, None, PLACEHOLDER_SECONDS)
    for criteria in flag.criteria_set.all():
        uncache_criteria(instance=criteria)


# -- percent ----------------------------------------------------------------------------------


def percent_matrix(name: str, percent: str) -> dict[str, Any]:
    """The engine test behind a criteria's percent: two buckets, ``percent`` of the hash range
    in bucket 1, salted with the criteria's name so that criteria split visitors independently."""
    share = float(Decimal(percent)) / 100.0
    test = f"affect_percent_{name}"
    return {
        "audit": {"version": "affect", "updated": 0, "updatedBy": "affect"},
        "tests": {
            test: {
                "version": "1",
                "salt": test,
                "testType": "USER",
                "description": f"affect criteria '{name}': {percent}% of visitors",
                "buckets": [{"name": "out", "value": 0}, {"name": "in", "value": 1}],
                "allocations": [{"ranges": [{"bucketValue": 1, "length": share}, {"bucketValue": 0, "length": round(1.0 - share, 12)}]}],
            }
        },
    }


@lru_cache(maxsize=256)
def _percent_evaluator(name: str, percent: str) -> _native.Evaluator:
    """The compiled ``percent_matrix``, made once per criteria name and percent."""
    evaluator = _native.Evaluator()
    evaluator._set_engine(_native.Engine.from_matrix(json.dumps(percent_matrix(name, percent))))
    return evaluator


def anonymous_id(request: Any) -> str:
    """The visitor's anonymous id: from its cookie, else a new one that the middleware sets."""
    existing = request.COOKIES.get(conf.get("AFFECTED_ID_COOKIE"), "")
    if 8 <= len(existing) <= 64 and existing.isalnum():
        return existing
    new = getattr(request, "_affect_new_id", None)
    if new is None:
        new = request._affect_new_id = uuid.uuid4().hex
    return new


def _percent_hash(request: Any, criteria: Criteria) -> bool:
    """Whether the visitor falls in the criteria's percent: the user's primary key (or an
    anonymous id) hashed by the engine, so the answer is the same on every request."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        key = f"user:{user.pk}"
    else:
        key = f"anon:{anonymous_id(request)}"
    evaluator = _percent_evaluator(criteria.name, str(criteria.percent))
    return evaluator.for_user({"kind": "user", "key": key}).get_group(f"affect_percent_{criteria.name}").value == 1


# -- changes ------------------------------------------------------------------------------------


class _Pending:
    """A change made inside a transaction: what it invalidated, and the ``on_commit`` callback
    that tells how its transaction ended."""

    def __init__(self, connection: Any, keys: list[str]) -> None:
        self.connection = connection
        self.keys = keys
        self.committed = False
        self.callback: Any = None

    def ended(self) -> bool:
        """Whether the change is settled: committed (its callback ran), or rolled back (Django
        dropped its callback, which it does for a rolled-back transaction or savepoint)."""
        if self.committed:
            return True
        return not any(entry[1] is self.callback for entry in self.connection.run_on_commit)


_pending: list[_Pending] = []
_pending_lock = threading.Lock()


def keys_of(criteria: Any) -> list[str]:
    """The cache keys that hold a criteria."""
    name = _name(criteria)
    return [CRITERIA_KEY % name, CRITERIA_FLAGS_KEY % name, CRITERIA_USERS_KEY % name, CRITERIA_GROUPS_KEY % name, ALL_CRITERIA_KEY]


def changed(keys: list[str], using: str = "default", again: Any = None) -> None:
    """Called for every change to criteria, flags or their relations, after the immediate
    invalidation: the change counter is incremented in the change's transaction (for the
    processes whose cache this one cannot reach); ``again`` (the same invalidation) runs once
    more after the commit, for the requests of other processes that cached the old rows in the
    meantime; and if the transaction (or the savepoint the change was made in) is rolled back
    instead, the next request clears ``keys``."""
    count_change(using)
    connection = connections[using]
    if not connection.in_atomic_block:
        return
    pending = _Pending(connection, keys)

    def on_commit() -> None:
        pending.committed = True
        if again is not None:
            again()

    pending.callback = on_commit
    transaction.on_commit(on_commit, using=using)
    with _pending_lock:
        _pending.append(pending)


def forget_rolled_back_changes() -> None:
    """Clears the keys of changes whose transaction ended without a commit: whatever a request
    cached while that transaction was open may hold rows that no longer exist."""
    if not _pending:
        return
    with _pending_lock:
        done = [p for p in _pending if p.ended()]
        for p in done:
            _pending.remove(p)
    keys = sorted({key for p in done if not p.committed for key in p.keys})
    if keys:
        cache.delete_many(keys)


# -- changes made in other processes ------------------------------------------------------------


def count_change(using: str = "default") -> None:
    """Increments the change counter in the current transaction (so a rolled-back change moves
    it back, and a committed one is seen with it). A counter that cannot be written (the
    migration that makes it not applied yet) is logged; the change itself goes on."""
    try:
        # A savepoint: a failed statement must not spoil the transaction of the change.
        with transaction.atomic(using=using):
            if not ChangeCounter.objects.using(using).filter(pk=1).update(count=F("count") + 1):
                ChangeCounter.objects.using(using).create(pk=1, count=1)
    except DatabaseError:
        logger.warning(
            "affect: could not count a change in the affect_changes table (run manage.py migrate): other "
            "processes see the change only through the cache",
            exc_info=True,
        )


_UNREAD = object()


class _ChangeWatch:
    """What this process last read of the change counter, and when it reads it next."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_check = 0.0
        self.count: Any = _UNREAD
        # The criteria and flag names of the last read: a name deleted since still has keys here.
        self.criteria: frozenset[str] = frozenset()
        self.flags: frozenset[str] = frozenset()
        self.warned = False


_watch = _ChangeWatch()


def notice_changes() -> None:
    """At most once every ``AFFECTED_CHANGE_CHECK_SECONDS`` per process, reads the change
    counter (one row); when it moved since the last read, a change was made, perhaps in another
    process whose invalidation never reached this process's cache, so every criteria and flag
    key gets the 5-second placeholder a change gives it (django-affect's keys and protocol,
    unchanged). Never raises."""
    # Called for every criteria of every request: the clock first, the setting only when due.
    now = time.monotonic()
    if now < _watch.next_check:
        return
    interval = conf.get("AFFECTED_CHANGE_CHECK_SECONDS")
    with _watch.lock:
        if now < _watch.next_check:
            return
        # Turned off: the setting is looked at again a second later.
        _watch.next_check = now + (1.0 if interval is None else interval)
    if interval is None:
        return
    try:
        _read_the_counter()
    except DatabaseError:
        if not _watch.warned:
            _watch.warned = True
            logger.warning(
                "affect: cannot read the change counter (the affect_changes table; run manage.py migrate): a "
                "change made in another process reaches this one only through the cache",
                exc_info=True,
            )


def _read_the_counter() -> None:
    if isinstance(caches[conf.get("AFFECTED_CACHE_NAME")], DummyCache):
        return  # nothing is cached, so nothing can be stale
    count = ChangeCounter.objects.filter(pk=1).values_list("count", flat=True).first()
    previous, _watch.count = _watch.count, count
    if previous is not _UNREAD and count == previous:
        return
    known = (_watch.criteria, _watch.flags)
    _watch.criteria = frozenset(Criteria.objects.values_list("name", flat=True))
    _watch.flags = frozenset(Flag.objects.values_list("name", flat=True))
    if previous is _UNREAD:
        return  # the first read: whatever is cached was cached after it
    placeholders: dict[str, None] = {ALL_CRITERIA_KEY: None}
    for name in known[0] | _watch.criteria:
        placeholders.update(dict.fromkeys(keys_of(name)))
    for name in known[1] | _watch.flags:
        placeholders[FLAG_CONFLICTS_KEY % name] = None
    cache.set_many(placeholders, PLACEHOLDER_SECONDS)
