"""Which flags affect a request: django-affect's algorithm (docs/django-affect.md §1.3) with its documented
intent where its code was buggy.

- Every criteria is checked in name order; the first matching check of a criteria decides it
  (everyone, testing, persistent cookie, authenticated, staff, superusers, referrer, entry URL,
  query arguments, device type, users, groups, percent), and criteria are ORed.
- Only active flags apply, whatever the cache holds.
- Conflicts resolve deterministically: flags are taken by priority (highest first), then by
  name, and a flag is dropped if it conflicts with one already taken — so any number of
  conflicts is fine.
- Percent hashes a stable identifier (the user's pk, else an anonymous id kept in a cookie) with
  the engine's bucketing, and remembers the answer in the ``dac_`` cookie (percent implies
  persistent, as documented).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from avsb import _native
from avsb.contrib.affect import conf
from avsb.contrib.affect.models import DEVICE_DESKTOP, DEVICE_MOBILE, DEVICE_SIMPLE
from avsb.contrib.affect.registry import CriteriaRule, FlagRule, Snapshot, registry


@dataclass
class RequestState:
    """What one request decided that its response must remember in cookies."""

    persist: dict[str, tuple[bool, int | None]] = field(default_factory=dict)
    tests: dict[str, tuple[bool, int | None]] = field(default_factory=dict)
    new_anonymous_id: str | None = None
    scope: Any = None


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
    """``DEVICE_MOBILE`` (phones and tablets), ``DEVICE_SIMPLE`` (feature phones, WAP browsers)
    or ``DEVICE_DESKTOP``, from the user agent (django-affect's tokens first, then the engine's
    reading) and, for browsers that are not mobile, the WAP Accept type."""
    device = _device_from_user_agent(request.META.get("HTTP_USER_AGENT", "")[:1024])
    if device != DEVICE_MOBILE and "application/vnd.wap.xhtml+xml" in request.META.get("HTTP_ACCEPT", ""):
        return DEVICE_SIMPLE
    return device


def _user(request: Any) -> Any:
    user = getattr(request, "user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _referrer_host(request: Any) -> str | None:
    referrer = request.META.get("HTTP_REFERER")
    if not referrer:
        return None
    try:
        return urlparse(referrer).hostname
    except ValueError:
        return None


def _request_host(request: Any) -> str:
    host = (request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")).lower()
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


def anonymous_id(request: Any, state: RequestState) -> str:
    """The visitor's anonymous id: from its cookie, else a new one (set on the response)."""
    existing = request.COOKIES.get(conf.get("AFFECTED_ID_COOKIE"), "")
    if 8 <= len(existing) <= 64 and existing.isalnum():
        return existing
    if state.new_anonymous_id is None:
        state.new_anonymous_id = uuid.uuid4().hex
    return state.new_anonymous_id


def _percent(request: Any, criteria: CriteriaRule, snapshot: Snapshot, state: RequestState) -> bool:
    cookie = request.COOKIES.get(conf.get("AFFECTED_COOKIE") % criteria.name)
    if cookie:
        active = cookie == "True"
    elif snapshot.evaluator is None:
        active = False
    else:
        if state.scope is None:
            user = _user(request)
            key = f"user:{user.pk}" if user is not None else f"anon:{anonymous_id(request, state)}"
            state.scope = snapshot.evaluator.for_user({"kind": "user", "key": key})
        active = state.scope.get_group(criteria.percent_test).value == 1
    state.persist[criteria.name] = (active, criteria.cookie_age)
    return active


def meets_criteria(request: Any, criteria: CriteriaRule, snapshot: Snapshot, state: RequestState) -> bool:
    """Whether a request meets one criteria: the first check that matches decides."""
    if criteria.everyone is not None:
        return criteria.everyone
    if criteria.testing:
        name = conf.get("AFFECTED_TESTING_COOKIE") % criteria.name
        if name in request.GET:
            active = request.GET.get(name) == "1"
            state.tests[criteria.name] = (active, criteria.cookie_age)
            return active
        if name in request.COOKIES:
            return request.COOKIES[name] == "True"
    if criteria.persistent:
        cookie = request.COOKIES.get(conf.get("AFFECTED_COOKIE") % criteria.name)
        if cookie:
            return cookie == "True"
    if criteria.authenticated or criteria.staff or criteria.superusers:
        user = _user(request)
        if user is not None:
            if criteria.authenticated:
                return True
            if criteria.staff and user.is_staff:
                return True
            if criteria.superusers and user.is_superuser:
                return True
    if criteria.referrers and _referrer_host(request) in criteria.referrers:
        return True
    if criteria.entry_urls:
        host = _referrer_host(request)
        nonentry = {d.strip().lower() for d in conf.get("AFFECTED_NONENTRY_DOMAINS")}
        entry = host is None or (host != _request_host(request) and host not in nonentry)
        if entry and request.path in criteria.entry_urls:
            return True
    if criteria.query_args:
        for key, wanted in criteria.query_args.items():
            given = request.GET.get(key, "")
            if given and (wanted == "*" or wanted == given or (isinstance(wanted, list) and given in wanted)):
                return True
    if criteria.device_type and criteria.device_type == detect_device(request):
        return True
    if criteria.user_ids or criteria.group_ids:
        user = _user(request)
        if user is not None:
            if user.pk in criteria.user_ids:
                return True
            if criteria.group_ids and criteria.group_ids & registry.user_group_ids(snapshot, user):
                return True
    if criteria.percent > 0:
        return _percent(request, criteria, snapshot, state)
    return False


def resolve_conflicts(names: set[str], flags: dict[str, FlagRule]) -> list[str]:
    """The flags that survive their conflicts: by priority, then name; sorted by name."""
    kept: set[str] = set()
    for name in sorted(names, key=lambda n: (-flags[n].priority, n)):
        if not (flags[name].conflicts & kept):
            kept.add(name)
    return sorted(kept)


def affected_flags(request: Any, snapshot: Snapshot, state: RequestState) -> list[str]:
    """Every criteria checked, their active flags collected, conflicts resolved."""
    names: set[str] = set()
    for criteria in snapshot.criteria:
        active = meets_criteria(request, criteria, snapshot, state)
        if criteria.persistent:
            state.persist[criteria.name] = (active, criteria.cookie_age)
        if active:
            names.update(f for f in criteria.flags if f in snapshot.flags)
    return resolve_conflicts(names, snapshot.flags)
