"""The unmodified OpenFeature SDK with its OFREP provider against the real server.

`OFREPProvider` posts every evaluation to `/ofrep/v1/evaluate/flags/{key}` with the SDK key as
bearer token and checks the JSON type of `value` itself, so these tests prove that the server's
answers have the types, variants and reasons that a stock OpenFeature client accepts
(docs/openfeature.md §2). Flags of every payload type are added to the development environment
through the admin API; the demo matrix supplies checkout-v2 (boolean) and ui-theme (string).
"""

from __future__ import annotations

import itertools

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason


def single_bucket(salt: str, payload: dict) -> dict:
    return {
        "version": "1",
        "salt": salt,
        "testType": "USER",
        "rule": None,
        "constants": {},
        "buckets": [{"name": "only", "value": 0, "payload": payload}],
        "allocations": [{"rule": None, "ranges": [{"length": 1.0, "bucketValue": 0}]}],
    }


def targeted(salt: str, rule: str, matched: tuple[str, dict], otherwise: tuple[str, dict]) -> dict:
    """Two buckets: `matched` (value 1) where the rule holds, `otherwise` (value 0) elsewhere."""
    return {
        "version": "1",
        "salt": salt,
        "testType": "USER",
        "rule": None,
        "constants": {},
        "buckets": [
            {"name": otherwise[0], "value": 0, "payload": otherwise[1]},
            {"name": matched[0], "value": 1, "payload": matched[1]},
        ],
        "allocations": [
            {"rule": rule, "ranges": [{"length": 1.0, "bucketValue": 1}]},
            {"rule": None, "ranges": [{"length": 1.0, "bucketValue": 0}]},
        ],
    }


FLAGS = {
    "max-items": targeted(
        "max-items", "${plan == 'pro'}", ("many", {"longValue": 100}), ("few", {"longValue": 10})
    ),
    "discount": targeted(
        "discount", "${country == 'CA'}", ("whole", {"doubleValue": 1.0}), ("quarter", {"doubleValue": 0.25})
    ),
    "banner": single_bucket(
        "banner", {"map": {"title": "Welcome", "maxItems": 3, "ratio": 0.5, "tags": ["a", "b"]}}
    ),
    "layout": single_bucket(
        "layout", {"json": {"columns": [1, 2], "sidebar": {"open": True, "width": None}}}
    ),
    "regions": single_bucket("regions", {"stringArray": ["eu", "us"]}),
    "account-tier": {
        "version": "1",
        "salt": "account-tier",
        "testType": "ACCOUNT",
        "rule": None,
        "constants": {},
        "buckets": [
            {"name": "basic", "value": 0, "payload": {"stringValue": "basic"}},
            {"name": "gold", "value": 1, "payload": {"stringValue": "gold"}},
        ],
        "allocations": [
            {"rule": None, "ranges": [{"length": 0.5, "bucketValue": 0}, {"length": 0.5, "bucketValue": 1}]}
        ],
    },
}

_domains = itertools.count()


@pytest.fixture(scope="module")
def server(avsb_server):
    for name, definition in FLAGS.items():
        avsb_server.put_test(name, definition)
    yield avsb_server
    api.clear_providers()


def client_for(server, key: str | None):
    """An OpenFeature client whose OFREP provider presents `key` (or no Authorization at all)."""
    headers_factory = (lambda: {"Authorization": f"Bearer {key}"}) if key is not None else None
    provider = OFREPProvider(server.ofrep_url, headers_factory=headers_factory)
    domain = f"avsb-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    return api.get_client(domain)


@pytest.fixture(scope="module")
def client(server):
    return client_for(server, server.sdk_key)


def user(key: str, **attributes) -> EvaluationContext:
    return EvaluationContext(targeting_key=key, attributes=attributes)


def assert_success(details, value, variant, reason):
    assert details.error_code is None, details.error_message
    assert (details.value, details.variant, details.reason) == (value, variant, reason)
    assert type(details.value) is type(value)


# -- each flag type -----------------------------------------------------------------------------


def test_boolean_flag_targets_u_1(client):
    details = client.get_boolean_details("checkout-v2", False, user("u_1"))
    assert_success(details, True, "on", Reason.TARGETING_MATCH)
    assert details.flag_metadata["bucketValue"] == 1


@pytest.mark.parametrize("key", ["u_2", "u_3", "anon", "pa5xq0lz4n80", "7c1f0e"])
def test_boolean_flag_split_agrees_with_pipet(server, client, key):
    details = client.get_boolean_details("checkout-v2", False, user(key))
    bucket = server.identify({"id.USER": key, "test": "checkout-v2"})["groups"]["checkout-v2"]
    assert_success(details, bucket["payload"]["booleanValue"], bucket["name"], Reason.SPLIT)
    assert details.flag_metadata["bucketValue"] == bucket["value"]


def test_string_flag_follows_the_plan(server, client):
    assert_success(
        client.get_string_details("ui-theme", "light", user("u_5", plan="pro")),
        "dark",
        "dark",
        Reason.TARGETING_MATCH,
    )
    details = client.get_string_details("ui-theme", "light", user("u_5", plan="free"))
    bucket = server.identify({"id.USER": "u_5", "ctx.plan": "free", "test": "ui-theme"})["groups"]["ui-theme"]
    assert_success(details, bucket["payload"]["stringValue"], bucket["name"], Reason.SPLIT)


def test_integer_flag(client):
    assert_success(
        client.get_integer_details("max-items", 1, user("u_1", plan="pro")),
        100,
        "many",
        Reason.TARGETING_MATCH,
    )
    # The last allocation has no rule and one range: everyone else gets it.
    assert_success(client.get_integer_details("max-items", 1, user("u_1")), 10, "few", Reason.STATIC)


def test_float_flag_arrives_as_a_float_even_when_whole(client):
    assert_success(
        client.get_float_details("discount", 0.0, user("u_1", country="CA")),
        1.0,
        "whole",
        Reason.TARGETING_MATCH,
    )
    assert_success(
        client.get_float_details("discount", 0.0, user("u_1", country="US")), 0.25, "quarter", Reason.STATIC
    )
    # Without a country the schema's default (US) applies.
    assert_success(client.get_float_details("discount", 0.0, user("u_1")), 0.25, "quarter", Reason.STATIC)


def test_object_flags_map_json_and_array(client):
    assert_success(
        client.get_object_details("banner", {}, user("u_1")),
        {"title": "Welcome", "maxItems": 3, "ratio": 0.5, "tags": ["a", "b"]},
        "only",
        Reason.STATIC,
    )
    assert_success(
        client.get_object_details("layout", {}, user("u_1")),
        {"columns": [1, 2], "sidebar": {"open": True, "width": None}},
        "only",
        Reason.STATIC,
    )
    assert_success(client.get_object_details("regions", [], user("u_1")), ["eu", "us"], "only", Reason.STATIC)


def test_an_identifier_type_as_attribute(server, client):
    details = client.get_string_details(
        "account-tier", "none", EvaluationContext(attributes={"ACCOUNT": "a_1"})
    )
    bucket = server.identify({"id.account": "a_1", "test": "account-tier"})["groups"]["account-tier"]
    assert_success(details, bucket["payload"]["stringValue"], bucket["name"], Reason.SPLIT)


def test_context_attributes_reach_eligibility_rules(client):
    # newfeaturerollout is eligible only for ${loggedIn}; its buckets carry no payload, so the
    # value is always the caller's default while the variant tells the bucket.
    details = client.get_boolean_details("newfeaturerollout", False, user("pa5xq0lz4n80", loggedIn=True))
    assert_success(details, False, "active", Reason.SPLIT)
    details = client.get_boolean_details("newfeaturerollout", True, user("pa5xq0lz4n80", loggedIn=False))
    assert_success(details, True, None, Reason.DEFAULT)


# -- errors ---------------------------------------------------------------------------------------


def assert_error(details, default, code):
    assert details.error_code == code, (details.error_code, details.error_message)
    assert details.value == default
    assert details.reason == Reason.ERROR


def test_an_unknown_flag_is_flag_not_found(client):
    assert_error(
        client.get_boolean_details("no-such-flag", True, user("u_1")), True, ErrorCode.FLAG_NOT_FOUND
    )


def test_asking_a_flag_as_another_type_is_a_type_mismatch(client):
    assert_error(client.get_boolean_details("ui-theme", False, user("u_1")), False, ErrorCode.TYPE_MISMATCH)
    # A long payload stays a JSON integer and a double a JSON float.
    assert_error(client.get_float_details("max-items", 0.5, user("u_1")), 0.5, ErrorCode.TYPE_MISMATCH)
    assert_error(client.get_integer_details("discount", 7, user("u_1")), 7, ErrorCode.TYPE_MISMATCH)
    assert_error(client.get_string_details("banner", "x", user("u_1")), "x", ErrorCode.TYPE_MISMATCH)


def test_a_context_without_targeting_key_is_targeting_key_missing(client):
    details = client.get_boolean_details("checkout-v2", False, EvaluationContext(attributes={"plan": "pro"}))
    assert_error(details, False, ErrorCode.TARGETING_KEY_MISSING)
    details = client.get_boolean_details("checkout-v2", False)
    assert_error(details, False, ErrorCode.TARGETING_KEY_MISSING)


def test_an_attribute_of_the_wrong_shape_is_invalid_context(client):
    details = client.get_float_details("discount", 0.0, user("u_1", country=["CA"]))
    assert_error(details, 0.0, ErrorCode.INVALID_CONTEXT)
    assert "country" in details.error_message


@pytest.mark.parametrize("key", ["sdk-not-a-real-key", "", None], ids=["wrong", "empty", "missing"])
def test_a_wrong_or_missing_sdk_key_returns_the_default(server, key):
    client = client_for(server, key)
    details = client.get_boolean_details("checkout-v2", False, user("u_1"))
    assert_error(details, False, ErrorCode.GENERAL)
    assert details.error_message == "unauthorized"


def test_a_revoked_sdk_key_returns_the_default(server):
    created = server.create_sdk_key()
    client = client_for(server, created["key"])
    assert_success(
        client.get_boolean_details("checkout-v2", False, user("u_1")), True, "on", Reason.TARGETING_MATCH
    )
    server.revoke_sdk_key(created["id"])
    assert_error(client.get_boolean_details("checkout-v2", False, user("u_1")), False, ErrorCode.GENERAL)


def test_each_key_reads_its_own_environment(server):
    # The flags above were added to development only; staging has the demo matrix.
    staging = client_for(server, server.sdk_key_staging)
    assert_success(
        staging.get_boolean_details("checkout-v2", False, user("u_1")), True, "on", Reason.TARGETING_MATCH
    )
    assert_error(staging.get_integer_details("max-items", 1, user("u_1")), 1, ErrorCode.FLAG_NOT_FOUND)
