"""``AvsbMiddleware``: a lazy, scoped ``request.avsb`` on every Django request.

    MIDDLEWARE = [
        'django.middleware.security.SecurityMiddleware',
        'avsb.contrib.wsgi.AvsbMiddleware',
        'django.contrib.sessions.middleware.SessionMiddleware',
        # ...
    ]
    AVSB_SDK_KEY = os.environ['AVSB_SDK_KEY']

``request.avsb`` stands for an :class:`avsb.Scope` of the request's context (a :class:`LazyScope`
that forwards to it). The scope is built the first time a view touches it, so middleware placed
after this one (sessions, authentication) has run by then, and a request whose view never reads a
flag costs almost nothing.

``AVSB_MIDDLEWARE_OPTIONS`` chooses the context (``context_from``), who may force groups
(``is_privileged``), the cookies (``anonymous_cookie``, ``force_groups_param``) and the server
(``server``); :mod:`avsb.contrib.conf` lists them with their defaults. A bad option raises
``ImproperlyConfigured`` when the middleware is built, never during a request.

A ``context_from`` gives logged-out visitors the per-visitor key the middleware keeps in its
anonymous cookie with :func:`avsb_anonymous_key`::

    'key': str(request.user.id) if request.user.is_authenticated else avsb_anonymous_key(request),

One constant key for them all (``'anon'``) would put every logged-out visitor in one bucket; the
middleware notices when many distinct visitors are evaluated under one key and logs a warning
once per process.

The request path never raises because of A vs B: a ``context_from`` or ``is_privileged`` that
raises is logged (the anonymous context, and no privilege, are used instead); without a server, or
before its first matrix, every flag returns the caller's default.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
import weakref
from collections.abc import Mapping
from typing import Any, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_vary_headers

from avsb import _native
from avsb.client import AvsbClient
from avsb.contrib.conf import (
    ANONYMOUS_COOKIE_MAX_AGE,
    ANONYMOUS_KEY,
    SETTING,
    MiddlewareOptions,
    ServerOption,
    check_can_make_server,
)
from avsb.server import AvsbServer, default_server

__all__ = ["AvsbMiddleware", "LazyScope", "MiddlewareOptions", "avsb_anonymous_key", "defaults_scope", "request_scope"]

logger = logging.getLogger("avsb")

# A key we made is a uuid4's hex; one from an older cookie may be any short, plain token. Anything
# else is untrusted input we do not hash: the visitor gets a new key.
_ANONYMOUS_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Evaluates with no matrix at all: every flag answers the caller's default and nothing is sent.
# It stands in wherever there is no server, so callers always get a full Scope.
_NO_SERVER = _native.Evaluator()
_NO_SERVER._configure_events(False)


def defaults_scope() -> _native.Scope:
    """A scope with no matrix behind it: every flag returns its default, ``track`` sends nothing."""
    return _NO_SERVER.for_user({"kind": "user", "key": ANONYMOUS_KEY, "anonymous": True})


def request_scope(request: HttpRequest | None) -> Any:
    """``request.avsb``, or a defaults-only scope when the middleware did not run."""
    scope = getattr(request, "avsb", None) if request is not None else None
    return scope if scope is not None else defaults_scope()


# The attribute of a request that holds the middleware's per-request state.
_STATE = "_avsb_state"
_warned_without_middleware = False


def avsb_anonymous_key(request: HttpRequest) -> str:
    """The key of a logged-out visitor, for ``context_from``: the one ``AvsbMiddleware`` keeps in
    its anonymous cookie (``avsb_anon`` for a year), so each visitor has buckets of their own
    and keeps them. A visitor without the cookie gets a new key, which the middleware sets on
    the response. Never raises::

        AVSB_MIDDLEWARE_OPTIONS = {
            'context_from': lambda request: {
                'kind': 'user',
                'key': str(request.user.id) if request.user.is_authenticated else avsb_anonymous_key(request),
            }
        }

    With ``anonymous_cookie`` set to ``None`` (no cookie), or for a request the middleware did
    not see, every visitor shares ``ANONYMOUS_KEY`` (``'anonymous'``); the latter is logged once.
    """
    state = getattr(request, _STATE, None)
    if isinstance(state, _RequestState):
        return state.anonymous_key(request)
    global _warned_without_middleware
    if not _warned_without_middleware:
        _warned_without_middleware = True
        logger.warning(
            "avsb: avsb_anonymous_key() was called for a request AvsbMiddleware did not see; such visitors "
            "share the key %r. Add 'avsb.contrib.wsgi.AvsbMiddleware' to MIDDLEWARE",
            ANONYMOUS_KEY,
        )
    return ANONYMOUS_KEY


class _SharedKeyWatch:
    """Notices a ``context_from`` that gives many distinct visitors one key (``'anon'`` for every
    logged-out visitor): they then share every bucket, which no experiment can tell. Logs a
    warning the first time one key reaches ``THRESHOLD`` visitors, once per process.

    A visitor is the anonymous cookie's value, else the client's address and user agent. Memory
    is bounded: at most ``MAX_KEYS`` keys, each with at most ``THRESHOLD`` visitors (as hashes),
    forgotten together when the table is full; a key that is its visitor's own cookie (what
    ``avsb_anonymous_key`` answers) is not counted at all."""

    THRESHOLD = 50
    MAX_KEYS = 1000

    def __init__(self) -> None:
        self.warned = False
        self._visitors: dict[str, set[int]] = {}
        self._lock = threading.Lock()

    def observe(self, request: HttpRequest, state: _RequestState, context: Mapping[str, Any]) -> None:
        # On every request that has a context_from, so kept to a few dictionary operations; the
        # interpreter lock makes each of them atomic, and only the warning itself takes a lock.
        kind = context.get("kind", "user")
        if kind == "user":
            key = context.get("key")
        elif kind == "multi":
            user = context.get("user")
            key = user.get("key") if isinstance(user, Mapping) else None
        else:
            key = context.get("key") if isinstance(kind, str) and kind.lower() == "user" else None
        if key.__class__ is not str or key == state.new_anonymous_key:
            return
        cookie = request.COOKIES.get(state.anonymous_cookie) if state.anonymous_cookie else None
        if cookie:
            if cookie == key:
                return
            visitor = hash(cookie)
        else:
            meta = request.META
            visitor = hash((meta.get("REMOTE_ADDR"), meta.get("HTTP_USER_AGENT")))
        visitors = self._visitors.get(key)
        if visitors is None:
            if len(self._visitors) >= self.MAX_KEYS:
                self._visitors.clear()
            visitors = self._visitors.setdefault(key, set())
        if len(visitors) < self.THRESHOLD:
            visitors.add(visitor)
            if len(visitors) < self.THRESHOLD:
                return
        with self._lock:
            if self.warned:
                return
            self.warned = True
            self._visitors.clear()
        shown = key if len(key) <= 40 else key[:40] + "..."
        logger.warning(
            "avsb: %d different visitors were evaluated with the one key %r from %s['context_from'], so they "
            "all share every bucket and an experiment counts them as one user. Give logged-out visitors the key "
            "the middleware keeps in its cookie: 'key': str(request.user.id) if request.user.is_authenticated "
            "else avsb_anonymous_key(request) (from avsb.contrib.wsgi import avsb_anonymous_key). "
            "Logged once per process",
            self.THRESHOLD,
            shown,
            SETTING,
        )


_shared_keys = _SharedKeyWatch()


class _ServerSource:
    """Finds the evaluator once per need: the configured one, the process's default server, or
    one made on the first request. Thread-safe; never raises."""

    def __init__(self, configured: ServerOption) -> None:
        self._given: AvsbClient | None = configured if isinstance(configured, _native.Evaluator) else None
        self._factory: Callable[[], AvsbClient] | None = None
        if configured is not None and self._given is None:
            self._factory = configured
        self._server: AvsbClient | None = None
        self._gave_up = False
        self._lock = threading.Lock()

    def get(self) -> AvsbClient | _native.Evaluator:
        if self._given is not None:
            return self._given
        if self._factory is not None:
            return self._from_factory()
        server = default_server()
        if server is not None:
            # Kept, so that after the app closes it (atexit) flags still answer from its last matrix
            # instead of a new server being started during shutdown.
            self._server = server
            return server
        if self._server is not None:
            return self._server
        return self._make()

    def _from_factory(self) -> AvsbClient | _native.Evaluator:
        if self._server is not None:
            return self._server
        with self._lock:
            if self._server is None and not self._gave_up:
                try:
                    server = self._factory()
                except Exception:  # noqa: BLE001 - a broken factory must not break requests
                    logger.exception("avsb: %s['server'] raised; flags return their defaults", SETTING)
                    self._gave_up = True
                else:
                    if isinstance(server, _native.Evaluator):
                        self._server = server
                    else:
                        logger.error(
                            "avsb: %s['server'] returned %s, not an AvsbServer; flags return their defaults",
                            SETTING,
                            type(server).__name__,
                        )
                        self._gave_up = True
        return self._server if self._server is not None else _NO_SERVER

    def _make(self) -> AvsbClient | _native.Evaluator:
        with self._lock:
            if self._server is None and not self._gave_up:
                try:
                    self._server = default_server() or AvsbServer()
                except Exception:  # noqa: BLE001 - e.g. a setting removed after start
                    logger.exception("avsb: could not create an AvsbServer; flags return their defaults")
                    self._gave_up = True
        return self._server if self._server is not None else _NO_SERVER


class LazyScope:
    """``request.avsb``: builds the request's :class:`avsb.Scope` on first use, then forwards
    every attribute to it (``request.avsb.get_bool_flag(...)``, ``request.avsb.track(...)``).

    Django's ``SimpleLazyObject`` would do, but it costs about 2 us per attribute read, several
    times what a flag evaluation costs; this forwards in a fraction of that.
    """

    __slots__ = ("_build", "_scope")

    def __init__(self, build: Callable[[], _native.Scope]) -> None:
        self._build: Callable[[], _native.Scope] | None = build
        self._scope: _native.Scope | None = None

    def __getattr__(self, name: str) -> Any:
        # Only called for names LazyScope itself lacks, i.e. everything a Scope offers. Private and
        # special names are not forwarded: copy, pickle and the like must not build the scope.
        if name[:1] == "_":
            raise AttributeError(name)
        scope = self._scope
        if scope is None:
            scope = self._resolve()
        return getattr(scope, name)

    def _resolve(self) -> _native.Scope:
        build, self._build = self._build, None
        scope = build() if build is not None else defaults_scope()
        self._scope = scope
        return scope

    @property
    def is_evaluated(self) -> bool:
        """Whether the scope has been built (a view or template read a flag)."""
        return self._scope is not None

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | set(dir(_native.Scope)))

    def __repr__(self) -> str:
        return f"<LazyScope {self._scope!r}>" if self._scope is not None else "<LazyScope (not evaluated)>"


class _RequestState:
    """What one request's evaluation decided, for the response."""

    __slots__ = ("anonymous_cookie", "new_anonymous_key", "reads_cookies", "privileged")

    def __init__(self, anonymous_cookie: str | None) -> None:
        self.anonymous_cookie = anonymous_cookie
        self.new_anonymous_key: str | None = None
        self.reads_cookies = False
        self.privileged: bool | None = None

    def anonymous_key(self, request: HttpRequest) -> str:
        """The visitor's key from the anonymous cookie, or a new one the response will set."""
        name = self.anonymous_cookie
        if name is None:
            return ANONYMOUS_KEY
        self.reads_cookies = True
        if self.new_anonymous_key is not None:
            return self.new_anonymous_key
        key = request.COOKIES.get(name)
        if key is None or not _ANONYMOUS_KEY_RE.fullmatch(key):
            key = self.new_anonymous_key = uuid.uuid4().hex
        return key


class AvsbMiddleware:
    """Puts a lazy ``request.avsb`` (an :class:`avsb.Scope`) on each request; sync and async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        if get_response is None:
            raise ValueError("get_response must be provided.")
        self.get_response = get_response
        self.options = MiddlewareOptions.from_settings()
        server = self.options.server if self.options.server is not None else default_server()
        if server is None:
            check_can_make_server()
        elif isinstance(server, AvsbServer):
            # The application is about to serve requests: the first matrix is awaited here, if an
            # AppConfig.ready() asked for it (AvsbServer.on_ready_sync), rather than in every
            # management command.
            server.before_serving()
        self._servers = _ServerSource(self.options.server)
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        state = self._attach(request)
        response = self.get_response(request)
        self._finish(request, state, response)
        return response

    async def __acall__(self, request: HttpRequest) -> Any:
        # Attaching and finishing do no I/O, so they run on the event loop as they are.
        state = self._attach(request)
        response = await self.get_response(request)
        self._finish(request, state, response)
        return response

    # -- the request -------------------------------------------------------------------------

    def _attach(self, request: HttpRequest) -> _RequestState:
        state = _RequestState(self.options.anonymous_cookie)
        setattr(request, _STATE, state)
        # A weak reference: a closure over the request itself would make every request a
        # reference cycle, freed only by the garbage collector.
        request_ref = weakref.ref(request)
        request.avsb = LazyScope(lambda: self._scope(request_ref(), state))
        return state

    def _scope(self, request: HttpRequest | None, state: _RequestState) -> _native.Scope:
        """Builds ``request.avsb`` the first time a view reads it. Never raises."""
        if request is None:
            return defaults_scope()
        try:
            server = self._servers.get()
            context = self._context(request, state)
            force_groups = self._force_groups(request, state)
            if force_groups:
                return server.for_user(context, force_groups=force_groups)
            return server.for_user(context)
        except Exception:  # noqa: BLE001 - the request path never raises because of us
            logger.exception("avsb: could not build request.avsb; flags return their defaults")
            return defaults_scope()

    def _context(self, request: HttpRequest, state: _RequestState) -> Mapping[str, Any]:
        context_from = self.options.context_from
        if context_from is not None:
            try:
                context = context_from(request)
            except SynchronousOnlyOperation:
                logger.exception(
                    "avsb: %s['context_from'] used the database from async code (request.user loads lazily in "
                    "an async view); using the anonymous context. Read request.avsb from a sync view, or give "
                    "a context_from that does not touch the database",
                    SETTING,
                )
            except Exception:  # noqa: BLE001 - the application's bug must not fail the page
                logger.exception("avsb: %s['context_from'] raised; using the anonymous context", SETTING)
            else:
                if isinstance(context, Mapping):
                    if not _shared_keys.warned:
                        try:
                            _shared_keys.observe(request, state, context)
                        except Exception:  # noqa: BLE001 - a watch must never fail the page
                            logger.exception("avsb: could not check the context's key")
                    return context
                logger.error(
                    "avsb: %s['context_from'] must return a dict like {'kind': 'user', 'key': ...}, not %s; "
                    "using the anonymous context",
                    SETTING,
                    type(context).__name__,
                )
        return self._anonymous_context(request, state)

    def _anonymous_context(self, request: HttpRequest, state: _RequestState) -> dict[str, Any]:
        return {"kind": "user", "key": state.anonymous_key(request), "anonymous": True}

    def _force_groups(self, request: HttpRequest, state: _RequestState) -> str | None:
        if not self._privileged(request, state):
            return None
        param = self.options.force_groups_param
        value = request.GET.get(param)
        if value is None:
            value = request.COOKIES.get(param)
            if value is not None:
                state.reads_cookies = True
        return value or None

    def _privileged(self, request: HttpRequest, state: _RequestState) -> bool:
        if state.privileged is None:
            check = self.options.is_privileged
            state.privileged = False
            if check is not None:
                try:
                    state.privileged = bool(check(request))
                except Exception:  # noqa: BLE001 - an unknown privilege is no privilege
                    logger.exception("avsb: %s['is_privileged'] raised; the request is not privileged", SETTING)
        return state.privileged

    # -- the response ------------------------------------------------------------------------

    def _finish(self, request: HttpRequest, state: _RequestState, response: HttpResponseBase) -> None:
        try:
            if state.new_anonymous_key is not None:
                response.set_cookie(
                    self.options.anonymous_cookie,
                    state.new_anonymous_key,
                    max_age=ANONYMOUS_COOKIE_MAX_AGE,
                    samesite="Lax",
                    httponly=True,
                    secure=request.is_secure(),
                )
            if state.reads_cookies:
                # The flags (and so possibly the page) depend on the visitor's cookies.
                patch_vary_headers(response, ("Cookie",))
            param = self.options.force_groups_param
            if (
                self.options.is_privileged is not None
                and request.META.get("QUERY_STRING")
                and param in request.GET
                and self._privileged(request, state)
            ):
                # As django-proctor does: a session cookie, so that forcing survives clicks.
                response.set_cookie(param, request.GET[param], samesite="Lax", httponly=True, secure=request.is_secure())
        except Exception:  # noqa: BLE001 - a cookie we cannot set must not fail the page
            logger.exception("avsb: could not set A vs B cookies on the response")
