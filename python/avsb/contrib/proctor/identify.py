"""Turning one request's parameters into its groups: locally, or from Pipet (with the cache)."""

from __future__ import annotations

import logging
from typing import Any

from avsb.contrib.proctor import api, conf, groups, local
from avsb.contrib.proctor import lazy as lazy_groups
from avsb.contrib.proctor.api import ProctorParameters
from avsb.contrib.proctor.local import AUTO

__all__ = ["AUTO", "identify_groups", "load_group_dict", "proc_by_accountid"]

logger = logging.getLogger("application.proctor.identify")


def identify_groups(
    params: ProctorParameters,
    cacher: Any = None,
    request: Any = None,
    lazy: bool = False,
    http: Any = None,
    server: Any = AUTO,
) -> groups.ProctorGroups:
    """The ``ProctorGroups`` of ``params`` (a ``LazyProctorGroups`` that evaluates when first
    read, if ``lazy``). ``server``: the server SDK that evaluates locally, ``None`` to ask the
    Pipet API at ``params.api_root`` (through ``cacher`` and ``http``), or ``AUTO``."""
    if lazy:
        return lazy_groups.LazyProctorGroups(params, cacher, request, http, server=server)
    return groups.ProctorGroups(load_group_dict(params, cacher, request, http, server=server))


def load_group_dict(
    params: ProctorParameters, cacher: Any = None, request: Any = None, http: Any = None, server: Any = AUTO
) -> dict[str, groups.GroupAssignment]:
    """``{test: GroupAssignment}`` for every defined test. Never raises."""
    try:
        if server is AUTO:
            server = local.evaluator()
        if server is not None:
            return local.evaluate(server, params)
        return _from_pipet(params, cacher, request, http)
    except Exception:  # noqa: BLE001 - the request path never raises
        logger.exception("Proctor groups could not be loaded; every test is unassigned")
        return groups.unassigned_groups(params.defined_tests)


def _from_pipet(params: ProctorParameters, cacher: Any, request: Any, http: Any) -> dict[str, groups.GroupAssignment]:
    if cacher is not None:
        cached = _cache_call(cacher.get, request, params)
        if cached is not None:
            return cached
    # Through the module, so that a test's mock.patch("proctor.api.call_proctor_identify") applies.
    api_response = api.call_proctor_identify(params, http=http)
    if api_response is None:
        # Pipet failed: an entry cached for an older matrix beats no groups at all.
        stale = _cache_call(cacher.get, request, params, allow_expired=True) if cacher is not None else None
        return stale or groups.unassigned_groups(params.defined_tests)
    group_dict = groups.extract_groups(api_response, params.defined_tests)
    if cacher is not None:
        _cache_call(cacher.set, request, params, group_dict, api_response)
    return group_dict


def _cache_call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """A cache that fails (a cache server down, a session backend error) acts as a miss."""
    try:
        return method(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a broken cache must not break the request
        logger.exception("Proctor cache %s failed; going on without it", getattr(method, "__name__", "call"))
        return None


def proc_by_accountid(accountid: Any) -> groups.ProctorGroups:
    """The groups of an account outside a request (``id.account``, ``ctx.ua`` empty, no cache),
    e.g. ``proc_by_accountid(request.user.username)`` in a task."""
    params = ProctorParameters(
        api_root=conf.api_root(),
        defined_tests=conf.defined_tests(),
        context_dict={"ua": ""},
        identifier_dict={"account": accountid},
        force_groups=None,
    )
    return identify_groups(params)
