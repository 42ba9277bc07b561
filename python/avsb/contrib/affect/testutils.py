"""``override_affected('rev_b', active=True)``: force a flag on (or off) for every request, as a
context manager, a function decorator or a class decorator — no database or cache writes."""

from __future__ import annotations

from django.test.utils import TestContextDecorator

from avsb.contrib.affect import overrides

__all__ = ["override_affected"]


class override_affected(TestContextDecorator):  # noqa: N801 - named like Django's override_settings
    def __init__(self, name: str, active: bool = True) -> None:
        self.name, self.active = name, bool(active)
        super().__init__()

    def enable(self) -> None:
        overrides.push(self.name, self.active)

    def disable(self) -> None:
        overrides.pop(self.name, self.active)
