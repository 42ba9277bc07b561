"""``@affected('rev_b')``: a view that only affected requests reach (``'!rev_b'``: only the
others); anyone else gets a 404, or a redirect to ``redirect_to`` (a URL name or path)."""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from django.http import Http404
from django.shortcuts import redirect

from avsb.contrib.affect import flag_is_affected

__all__ = ["affected"]


def affected(name: str, redirect_to: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    negate = name.startswith("!")
    flag = name[1:] if negate else name

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            if flag_is_affected(request, flag) != negate:
                return view(request, *args, **kwargs)
            if redirect_to:
                return redirect(redirect_to)
            raise Http404(f"Not affected by {name}")

        return wrapper

    return decorator
