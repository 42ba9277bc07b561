"""Fixtures for the interoperability tests: the real `avsb` binary, started on loopback.

Every test here talks HTTP to the server binary that `cargo build -p avsb` produces, through
unmodified packages from PyPI (django-proctor, openfeature-provider-ofrep). The binary is
`$AVSB_BIN`, or `debug/avsb` under the cargo target directory that scripts/test uses.

Django is configured once for the whole session with the project in `djangoproject/`, whose
settings module is the top-level `settings` because django-proctor's `proctor.settings`
imports `sys.modules["settings"]` (reference §7.8).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
DJANGO_PROJECT = HERE / "djangoproject"

# The lines `avsb serve` prints on stdout once it listens, and the attribute each fills.
PRINTED = {
    "AVSB_BASE_URL": "base_url",
    "AVSB_SDK_KEY": "sdk_key",
    "AVSB_SDK_KEY_STAGING": "sdk_key_staging",
    "AVSB_SDK_KEY_PRODUCTION": "sdk_key_production",
    "PROCTOR_API_ROOT": "proctor_api_root",
    "OFREP_URL": "ofrep_url",
    "AVSB_ADMIN_TOKEN": "admin_token",
}
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 15


def pytest_configure(config):
    sys.path.insert(0, str(DJANGO_PROJECT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
    import django

    django.setup()


def avsb_binary() -> Path:
    """The server binary: $AVSB_BIN, else the debug build in scripts/test's target directory."""
    if os.environ.get("AVSB_BIN"):
        return Path(os.environ["AVSB_BIN"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or cache / "avsb" / "target")
    return target / "debug" / "avsb"


@dataclass
class AvsbServer:
    """A running `avsb serve --demo` and what it printed, with helpers for its HTTP APIs."""

    process: subprocess.Popen
    data_dir: Path
    log_path: Path
    base_url: str = ""
    sdk_key: str = ""
    sdk_key_staging: str = ""
    sdk_key_production: str = ""
    proctor_api_root: str = ""
    ofrep_url: str = ""
    admin_token: str = ""
    http: requests.Session = field(default_factory=requests.Session)

    # -- admin API -----------------------------------------------------------------------

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        """Calls the admin API (path relative to /api/v1/projects/demo) with the write token."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        url = f"{self.base_url}/api/v1/projects/demo{path}"
        return self.http.request(method, url, headers=headers, timeout=10, **kwargs)

    def put_test(self, name: str, definition: dict, environment: str = "development") -> dict:
        """Creates or replaces one test; returns the new revision."""
        response = self.admin(
            "PUT",
            f"/environments/{environment}/tests/{name}",
            json={"definition": definition, "comment": f"interop: {name}"},
        )
        assert response.status_code == 200, response.text
        return response.json()["revision"]

    def create_sdk_key(self, environment: str = "development") -> dict:
        """Creates an SDK key; the answer holds `id` and the secret `key`."""
        response = self.admin("POST", f"/environments/{environment}/sdk-keys", json={"name": "interop"})
        assert response.status_code == 201, response.text
        return response.json()

    def revoke_sdk_key(self, key_id: int, environment: str = "development") -> None:
        response = self.admin("DELETE", f"/environments/{environment}/sdk-keys/{key_id}")
        assert response.status_code == 204, response.text

    # -- Pipet and metrics ---------------------------------------------------------------

    def identify(self, params: dict) -> dict:
        """The server's own `/groups/identify` answer (the `data` of the envelope)."""
        response = self.http.get(f"{self.proctor_api_root}/groups/identify", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def requests_served(self, route: str) -> int:
        """How many requests the server has answered on one route (all methods and statuses)."""
        text = self.http.get(f"{self.base_url}/metrics", timeout=10).text
        # Route labels hold braces themselves ("/pipet/{sdk_key}/..."), so the labels run to the
        # last "} " of the line.
        pattern = re.compile(r"^avsb_http_requests_total\{(?P<labels>.*)\} (?P<count>\d+)$", re.M)
        return sum(int(m["count"]) for m in pattern.finditer(text) if f'route="{route}"' in m["labels"])

    def identify_calls(self) -> int:
        """How many `/groups/identify` requests the server has answered."""
        return self.requests_served("/pipet/{sdk_key}/groups/identify")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_server(data_dir: Path) -> AvsbServer:
    binary = avsb_binary()
    if not binary.is_file():
        pytest.fail(
            f"the avsb binary {binary} does not exist: build it with `cargo build -p avsb` "
            "(with the same CARGO_TARGET_DIR) or point AVSB_BIN at it",
            pytrace=False,
        )
    stdout_path = data_dir / "stdout.txt"
    log_path = data_dir / "stderr.txt"
    with open(stdout_path, "wb") as stdout, open(log_path, "wb") as stderr:
        process = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", "--data", str(data_dir / "data"), "--demo"],
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    server = AvsbServer(process=process, data_dir=data_dir, log_path=log_path)
    # The server prints its lines once it listens; read the file until all of them are there.
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    printed: dict[str, str] = {}
    while True:
        for line in stdout_path.read_text(errors="replace").splitlines():
            name, sep, value = line.partition("=")
            if sep and name in PRINTED:
                printed[name] = value.strip()
        if len(printed) == len(PRINTED):
            break
        if process.poll() is not None:
            pytest.fail(
                f"avsb serve exited with {process.returncode} before it printed its addresses:\n"
                + server.log_tail(),
                pytrace=False,
            )
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(
                f"avsb serve printed no addresses in {START_TIMEOUT_SECONDS} s:\n" + server.log_tail(),
                pytrace=False,
            )
        time.sleep(0.02)
    for name, attribute in PRINTED.items():
        setattr(server, attribute, printed[name])
    return server


def stop_server(server: AvsbServer) -> None:
    """SIGTERM, then the graceful exit must come with status 0."""
    server.http.close()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        pytest.fail(
            f"avsb serve did not stop within {STOP_TIMEOUT_SECONDS} s of SIGTERM:\n" + server.log_tail()
        )
    assert code == 0, f"avsb serve exited with {code} after SIGTERM:\n" + server.log_tail()


@pytest.fixture(scope="module")
def avsb_server():
    """A fresh server with the demo project for each test module, stopped with SIGTERM after it."""
    with tempfile.TemporaryDirectory(prefix="avsb-interop-") as tmp:
        server = start_server(Path(tmp))
        try:
            yield server
        finally:
            if server.process.poll() is None:
                stop_server(server)
            else:
                pytest.fail(
                    f"avsb serve died during the tests (status {server.process.returncode}):\n"
                    + server.log_tail()
                )
