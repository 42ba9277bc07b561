"""The console's main flows in a real browser, end to end: sign in; create a flag from a
template; edit its rollout to 10% and see the exact share that changes bucket before saving; a
rule error shown at its field as one types; kill; roll back; promote; create an SDK key, copy
it, and read the datafile with it; the Python SDK sees each change within a second."""

from __future__ import annotations

import time

import requests

from avsb import AvsbServer


def review_and_save(console, comment: str = "", confirm: str | None = None):
    page = console.page
    if comment:
        page.fill("#comment", comment)
    if confirm is not None:
        page.fill("#confirm", confirm)
    page.click("#save-button")
    page.wait_for_load_state("networkidle")
    assert "saved=" in page.url, page.content()


def test_the_demo_user_signs_in_and_sees_the_projects_tests(console):
    console.go("/")
    assert console.page.url.endswith("/projects") or "/projects" in console.page.url
    console.go("/projects/demo")
    names = console.page.locator("a.test-name").all_inner_texts()
    assert "checkout-v2" in names and "buttoncolortst" in names
    console.shot("01-tests")
    console.go("/projects/demo/tests/buttoncolortst")
    assert console.page.locator("table.matrix-grid th", has_text="production").count() >= 1
    console.shot("02-test")


def test_a_flag_created_from_a_template_then_rolled_out_to_ten_percent(console):
    page = console.page
    console.go("/projects/demo/new?template=boolean")
    console.shot("03-new")
    page.fill("#name", "search_v3")
    page.click("button.primary")
    page.wait_for_load_state("networkidle")
    assert page.locator("#alloc-0-range-1-percent").input_value() == "0"
    page.click("button[data-review]")
    page.wait_for_load_state("networkidle")
    review_and_save(console, "a new flag")
    assert "/projects/demo/tests/search_v3" in page.url

    console.go("/projects/demo/tests/search_v3/edit?env=development")
    page.fill("#alloc-0-range-0-percent", "90")
    page.fill("#alloc-0-range-1-percent", "10")
    # The live panel follows as one types.
    page.wait_for_function("document.querySelector('#live').textContent.includes('change bucket')")
    assert "10% of allocation 1 change bucket (exact)" in page.inner_text("#live")
    console.shot("04-edit")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    page.wait_for_load_state("networkidle")
    body = page.inner_text("main")
    assert "10% of allocation 1 change bucket (exact)" in body, body
    console.shot("05-review")
    review_and_save(console, "10% rollout")


def test_a_rule_error_is_shown_at_its_field_as_one_types(console):
    page = console.page
    console.go("/projects/demo/tests/checkout-v2/edit?env=development")
    page.fill("#rule", "${country == 'US'")
    page.wait_for_function("document.querySelector('#live').textContent.includes('column')")
    live = page.inner_text("#live")
    assert "unterminated" in live or "missing" in live, live
    page.click("button[data-review]")
    page.wait_for_load_state("networkidle")
    assert page.title().startswith("Error: ")
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    field = page.locator(".field-error #rule")
    assert field.count() == 1, "the rule field is marked"
    console.shot("06-error")


def test_kill_then_roll_back_in_production(console):
    page = console.page
    console.go("/projects/demo/tests/buttoncolortst/kill?env=production")
    page.click("button.danger")
    page.wait_for_load_state("networkidle")
    assert page.locator("#save-button").is_disabled(), "the typed name is required first"
    console.shot("07-kill-review")
    review_and_save(console, "incident 42", confirm="buttoncolortst")
    assert "Killed in production" in page.inner_text("main")
    console.shot("08-killed")
    page.click("text=Restore an earlier version")
    page.wait_for_load_state("networkidle")
    page.click("button.danger")
    page.wait_for_load_state("networkidle")
    review_and_save(console, "incident over", confirm="buttoncolortst")
    assert "Killed in production" not in page.inner_text("main")


def test_promote_a_changed_test_to_staging(console, server):
    page = console.page
    console.go("/projects/demo/tests/ui-theme/edit?env=development")
    page.fill("#description", "promoted by the browser test")
    page.click("button[data-review]")
    page.wait_for_load_state("networkidle")
    review_and_save(console)
    console.go("/projects/demo/promote?from=development&to=staging")
    assert page.locator("input[name=tests][value=ui-theme]").is_checked()
    console.shot("09-promote")
    page.click("button.primary")
    page.wait_for_load_state("networkidle")
    review_and_save(console)
    staging = server.admin("GET", "/environments/staging/tests/ui-theme").json()
    assert staging["description"] == "promoted by the browser test"


def test_an_sdk_key_is_shown_once_copied_and_reads_the_datafile(console, server):
    page = console.page
    console.context = page.context
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    console.go("/projects/demo/settings/environments")
    page.fill("#key-name-production", "web")
    page.click("#key-name-production + button")
    page.wait_for_load_state("networkidle")
    key = page.input_value("#new-secret")
    page.click("[data-copy=new-secret]")
    page.wait_for_function("document.getElementById('new-secret-status').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == key
    console.shot("10-sdk-key")
    datafile = requests.get(server.base_url + "/sdk/v1/datafile", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert datafile.status_code == 200 and "buttoncolortst" in datafile.text
    console.go("/projects/demo/settings/environments")
    assert key not in page.content(), "shown once"


def test_the_python_sdk_sees_a_console_change_within_a_second(console, server, tmp_path):
    page = console.page
    sdk = AvsbServer(sdk_key=server.sdk_key, base_url=server.base_url, cache_dir=tmp_path)
    try:
        assert sdk.on_ready_sync(timeout=10)
        group = lambda user: sdk.for_user({"kind": "user", "key": user}).get_group("buttoncolortst")  # noqa: E731
        user = next(u for u in (f"u-{i}" for i in range(200)) if group(u).value != 2)
        console.go("/projects/demo/tests/buttoncolortst/kill?env=development")
        page.check("input[name=bucket][value='2']")
        page.click("button.danger")
        page.wait_for_load_state("networkidle")
        page.fill("#confirm", "buttoncolortst")
        page.click("#save-button")
        page.wait_for_url("**saved=**")
        deadline = time.monotonic() + 1.0
        while group(user).value != 2:
            assert time.monotonic() < deadline, "the SDK still had the old bucket a second after the save"
            time.sleep(0.01)
    finally:
        sdk.close_sync()
