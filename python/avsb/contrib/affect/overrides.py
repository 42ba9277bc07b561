"""Flags forced on or off by ``override_affected`` (tests), applied after evaluation."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_stack: list[tuple[str, bool]] = []


def push(name: str, active: bool) -> None:
    with _lock:
        _stack.append((name, active))


def pop(name: str, active: bool) -> None:
    with _lock:
        for i in range(len(_stack) - 1, -1, -1):
            if _stack[i] == (name, active):
                del _stack[i]
                return


def current() -> dict[str, bool]:
    """The innermost override of each name."""
    with _lock:
        return dict(_stack)


def apply(flags: list[str]) -> list[str]:
    forced = current()
    if not forced:
        return flags
    out = {f for f in flags if forced.get(f, True)}
    out.update(name for name, active in forced.items() if active)
    return sorted(out)
