"""The evaluation budget (issue 15) through the Python SDK, which evaluates with avsb-core: a rule
whose strings grow geometrically is refused when the matrix loads (rule_too_costly); a rule that
loads but meets a long context value fails alone, at once, with GENERAL and a message naming the
limit, while the request answers and the other tests are assigned; and neither costs memory.
The last tests put the same rules on the real server (tests/harness): the write is refused or
kept, and identify answers without the test."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest

from avsb import _native
from avsb.test_utils import MockAvsbServer

EXAMPLES = Path(__file__).resolve().parents[3] / "spec" / "examples"

SCHEMA = {
    "context": {"country": {"source": "QUERY", "type": "String", "defaultValue": ""}},
    "identifiers": {"USER": {"source": "QUERY"}},
}

# The limits of crates/avsb-core/src/rule/budget.rs, as its messages name them.
MAX_STRING_BYTES = 262144


def replace(inner: str, with_: str) -> str:
    return f"fn:replace({inner}, 'a', {with_})"


SQUARE = replace("country", "country")
# A value replaced into itself, nested: a fourth power of its length (issue 15).
GEOMETRIC = "${fn:length(" + replace(SQUARE, SQUARE) + ") > 0}"
# The same growth from a constant: folded at load, under the budget.
CONSTANT = "'a'"
for _ in range(9):
    CONSTANT = replace(CONSTANT, "'aaaaaaaaaa'")
CONSTANT_GEOMETRIC = "${fn:length(" + CONSTANT + ") > 0}"
# One level: accepted at load, fails for values of more than 512 letters (512² = 262144).
ONE_LEVEL = "${fn:length(" + SQUARE + ") > 0}"


def boolean_test(name: str, rule: str | None) -> dict:
    return {
        "version": "1",
        "salt": name,
        "testType": "USER",
        "buckets": [
            {"name": "off", "value": 0, "payload": {"booleanValue": False}},
            {"name": "on", "value": 1, "payload": {"booleanValue": True}},
        ],
        "allocations": [{"rule": rule, "ranges": [{"bucketValue": 1, "length": 1.0}]}],
    }


def matrix(**rules: str | None) -> dict:
    return {"audit": {"version": "1", "updated": 0, "updatedBy": "test"}, "tests": {n: boolean_test(n, r) for n, r in rules.items()}}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_rule_that_grows_geometrically_is_refused_when_the_matrix_loads():
    started = time.monotonic()
    engine = _native.Engine.from_matrix(json.dumps(matrix(hog=GEOMETRIC, folded=CONSTANT_GEOMETRIC, fine=None)), json.dumps(SCHEMA))
    assert time.monotonic() - started < 5, "the constant is folded under the budget, not computed"
    errors = {d["test"]: d for d in engine.diagnostics if d["severity"] == "error"}
    assert set(errors) == {"hog", "folded"}
    for test in ("hog", "folded"):
        d = errors[test]
        assert d["code"] == "rule_too_costly", d
        assert "fn:replace" in d["message"] and d["rule"], d
        start, end = d["span"]
        assert d["rule"][start:end].startswith("fn:replace("), d
    answer = engine.identify({"USER": "u1"}, [("country", "a")])
    assert answer["data"]["groups"]["fine"]["name"] == "on"


@pytest.fixture
def sdk():
    return MockAvsbServer(matrix=matrix(hog=ONE_LEVEL, fine="${fn:startsWith(country, 'aaa')}", plain=None), schema=SCHEMA)


def test_a_rule_past_the_budget_fails_alone_and_the_request_answers(sdk):
    scope = sdk.for_user({"kind": "user", "key": "u1", "country": "a" * 600})
    started = time.monotonic()
    hog = scope.get_bool_flag_details("hog", "default")
    assert time.monotonic() - started < 2, "refused before the string is made"
    assert (hog.value, hog.reason, hog.error_code) == ("default", "ERROR", "GENERAL")
    assert "budget" in hog.error_message and str(MAX_STRING_BYTES) in hog.error_message, hog.error_message
    for test in ("fine", "plain"):
        d = scope.get_bool_flag_details(test, False)
        assert (d.value, d.error_code) == (True, None), d
    # A value under the limit: the same rule works.
    assert sdk.for_user({"kind": "user", "key": "u1", "country": "a" * 500}).get_bool_flag("hog", False) is True


def test_identify_reports_the_failing_rule_and_assigns_the_others():
    engine = _native.Engine.from_matrix(json.dumps(matrix(hog=ONE_LEVEL, plain=None)), json.dumps(SCHEMA))
    answer = engine.identify({"USER": "u1"}, [("country", "a" * 600)])
    assert set(answer["data"]["groups"]) == {"plain"}
    reason = answer["reasons"]["hog"]
    assert reason["code"] == "rule_error" and reason["rule"] == "allocations[0].rule", reason
    assert str(MAX_STRING_BYTES) in reason["message"], reason


def test_memory_stays_bounded_however_often_the_rule_fails(sdk):
    # Warm up, then many evaluations each refused before it could make a 360 KB string (or, in
    # issue 15's form, gigabytes): the peak resident size hardly moves.
    sdk.for_user({"kind": "user", "key": "u0", "country": "a" * 600}).get_bool_flag("hog", False)
    before = peak_rss_mb()
    for i in range(200):
        value = "a" * (600 + i)
        assert sdk.for_user({"kind": "user", "key": f"u{i}", "country": value}).get_bool_flag("hog", False) is False
    assert peak_rss_mb() - before < 64, f"peak RSS grew by {peak_rss_mb() - before:.0f} MB"


# --- the same rules on the real server ---------------------------------------------------------


def server_rss_mb(server) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_the_server_refuses_the_geometric_rule_and_answers_around_the_runtime_failure(avsb_server, make_sdk):
    definition = boolean_test("budget-geometric", GEOMETRIC)
    response = avsb_server.admin(
        "PUT", "/environments/development/tests/budget-geometric", json={"definition": definition, "comment": "issue 15"}
    )
    assert response.status_code == 422, response.text
    assert "rule_too_costly" in response.text, response.text
    avsb_server.put_test("budget-hog", boolean_test("budget-hog", ONE_LEVEL))

    # Over HTTP: Pipet's identify answers, without the failing test and with the others.
    before = server_rss_mb(avsb_server)
    for _ in range(20):
        data = avsb_server.identify({"id.USER": "u1", "ctx.country": "a" * 600})
        assert "budget-hog" not in data["groups"] and "buttoncolortst" in data["groups"], data["groups"].keys()
    assert avsb_server.alive()
    assert server_rss_mb(avsb_server) - before < 64
    assert "budget-hog" in avsb_server.identify({"id.USER": "u1", "ctx.country": "a" * 500})["groups"]

    # Locally, through the datafile the SDK downloads.
    sdk = make_sdk(avsb_server)
    assert sdk.on_ready_sync(timeout=10)
    deadline = time.monotonic() + 10
    scope = sdk.for_user({"kind": "user", "key": "u1", "country": "a" * 600})
    while scope.get_bool_flag_details("budget-hog", None).error_code == "FLAG_NOT_FOUND" and time.monotonic() < deadline:
        time.sleep(0.05)
        scope = sdk.for_user({"kind": "user", "key": "u1", "country": "a" * 600})
    d = scope.get_bool_flag_details("budget-hog", "default")
    assert (d.value, d.error_code) == ("default", "GENERAL"), d
    assert str(MAX_STRING_BYTES) in d.error_message
    assert scope.get_group("buttoncolortst").group is not None
