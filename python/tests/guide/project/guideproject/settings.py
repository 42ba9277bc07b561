"""Settings of the guide's example project: the guide's samples as written, plus what any Django
project needs around them (apps, URLs, templates, a database)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "guide-tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "avsb",  # the {% load avsb %} template tags
    "myapp",
]

# From the guide:
MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'avsb.contrib.wsgi.AvsbMiddleware', # <-- add this
    'django.contrib.sessions.middleware.SessionMiddleware',
    # ... rest of your middleware
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
AVSB_SDK_KEY = os.environ.get('AVSB_SDK_KEY') # the environment's SDK key; tests that use MockAvsbServer need none
AVSB_BASE_URL = os.environ.get('AVSB_BASE_URL', 'http://127.0.0.1:8080') # where avsb serve listens

# From the guide: AvsbMiddleware sits before AuthenticationMiddleware, and this still works
# because request.avsb is built only when a view first reads it.
from avsb.contrib.wsgi import avsb_anonymous_key  # noqa: E402
AVSB_MIDDLEWARE_OPTIONS = {
 'context_from': lambda request: {
  'kind': 'user',
  'key': str(request.user.id) if request.user.is_authenticated else avsb_anonymous_key(request),
  'plan': getattr(request.user, 'plan', 'free'),
 }
}

# Users carry a `plan` (the guide reads `user.plan`) and a text id, so that the demo project's
# target `u_1` can be a real user.
AUTH_USER_MODEL = "myapp.User"

ROOT_URLCONF = "guideproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "avsb.contrib.context_processors.avsb",
            ],
        },
    },
]

# The tests point the test database at a file (GUIDE_TEST_DATABASE) and give the same file to the
# uvicorn they start (GUIDE_DATABASE), so that both processes see the same users and sessions.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("GUIDE_DATABASE", str(BASE_DIR / "db.sqlite3")),
        "TEST": {"NAME": os.environ.get("GUIDE_TEST_DATABASE")},
    }
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
USE_TZ = True
