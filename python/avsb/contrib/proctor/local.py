"""Local evaluation: the A vs B server SDK that assigns groups in this process.

``evaluator()`` picks it, in this order:

1. ``PROCTOR_AVSB_SERVER``: an ``AvsbServer`` (or any object with its ``identify``), a dotted path
   to one or to a function that returns one; ``False`` turns local evaluation off.
2. ``avsb.default_server()``: the first ``AvsbServer`` the site made in this process.
3. An ``AvsbServer()`` this module makes, once per process, when ``AVSB_SDK_KEY`` is set (Django
   setting or environment; ``AVSB_BASE_URL`` says where the server is).

With none of them, the middleware calls the Pipet API at ``PROCTOR_API_ROOT`` instead.
Evaluating is Pipet's ``/groups/identify`` run by the engine in this process: the same groups,
the same 400s (which leave the tests unassigned here), no network call.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

import avsb
from avsb.client import AvsbClient
from avsb.config import ConfigError, setting
from avsb.contrib.proctor import conf, constants, groups
from avsb.contrib.proctor.api import ProctorParameters, pipet_values

__all__ = ["AUTO", "evaluate", "evaluator"]

logger = logging.getLogger("application.proctor.local")

#: ``server=AUTO`` (in ``identify``): evaluate locally if ``evaluator()`` finds a server SDK,
#: else ask the Pipet API.
AUTO: Any = type("Auto", (), {"__repr__": lambda self: "AUTO"})()

_lock = threading.Lock()
# The AvsbServer this module made (at most one live one per process).
_own: avsb.AvsbServer | None = None
# Per server: until when requests may wait for its first matrix.
_ready_deadlines: weakref.WeakKeyDictionary[AvsbClient, float] = weakref.WeakKeyDictionary()
_imported: dict[str, Any] = {}


def evaluator() -> AvsbClient | None:
    """The server SDK that evaluates locally, or ``None`` when groups come from Pipet.
    Raises ``ImproperlyConfigured`` for a ``PROCTOR_AVSB_SERVER`` or an ``AVSB_*`` setting that
    cannot work (the middleware calls this at start, so such errors surface there)."""
    configured = conf.avsb_server()
    if configured is False:
        return None
    if configured is not None:
        return _configured(configured)
    server = avsb.default_server()
    if server is not None:
        return server
    if setting("AVSB_SDK_KEY"):
        return _own_server()
    return None


def _configured(value: Any) -> AvsbClient:
    if isinstance(value, str):
        if value not in _imported:
            try:
                _imported[value] = import_string(value)
            except ImportError as e:
                raise ImproperlyConfigured(f"PROCTOR_AVSB_SERVER = {value!r} cannot be imported: {e}") from e
        value = _imported[value]
    if not hasattr(value, "identify") and callable(value):
        try:
            value = value()
        except Exception as e:
            raise ImproperlyConfigured(f"PROCTOR_AVSB_SERVER = {value!r} failed: {e!r}") from e
    if isinstance(value, type) or not callable(getattr(value, "identify", None)):
        raise ImproperlyConfigured(
            f"PROCTOR_AVSB_SERVER must be an avsb.AvsbServer (or a dotted path to one), not {value!r}"
        )
    return value


def _own_server() -> avsb.AvsbServer:
    """The AvsbServer made from AVSB_SDK_KEY (made at the first call, thread-safely)."""
    global _own
    with _lock:
        if _own is None or _own.status == "closed":
            try:
                _own = avsb.AvsbServer()
            except ConfigError as e:
                raise ImproperlyConfigured(str(e)) from e
            logger.info("made an AvsbServer for %s to evaluate proctor groups locally", _own.base_url)
        return _own


def close_own_server(timeout: float = 5.0) -> None:
    """Closes the AvsbServer this module made, if any (a process's shutdown, or a test's)."""
    global _own
    with _lock:
        server, _own = _own, None
    if server is not None:
        server.close_sync(timeout)


def ready(server: AvsbClient) -> bool:
    """Whether ``server`` has a matrix. A server still loading its first one is waited for, but
    only until ``LOCAL_READY_TIMEOUT_SECONDS`` after the first request that found it loading."""
    is_ready = getattr(server, "is_ready", None)
    if is_ready is None or is_ready():
        return True
    now = time.monotonic()
    with _lock:
        deadline = _ready_deadlines.setdefault(server, now + constants.LOCAL_READY_TIMEOUT_SECONDS)
    if deadline > now:
        wait = getattr(server, "on_ready_sync", None)
        if wait is not None:
            return bool(wait(deadline - now))
    return bool(is_ready())


def evaluate(server: AvsbClient, params: ProctorParameters) -> dict[str, groups.GroupAssignment]:
    """The groups of one request, evaluated by ``server``. Never raises: anything that stops
    the evaluation leaves every test unassigned and is logged."""
    tests = params.defined_tests
    try:
        if not ready(server):
            logger.warning("A vs B has no matrix yet (%r); every test is unassigned", server)
            return groups.unassigned_groups(tests)
        assigned = server.identify(
            pipet_values(params.identifier_dict),
            pipet_values(params.context_dict),
            tests=tests,
            force_groups=params.force_groups or None,
        )
    except avsb.RequestError as e:
        # What Pipet answers with a 400 (no identifier, a required context variable missing, a
        # value that does not convert): django-proctor leaves every test unassigned then.
        reason = f"{e.args[0]}: {e.args[1]}" if len(e.args) == 2 else str(e)
        logger.warning("A vs B could not assign groups (%s); every test is unassigned", reason)
        return groups.unassigned_groups(tests)
    except Exception:  # noqa: BLE001 - the request path never raises
        logger.exception("A vs B failed to assign groups; every test is unassigned")
        return groups.unassigned_groups(tests)
    return {test: assigned.get(test, groups.UNASSIGNED) for test in tests}
