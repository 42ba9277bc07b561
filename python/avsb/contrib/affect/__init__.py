"""django-affect's API on A vs B (docs/django-affect.md §1): ``Criteria`` and ``Flag`` managed in the Django
admin, ``AffectMiddleware`` setting ``request.affected_flags``, and ``flag_is_affected``.

    INSTALLED_APPS += ['avsb.contrib.affect']
    MIDDLEWARE += ['avsb.contrib.affect.middleware.AffectMiddleware']   # after AuthenticationMiddleware

    from avsb.contrib.affect import flag_is_affected
    if flag_is_affected(request, 'rev_b'): ...

    {% if 'rev_b' in request.affected_flags %}...{% endif %}      (Django or Jinja2)
    {% load affect %}{% affected 'rev_b' %}...{% else %}...{% endaffected %}
"""

from __future__ import annotations

from typing import Any

__all__ = ["flag_is_affected"]


def flag_is_affected(request: Any, name: str) -> bool:
    """Whether the flag applies to the request (False if the middleware did not run)."""
    from avsb.contrib.affect import overrides

    forced = overrides.current()
    if name in forced:
        return forced[name]
    return name in getattr(request, "affected_flags", ())
