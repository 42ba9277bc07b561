"""``AffectMiddleware``: sets ``request.affected_flags`` on every request and the cookies that
remember persistent, percent and testing answers on the response."""

from __future__ import annotations

import logging
from typing import Any

from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin

from avsb.contrib.affect import conf, overrides
from avsb.contrib.affect.evaluate import RequestState, affected_flags
from avsb.contrib.affect.registry import registry

logger = logging.getLogger("avsb.affect")


class AffectMiddleware(MiddlewareMixin):
    """Add after ``AuthenticationMiddleware`` (criteria read ``request.user``)."""

    def __init__(self, get_response: Any) -> None:
        conf.check()
        super().__init__(get_response)

    def process_request(self, request: Any) -> None:
        state = RequestState()
        request._affect_state = state
        try:
            flags = affected_flags(request, registry.current(), state)
        except Exception:  # noqa: BLE001 - a request is never broken by flags
            logger.exception("affect: evaluating criteria failed; no flags for this request")
            flags = []
        request.affected_flags = overrides.apply(flags)
        request.affected_persist = {name: active for name, (active, _) in state.persist.items()}
        request.affected_tests = {name: active for name, (active, _) in state.tests.items()}

    def process_response(self, request: Any, response: Any) -> Any:
        state: RequestState | None = getattr(request, "_affect_state", None)
        if state is None:
            return response
        secure = bool(conf.get("AFFECTED_SECURE_COOKIE"))
        cookie = conf.get("AFFECTED_COOKIE")
        testing_cookie = conf.get("AFFECTED_TESTING_COOKIE")
        for name, (active, age) in state.persist.items():
            response.set_cookie(cookie % name, str(active), max_age=age, secure=secure, httponly=True, samesite="Lax")
        for name, (active, age) in state.tests.items():
            response.set_cookie(testing_cookie % name, str(active), max_age=age, secure=secure, httponly=True, samesite="Lax")
        if state.new_anonymous_id is not None:
            response.set_cookie(
                conf.get("AFFECTED_ID_COOKIE"),
                state.new_anonymous_id,
                max_age=conf.get("AFFECTED_ID_COOKIE_AGE"),
                secure=secure,
                httponly=True,
                samesite="Lax",
            )
        if state.persist or state.tests or state.new_anonymous_id is not None:
            patch_vary_headers(response, ("Cookie",))
        return response
