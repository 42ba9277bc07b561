"""The console's states in a real browser: an empty project, a long test name, a project of
1,000 tests (paged on the server, filters in the URL), and a stale edit (another person saved
the same test meanwhile: refused, their change shown). Also the asset budget: the console's own
JavaScript and CSS together stay under 60 KB gzipped."""

from __future__ import annotations

import gzip
import re

import requests

LONG = "checkout-" + "very-long-segment-" * 6 + "end"


def boolean_test(share: float = 0.5) -> dict:
    return {
        "testType": "USER",
        "salt": "s",
        "buckets": [
            {"name": "off", "value": 0, "payload": {"booleanValue": False}},
            {"name": "on", "value": 1, "payload": {"booleanValue": True}},
        ],
        "allocations": [{"ranges": [{"bucketValue": 0, "length": 1 - share}, {"bucketValue": 1, "length": share}]}],
    }


def test_an_empty_project_offers_the_templates(console):
    page = console.page
    console.go("/projects")
    page.fill("#key", "empty-one")
    page.fill("#name", "Empty one")
    with page.expect_navigation():
        page.click("text=Create the project")
    console.go("/projects/empty-one")
    main = page.inner_text("main")
    assert "No tests yet." in main
    assert page.locator("a[href*='/projects/empty-one/new?template=']").count() >= 5
    console.shot("12-empty")


def test_a_long_test_name_is_cut_in_the_table_and_whole_on_its_page(console, server):
    server.put_test(LONG, boolean_test())
    page = console.page
    console.go("/projects/demo?q=very-long")
    link = page.locator("a.test-name", has_text="checkout-very")
    assert link.get_attribute("title") == LONG, "the full name on hover"
    box = link.bounding_box()
    assert box is not None and box["width"] < 400, "cut with an ellipsis, not stretching the table"
    console.shot("13-long-name")
    with page.expect_navigation():
        link.click()
    assert LONG in page.inner_text("h1")


def test_a_thousand_tests_are_paged_on_the_server(console, server):
    tests = {f"bulk-{i:04d}": boolean_test(0.1 if i % 2 else 0.5) for i in range(1000)}
    matrix = server.admin("GET", "/environments/staging/matrix").json()
    tests.update(matrix["tests"])
    reply = server.admin("PUT", "/environments/staging/matrix", json={"matrix": {"tests": tests}})
    assert reply.status_code == 200, reply.text
    page = console.page
    console.go("/projects/demo")
    status = page.inner_text("[role=status]")
    assert re.search(r"of 1,0\d\d tests; showing 1–100", status), status
    assert page.locator("table[data-rows] tbody tr").count() == 100
    console.shot("14-thousand")
    with page.expect_navigation():
        page.click("text=Next")
    assert "page=2" in page.url
    page.fill("[data-search]", "bulk-09")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "q=bulk-09" in page.url
    assert page.locator("table[data-rows] tbody tr").count() == 100
    # Keyboard: j selects the first row, Enter opens it.
    page.locator("main h1").first.click()
    page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/tests/bulk-09" in page.url


def test_a_stale_edit_is_refused_with_the_other_change_shown(console, server):
    page = console.page
    console.go("/projects/demo/tests/ui-theme/edit?env=production")
    page.fill("#description", "mine")
    # Meanwhile someone else changes the same test.
    theirs = server.admin("GET", "/environments/production/tests/ui-theme").json()
    theirs["description"] = "theirs"
    reply = server.admin("PUT", "/environments/production/tests/ui-theme", json={"definition": theirs, "comment": "their change"})
    assert reply.status_code == 200, reply.text
    with page.expect_navigation():
        page.click("button[data-review]")
    main = page.inner_text("main")
    assert "This changed since you began" in main and "their change" in main, main
    console.shot("15-stale")
    current = server.admin("GET", "/environments/production/tests/ui-theme").json()
    assert current["description"] == "theirs", "nothing overwritten"


def test_the_consoles_own_script_and_stylesheet_stay_under_60_kb_gzipped(console, server):
    console.go("/projects/demo")
    urls = [console.page.get_attribute("link[rel=stylesheet]", "href"), console.page.get_attribute("script[src]", "src")]
    total = 0
    for url in urls:
        body = requests.get(server.base_url + url, timeout=5).content
        total += len(gzip.compress(body, 9))
    assert total <= 60 * 1024, f"{total} bytes gzipped"
