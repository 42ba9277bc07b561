"""Settings of the small Django site that runs django-proctor's middleware, its context processor
and its private views: the unmodified django-proctor 1.2.1 from PyPI (tests/interop), or A vs B's
drop-in (python/tests/proctor).

`PROCTOR_PACKAGE` says which: `proctor` or `avsb.contrib.proctor`, from the environment variable
`AVSB_TEST_PROCTOR_PACKAGE` that each suite sets (through tests/harness/proctor_site.py). The
import paths it chooses are the only thing a site changes to switch from django-proctor to the
drop-in, so the two suites run the very same site.

The module is the top-level `settings` on purpose: django-proctor's `proctor.settings` (used by
its private views) reads `sys.modules["settings"]`. The tests point PROCTOR_API_ROOT at the
running server with `override_settings`; the value here is only a placeholder.
"""

import os

from django.core.exceptions import ImproperlyConfigured

PROCTOR_PACKAGES = ("proctor", "avsb.contrib.proctor")
PROCTOR_PACKAGE = os.environ.get("AVSB_TEST_PROCTOR_PACKAGE")
if PROCTOR_PACKAGE not in PROCTOR_PACKAGES:
    raise ImproperlyConfigured(
        f"AVSB_TEST_PROCTOR_PACKAGE must name the django-proctor to run, one of {PROCTOR_PACKAGES}, not {PROCTOR_PACKAGE!r}"
    )

SECRET_KEY = "interop-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True

INSTALLED_APPS = [PROCTOR_PACKAGE, "demo"]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "demo.middleware.DemoProctorMiddleware",
]
ROOT_URLCONF = "demo.urls"

# No database: sessions live in signed cookies, the cache in memory.
DATABASES = {}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "proctor-interop",
    }
}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                f"{PROCTOR_PACKAGE}.context_processors.proc",
            ],
        },
    }
]

PROCTOR_API_ROOT = os.environ.get("PROCTOR_API_ROOT", "http://127.0.0.1:9/pipet/unset")
# The demo matrix's tests, three that the tests add (limits, copy, accounttst), and one that
# the matrix never has.
PROCTOR_TESTS = (
    "buttoncolortst",
    "newfeaturerollout",
    "countryalgotst",
    "checkout-v2",
    "ui-theme",
    "limits",
    "copy",
    "accounttst",
    "notinmatrix",
)
PROCTOR_CACHE_METHOD = None
PROCTOR_LAZY = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"application.proctor": {"handlers": ["null"], "propagate": True}},
}
