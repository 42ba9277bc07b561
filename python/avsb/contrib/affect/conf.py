"""django-affect's settings and their defaults (docs/django-affect.md §1.2), plus ours.

| setting | default | meaning |
|---|---|---|
| ``AFFECTED_COOKIE`` | ``'dac_%s'`` | the cookie remembering a persistent (or percent) criteria's answer |
| ``AFFECTED_TESTING_COOKIE`` | ``'dact_%s'`` | the testing query argument, and the cookie remembering it |
| ``AFFECTED_NONENTRY_DOMAINS`` | ``[]`` | referrer host names that do not make a request an "entry" |
| ``AFFECTED_SECURE_COOKIE`` | ``False`` | set the cookies' ``Secure`` attribute |
| ``AFFECTED_CACHE_NAME`` | ``'default'`` | (ours) the Django cache holding criteria and flags under django-affect's keys; use a shared one (Redis, Memcached, database) so a change reaches every process |
| ``AFFECTED_HTTPONLY_COOKIE`` | ``False`` | (ours) set the ``dac_``/``dact_`` cookies' ``HttpOnly`` attribute; by default page JavaScript may read them, as with django-affect |
| ``AFFECTED_ID_COOKIE`` | ``'affect_uid'`` | (ours) the anonymous id percent criteria hash, for visitors who are not logged in |
| ``AFFECTED_ID_COOKIE_AGE`` | one year | (ours) its lifetime in seconds |
| ``AFFECTED_CHANGE_CHECK_SECONDS`` | ``1.0`` | (ours) how often, at most, each process reads the change counter (one row) to drop what its cache holds after a change made elsewhere; ``None`` turns the check off |
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "AFFECTED_COOKIE": "dac_%s",
    "AFFECTED_TESTING_COOKIE": "dact_%s",
    "AFFECTED_NONENTRY_DOMAINS": [],
    "AFFECTED_SECURE_COOKIE": False,
    "AFFECTED_CACHE_NAME": "default",
    "AFFECTED_HTTPONLY_COOKIE": False,
    "AFFECTED_ID_COOKIE": "affect_uid",
    "AFFECTED_ID_COOKIE_AGE": 365 * 24 * 60 * 60,
    "AFFECTED_CHANGE_CHECK_SECONDS": 1.0,
}


def get(name: str) -> Any:
    """A setting, or its default."""
    return getattr(settings, name, DEFAULTS[name])


def check() -> None:
    """Raises ``ImproperlyConfigured`` for settings that cannot work (at middleware start)."""
    from django.core.exceptions import ImproperlyConfigured

    for name in ("AFFECTED_COOKIE", "AFFECTED_TESTING_COOKIE"):
        value = get(name)
        if not isinstance(value, str) or value.count("%s") != 1:
            raise ImproperlyConfigured(f"{name} must be a string with one '%s' (the criteria's name), not {value!r}")
    domains = get("AFFECTED_NONENTRY_DOMAINS")
    if isinstance(domains, str) or not all(isinstance(d, str) for d in domains):
        raise ImproperlyConfigured(f"AFFECTED_NONENTRY_DOMAINS must be a list of host names, not {domains!r}")
    if not isinstance(get("AFFECTED_ID_COOKIE"), str) or not get("AFFECTED_ID_COOKIE"):
        raise ImproperlyConfigured("AFFECTED_ID_COOKIE must be a cookie name")
    interval = get("AFFECTED_CHANGE_CHECK_SECONDS")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval >= 0):
        raise ImproperlyConfigured(
            f"AFFECTED_CHANGE_CHECK_SECONDS must be a number of seconds (0 or more) or None, not {interval!r}"
        )
    from django.core.cache import caches

    try:
        caches[get("AFFECTED_CACHE_NAME")]
    except Exception as e:  # noqa: BLE001 - InvalidCacheBackendError and friends
        raise ImproperlyConfigured(f"AFFECTED_CACHE_NAME: {e}") from e
