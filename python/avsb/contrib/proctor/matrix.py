"""The test matrix of the defined tests, for the private views: from the local server SDK's
matrix, or from Pipet's ``/proctor/matrix``."""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from avsb.contrib.proctor import local
from avsb.contrib.proctor.api import ProctorParameters, call_proctor_matrix
from avsb.contrib.proctor.local import AUTO

__all__ = ["extract_tests", "identify_matrix"]

logger = logging.getLogger("application.proctor.matrix")


def identify_matrix(
    params: ProctorParameters, cacher: Any = None, request: Any = None, http: Any = None, server: Any = AUTO
) -> dict[str, Any]:
    """``{'audit': ..., 'tests': {test: definition, or {} if the matrix lacks it}}`` for the
    defined tests, or ``{'tests': {}}`` when there is no matrix. Never raises. (``cacher`` is
    accepted and ignored: the matrix is not cached, and django-proctor's cached path cannot work.)"""
    try:
        if server is AUTO:
            server = local.evaluator()
        if server is not None:
            engine = getattr(server, "engine", None)
            if engine is None:
                logger.warning("A vs B has no matrix yet (%r)", server)
                return extract_tests(None, params.defined_tests)
            return extract_tests(engine.matrix(), params.defined_tests)
        return extract_tests(call_proctor_matrix(params, http=http), params.defined_tests)
    except Exception:  # noqa: BLE001 - a private page must not fail on a bad matrix either
        logger.exception("the test matrix could not be read")
        return extract_tests(None, params.defined_tests)


def extract_tests(api_response: Mapping[str, Any] | None, defined_tests: Iterable[str]) -> dict[str, Any]:
    """The defined tests' definitions out of a whole matrix (``{'tests': {}}`` for ``None``)."""
    if api_response is None:
        return {"tests": {}}
    tests = api_response.get("tests") or {}
    return {"audit": api_response.get("audit"), "tests": {test: tests.get(test, {}) for test in defined_tests}}
