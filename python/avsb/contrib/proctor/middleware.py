"""``BaseProctorMiddleware``: subclass it, as with django-proctor, to say who the user is.

    class ProctorMiddleware(BaseProctorMiddleware):
        def get_identifiers(self, request):
            return {"USER": request.COOKIES.get("uid", "anon")}

        def get_context(self, request):
            return {"country": geoip_country(request), "loggedIn": request.user.is_authenticated}

        def is_privileged(self, request):
            return request.user.is_staff

Every request gets ``request.proc`` (see ``groups``). Privileged requests may force groups with
``?prforceGroups=buttoncolortst2,othertest0``, which is then kept in a session cookie.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.deprecation import MiddlewareMixin

from avsb.client import AvsbClient
from avsb.contrib.proctor import cache, conf, constants, groups, identify, local
from avsb.contrib.proctor.api import ProctorParameters

__all__ = ["BaseProctorMiddleware"]

logger = logging.getLogger("application.proctor.middleware")

# Set on each request: whether the middleware found it privileged (the private views use it
# when the site does not set `request.is_privileged` itself).
PRIVILEGED_ATTRIBUTE = "_proctor_is_privileged"


class BaseProctorMiddleware(MiddlewareMixin):
    """Puts ``request.proc`` on every request; override ``get_identifiers`` (required),
    ``get_context``, ``is_privileged`` and, if needed, ``get_avsb_server``, ``get_cacher``,
    ``get_http`` and ``is_lazy``.

    Configuration is checked here, when Django loads the middleware: ``PROCTOR_TESTS`` must be a
    list or tuple, ``PROCTOR_CACHE_METHOD`` one of ``None``/``'cache'``/``'session'``, and either
    an A vs B server SDK or ``PROCTOR_API_ROOT`` must be configured. Requests never raise.
    """

    def __init__(self, get_response: Any = None) -> None:
        if get_response is None:
            # Built outside a middleware chain, as django-proctor's own tests build it, to call
            # process_request and process_response directly; Django 4+ refuses None, so the
            # mixin's constructor is skipped. Such an instance cannot be called as middleware.
            self.get_response = None
            self.async_mode = False
        else:
            super().__init__(get_response)
        if type(self).get_identifiers is BaseProctorMiddleware.get_identifiers:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} must override get_identifiers(request): "
                "BaseProctorMiddleware is a base class"
            )
        conf.defined_tests()
        self.cacher = self.get_cacher()
        # Starts the server SDK now (when this process makes one), so that its matrix is there
        # by the first request.
        if self.get_avsb_server() is None and not conf.api_root():
            raise ImproperlyConfigured(
                "Proctor groups need a source: set AVSB_SDK_KEY (and AVSB_BASE_URL) to evaluate "
                "locally with A vs B, or PROCTOR_API_ROOT to call a Pipet API"
            )

    def process_request(self, request: Any) -> None:
        """Assigns ``request.proc`` (evaluated now, or on first use when lazy)."""
        privileged = bool(self.is_privileged(request))
        setattr(request, PRIVILEGED_ATTRIBUTE, privileged)
        params = ProctorParameters(
            api_root=conf.api_root(),
            defined_tests=self._defined_tests(),
            context_dict=self.get_context(request),
            identifier_dict=self.get_identifiers(request),
            force_groups=self._get_force_groups(request, privileged),
        )
        try:
            server = self.get_avsb_server()
        except Exception:  # noqa: BLE001 - the request path never raises
            logger.exception("the A vs B server SDK is not available; every test is unassigned")
            request.proc = groups.ProctorGroups(groups.unassigned_groups(params.defined_tests))
            return None
        request.proc = identify.identify_groups(
            params,
            cacher=self.cacher,
            request=request,
            lazy=self.is_lazy(),
            http=self.get_http() if server is None else None,
            server=server,
        )
        return None

    def process_response(self, request: Any, response: Any) -> Any:
        """Keeps a privileged request's ``?prforceGroups=`` in a cookie for the browser session
        (Django quotes it; it reads back as sent)."""
        # Privilege first, as django-proctor asks: a request that is not privileged is not read.
        if self.is_privileged(request) and constants.PROP_NAME_FORCE_GROUPS in request.GET:
            response.set_cookie(constants.PROP_NAME_FORCE_GROUPS, value=request.GET[constants.PROP_NAME_FORCE_GROUPS])
        return response

    # -- hooks ---------------------------------------------------------------------------

    def get_identifiers(self, request: Any) -> dict[str, Any]:
        """The request's identifiers by Pipet *source key*, e.g. ``{"USER": uid, "account": 42}``;
        at least one is needed for any test to be assigned. ``None`` values are left out."""
        raise NotImplementedError("get_identifiers must be overridden.")

    def get_context(self, request: Any) -> dict[str, Any]:
        """The request's context variables by source key, e.g. ``{"country": "US"}`` (default
        none: the schema's defaults apply)."""
        return {}

    def is_privileged(self, request: Any) -> bool:
        """Whether ``prforceGroups`` from this request's query or cookie may force groups (default
        never). Typically staff users, or an office network."""
        return False

    def get_avsb_server(self) -> AvsbClient | None:
        """The A vs B server SDK that evaluates locally, or ``None`` to call the Pipet API at
        ``PROCTOR_API_ROOT`` (default: ``local.evaluator()``, which reads ``PROCTOR_AVSB_SERVER``,
        then ``avsb.default_server()``, then makes one from ``AVSB_SDK_KEY``)."""
        return local.evaluator()

    def get_cacher(self) -> Any:
        """The cache of Pipet answers that ``PROCTOR_CACHE_METHOD`` asks for, or ``None``. (Local
        evaluation costs less than a cache read, so it never uses one.)"""
        method = conf.cache_method()
        if method == "session":
            return cache.SessionCacher()
        if method == "cache":
            return cache.CacheCacher(conf.cache_name())
        return None

    def is_lazy(self) -> bool:
        """Whether ``request.proc`` waits for its first use (``PROCTOR_LAZY``)."""
        return conf.lazy()

    def get_http(self) -> Any:
        """A ``requests.Session`` (or anything with its ``get(url, params=, timeout=)``) for Pipet
        calls, or ``None`` for ``api.requests`` (this package's connection pool). Called per request, and only
        when groups come from Pipet."""
        return None

    # -- helpers -------------------------------------------------------------------------

    def _defined_tests(self) -> list[str]:
        try:
            return conf.defined_tests()
        except ImproperlyConfigured:
            # Checked at start; a setting broken since (override_settings) must not fail requests.
            logger.exception("PROCTOR_TESTS is not usable; no tests are defined")
            return []

    def _get_force_groups(self, request: Any, privileged: bool | None = None) -> str | None:
        """For a privileged request, the ``prforceGroups`` of the query, else of the cookie;
        otherwise ``None``."""
        if privileged is None:
            privileged = self.is_privileged(request)
        if not privileged:
            return None
        name = constants.PROP_NAME_FORCE_GROUPS
        if name in request.GET:
            return request.GET[name]
        if name in request.COOKIES:
            return request.COOKIES[name]
        return None
