"""The Django site both django-proctor suites run (proctorsite/): tests/interop with the real
django-proctor from PyPI, python/tests/proctor with avsb.contrib.proctor. Its settings choose
the package by the environment variable `AVSB_TEST_PROCTOR_PACKAGE`, which `set_up` sets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SITE = Path(__file__).resolve().parent / "proctorsite"


def set_up(package: str) -> None:
    """Configures Django with the site running `package` (`proctor` or `avsb.contrib.proctor`).
    The settings module is the top-level `settings`, as django-proctor's private views need."""
    sys.path.insert(0, str(SITE))
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
    os.environ["AVSB_TEST_PROCTOR_PACKAGE"] = package
    import django

    django.setup()
