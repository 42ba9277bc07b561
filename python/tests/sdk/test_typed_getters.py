"""Typed getters on tests whose buckets carry no payload of the getter's type: the caller's
default with OpenFeature's TYPE_MISMATCH and one log line per test, where a bucket without a
payload beside buckets with one still defers to the caller's default without an error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from avsb.test_utils import MockAvsbServer

EXAMPLES = Path(__file__).resolve().parents[3] / "spec" / "examples"

GETTERS = ["bool", "string", "int", "float", "json"]


@pytest.fixture
def demo():
    """The demo project's matrix: Pipet's example tests carry no payloads (countryalgotst,
    newfeaturerollout), the two flags do (checkout-v2: booleans, ui-theme: strings)."""
    return MockAvsbServer(matrix=EXAMPLES / "pipet-example-matrix.json", schema=EXAMPLES / "pipet-example-context.json")


def details(scope, getter, test, default="caller"):
    d = getattr(scope, f"get_{getter}_flag_details")(test, default)
    return d.value, d.variant, d.reason, d.error_code


@pytest.mark.parametrize("getter", GETTERS)
def test_a_typed_getter_on_a_test_without_payloads_is_a_type_mismatch(demo, getter):
    scope = demo.for_user({"kind": "user", "key": "u_7", "country": "US"})
    group = scope.get_group("countryalgotst").group
    assert group in ("inactive", "control", "test")  # assigned: a bucket, with no payload
    assert details(scope, getter, "countryalgotst") == ("caller", group, "ERROR", "TYPE_MISMATCH")
    d = getattr(scope, f"get_{getter}_flag_details")("countryalgotst", "caller")
    assert "no bucket with" in d.error_message and "get_group('countryalgotst')" in d.error_message
    assert getattr(scope, f"get_{getter}_flag")("countryalgotst", "caller") == "caller"


def test_an_unassigned_context_gets_the_mismatch_too(demo):
    # newfeaturerollout is for logged-in users: this context gets no bucket at all.
    scope = demo.for_user({"kind": "user", "key": "u_7", "loggedIn": False})
    assert scope.get_group("newfeaturerollout").group is None
    assert details(scope, "bool", "newfeaturerollout", False) == (False, None, "ERROR", "TYPE_MISMATCH")


def test_a_getter_of_another_type_than_every_bucket_is_a_type_mismatch(demo):
    scope = demo.for_user({"kind": "user", "key": "u_1"})
    assert details(scope, "string", "checkout-v2") == ("caller", "on", "ERROR", "TYPE_MISMATCH")
    assert details(scope, "bool", "checkout-v2") == (True, "on", "TARGETING_MATCH", None)
    assert details(scope, "json", "checkout-v2") == (True, "on", "TARGETING_MATCH", None)


def test_the_mismatch_is_logged_once_per_test(demo, caplog):
    caplog.set_level(logging.WARNING, logger="avsb")
    for key in ("u_1", "u_2", "u_3"):
        scope = demo.for_user({"kind": "user", "key": key, "country": "US", "loggedIn": True})
        assert scope.get_bool_flag("countryalgotst", False) is False
        assert scope.get_bool_flag("countryalgotst", False) is False
        assert scope.get_string_flag("newfeaturerollout", "off") == "off"
    messages = [r.getMessage() for r in caplog.records if "TYPE_MISMATCH" in r.getMessage()]
    assert len(messages) == 2, messages
    assert sum("'countryalgotst'" in m for m in messages) == 1
    assert sum("'newfeaturerollout'" in m for m in messages) == 1


def test_an_unassigned_context_on_a_test_with_payloads_of_the_type_gets_the_default_without_error():
    # What product.md promises: the default when unassigned, no error and no log line.
    matrix = {
        "audit": {"version": "1", "updated": 0, "updatedBy": "test"},
        "tests": {
            "pro-banner": {
                "version": "1",
                "salt": "pro-banner",
                "testType": "USER",
                "buckets": [
                    {"name": "off", "value": 0, "payload": {"booleanValue": False}},
                    {"name": "on", "value": 1, "payload": {"booleanValue": True}},
                ],
                "allocations": [{"rule": "${plan == 'pro'}", "ranges": [{"bucketValue": 1, "length": 1.0}]}],
            }
        },
    }
    mock = MockAvsbServer(matrix=matrix)
    assert details(mock.for_user({"kind": "user", "key": "u", "plan": "free"}), "bool", "pro-banner", False) == (False, None, "DEFAULT", None)
    assert details(mock.for_user({"kind": "user", "key": "u", "plan": "pro"}), "bool", "pro-banner", False) == (True, "on", "TARGETING_MATCH", None)
    # The engine accepts a test only if every bucket has a payload or none does, so "no payload"
    # always means the whole test: a string getter here is a mismatch, assigned or not.
    assert details(mock.for_user({"kind": "user", "key": "u", "plan": "free"}), "string", "pro-banner")[3] == "TYPE_MISMATCH"


def test_get_group_still_reads_a_test_without_payloads(demo):
    scope = demo.for_user({"kind": "user", "key": "u_7", "country": "US"})
    group = scope.get_group("countryalgotst")
    assert group.group in ("inactive", "control", "test")
    assert group.payload is None


def test_the_openfeature_provider_reports_the_mismatch(demo):
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import ErrorCode

    from avsb.openfeature import AvsbProvider

    api.set_provider_and_wait(AvsbProvider(demo), "typed-getters")
    try:
        client = api.get_client("typed-getters")
        d = client.get_boolean_details("countryalgotst", False, EvaluationContext("u_7", {"country": "US"}))
        assert (d.value, d.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    finally:
        api.shutdown()
