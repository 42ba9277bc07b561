//! OFREP (docs/openfeature.md §2): single and bulk evaluation with an SDK key, its error codes,
//! float values as JSON floats, and the bulk answer's ETag.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common::{Reply, Server};
use crate::pipet::typed_project;
use crate::support::{assert_json_content_type, dev_version, float_flag, ofrep, save_test, sdk_key};

const U_1: &str = r#"{"context": {"targetingKey": "u_1"}}"#;

/// A flag hashed on ACCOUNT identifiers (OFREP's targetingKey is a USER identifier).
fn account_flag() -> Value {
    json!({
        "testType": "ACCOUNT", "salt": "account-flag",
        "buckets": [{"name": "on", "value": 1, "payload": {"booleanValue": true}}],
        "allocations": [{"rule": null, "ranges": [{"length": 1.0, "bucketValue": 1}]}]
    })
}

/// Asserts an OFREP error for checkout-v2 with this status and code, and details.
#[track_caller]
fn assert_ofrep_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let doc = reply.json();
    assert_eq!(doc["errorCode"], code, "{doc}");
    assert_eq!(doc["key"], "checkout-v2", "{doc}");
    assert!(doc["errorDetails"].as_str().is_some_and(|d| !d.is_empty()), "{doc}");
}

/// The bulk evaluation of U_1 with `If-None-Match`.
fn bulk_if_none_match(s: &Server, tag: &str) -> Reply {
    s.call_with("POST", "/ofrep/v1/evaluate/flags", Some(&sdk_key(s)), Some(U_1), &[("If-None-Match", tag)])
}

// ---------------------------------------------------------------------------------------------
// One flag

#[test]
fn a_flag_is_answered_with_its_value_variant_reason_and_versions() {
    let s = Server::start_demo();
    let version = dev_version(&s);
    let reply = ofrep(&s, Some("checkout-v2"), Some(U_1));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    assert_eq!(
        reply.json(),
        json!({
            "key": "checkout-v2", "value": true, "variant": "on", "reason": "TARGETING_MATCH",
            "metadata": {"bucketValue": 1, "testVersion": "1", "matrixVersion": version}
        })
    );
}

#[test]
fn a_split_string_flag_answers_split_and_a_matching_rule_answers_targeting_match() {
    let s = Server::start_demo();
    // ui-theme: a string flag split 90/10 by default; "dark" for pro plans.
    let doc = ofrep(&s, Some("ui-theme"), Some(r#"{"context": {"targetingKey": "u_2"}}"#)).json();
    assert_eq!(doc["reason"], "SPLIT", "{doc}");
    assert!(doc["value"].is_string(), "{doc}");
    assert_eq!(doc["value"], doc["variant"], "the payload equals the bucket name in the demo: {doc}");
    let doc = ofrep(&s, Some("ui-theme"), Some(r#"{"context": {"targetingKey": "u_2", "plan": "pro"}}"#)).json();
    assert_eq!((doc["value"].as_str(), doc["variant"].as_str(), doc["reason"].as_str()), (Some("dark"), Some("dark"), Some("TARGETING_MATCH")));
}

#[test]
fn a_test_without_a_payload_answers_a_variant_but_no_value() {
    let s = Server::start_demo();
    // The caller's default applies.
    let doc = ofrep(&s, Some("countryalgotst"), Some(r#"{"context": {"targetingKey": "u_3"}}"#)).json();
    assert!(doc.get("value").is_none(), "{doc}");
    assert!(doc.get("variant").is_some(), "{doc}");
}

#[test]
fn an_unknown_flag_is_flag_not_found() {
    let s = Server::start_demo();
    let reply = ofrep(&s, Some("no-such-flag"), Some(U_1));
    assert_eq!(reply.status, 404, "{}", reply.body);
    let doc = reply.json();
    assert_eq!(doc["key"], "no-such-flag");
    assert_eq!(doc["errorCode"], "FLAG_NOT_FOUND");
    assert!(doc["errorDetails"].as_str().is_some_and(|d| !d.is_empty()), "{doc}");
}

#[test]
fn a_user_flag_without_a_targeting_key_is_targeting_key_missing() {
    let s = Server::start_demo();
    // No body, no context, no targetingKey: checkout-v2 hashes USER identifiers.
    assert_ofrep_error(&ofrep(&s, Some("checkout-v2"), None), 400, "TARGETING_KEY_MISSING");
    for body in ["", "{}", r#"{"context": null}"#, r#"{"context": {}}"#, r#"{"context": {"plan": "pro"}}"#] {
        assert_ofrep_error(&ofrep(&s, Some("checkout-v2"), Some(body)), 400, "TARGETING_KEY_MISSING");
    }
}

#[test]
fn a_user_attribute_stands_in_for_the_targeting_key() {
    let s = Server::start_demo();
    let reply = ofrep(&s, Some("checkout-v2"), Some(r#"{"context": {"USER": "u_1"}}"#));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["value"], true);
}

#[test]
fn a_body_that_is_not_json_is_a_parse_error() {
    let s = Server::start_demo();
    for body in [r#"{"context":"#, "not json", r#"{"context": {"targetingKey": "u_1"}} trailing"#] {
        assert_ofrep_error(&ofrep(&s, Some("checkout-v2"), Some(body)), 400, "PARSE_ERROR");
    }
}

#[test]
fn a_context_that_is_no_object_or_holds_a_value_that_is_no_scalar_is_invalid_context() {
    let s = Server::start_demo();
    for body in [
        r#"{"context": [1, 2]}"#,
        r#"{"context": "u_1"}"#,
        r#"{"context": {"targetingKey": "u_1", "plan": {"a": 1}}}"#,
        r#"{"context": {"targetingKey": "u_1", "country": ["US"]}}"#,
        r#"{"context": {"targetingKey": {"id": "u_1"}}}"#,
    ] {
        assert_ofrep_error(&ofrep(&s, Some("checkout-v2"), Some(body)), 400, "INVALID_CONTEXT");
    }
}

#[test]
fn unknown_attributes_are_ignored() {
    let s = Server::start_demo();
    let reply = ofrep(&s, Some("checkout-v2"), Some(r#"{"context": {"targetingKey": "u_1", "whatever": {"x": [1]}}}"#));
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[test]
fn only_an_sdk_key_authenticates_as_bearer_or_x_api_key() {
    let s = Server::start_demo();
    let body = Some(U_1);
    for flag in [Some("checkout-v2"), None] {
        let path = flag.map_or("/ofrep/v1/evaluate/flags".to_string(), |f| format!("/ofrep/v1/evaluate/flags/{f}"));
        assert_eq!(s.call("POST", &path, None, body).status, 401);
        assert_eq!(s.call("POST", &path, Some("sdk-not-a-real-key"), body).status, 401);
        assert_eq!(s.call("POST", &path, Some(s.var("AVSB_ADMIN_TOKEN")), body).status, 401);
        let reply = s.call_with("POST", &path, None, body, &[("X-API-Key", &sdk_key(&s))]);
        assert_eq!(reply.status, 200, "X-API-Key on {path}: {}", reply.body);
        let reply = s.call_with("POST", &path, None, body, &[("X-API-Key", "sdk-not-a-real-key")]);
        assert_eq!(reply.status, 401);
    }
}

#[test]
fn the_context_converts_by_the_schema_and_a_bad_value_is_invalid_context() {
    let s = Server::start_demo();
    let key = typed_project(&s);
    let body = json!({"context": {"targetingKey": "u", "age": "x", "country": "US"}}).to_string();
    let reply = s.call("POST", "/ofrep/v1/evaluate/flags/adults", Some(&key), Some(&body));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["errorCode"], "INVALID_CONTEXT");
    let body = json!({"context": {"targetingKey": "u", "age": 21}}).to_string();
    let reply = s.call("POST", "/ofrep/v1/evaluate/flags/adults", Some(&key), Some(&body));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["variant"], "on");
}

#[test]
fn float_flags_serialize_as_json_floats() {
    let s = Server::start_demo();
    save_test(&s, "float-flag", &float_flag());
    let reply = ofrep(&s, Some("float-flag"), Some(U_1));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains(r#""value":1.0"#), "{}", reply.body);
    assert!(reply.json()["value"].is_f64());
    let reply = ofrep(&s, None, Some(U_1));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let item_start = reply.body.find(r#""key":"float-flag""#).expect("float-flag in the bulk answer");
    let item = &reply.body[item_start..];
    let item = &item[..item.find("}}").expect("end of the item")];
    assert!(item.contains(r#""value":1.0"#), "{item}");
}

// ---------------------------------------------------------------------------------------------
// Every flag

#[test]
fn bulk_evaluation_answers_every_flag_with_successes_and_failures_side_by_side() {
    let s = Server::start_demo();
    save_test(&s, "account-flag", &account_flag());
    let reply = ofrep(&s, None, Some(U_1));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    let etag = reply.header("etag").expect("ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");
    let doc = reply.json();
    let flags: BTreeMap<String, Value> = doc["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| (f["key"].as_str().expect("key").to_string(), f.clone()))
        .collect();
    assert_eq!(flags.len(), 6, "{doc}");
    // A success item.
    assert_eq!(flags["checkout-v2"]["value"], true);
    assert_eq!(flags["checkout-v2"]["variant"], "on");
    assert_eq!(flags["checkout-v2"]["reason"], "TARGETING_MATCH");
    assert!(flags["checkout-v2"].get("errorCode").is_none());
    // A failure item: the context has no ACCOUNT identifier.
    assert_eq!(flags["account-flag"]["errorCode"], "TARGETING_KEY_MISSING", "{}", flags["account-flag"]);
    assert!(flags["account-flag"]["errorDetails"].is_string());
    assert!(flags["account-flag"].get("value").is_none());
    // Every success item carries a variant (the Python provider reads it with []).
    for (key, flag) in &flags {
        assert!(flag.get("errorCode").is_some() || flag.get("variant").is_some(), "{key}: {flag}");
    }
}

#[test]
fn a_bulk_item_succeeds_once_the_context_has_its_identifier() {
    let s = Server::start_demo();
    save_test(&s, "account-flag", &account_flag());
    let reply = ofrep(&s, None, Some(r#"{"context": {"targetingKey": "u_1", "ACCOUNT": "a1"}}"#));
    let doc = reply.json();
    let item = doc["flags"].as_array().expect("flags").iter().find(|f| f["key"] == "account-flag").expect("account-flag").clone();
    assert_eq!(item["value"], true, "{item}");
}

#[test]
fn bulk_evaluation_answers_304_to_its_etag_and_200_to_another() {
    let s = Server::start_demo();
    let etag = ofrep(&s, None, Some(U_1)).header("etag").expect("ETag").to_string();
    let reply = bulk_if_none_match(&s, &etag);
    assert_eq!(reply.status, 304, "{}", reply.body);
    assert!(reply.body.is_empty(), "{:?}", reply.body);
    let reply = bulk_if_none_match(&s, "\"other\"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("etag"), Some(etag.as_str()));
}

#[test]
fn another_context_gets_another_bulk_etag() {
    let s = Server::start_demo();
    let etag = ofrep(&s, None, Some(U_1)).header("etag").expect("ETag").to_string();
    let other = ofrep(&s, None, Some(r#"{"context": {"targetingKey": "u_2"}}"#));
    assert_eq!(other.status, 200);
    assert_ne!(other.header("etag"), Some(etag.as_str()));
}

#[test]
fn a_matrix_edit_changes_the_bulk_etag() {
    let s = Server::start_demo();
    let etag = ofrep(&s, None, Some(U_1)).header("etag").expect("ETag").to_string();
    save_test(&s, "float-flag", &float_flag());
    let reply = bulk_if_none_match(&s, &etag);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let new_etag = reply.header("etag").expect("ETag").to_string();
    assert_ne!(new_etag, etag);
    assert!(reply.json()["flags"].as_array().expect("flags").iter().any(|f| f["key"] == "float-flag"));
    assert_eq!(bulk_if_none_match(&s, &new_etag).status, 304);
}

#[test]
fn a_bulk_request_that_fails_whole_answers_an_error_code_and_details() {
    let s = Server::start_demo();
    for (body, code) in [("{", "PARSE_ERROR"), (r#"{"context": 5}"#, "INVALID_CONTEXT")] {
        let reply = ofrep(&s, None, Some(body));
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json()["errorCode"], code, "{body}");
        assert!(reply.json()["errorDetails"].is_string());
    }
}
