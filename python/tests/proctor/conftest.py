"""Fixtures for avsb.contrib.proctor: the real server binary (tests/harness) and the Django
project in djangoproject/, a copy of tests/interop/djangoproject (the site that runs the real
django-proctor) whose only differences are the import paths (test_switched_site.py checks it).

Its settings module is the top-level `settings`, as in the original; pytest-django sets it up.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "tests" / "harness"))

pytest_plugins = ["avsb_fixtures"]

from proctor_cases import EXTRA_TESTS  # noqa: E402


@pytest.fixture(scope="module")
def server(avsb_server):
    """The module's server with the tests the interop suite adds to the demo matrix."""
    for name, definition in EXTRA_TESTS.items():
        avsb_server.put_test(name, definition)
    return avsb_server


@pytest.fixture(autouse=True)
def _no_server_sdk_left_over():
    """Each test starts and ends without a live AvsbServer in the process, so that the mode a
    test sets up (local or Pipet) is the one it gets."""
    import avsb
    from avsb.contrib.proctor import local

    yield
    local.close_own_server(timeout=1)
    leftover = avsb.default_server()
    if leftover is not None:
        leftover.close_sync(timeout=1)
        pytest.fail(f"a test left {leftover!r} open")
