"""pytest fixtures over the real server binary, for the avsb package's test suites.

A suite's conftest.py puts tests/harness on sys.path and says `pytest_plugins = ["avsb_fixtures"]`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from avsb_process import AvsbProcess, HarnessError


@pytest.fixture(scope="module")
def avsb_server():
    """A fresh `avsb serve --demo` for the test module, stopped with SIGTERM after it."""
    with tempfile.TemporaryDirectory(prefix="avsb-test-") as tmp:
        try:
            server = AvsbProcess(Path(tmp)).start()
        except HarnessError as e:
            pytest.fail(str(e), pytrace=False)
        try:
            yield server
        finally:
            try:
                server.stop()
            except HarnessError as e:
                pytest.fail(str(e))


@pytest.fixture
def fresh_server(tmp_path):
    """A server of the test's own, which the test may stop, kill and restart (same port)."""
    server = AvsbProcess(tmp_path / "server")
    try:
        server.start()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def make_sdk(tmp_path):
    """Builds `avsb.AvsbServer`s against a given server with a private disk cache; closes them."""
    from avsb import AvsbServer

    made: list[AvsbServer] = []

    def make(server: AvsbProcess, **kwargs) -> AvsbServer:
        kwargs.setdefault("sdk_key", server.sdk_key)
        kwargs.setdefault("base_url", server.base_url)
        kwargs.setdefault("cache_dir", tmp_path / "datafile-cache")
        sdk = AvsbServer(**kwargs)
        made.append(sdk)
        return sdk

    yield make
    for sdk in made:
        sdk.close_sync(timeout=2)
