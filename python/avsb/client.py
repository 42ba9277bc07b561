"""``AvsbClient``: what an A vs B SDK instance offers, whichever one it is.

``AvsbServer`` (the server SDK) and ``avsb.test_utils.MockAvsbServer`` (its stand-in for tests)
both satisfy it, so code that takes either names this type: the Django middleware's ``server``
option, the ASGI lifespan handler, the django-proctor drop-in's ``PROCTOR_AVSB_SERVER``, the
OpenFeature provider, and an application's own services. The typed getters, ``get_group`` and
``track`` are the :class:`avsb.Scope`'s that ``for_user`` returns.

    def checkout_variant(client: AvsbClient, user_id: str) -> str:
        return client.for_user({"kind": "user", "key": user_id}).get_string_flag("checkout", "old")

The protocol is ``runtime_checkable``: ``isinstance(x, AvsbClient)`` says whether ``x`` has
every member (not whether their signatures match; the package's tests hold both classes to it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from avsb import _native
from avsb.assignment import GroupAssignment

__all__ = ["AvsbClient"]


@runtime_checkable
class AvsbClient(Protocol):
    """An SDK instance: scoped clients over its current matrix, its lifecycle and its events."""

    @property
    def engine(self) -> _native.Engine | None:
        """The current matrix, or ``None`` before the first one."""
        ...

    @property
    def status(self) -> str:
        """Where the instance stands: ``initializing``, ``ready``, ``stale``, ``offline`` or
        ``closed`` (a mock is ``ready`` until closed)."""
        ...

    def for_user(self, context: Mapping[str, Any], force_groups: str | None = None) -> _native.Scope:
        """A client scoped to one context (``{'kind': 'user', 'key': ...}`` or a multi-context),
        honouring ``force_groups`` as given."""
        ...

    def identify(
        self,
        identifiers: Mapping[str, Any],
        context: Mapping[str, Any],
        tests: Sequence[str] | None = None,
        force_groups: str | None = None,
    ) -> dict[str, GroupAssignment]:
        """django-proctor's identify with Pipet's rules: ``{test: GroupAssignment}`` for the
        assigned tests; raises ``RequestError`` where Pipet would refuse the request."""
        ...

    def is_ready(self) -> bool:
        """Whether a matrix is loaded."""
        ...

    def on_ready_sync(self, timeout: float | None = None) -> bool:
        """Waits up to ``timeout`` seconds (5 by default) for a matrix; returns whether one is
        loaded. ``AvsbServer`` leaves the default wait, asked for while Django starts, to where
        the application serves requests."""
        ...

    async def on_ready(self, timeout: float = 5.0) -> bool:
        """``on_ready_sync`` for asyncio code."""
        ...

    def on_change(self, listener: Callable[[_native.Engine], None]) -> None:
        """Calls ``listener(engine)`` after each new matrix."""
        ...

    def flush(self) -> None:
        """Asks for the waiting events to be sent now (returns at once)."""
        ...

    def flush_sync(self, timeout: float = 5.0) -> bool:
        """Sends the waiting events from this thread; returns whether everything was sent."""
        ...

    def event_stats(self) -> dict[str, int]:
        """Event counters (``recorded``, ``deduplicated``, ``dropped_full``, ``dropped_invalid``,
        ``pending``, ``retrying``)."""
        ...

    def close_sync(self, timeout: float = 5.0) -> None:
        """Stops the instance and sends its waiting events; flags keep answering."""
        ...

    async def close(self, timeout: float = 5.0) -> None:
        """``close_sync`` for asyncio code."""
        ...

    def __enter__(self) -> AvsbClient:
        """The instance itself, closed by ``__exit__``."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Closes the instance (``close_sync``)."""
        ...
