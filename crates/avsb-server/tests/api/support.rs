//! What several areas' tests share: the demo's paths, the one error shape, reading revisions
//! and matrices back, test definitions, and Pipet calls.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::{Reply, Server};

/// The admin path of a demo environment.
pub fn env_path(environment: &str) -> String {
    format!("/projects/demo/environments/{environment}")
}

/// A successful answer's JSON.
#[track_caller]
pub fn ok(reply: Reply) -> Value {
    assert!((200..300).contains(&reply.status), "expected success, got {}: {}", reply.status, reply.body);
    reply.json()
}

/// Asserts the one error shape `{"error": {"code", "message"}}` with this status and code, and a
/// message that mentions each of `needles`. Returns the error object.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, code: &str, needles: &[&str]) -> Value {
    assert_eq!(reply.status, status, "wrong status; body: {}", reply.body);
    let body: Value = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("the {status} answer is not JSON ({e}): {:?}", reply.body));
    let error = &body["error"];
    assert_eq!(error["code"], code, "wrong error code: {}", reply.body);
    let message = error["message"].as_str().unwrap_or_else(|| panic!("no error.message: {}", reply.body));
    for needle in needles {
        assert!(message.contains(needle), "the message {message:?} does not mention {needle:?}");
    }
    error.clone()
}

/// Asserts that a response is JSON by its content type.
#[track_caller]
pub fn assert_json_content_type(reply: &Reply) {
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "content-type {content_type:?}");
}

/// A version given as a JSON string or number, as text.
#[track_caller]
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("expected a version, got {other}"),
    }
}

/// The current revision of a demo environment.
pub fn current(s: &Server, environment: &str) -> String {
    text(&ok(s.admin("GET", &format!("{}/revisions?limit=1", env_path(environment)), None))["current"])
}

/// A demo environment's revisions, newest first.
pub fn revisions(s: &Server, environment: &str) -> Vec<Value> {
    let list = ok(s.admin("GET", &format!("{}/revisions?limit=500", env_path(environment)), None));
    list["revisions"].as_array().expect("revisions").clone()
}

/// A demo environment's current matrix.
pub fn matrix(s: &Server, environment: &str) -> Value {
    ok(s.admin("GET", &format!("{}/matrix", env_path(environment)), None))
}

/// What a refused write must leave alone: the revision history and the served matrix.
pub fn environment_state(s: &Server, environment: &str) -> Value {
    json!({"revisions": revisions(s, environment), "matrix": matrix(s, environment)})
}

/// The revision id a successful write answered with.
#[track_caller]
pub fn version_of(reply: Reply) -> String {
    text(&ok(reply)["revision"]["version"])
}

/// `PUT .../tests/{name}` with a consumable definition.
pub fn put_test(s: &Server, environment: &str, name: &str, definition: &Value) -> Reply {
    let body = json!({ "definition": definition }).to_string();
    s.admin("PUT", &format!("{}/tests/{name}", env_path(environment)), Some(&body))
}

/// Saves a test in development; returns the new revision's version.
#[track_caller]
pub fn save_test(s: &Server, name: &str, definition: &Value) -> String {
    version_of(put_test(s, "development", name, definition))
}

/// A USER test with buckets control (0, "old") and test (1, "new") and one allocation.
pub fn definition(salt: &str, ranges: Value) -> Value {
    json!({
        "testType": "USER", "salt": salt, "description": format!("the {salt} test"), "rule": null, "constants": {},
        "buckets": [
            {"name": "control", "value": 0, "payload": {"stringValue": "old"}},
            {"name": "test", "value": 1, "payload": {"stringValue": "new"}}
        ],
        "allocations": [{"rule": null, "ranges": ranges}]
    })
}

/// A test that gives everyone the bucket with `value`.
pub fn everyone(salt: &str, value: i64) -> Value {
    definition(salt, json!([{"length": 1.0, "bucketValue": value}]))
}

/// A float-valued flag (doubleValue 1.0 for everyone).
pub fn float_flag() -> Value {
    json!({
        "testType": "USER", "salt": "float-flag", "description": "a float flag",
        "buckets": [{"name": "one", "value": 0, "payload": {"doubleValue": 1.0}}],
        "allocations": [{"rule": null, "ranges": [{"length": 1.0, "bucketValue": 0}]}]
    })
}

/// The development SDK key the server printed.
pub fn sdk_key(s: &Server) -> String {
    s.var("AVSB_SDK_KEY").to_string()
}

/// The Pipet root the server printed (development).
pub fn dev_root(s: &Server) -> String {
    s.var("PROCTOR_API_ROOT").to_string()
}

/// A new SDK key's Pipet root for a demo environment, made through the admin API.
pub fn sdk_root(s: &Server, environment: &str) -> String {
    let reply = s.admin("POST", &format!("{}/sdk-keys", env_path(environment)), Some(r#"{"name": "test client"}"#));
    assert_eq!(reply.status, 201, "{}", reply.body);
    format!("{}{}", s.base(), reply.json()["pipetRoot"].as_str().expect("pipetRoot"))
}

/// `GET <PROCTOR_API_ROOT>/groups/identify?<query>`.
pub fn identify(s: &Server, query: &str) -> Reply {
    s.call("GET", &format!("{}/groups/identify?{query}", dev_root(s)), None, None)
}

/// `GET <PROCTOR_API_ROOT><path>`.
pub fn pipet(s: &Server, path: &str) -> Reply {
    s.call("GET", &format!("{}{path}", dev_root(s)), None, None)
}

/// Pipet's `groups` for one identify request at `root` (`query` without the `?`).
#[track_caller]
pub fn groups(s: &Server, root: &str, query: &str) -> Value {
    let reply = s.call("GET", &format!("{root}/groups/identify?{query}"), None, None);
    assert_eq!(reply.status, 200, "identify?{query}: {}", reply.body);
    reply.json()["data"]["groups"].clone()
}

/// The matrix version development serves now (`/proctor/matrix/audit`).
#[track_caller]
pub fn dev_version(s: &Server) -> String {
    let reply = pipet(s, "/proctor/matrix/audit");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["data"]["version"].as_str().expect("audit.version").to_string()
}

/// `POST /ofrep/v1/evaluate/flags[/<flag>]` with the development SDK key.
pub fn ofrep(s: &Server, flag: Option<&str>, body: Option<&str>) -> Reply {
    let path = match flag {
        Some(flag) => format!("/ofrep/v1/evaluate/flags/{flag}"),
        None => "/ofrep/v1/evaluate/flags".to_string(),
    };
    s.call("POST", &path, Some(&sdk_key(s)), body)
}

/// The names of a matrix's tests.
pub fn test_names(matrix: &Value) -> BTreeSet<String> {
    matrix["tests"].as_object().expect("tests").keys().cloned().collect()
}

/// An exposure to checkout-v2's `on`.
pub fn exposure(user: &str) -> Value {
    json!({"kind": "exposure", "identifiers": {"USER": user}, "test": "checkout-v2", "bucket": 1, "bucketName": "on", "version": "1"})
}

/// A purchase, a second ago.
pub fn track(user: &str) -> Value {
    json!({"kind": "track", "identifiers": {"USER": user, "ACCOUNT": 42}, "key": "purchase", "value": 9.5, "properties": {"sku": "a-1"}, "time": now_millis() - 1000})
}

/// `POST /sdk/v1/events` with the development key.
pub fn post_events(s: &Server, body: &str) -> Reply {
    s.call("POST", "/sdk/v1/events", Some(&sdk_key(s)), Some(body))
}

/// Development's stored events, oldest first.
#[track_caller]
pub fn stored_events(s: &Server) -> Vec<Value> {
    let reply = s.admin("GET", &format!("{}/events?limit=1000", env_path("development")), None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["events"].as_array().expect("events").clone()
}

/// Now, in epoch milliseconds.
pub fn now_millis() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis()).expect("millis")
}
