"""django-proctor's Django API over A vs B: a drop-in whose import paths are the only change.

A site that used django-proctor 1.2.1 replaces ``proctor.`` with ``avsb.contrib.proctor.`` in its
imports and settings (``INSTALLED_APPS``, ``MIDDLEWARE`` subclasses, the ``proc`` context
processor, the ``forcegroups`` template tags, the private views) and keeps everything else:
``BaseProctorMiddleware`` and its hooks, ``request.proc``, ``str(proc)``, the ``PROCTOR_*``
settings and ``prforceGroups``.

Where the groups come from (decided by the middleware, see ``local.evaluator``):

* **Locally** (no network call per request) when an A vs B server SDK is available: the
  ``PROCTOR_AVSB_SERVER`` setting, an ``AvsbServer`` already made in this process, or an
  ``AVSB_SDK_KEY`` (setting or environment), from which one ``AvsbServer`` is made per process.
* **From a Pipet API** at ``PROCTOR_API_ROOT`` otherwise, on the wire exactly as django-proctor
  calls it, with its caching (``PROCTOR_CACHE_METHOD``).

Nothing in the request path raises: an unknown test, an unreachable server or a request the
engine refuses leaves the affected tests at ``GroupAssignment(None, None, None)`` and logs why.
Importing this package imports nothing from Django.
"""
