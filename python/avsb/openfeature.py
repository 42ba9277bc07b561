"""An OpenFeature provider over A vs B's local evaluation (``pip install avsb-python[openfeature]``).

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from avsb import AvsbServer
    from avsb.openfeature import AvsbProvider

    api.set_provider_and_wait(AvsbProvider(AvsbServer(sdk_key=...)))
    client = api.get_client()
    client.get_boolean_value("checkout-v2", False, EvaluationContext("u_1", {"plan": "pro"}))

Every resolution is one local evaluation through ``server.for_user(context)``; nothing here
touches the network, and resolving never raises. The provider works over ``AvsbServer`` and
over ``avsb.test_utils.MockAvsbServer`` alike.

Evaluation contexts map to A vs B contexts: the targeting key is the ``key``, the ``kind``
attribute the kind (``user`` by default), the other attributes context variables.
``{'kind': 'multi', 'user': {...}, 'account': {...}}`` in the attributes is a multi-context;
the targeting key and any top-level attributes then belong to the ``user`` context (its own key
and attributes win).

Only this module imports ``openfeature``; ``import avsb`` works without it.
"""

from __future__ import annotations

import datetime
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from avsb import _native
from avsb.client import AvsbClient

__all__ = ["AvsbProvider", "to_avsb_context"]

logger = logging.getLogger("avsb")

_REASONS = {r.value: r for r in Reason}
_ERROR_CODES = {c.value: c for c in ErrorCode}


def _attribute(value: Any) -> Any:
    """An OpenFeature attribute value as an A vs B one (datetimes as ISO 8601 text)."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def to_avsb_context(evaluation_context: EvaluationContext | None) -> dict[str, Any]:
    """The A vs B context for an OpenFeature evaluation context."""
    attributes = dict(evaluation_context.attributes) if evaluation_context is not None else {}
    targeting_key = evaluation_context.targeting_key if evaluation_context is not None else None
    kind = attributes.pop("kind", "user")
    context: dict[str, Any]
    if kind == "multi":
        context = {"kind": "multi"}
        loose: dict[str, Any] = {}
        for name, value in attributes.items():
            if isinstance(value, Mapping):
                context[name] = {k: _attribute(v) for k, v in value.items()}
            else:
                loose[name] = _attribute(value)
        # The targeting key and the top-level attributes describe the user (whose own win).
        if targeting_key or loose:
            user = {**loose, **context.get("user", {})}
            if targeting_key and user.get("key") is None:
                user["key"] = targeting_key
            context["user"] = user
        return context
    context = {name: _attribute(value) for name, value in attributes.items()}
    context["kind"] = kind
    if targeting_key:
        context["key"] = targeting_key
    return context


def _resolution(details: _native.FlagDetails) -> FlagResolutionDetails[Any]:
    """A native ``FlagDetails`` as OpenFeature's ``FlagResolutionDetails``."""
    error_code = None
    if details.error_code is not None:
        error_code = _ERROR_CODES.get(details.error_code, ErrorCode.GENERAL)
    return FlagResolutionDetails(
        value=details.value,
        error_code=error_code,
        error_message=details.error_message,
        reason=_REASONS.get(details.reason, Reason.UNKNOWN),
        variant=details.variant,
        flag_metadata=dict(details.flag_metadata),
    )


def _failed(default: Any, error: Exception) -> FlagResolutionDetails[Any]:
    return FlagResolutionDetails(
        value=default,
        error_code=ErrorCode.GENERAL,
        error_message=f"{type(error).__name__}: {error}",
        reason=Reason.ERROR,
    )


def _changed_tests(old: _native.Engine | None, new: _native.Engine) -> list[str]:
    """The names of the tests a new matrix adds, removes or changes."""
    if old is None:
        return sorted(new.test_names)
    names = set(old.test_names) | set(new.test_names)
    return sorted(n for n in names if old.definition(n) != new.definition(n))


class AvsbProvider(AbstractProvider):
    """OpenFeature provider over an ``AvsbServer`` (or ``MockAvsbServer``).

    ``AvsbProvider(server)`` uses a server the application made and closes; without a server,
    ``AvsbProvider(sdk_key=..., base_url=..., ...)`` makes an ``AvsbServer`` with those
    arguments and closes it on ``shutdown()``. ``owns_server`` overrides either choice.
    ``initialize()`` waits up to ``ready_timeout`` seconds for the first matrix.
    """

    def __init__(
        self,
        server: AvsbClient | None = None,
        *,
        owns_server: bool | None = None,
        ready_timeout: float = 5.0,
        **server_options: Any,
    ) -> None:
        super().__init__()
        if server is None:
            from avsb.server import AvsbServer

            server = AvsbServer(**server_options)
            owns = True
        elif server_options:
            raise TypeError(f"AvsbProvider got a server and server options ({', '.join(server_options)}); pass one or the other")
        else:
            owns = False
        self._server = server
        self._owns_server = owns if owns_server is None else bool(owns_server)
        self._ready_timeout = float(ready_timeout)
        self._lock = threading.Lock()
        self._initialized = False
        self._not_ready = False
        self._engine = server.engine
        # The server keeps its listeners for its lifetime: hold the provider weakly.
        ref = weakref.ref(self)

        def listener(engine: _native.Engine) -> None:
            provider = ref()
            if provider is not None:
                provider._matrix_changed(engine)

        server.on_change(listener)

    @property
    def server(self) -> AvsbClient:
        """The server this provider evaluates with."""
        return self._server

    def get_metadata(self) -> Metadata:
        """``Metadata(name='avsb')``."""
        return Metadata(name="avsb")

    # -- lifecycle ------------------------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Waits for the server's first matrix; raises ``ProviderNotReadyError`` (so the
        provider's status becomes ERROR) if none arrives in time. The provider becomes READY by
        itself when the matrix comes later."""
        ready = self._server.is_ready() or self._server.on_ready_sync(self._ready_timeout)
        with self._lock:
            self._initialized = True
            self._not_ready = not ready
            if ready:
                self._engine = self._server.engine
        if not ready:
            where = getattr(self._server, "base_url", "the server")
            raise ProviderNotReadyError(
                f"no matrix from {where} after {self._ready_timeout:g} s; flags answer their defaults until one arrives"
            )

    def shutdown(self) -> None:
        """Closes the server if the provider owns it (see the constructor)."""
        with self._lock:
            self._initialized = False
        if self._owns_server:
            self._server.close_sync()

    def _matrix_changed(self, engine: _native.Engine) -> None:
        """The server's ``on_change`` listener: READY after a failed start, else
        CONFIGURATION_CHANGED with the tests that changed."""
        with self._lock:
            old = self._engine
            if old is not None and (old.version, old.schema_version) == (engine.version, engine.schema_version):
                return  # the same matrix again (a reconnected stream)
            self._engine = engine
            if not self._initialized:
                return  # initialize() reports the first matrix as READY
            was_not_ready, self._not_ready = self._not_ready, False
        try:
            metadata = {"version": engine.version}
            if was_not_ready:
                self.emit_provider_ready(ProviderEventDetails(message=f"matrix version {engine.version} loaded", metadata=metadata))
            else:
                self.emit_provider_configuration_changed(
                    ProviderEventDetails(
                        flags_changed=_changed_tests(old, engine),
                        message=f"matrix version {engine.version}",
                        metadata=metadata,
                    )
                )
        except Exception:  # noqa: BLE001 - an event handler's bug must not stop the server's updates
            logger.exception("avsb: emitting an OpenFeature provider event failed")

    # -- resolution -------------------------------------------------------------------------------

    def _resolve(self, getter: str, flag_key: str, default: Any, evaluation_context: EvaluationContext | None) -> FlagResolutionDetails[Any]:
        try:
            scope = self._server.for_user(to_avsb_context(evaluation_context))
            return _resolution(getattr(scope, getter)(flag_key, default))
        except Exception as e:  # noqa: BLE001 - resolving never raises
            logger.warning("avsb: resolving %r failed: %s", flag_key, e)
            return _failed(default, e)

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        """A boolean flag (``booleanValue`` payloads, or JSON ``true``/``false``)."""
        return self._resolve("get_bool_flag_details", flag_key, default_value, evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        """A string flag (``stringValue`` payloads, or JSON strings)."""
        return self._resolve("get_string_flag_details", flag_key, default_value, evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        """An integer flag (``longValue`` payloads, or JSON integers)."""
        return self._resolve("get_int_flag_details", flag_key, default_value, evaluation_context)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        """A float flag (``doubleValue`` or ``longValue`` payloads, or JSON numbers)."""
        return self._resolve("get_float_flag_details", flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        """An object flag: a JSON object or array (``json``, ``map`` or array payloads)."""
        resolution = self._resolve("get_json_flag_details", flag_key, default_value, evaluation_context)
        if resolution.error_code is None and not isinstance(resolution.value, (Mapping, list)):
            return FlagResolutionDetails(
                value=default_value,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"test '{flag_key}' bucket '{resolution.variant}' has a {type(resolution.value).__name__} payload, not an object or array",
                reason=Reason.ERROR,
                variant=resolution.variant,
                flag_metadata=resolution.flag_metadata,
            )
        return resolution

    # -- tracking ---------------------------------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Records a tracked event (``scope.track(name, value, attributes)``); never raises."""
        try:
            value = tracking_event_details.value if tracking_event_details is not None else None
            attributes = tracking_event_details.attributes if tracking_event_details is not None else None
            scope = self._server.for_user(to_avsb_context(evaluation_context))
            scope.track(tracking_event_name, value, attributes or None)
        except Exception as e:  # noqa: BLE001 - tracking never raises
            logger.warning("avsb: tracking %r failed: %s", tracking_event_name, e)

    def __repr__(self) -> str:
        return f"<AvsbProvider {self._server!r}>"
