"""Fixtures for avsb.contrib.proctor: the real server binary (tests/harness) and the Django site
in tests/harness/proctorsite, the one tests/interop runs with the real django-proctor, here
running avsb.contrib.proctor instead (its settings choose the package; nothing else differs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "tests" / "harness"))

pytest_plugins = ["avsb_fixtures"]

import proctor_site  # noqa: E402
from proctor_cases import EXTRA_TESTS  # noqa: E402


def pytest_configure(config):
    proctor_site.set_up("avsb.contrib.proctor")


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
