"""Caches of Pipet's answers (``PROCTOR_CACHE_METHOD = 'cache'`` or ``'session'``), with
django-proctor's invalidation: an entry is used only while the matrix version it was computed
for is still the latest one seen (``data.audit.version``, refreshed by a Pipet call at least every
5 minutes) and only for the very same request to Pipet.

Local evaluation never uses a cache: it costs less than reading one.
"""

from __future__ import annotations

import logging
import string
import threading
import time
from typing import Any, Mapping

import django.core.cache

from avsb.contrib.proctor import groups
from avsb.contrib.proctor.api import ProctorParameters

__all__ = ["CacheCacher", "Cacher", "SessionCacher"]

logger = logging.getLogger("application.proctor.cache")

VERSION_TIMEOUT_SECONDS = 5 * 60


def _fingerprint(params: ProctorParameters) -> dict[str, Any]:
    """What an entry must match: the Pipet root and the exact query sent. (Stored in this text
    form, so any context value a site passes survives a JSON session and compares equal.)"""
    return {"api_root": params.api_root, "query": [list(pair) for pair in params.query()]}


class Cacher:
    """Stores ``{test: GroupAssignment}`` per request parameters; subclasses say where."""

    def __init__(self, version_timeout_seconds: float | None = None) -> None:
        self.version_timeout_seconds = (
            VERSION_TIMEOUT_SECONDS if version_timeout_seconds is None else version_timeout_seconds
        )

    def get(self, request: Any, params: ProctorParameters, allow_expired: bool = False) -> dict | None:
        """The cached groups for ``params``, or ``None`` if absent or no longer valid (a stale
        entry is deleted)."""
        latest = self._get_latest_version()
        if latest is None:
            logger.debug("Proctor cache MISS (no current matrix version)")
            return None
        entry = self._get_cache_dict(request, params)
        if not isinstance(entry, Mapping):
            logger.debug("Proctor cache MISS (absent)")
            return None
        if entry.get("matrix_version") != latest or entry.get("params") != _fingerprint(params):
            logger.debug("Proctor cache MISS (invalidated)")
            self._del_cache_dict(request, params)
            return None
        try:
            cached = {test: groups.GroupAssignment(*value) for test, value in entry["group_dict"].items()}
        except (KeyError, TypeError, AttributeError):
            self._del_cache_dict(request, params)
            return None
        logger.debug("Proctor cache HIT")
        return cached

    def set(self, request: Any, params: ProctorParameters, group_dict: Mapping[str, Any], api_response: Mapping[str, Any]) -> None:
        """Caches the groups of one successful Pipet answer (not if it names no matrix version)."""
        version = self.update_matrix_version(api_response)
        if version is None:
            return
        entry = {
            # Plain lists, so that JSON sessions store them as they are.
            "group_dict": {test: list(assignment) for test, assignment in group_dict.items()},
            "params": _fingerprint(params),
            "matrix_version": version,
        }
        self._set_cache_dict(request, params, entry)
        logger.debug("Proctor cache SET")

    def update_matrix_version(self, api_response: Mapping[str, Any]) -> str | None:
        """Records the matrix version of a Pipet answer as the latest seen; returns it."""
        try:
            version = api_response["data"]["audit"]["version"]
        except (KeyError, TypeError):
            logger.warning("Proctor API answer has no data.audit.version; not caching it")
            return None
        if version != self._get_latest_version():
            logger.debug("Proctor test matrix version changed to %s.", version)
        self._set_latest_version(version)
        return version

    # -- storage, per subclass ------------------------------------------------------------

    def _get_cache_dict(self, request: Any, params: ProctorParameters) -> Any:
        raise NotImplementedError

    def _set_cache_dict(self, request: Any, params: ProctorParameters, cache_dict: dict) -> None:
        raise NotImplementedError

    def _del_cache_dict(self, request: Any, params: ProctorParameters) -> None:
        raise NotImplementedError

    def _get_latest_version(self) -> str | None:
        raise NotImplementedError

    def _set_latest_version(self, version: str) -> None:
        raise NotImplementedError


class SessionCacher(Cacher):
    """Caches in the user's session (needs Django's SessionMiddleware before the proctor
    middleware). The latest matrix version is kept per process."""

    session_key = "proctorcache"

    def __init__(self, version_timeout_seconds: float | None = None) -> None:
        super().__init__(version_timeout_seconds)
        self._lock = threading.Lock()
        self.seen_matrix_version: str | None = None
        self.version_expiry_time = time.monotonic()

    def get(self, request: Any, params: ProctorParameters, allow_expired: bool = False) -> dict | None:
        if allow_expired:
            # Pipet failed: keep trusting the version we saw rather than leave users unassigned.
            with self._lock:
                self.version_expiry_time = time.monotonic() + self.version_timeout_seconds
        return super().get(request, params)

    def _session(self, request: Any) -> Any:
        session = getattr(request, "session", None)
        if session is None:
            logger.warning("PROCTOR_CACHE_METHOD = 'session' needs SessionMiddleware before the proctor middleware")
        return session

    def _get_cache_dict(self, request: Any, params: ProctorParameters) -> Any:
        session = self._session(request)
        return session.get(self.session_key) if session is not None else None

    def _set_cache_dict(self, request: Any, params: ProctorParameters, cache_dict: dict) -> None:
        session = self._session(request)
        if session is not None:
            session[self.session_key] = cache_dict

    def _del_cache_dict(self, request: Any, params: ProctorParameters) -> None:
        session = self._session(request)
        if session is not None:
            session.pop(self.session_key, None)

    def _get_latest_version(self) -> str | None:
        with self._lock:
            if time.monotonic() >= self.version_expiry_time:
                return None
            return self.seen_matrix_version

    def _set_latest_version(self, version: str) -> None:
        with self._lock:
            self.seen_matrix_version = version
            self.version_expiry_time = time.monotonic() + self.version_timeout_seconds


class CacheCacher(Cacher):
    """Caches in a Django cache (``PROCTOR_CACHE_NAME``), keyed by the identifiers; entries
    live as long as the cache's default timeout."""

    # Memcached refuses spaces and control characters; ':' and '|' structure the key.
    _VALID_KEY_CHARS = frozenset(string.ascii_letters + string.digits + string.punctuation) - frozenset(":|")

    def __init__(self, cache_name: str | None = None, version_timeout_seconds: float | None = None) -> None:
        super().__init__(version_timeout_seconds)
        # An unknown alias raises InvalidCacheBackendError (an ImproperlyConfigured) at start.
        self.cache = django.core.cache.caches[cache_name or "default"]

    def _get_cache_dict(self, request: Any, params: ProctorParameters) -> Any:
        return self.cache.get(self._get_cache_key(params))

    def _set_cache_dict(self, request: Any, params: ProctorParameters, cache_dict: dict) -> None:
        self.cache.set(self._get_cache_key(params), cache_dict)

    def _del_cache_dict(self, request: Any, params: ProctorParameters) -> None:
        self.cache.delete(self._get_cache_key(params))

    def _get_latest_version(self) -> str | None:
        return self.cache.get(self._get_cache_version_key())

    def _set_latest_version(self, version: str) -> None:
        self.cache.set(self._get_cache_version_key(), version, timeout=self.version_timeout_seconds)

    def _get_cache_key(self, params: ProctorParameters) -> str:
        """``proc:`` and the identifier values in key order, joined by ``|``."""
        values = (str(value) for _, value in sorted(params.identifier_dict.items(), key=lambda kv: str(kv[0])))
        cleaned = "|".join("".join(c for c in value if c in self._VALID_KEY_CHARS) for value in values)
        return f"{self._get_cache_prefix()}:{cleaned}"

    def _get_cache_prefix(self) -> str:
        return "proc"

    def _get_cache_version_key(self) -> str:
        return self._get_cache_prefix() + "version"
