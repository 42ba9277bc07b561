"""The settings this package reads, with their defaults. Each is read when it is used, so
``override_settings`` works as it does for django-proctor.

``PROCTOR_TESTS``         (required) the tests the site uses: a list or tuple of names. Only these
                          are attributes of ``request.proc``; others raise ``AttributeError``.
``PROCTOR_API_ROOT``      (``None``) a Pipet API, no trailing slash; used only when no A vs B server
                          SDK evaluates locally (see ``local.evaluator``).
``PROCTOR_CACHE_METHOD``  (``None``) ``None``, ``'cache'`` or ``'session'``: caches Pipet's answers.
                          Accepted and validated in local mode too, where it has nothing to save.
``PROCTOR_CACHE_NAME``    (``'default'``) the Django cache alias that ``'cache'`` uses.
``PROCTOR_LAZY``          (``False``) evaluate only when a view or template first reads ``proc``.
``PROCTOR_BASE_TEMPLATE`` (``'proctor_default_base.html'``) the private force-groups page's base.
``PROCTOR_AVSB_SERVER``   (``None``) the server SDK that evaluates locally: an ``AvsbServer`` (or any
                          object with its ``identify``), a dotted path to one or to a function
                          returning one, or ``False`` to always call ``PROCTOR_API_ROOT``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_BASE_TEMPLATE = "proctor_default_base.html"
DEFAULT_CACHE_NAME = "default"
CACHE_METHODS = (None, "cache", "session")


def defined_tests() -> list[str]:
    """``PROCTOR_TESTS`` as a list; raises ``ImproperlyConfigured`` for a string (the missing
    comma of a one-test tuple, as django-proctor does), a missing setting, or non-string names."""
    tests = getattr(settings, "PROCTOR_TESTS", None)
    if tests is None:
        raise ImproperlyConfigured(
            "PROCTOR_TESTS is not set: list the tests this site uses, e.g. PROCTOR_TESTS = ('mytest',)"
        )
    if isinstance(tests, (str, bytes)):
        raise ImproperlyConfigured(
            "PROCTOR_TESTS should be a tuple or list, not a string. "
            "When defining a tuple, make sure you include a comma: PROCTOR_TESTS = ('mytest',)"
        )
    try:
        names = list(tests)
    except TypeError:
        raise ImproperlyConfigured(
            f"PROCTOR_TESTS should be a tuple or list of test names, not {type(tests).__name__}"
        ) from None
    wrong = [name for name in names if not isinstance(name, str)]
    if wrong:
        raise ImproperlyConfigured(f"PROCTOR_TESTS should hold test names (strings), not {wrong!r}")
    return names


def api_root() -> str | None:
    """``PROCTOR_API_ROOT``, or ``None``."""
    return getattr(settings, "PROCTOR_API_ROOT", None) or None


def cache_method() -> str | None:
    """``PROCTOR_CACHE_METHOD``; raises ``ImproperlyConfigured`` for an unknown one."""
    method = getattr(settings, "PROCTOR_CACHE_METHOD", None)
    if method not in CACHE_METHODS:
        raise ImproperlyConfigured(
            f"{method!r} is an unrecognized PROCTOR_CACHE_METHOD: use None, 'cache' or 'session'."
        )
    return method


def cache_name() -> str:
    """``PROCTOR_CACHE_NAME``, or ``'default'``."""
    return getattr(settings, "PROCTOR_CACHE_NAME", None) or DEFAULT_CACHE_NAME


def lazy() -> bool:
    """``PROCTOR_LAZY``."""
    return bool(getattr(settings, "PROCTOR_LAZY", False))


def base_template() -> str:
    """``PROCTOR_BASE_TEMPLATE``, or this package's plain base."""
    return getattr(settings, "PROCTOR_BASE_TEMPLATE", None) or DEFAULT_BASE_TEMPLATE


def avsb_server() -> Any:
    """``PROCTOR_AVSB_SERVER`` as written in the settings (resolved by ``local.evaluator``)."""
    return getattr(settings, "PROCTOR_AVSB_SERVER", None)
