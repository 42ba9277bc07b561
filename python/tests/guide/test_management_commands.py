"""The guide's project's manage.py, with no A vs B server to reach: Django runs the guide's
AppConfig.ready() (and its on_ready_sync()) for every command, and no command waits for a server;
a test run that gives the middleware a MockAvsbServer needs neither a server nor an SDK key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from avsb_process import free_port

PROJECT = Path(__file__).resolve().parent / "project"

# What A vs B may add to a command's time. Without the fix it was the 5 s readiness wait.
OUR_BUDGET_SECONDS = 0.75


@pytest.fixture
def manage(tmp_path):
    """``manage(*args, sdk_key=...)``: runs the project's manage.py in a fresh process against a
    server address nobody listens on; returns (the finished process, its wall time)."""
    unreachable = f"http://127.0.0.1:{free_port()}"

    def run(*args: str, sdk_key: str | None = "sdk-nobody-listens") -> tuple[subprocess.CompletedProcess, float]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AVSB_", "GUIDE_", "DJANGO_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="guideproject.settings",
            AVSB_BASE_URL=unreachable,
            AVSB_CACHE_DIR=str(tmp_path / "datafile-cache"),
            GUIDE_DATABASE=str(tmp_path / "db.sqlite3"),
        )
        if sdk_key is not None:
            env["AVSB_SDK_KEY"] = sdk_key
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return result, time.monotonic() - started

    return run


@pytest.mark.parametrize(
    "args",
    [("check",), ("migrate", "--no-input"), ("shell", "-c", "print('shell ran')")],
    ids=["check", "migrate", "shell"],
)
def test_commands_do_not_wait_for_an_unreachable_server(manage, args):
    # The same command without an SDK key (no AvsbServer at all) is the baseline: what the
    # command costs without A vs B. The best of two runs of each, against scheduling noise.
    baseline = min(manage(*args, sdk_key=None)[1] for _ in range(2))
    runs = [manage(*args) for _ in range(2)]
    for result, _ in runs:
        assert result.returncode == 0, result.stderr
    ours = min(seconds for _, seconds in runs) - baseline
    assert ours < OUR_BUDGET_SECONDS, f"{args[0]} took {ours:.2f} s more with an unreachable server"
    if args[0] == "shell":
        assert "shell ran" in runs[0][0].stdout


def test_a_test_run_with_mock_avsb_server_needs_no_sdk_key_and_no_server(manage):
    # The guide's view test (myapp/tests.py) under Django's own test runner.
    result, seconds = manage("test", "myapp", "--no-input", sdk_key=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 1 test" in result.stderr and "OK" in result.stderr
    # With a key but no server to reach, the test run does not wait for one either.
    with_key, seconds_with_key = manage("test", "myapp", "--no-input")
    assert with_key.returncode == 0, with_key.stdout + with_key.stderr
    assert seconds_with_key - seconds < OUR_BUDGET_SECONDS


def test_without_a_key_the_application_refuses_to_start(manage):
    # Where the application would serve requests (the WSGI application is built), a missing key
    # is an error at once, not flags that are silently off.
    code = "from guideproject.wsgi import application"
    result, _ = manage("shell", "-c", code, sdk_key=None)
    assert result.returncode != 0
    assert "AvsbMiddleware has no server: set AVSB_SDK_KEY" in result.stderr


def test_the_first_matrix_is_awaited_where_requests_are_served(manage, tmp_path):
    # Building the WSGI application (as runserver, gunicorn or uvicorn do) is where the wait
    # the guide's ready() asked for happens: bounded, and logged when nothing arrives.
    code = (
        "import time; t = time.monotonic()\n"
        "from guideproject.wsgi import application\n"
        "print('waited %.1f' % (time.monotonic() - t))"
    )
    result, _ = manage("shell", "-c", code)
    assert result.returncode == 0, result.stderr
    waited = float(result.stdout.split("waited ")[1].split()[0])
    assert 4.5 <= waited < 10, result.stdout
    assert "no matrix after 5.0 s" in result.stderr
