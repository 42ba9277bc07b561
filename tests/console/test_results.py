"""A test's Results and the project's Metrics in a real browser: exposures and purchases posted
to `POST /sdk/v1/events` with the demo's SDK key, then the results page read as a person reads
it (each bucket's numbers, the interval bar and its colour, the sample-ratio banner for a
skewed split, the empty state), its settings form changing the URL and the numbers, with the
keyboard and with JavaScript off; metrics created, refused with the field named, and deleted
with the key typed. Screenshots go to the console-shots directory."""

from __future__ import annotations

import re
import time
import uuid

import requests

from test_pages import axe_source

METRIC = {"key": "checkout-done", "name": "Checkout done", "event": "checkout", "type": "conversion"}


def split_test(buckets: tuple[str, str] = ("control", "treatment")) -> dict:
    return {
        "testType": "USER",
        "salt": "results",
        "buckets": [{"name": buckets[0], "value": 0}, {"name": buckets[1], "value": 1}],
        "allocations": [{"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}],
    }


def post_events(server, events: list[dict]) -> None:
    for start in range(0, len(events), 1000):
        reply = requests.post(
            f"{server.base_url}/sdk/v1/events",
            json={"batchId": str(uuid.uuid4()), "events": events[start : start + 1000]},
            headers={"Authorization": f"Bearer {server.sdk_key}"},
            timeout=10,
        )
        assert reply.status_code in (200, 202), reply.text


def run_experiment(server, test: str, units: tuple[int, int], buyers: tuple[int, int], event: str = "checkout") -> None:
    """Exposes `units` users per bucket of `test` (after its revision was saved) and has the
    first `buyers` of each bucket send `event`; half the users are on mobile."""
    now = int(time.time() * 1000) + 1000
    events = []
    for bucket in (0, 1):
        for i in range(units[bucket]):
            user = {"USER": f"{test}-{bucket}-{i}"}
            # A third of the units come 23 hours later (the latest the server accepts), so the
            # charts have a second UTC day.
            at = now + (23 * 3600 * 1000 if i % 3 == 2 else 0)
            events.append(
                {
                    "kind": "exposure",
                    "identifiers": user,
                    "test": test,
                    "bucket": bucket,
                    "reason": "split",
                    "allocation": 0,
                    "time": at,
                    "dimensions": {"device": "mobile" if i % 2 else "desktop"},
                }
            )
            if i < buyers[bucket]:
                events.append({"kind": "track", "identifiers": user, "key": event, "value": 10 + i % 7, "time": at + 1000})
    post_events(server, events)


def ensure_metric(server) -> None:
    reply = server.admin("GET", "/metrics")
    if not any(m["key"] == METRIC["key"] for m in reply.json()["metrics"]):
        made = server.admin("POST", "/metrics", json=METRIC)
        assert made.status_code == 201, made.text


def axe_violations(console) -> list[str]:
    console.page.add_script_tag(content=axe_source())
    result = console.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def row_cells(page, table, bucket: str) -> list[str]:
    row = table.locator("tbody tr", has_text=bucket)
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def test_results_show_each_buckets_numbers_with_an_interval_bar_coloured_by_the_verdict(console, server):
    ensure_metric(server)
    server.put_test("results-ab", split_test())
    run_experiment(server, "results-ab", (400, 400), (40, 80))
    page = console.page
    response = console.go("/projects/demo/tests/results-ab/results?env=development&metrics=checkout-done")
    assert response.status == 200
    summary = page.inner_text(".results-summary")
    assert "development" in summary and "800 USER units" in summary, summary
    assert "The split matches the ranges" in page.inner_text("main")
    table = page.locator("table.results-table").first
    assert "Checkout done" in table.inner_text()
    control = row_cells(page, table, "control")
    treatment = row_cells(page, table, "treatment")
    assert control[1:3] == ["400", "10.00%"], control
    assert treatment[1:3] == ["400", "20.00%"] and treatment[3].startswith("+100.0% [+"), treatment
    assert treatment[-1] == "better", treatment
    bar = table.locator("svg.ci")
    assert bar.count() == 1, "one bar: the control has none"
    assert "ci-better" in bar.get_attribute("class")
    assert bar.locator("circle").get_attribute("fill") == "#0072B2", "blue for better"
    assert "better" in bar.get_attribute("aria-label")
    p_value = float(re.sub(r"[^0-9.]", "", treatment[-2].splitlines()[0]) or "1")
    assert p_value < 0.05, treatment
    assert page.locator("svg.lift-chart").count() == 1 and page.locator("svg.units-chart").count() == 1
    assert "As of" in page.inner_text("footer.results-method")
    console.shot("results-normal")
    assert not axe_violations(console), axe_violations(console)


def test_the_settings_form_puts_every_setting_in_the_url_and_changes_the_numbers(console, server):
    ensure_metric(server)
    server.put_test("results-form", split_test())
    run_experiment(server, "results-form", (300, 300), (30, 60))
    page = console.page
    console.go("/projects/demo/tests/results-form/results?env=development")
    assert page.locator("th", has_text="p-value").count() >= 1
    page.select_option("#engine", "bayesian")
    page.select_option("#correction", "holm")
    # Only the experiment's metric: uncheck the demo's other ones.
    for box in page.locator("#metrics input[type=checkbox]").all():
        if box.get_attribute("value") != METRIC["key"]:
            box.uncheck()
    with page.expect_navigation():
        page.click("text=Show results")
    url = page.url
    for part in ("engine=bayesian", "correction=holm", "metrics=checkout-done", "env=development", "cuped=on"):
        assert part in url, url
    assert page.locator("table.results-table").count() == 1
    assert page.locator("th", has_text="Chance to beat control").count() == 1
    treatment = row_cells(page, page.locator("table.results-table"), "treatment")
    chance = treatment[-2].splitlines()[0]
    assert re.fullmatch(r"\d+\.\d%", chance) and float(chance[:-1]) > 95, treatment
    assert "expected loss if you pick it" in treatment[-2]
    assert "Bayesian" in page.inner_text("footer.results-method")
    # The link is the state: opened afresh, it shows the same.
    console.go(url.replace(console.server.base_url, ""))
    assert page.locator("#engine").input_value() == "bayesian"


def test_a_skewed_split_shows_the_sample_ratio_mismatch_banner(console, server):
    ensure_metric(server)
    server.put_test("results-srm", split_test())
    run_experiment(server, "results-srm", (600, 400), (60, 40))
    page = console.page
    console.go("/projects/demo/tests/results-srm/results?env=development")
    banner = page.locator(".banner.srm[role=alert]")
    assert banner.count() == 1
    text = banner.inner_text()
    assert "Sample ratio mismatch (p<0.001): expected 50/50, got 60/40 (control/treatment)." in text, text
    assert "Don't trust these numbers until the cause is found." in text
    console.shot("results-srm")
    assert not axe_violations(console)


def test_a_test_without_exposures_shows_a_checklist_and_one_elsewhere_says_where_it_is(console, server):
    server.put_test("results-empty", split_test())
    page = console.page
    console.go("/projects/demo/tests/results-empty/results")
    main = page.inner_text("main")
    assert "No exposures yet" in main
    items = page.locator(".checklist li").all_inner_texts()
    assert len(items) == 3 and "recordExposures" in items[1] and "splits units in development" in items[2], items
    console.shot("results-empty")
    assert not axe_violations(console)
    console.go("/projects/demo/tests/results-empty/results?env=production")
    assert "is not in production" in page.inner_text("main")
    with page.expect_navigation():
        page.click(".banner a:has-text('development')")
    assert "env=development" in page.url


def test_the_test_page_has_overview_and_results_tabs(console):
    page = console.page
    console.go("/projects/demo/tests/checkout-v2")
    tabs = page.locator("nav.tabs[aria-label=Test] a")
    assert tabs.all_inner_texts() == ["Overview", "Results", "History"]
    assert tabs.first.get_attribute("aria-current") == "page"
    with page.expect_navigation():
        page.click("nav.tabs >> text=Results")
    assert page.url.endswith("/tests/checkout-v2/results")
    assert "production" in page.inner_text(".results-summary"), "production is the default environment"
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Results"


def test_results_are_usable_with_the_keyboard(console, server):
    ensure_metric(server)
    page = console.page
    console.go("/projects/demo/tests/checkout-v2/results")
    # Tab from the skip link reaches the settings before the tables, in reading order.
    order = []
    for _ in range(40):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim().slice(0, 20)"))
        if order[-1] == "Show results":
            break
    assert "env" in order and "engine" in order and order[-1] == "Show results", order
    assert order.index("env") < order.index("engine") < order.index("dimension")
    # The breakdown by typing: Enter in the text field submits the form.
    page.focus("#dimension")
    page.keyboard.type("device")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "dimension=device" in page.url
    assert page.locator("h2", has_text="By device").count() == 1
    assert page.locator("h3", has_text="device: mobile").count() == 1
    # The focused control is visibly outlined.
    page.focus("#engine")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_results_work_with_javascript_off(server, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.base_url + "/login")
    page.fill("#username", server.console_user)
    page.fill("#password", server.console_password)
    page.click("button[type=submit]")
    page.goto(server.base_url + "/projects/demo/tests/checkout-v2/results")
    assert page.locator("svg.ci").count() >= 1, "the bars are drawn on the server"
    page.select_option("#engine", "bayesian")
    page.click("text=Show results")
    assert "engine=bayesian" in page.url
    assert page.locator("th", has_text="Chance to beat control").count() >= 1
    context.close()


def test_a_metric_is_created_refused_with_the_field_named_and_deleted_with_its_key_typed(console):
    page = console.page
    console.go("/projects/demo/metrics")
    assert page.locator("nav[aria-label=Project] a[aria-current=page]").inner_text() == "Metrics"
    console.shot("metrics")
    assert not axe_violations(console)
    with page.expect_navigation():
        page.click("text=New metric")
    page.fill("#key", "orders-per-visitor")
    page.fill("#name", "")
    page.fill("#event", "order")
    page.check("input[name=type][value=ratio]")
    assert page.locator("#denominator-event").is_visible(), "the denominator shows for a ratio"
    with page.expect_navigation():
        page.click("text=Create the metric")
    assert page.title().startswith("Error: New metric")
    summary = page.locator(".error-summary")
    assert summary.is_visible() and page.evaluate("document.activeElement.classList.contains('error-summary')"), "focused"
    links = summary.locator("a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == ["#name", "#denominator-event"]
    assert links.first.inner_text() == "Enter a name, such as Purchase rate"
    assert "Enter a name" in page.locator(".field-error:has(#name) .error-message").inner_text()
    assert page.locator("#denominator-event").is_visible(), "a field with an error stays visible"
    console.shot("metric-form-error")
    assert not axe_violations(console)
    links.first.click()
    assert page.evaluate("location.hash") == "#name"
    page.fill("#name", "Orders per visitor")
    page.fill("#denominator-event", "visit")
    page.fill("#window-hours", "0")
    with page.expect_navigation():
        page.click("text=Create the metric")
    message = page.locator(".field-error:has(#window-hours) .error-message").inner_text()
    assert "Window: must be more than 0" in message, "the definition's own rule, at its field"
    page.fill("#window-hours", "48")
    page.select_option("#capping-type", "percentile")
    page.fill("#capping-value", "0.99")
    with page.expect_navigation():
        page.click("text=Create the metric")
    assert "saved=orders-per-visitor" in page.url
    row = page.locator("tbody tr", has_text="Orders per visitor")
    assert "ratio: sum of order over count of visit" in row.inner_text()
    assert "48 h" in row.inner_text() and "at the 99th percentile" in row.inner_text()
    # Changing the type away from ratio hides the denominator (the script), and saving works.
    with page.expect_navigation():
        row.locator("a", has_text="Edit").click()
    page.check("input[name=type][value=count]")
    assert not page.locator("#denominator-event").is_visible()
    page.select_option("#capping-type", "none")
    with page.expect_navigation():
        page.click("text=Save the metric")
    assert "count (events per unit)" in page.locator("tbody tr", has_text="Orders per visitor").inner_text()
    with page.expect_navigation():
        page.locator("tbody tr", has_text="Orders per visitor").locator("a", has_text="Delete").click()
    button = page.locator("#delete-button")
    assert button.is_disabled(), "waits for the typed key"
    page.fill("#confirm", "orders-per-visitor")
    assert button.is_enabled()
    with page.expect_navigation():
        button.click()
    assert "deleted=orders-per-visitor" in page.url
    assert page.locator("tbody tr", has_text="Orders per visitor").count() == 0
