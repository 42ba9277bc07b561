"""The console's pages for everyone: accessibility (axe-core reports no serious or critical
violation on the main pages), HTML in a test's texts shown inert (no dialog fires), and the
change flow with JavaScript off."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

EVIL = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"

MAIN_PAGES = [
    "/projects",
    "/projects/demo",
    "/projects/demo/tests/checkout-v2",
    "/projects/demo/tests/checkout-v2/edit?env=development",
    "/projects/demo/new",
    "/projects/demo/promote",
    "/projects/demo/settings/environments",
    "/projects/demo/settings/schema",
    "/projects/demo/settings/members",
    "/projects/demo/history",
    "/projects/demo/evaluate?env=development&id=u-1",
]


def axe_source() -> str:
    path = Path(os.environ.get("AVSB_AXE", Path.home() / ".cache/avsb/node/node_modules/axe-core/axe.min.js"))
    if not path.is_file():
        pytest.fail(f"axe-core is missing at {path}: scripts/test installs it with npm", pytrace=False)
    return path.read_text()


@pytest.mark.parametrize("path", MAIN_PAGES)
def test_axe_finds_no_serious_or_critical_violation(console, path):
    response = console.go(path)
    assert response.status == 200, path
    console.shot("page-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-"))
    console.page.add_script_tag(content=axe_source())
    result = console.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{path}: " + "; ".join(bad)


def test_login_page_is_accessible_too(server, browser):
    page = browser.new_page(bypass_csp=True)
    page.goto(server.base_url + "/login")
    page.add_script_tag(content=axe_source())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert not [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    page.close()


def test_html_in_descriptions_payloads_and_rules_never_runs(console, server):
    definition = {
        "testType": "USER",
        "salt": "xss",
        "description": EVIL,
        "rule": "${'<img src=x onerror=alert(3)>' != '</script>'}",
        "buckets": [
            {"name": "off", "value": 0, "description": EVIL, "payload": {"stringValue": EVIL}},
            {"name": "on", "value": 1, "payload": {"stringValue": "</textarea><script>alert(4)</script>"}},
        ],
        "allocations": [{"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}],
    }
    server.put_test("xss-test", definition)
    for path in [
        "/projects/demo?q=%3Cscript%3Ealert(5)%3C/script%3E",
        "/projects/demo/tests/xss-test",
        "/projects/demo/tests/xss-test/edit?env=development",
        "/projects/demo/history",
        "/projects/demo/evaluate?env=development&id=%3Cimg%20src=x%20onerror=alert(6)%3E",
    ]:
        console.go(path)
        console.page.wait_for_timeout(100)
    console.go("/projects/demo/tests/xss-test")
    assert EVIL in console.page.inner_text("main"), "shown as text"
    console.shot("11-inert-html")
    # The fixture fails the test if any dialog fired.


def test_an_edit_works_with_javascript_off(server, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.base_url + "/login")
    page.fill("#username", server.console_user)
    page.fill("#password", server.console_password)
    page.click("button[type=submit]")
    page.goto(server.base_url + "/projects/demo/tests/checkout-v2/edit?env=staging")
    page.fill("#description", "edited without JavaScript")
    page.click("button[data-review]")
    assert "Review checkout-v2 in staging" in page.inner_text("h1")
    page.click("#save-button")
    assert "saved=" in page.url, page.inner_text("main")
    context.close()
    staging = server.admin("GET", "/environments/staging/tests/checkout-v2").json()
    assert staging["description"] == "edited without JavaScript"
