"""The guide's project (project/) under pytest-django, against the real server binary.

One `avsb serve --demo` runs for the whole session. It starts in pytest_configure, before the
guide's settings are imported, because they read os.environ['AVSB_SDK_KEY'] and the guide's
AppConfig.ready() connects to AVSB_BASE_URL; Django is then set up here, as pytest-django allows.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "project"
sys.path.insert(0, str(HERE.parents[2] / "tests" / "harness"))
sys.path.insert(0, str(PROJECT))

from avsb_process import AvsbProcess, HarnessError  # noqa: E402

pytest_plugins = ["avsb_fixtures"]

_SESSION = pytest.StashKey[tuple[Path, AvsbProcess]]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="avsb-guide-"))
    try:
        server = AvsbProcess(tmp / "server").start()
    except HarnessError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise pytest.UsageError(str(e)) from e
    config.stash[_SESSION] = (tmp, server)
    os.environ["AVSB_SDK_KEY"] = server.sdk_key
    os.environ["AVSB_BASE_URL"] = server.base_url
    # The SDK's last-good-datafile cache, out of the user's home.
    os.environ["AVSB_CACHE_DIR"] = str(tmp / "datafile-cache")
    os.environ["GUIDE_TEST_DATABASE"] = str(tmp / "test.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "guideproject.settings"
    import django

    django.setup()
    # The guide's ready() leaves the wait for the first matrix to where requests are served, and
    # a test run never waits there: these tests read the real server, so they wait here.
    from myapp.apps import MyAppConfig

    if not MyAppConfig.avsb_server.on_ready_sync(timeout=30):
        raise pytest.UsageError("the guide's AvsbServer got no matrix from avsb serve in 30 s:\n" + server.log_tail())


def pytest_unconfigure(config: pytest.Config) -> None:
    tmp, server = config.stash.get(_SESSION, (None, None))
    if server is None:
        return
    # Close the guide's AvsbServer now, while its server still answers: its atexit hook would
    # otherwise try to send to a stopped server for seconds at exit.
    from myapp.apps import MyAppConfig

    sdk = getattr(MyAppConfig, "avsb_server", None)
    if sdk is not None:
        sdk.close_sync(timeout=2)
    try:
        server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def guide_server(pytestconfig) -> AvsbProcess:
    """The `avsb serve --demo` the guide's project talks to."""
    server = pytestconfig.stash[_SESSION][1]
    if not server.alive():
        pytest.fail("avsb serve died during the tests:\n" + server.log_tail(), pytrace=False)
    return server


@pytest.fixture(scope="session")
def guide_sdk():
    """The guide's AvsbServer, made by MyAppConfig.ready()."""
    from myapp.apps import MyAppConfig

    return MyAppConfig.avsb_server


@pytest.fixture
def bucket(guide_server):
    """``bucket(test, key, **context)``: the server's own assignment over HTTP (Pipet's
    /groups/identify), to compare the Django side with: ``{'name', 'value', 'payload'}`` or None."""

    def assignment(test: str, key: str, **context: str) -> dict | None:
        params = {"id.USER": key, "test": test, **{f"ctx.{k}": v for k, v in context.items()}}
        return guide_server.identify(params)["groups"].get(test)

    return assignment
