"""Fixtures for the interoperability tests: the real `avsb` binary, started on loopback.

Every test here talks HTTP to the server binary that `cargo build -p avsb` produces, through
unmodified packages from PyPI (django-proctor, openfeature-provider-ofrep). The process harness
is shared with the avsb package's tests (tests/harness/avsb_process.py).

Django is configured once for the whole session with the site in tests/harness/proctorsite,
running the real django-proctor (`proctor`); python/tests/proctor runs the same site with
avsb.contrib.proctor. Its settings module is the top-level `settings` because django-proctor's
`proctor.settings` imports `sys.modules["settings"]` (docs/proctor.md §7.8).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "harness"))

import proctor_site  # noqa: E402
from avsb_process import AvsbProcess, HarnessError  # noqa: E402


def pytest_configure(config):
    proctor_site.set_up("proctor")


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
