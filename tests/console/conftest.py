"""Fixtures for the console's browser tests: the real `avsb serve --demo` binary on loopback,
and headless Chromium (Debian's package, driven by Playwright for Python) signed in with the
console user the server printed.

Screenshots of each main page go to $AVSB_SHOTS (default: console-shots/ in the cargo target
directory) for a person to look at. axe-core (the npm package, installed by scripts/test into
$AVSB_AXE) is injected into pages to check accessibility.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "harness"))

from avsb_process import AvsbProcess  # noqa: E402

pytest_plugins = ["avsb_fixtures"]

CHROMIUM = "/usr/bin/chromium"


def shots_dir() -> Path:
    default = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/avsb/target")) / "console-shots"
    path = Path(os.environ.get("AVSB_SHOTS", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def server(avsb_server):
    """The harness's `avsb serve --demo` for the test module (tests/harness/avsb_fixtures.py)."""
    return avsb_server


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium package", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def expected_status(message: str) -> bool:
    """A page answered with a form's error status (422: fix the fields; 409: changed since)."""
    return message.startswith("Failed to load resource: the server responded with a status of 4") and any(
        code in message for code in ("422", "409")
    )


class Console:
    """A signed-in browser tab, with what went wrong in it recorded."""

    def __init__(self, server: AvsbProcess, page):
        self.server = server
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and not expected_status(m.text) and self.errors.append(m.text))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def go(self, path: str):
        response = self.page.goto(self.url(path))
        self.page.wait_for_load_state("networkidle")
        return response

    def shot(self, name: str) -> Path:
        path = shots_dir() / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_in(self, username: str, password: str):
        self.go("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("networkidle")


@pytest.fixture
def console(server, browser):
    # bypass_csp: the tests' own probes (axe-core, wait_for_function) are inline script, which
    # the console's CSP refuses; with it off, the inert-HTML tests also prove the escaping alone
    # keeps injected markup from running (the CSP is a second wall, tested by the server's tests).
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = context.new_page()
    c = Console(server, page)
    c.sign_in(server.console_user, server.console_password)
    yield c
    context.close()
    assert not c.dialogs, f"a dialog fired: {c.dialogs}"
    assert not c.errors, f"the page logged errors: {c.errors}"
