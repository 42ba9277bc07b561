"""Fixtures for the interoperability tests: the real `avsb` binary, started on loopback.

Every test here talks HTTP to the server binary that `cargo build -p avsb` produces, through
unmodified packages from PyPI (django-proctor, openfeature-provider-ofrep). The process harness
is shared with the avsb package's tests (tests/harness/avsb_process.py).

Django is configured once for the whole session with the project in `djangoproject/`, whose
settings module is the top-level `settings` because django-proctor's `proctor.settings`
imports `sys.modules["settings"]` (reference §7.8).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DJANGO_PROJECT = HERE / "djangoproject"
sys.path.insert(0, str(HERE.parent / "harness"))

from avsb_process import AvsbProcess, HarnessError  # noqa: E402


def pytest_configure(config):
    sys.path.insert(0, str(DJANGO_PROJECT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
    import django

    django.setup()


@pytest.fixture(scope="module")
def avsb_server():
    """A fresh server with the demo project for each test module, stopped with SIGTERM after it."""
    with tempfile.TemporaryDirectory(prefix="avsb-interop-") as tmp:
        try:
            server = AvsbProcess(Path(tmp)).start()
        except HarnessError as e:
            pytest.fail(str(e), pytrace=False)
        try:
            yield server
        finally:
            if not server.alive():
                pytest.fail(
                    f"avsb serve died during the tests (status {server.process.returncode}):\n" + server.log_tail()
                )
            try:
                server.stop()
            except HarnessError as e:
                pytest.fail(str(e))
