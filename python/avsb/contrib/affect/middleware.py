"""``AffectMiddleware``: sets ``request.affected_flags`` on every request, and on the response the
cookies that remember persistent, percent and testing answers (docs/django-affect.md §1.3).

django-affect's algorithm and cache keys, with its documented intent where its code was buggy
(docs/django-affect.md §1.4): an inactive flag never applies, whatever the cache holds; conflicts resolve the same way
whatever the order (highest priority first, then name), and any number of them is fine.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.encoding import smart_str

from avsb.contrib.affect import conf, overrides
from avsb.contrib.affect.models import Criteria
from avsb.contrib.affect.utils import (
    ALL_CRITERIA_KEY,
    CRITERIA_FLAGS_KEY,
    FLAG_CONFLICTS_KEY,
    cache,
    cache_criteria,
    forget_rolled_back_changes,
    meets_criteria,
    notice_changes,
)

__all__ = ["AffectMiddleware", "meets_criteria"]

logger = logging.getLogger("avsb.affect")


class AffectMiddleware(MiddlewareMixin):
    """Add after ``AuthenticationMiddleware`` (criteria read ``request.user``).

    As with django-affect, it may be built without ``get_response`` to call ``process_request``
    and ``process_response`` directly (a test's way); Django 4+ refuses that for middleware in a
    chain, so the mixin's constructor is skipped then."""

    def __init__(self, get_response: Any = None) -> None:
        conf.check()
        if get_response is None:
            self.get_response = None
            self.async_mode = False
        else:
            super().__init__(get_response)

    def process_request(self, request: Any) -> None:
        request.affected_persist = {}
        try:
            forget_rolled_back_changes()
            notice_changes()
            flags = self.affected_flags(request)
        except Exception:  # noqa: BLE001 - a request is never broken by flags
            logger.exception("affect: evaluating criteria failed; no flags for this request")
            flags = []
        request.affected_flags = overrides.apply(flags)

    def affected_flags(self, request: Any) -> list[str]:
        """Every criteria checked (the persistent ones' answers kept for the cookie), the
        active flags of those met collected, conflicts resolved; sorted by name."""
        flags: dict[str, Any] = {}
        all_criteria = cache.get(ALL_CRITERIA_KEY)
        # The key of a criteria named "all" too, which is never cached there (docs/django-affect.md §1.4.6).
        if all_criteria is None or isinstance(all_criteria, Criteria):
            all_criteria = Criteria.objects.all()
            cache.add(ALL_CRITERIA_KEY, all_criteria)
        for criteria in all_criteria:
            active = meets_criteria(request, criteria)
            if criteria.persistent:
                request.affected_persist[criteria] = active
            if active:
                criteria_flags = cache.get(CRITERIA_FLAGS_KEY % criteria.name)
                if criteria_flags is None:
                    criteria_flags = criteria.flags.filter(active=True)
                    cache_criteria(instance=criteria)
                # The cache holds every flag of the criteria, active or not (docs/django-affect.md §1.4.1).
                for flag in criteria_flags:
                    if flag.active:
                        flags[flag.name] = flag

        # Each flag's active conflicts of at least its priority, as django-affect caches them;
        # together they name every conflicting pair among the flags present.
        conflicts: dict[str, set[str]] = {name: set() for name in flags}
        for name, flag in flags.items():
            flag_conflicts = cache.get(FLAG_CONFLICTS_KEY % name)
            if flag_conflicts is None:
                flag_conflicts = flag.conflicts.filter(active=True, priority__gte=flag.priority)
                cache.add(FLAG_CONFLICTS_KEY % name, flag_conflicts)
            for other in flag_conflicts:
                if other.name in flags and other.name != name:
                    conflicts[name].add(other.name)
                    conflicts[other.name].add(name)
        return resolve_conflicts(flags, conflicts)

    def process_response(self, request: Any, response: Any) -> Any:
        secure = bool(conf.get("AFFECTED_SECURE_COOKIE"))
        # JavaScript may read the cookies, as django-affect lets it, unless the site asks otherwise.
        extra = {"httponly": True} if conf.get("AFFECTED_HTTPONLY_COOKIE") else {}
        set_any = False
        for setting, answers in (
            ("AFFECTED_COOKIE", getattr(request, "affected_persist", None)),
            ("AFFECTED_TESTING_COOKIE", getattr(request, "affected_tests", None)),
        ):
            for criteria, active in (answers or {}).items():
                name, age = _cookie_of(criteria)
                response.set_cookie(smart_str(conf.get(setting) % name), value=active, max_age=age, secure=secure, **extra)
                set_any = True
        new_id = getattr(request, "_affect_new_id", None)
        if new_id is not None:
            response.set_cookie(
                conf.get("AFFECTED_ID_COOKIE"),
                new_id,
                max_age=conf.get("AFFECTED_ID_COOKIE_AGE"),
                secure=secure,
                httponly=True,
                samesite="Lax",
            )
            set_any = True
        if set_any:
            patch_vary_headers(response, ("Cookie",))
        return response


def _cookie_of(criteria: Any) -> tuple[str, int | None]:
    """A criteria's name and cookie lifetime (``None``, a browser-session cookie, for 0 or
    blank). The answers are keyed by the ``Criteria``; a name (``set_persist_criteria`` called
    with one) is looked up."""
    if not isinstance(criteria, Criteria):
        name = str(criteria)
        found = Criteria.objects.filter(name=name).only("max_cookie_age").first()
        return name, (found.max_cookie_age or None) if found is not None else None
    return criteria.name, criteria.max_cookie_age or None


def resolve_conflicts(flags: dict[str, Any], conflicts: dict[str, set[str]]) -> list[str]:
    """The flags that survive their conflicts, sorted by name: taken by priority (highest
    first), then name, each dropped if it conflicts with one already taken. The same answer
    whatever the order the flags came in (docs/django-affect.md §1.4.2, §1.4.3)."""
    kept: set[str] = set()
    for name in sorted(flags, key=lambda n: (-flags[n].priority, n)):
        if not (conflicts.get(name, set()) & kept):
            kept.add(name)
    return sorted(kept)
