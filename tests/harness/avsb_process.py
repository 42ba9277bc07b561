"""The real `avsb` server binary as a test fixture: start, stop, restart on the same port.

Shared by tests/interop (unmodified PyPI clients) and python/tests (the avsb package). The
binary is `$AVSB_BIN`, or `debug/avsb` under the cargo target directory scripts/test uses.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

# The lines `avsb serve` prints on stdout once it listens, and the attribute each fills.
PRINTED = {
    "AVSB_BASE_URL": "base_url",
    "AVSB_SDK_KEY": "sdk_key",
    "AVSB_SDK_KEY_STAGING": "sdk_key_staging",
    "AVSB_SDK_KEY_PRODUCTION": "sdk_key_production",
    "PROCTOR_API_ROOT": "proctor_api_root",
    "OFREP_URL": "ofrep_url",
    "AVSB_ADMIN_TOKEN": "admin_token",
    "AVSB_CONSOLE_URL": "console_url",
    "AVSB_CONSOLE_USER": "console_user",
    "AVSB_CONSOLE_PASSWORD": "console_password",
}
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 15


class HarnessError(RuntimeError):
    """The server could not be started or stopped as a test needs."""


def avsb_binary() -> Path:
    """The server binary: $AVSB_BIN, else the debug build in scripts/test's target directory."""
    if os.environ.get("AVSB_BIN"):
        return Path(os.environ["AVSB_BIN"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or cache / "avsb" / "target")
    return target / "debug" / "avsb"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AvsbProcess:
    """A running `avsb serve --demo` and what it printed, with helpers for its HTTP APIs."""

    data_dir: Path
    port: int = 0
    heartbeat_secs: int | None = None
    process: subprocess.Popen | None = None
    base_url: str = ""
    sdk_key: str = ""
    sdk_key_staging: str = ""
    sdk_key_production: str = ""
    proctor_api_root: str = ""
    ofrep_url: str = ""
    admin_token: str = ""
    console_url: str = ""
    console_user: str = ""
    console_password: str = ""
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "stderr.txt"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> AvsbProcess:
        """Starts the server (on the same port and data directory as before, if restarted)."""
        binary = avsb_binary()
        if not binary.is_file():
            raise HarnessError(
                f"the avsb binary {binary} does not exist: build it with `cargo build -p avsb` "
                "(with the same CARGO_TARGET_DIR) or point AVSB_BIN at it"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stdout_path = self.data_dir / "stdout.txt"
        args = [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--data", str(self.data_dir / "data"), "--demo"]
        if self.heartbeat_secs is not None:
            args += ["--heartbeat-secs", str(self.heartbeat_secs)]
        with open(stdout_path, "wb") as stdout, open(self.log_path, "ab") as stderr:
            self.process = subprocess.Popen(args, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
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
            if self.process.poll() is not None:
                raise HarnessError(
                    f"avsb serve exited with {self.process.returncode} before it printed its addresses:\n" + self.log_tail()
                )
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise HarnessError(f"avsb serve printed no addresses in {START_TIMEOUT_SECONDS} s:\n" + self.log_tail())
            time.sleep(0.02)
        for name, attribute in PRINTED.items():
            setattr(self, attribute, printed[name])
        self.port = int(self.base_url.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """SIGTERM; the graceful exit must come with status 0."""
        if self.process is None or self.process.poll() is not None:
            return
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise HarnessError(f"avsb serve did not stop within {STOP_TIMEOUT_SECONDS} s of SIGTERM:\n" + self.log_tail())
        if code != 0:
            raise HarnessError(f"avsb serve exited with {code} after SIGTERM:\n" + self.log_tail())

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> AvsbProcess:
        self.stop()
        return self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- admin API -------------------------------------------------------------------------

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
            json={"definition": definition, "comment": f"test: {name}"},
        )
        assert response.status_code == 200, response.text
        return response.json()["revision"]

    def create_sdk_key(self, environment: str = "development") -> dict:
        """Creates an SDK key; the answer holds `id` and the secret `key`."""
        response = self.admin("POST", f"/environments/{environment}/sdk-keys", json={"name": "test"})
        assert response.status_code == 201, response.text
        return response.json()

    def revoke_sdk_key(self, key_id: int, environment: str = "development") -> None:
        response = self.admin("DELETE", f"/environments/{environment}/sdk-keys/{key_id}")
        assert response.status_code == 204, response.text

    def events(self, environment: str = "development") -> list[dict]:
        """The events the server stored for an environment."""
        response = self.admin("GET", f"/environments/{environment}/events")
        assert response.status_code == 200, response.text
        return response.json()["events"]

    # -- Pipet and metrics -----------------------------------------------------------------

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
