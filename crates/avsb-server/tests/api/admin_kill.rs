//! The kill switch (`POST .../tests/{name}/kill`): everyone gets one bucket, over the test's
//! rule and targets, until a rollback restores the split.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::{Reply, Server};
use crate::support::{assert_error, current, dev_root, env_path, environment_state, groups, ok, revisions, text};

/// The groups of 60 users for `test` (with extra query `context`).
fn assign(s: &Server, test: &str, context: &str) -> Vec<Value> {
    let root = dev_root(s);
    (0..60).map(|i| groups(s, &root, &format!("id.USER=user{i}&test={test}{context}"))[test].clone()).collect()
}

fn kill(s: &Server, test: &str, body: Value) -> Reply {
    s.admin("POST", &format!("{}/tests/{test}/kill", env_path("development")), Some(&body.to_string()))
}

#[test]
fn a_test_killed_by_bucket_name_gives_everyone_that_bucket_in_a_kill_revision() {
    let s = Server::start_demo();
    let buckets: BTreeSet<String> = assign(&s, "buttoncolortst", "").iter().map(|g| g["name"].to_string()).collect();
    assert!(buckets.len() >= 2, "the demo split gave one bucket: {buckets:?}");
    let killed = ok(kill(&s, "buttoncolortst", json!({"bucket": "green"})));
    let k1 = text(&killed["revision"]["version"]);
    assert_eq!(killed["revision"]["kind"], "kill");
    for group in assign(&s, "buttoncolortst", "") {
        assert_eq!(group, json!({"name": "green", "value": 2, "payload": {"stringValue": "#3DFF33"}, "version": k1}));
    }
    let latest = &revisions(&s, "development")[0];
    assert_eq!(latest["kind"], "kill");
    assert!(latest["comment"].as_str().expect("comment").contains("buttoncolortst"), "{latest}");
    let definition = ok(s.admin("GET", &format!("{}/tests/buttoncolortst", env_path("development")), None));
    assert_eq!(definition["allocations"].as_array().expect("allocations").len(), 1, "{definition}");
    assert_eq!(definition["allocations"][0]["ranges"], json!([{"bucketValue": 2, "length": 1.0}]));
}

#[test]
fn a_test_killed_by_bucket_value_is_served_over_its_rule() {
    let s = Server::start_demo();
    // newfeaturerollout is for logged-in users only.
    assert!(assign(&s, "newfeaturerollout", "&ctx.loggedIn=false").iter().all(Value::is_null));
    ok(kill(&s, "newfeaturerollout", json!({"bucket": 0})));
    assert!(assign(&s, "newfeaturerollout", "&ctx.loggedIn=false").iter().all(|g| g["name"] == "active"));
}

#[test]
fn a_killed_test_is_served_over_its_targets() {
    let s = Server::start_demo();
    let root = dev_root(&s);
    // checkout-v2 is always on for u_1.
    assert_eq!(groups(&s, &root, "id.USER=u_1&test=checkout-v2")["checkout-v2"]["name"], "on");
    ok(kill(&s, "checkout-v2", json!({"bucket": "off"})));
    assert_eq!(groups(&s, &root, "id.USER=u_1&test=checkout-v2")["checkout-v2"]["name"], "off");
}

#[test]
fn killing_with_an_unknown_bucket_or_test_is_refused_naming_the_buckets_and_changes_nothing() {
    let s = Server::start_demo();
    let before = environment_state(&s, "development");
    let needles = ["purple", "'inactive' (-1)", "'control' (0)", "'blue' (1)", "'green' (2)"];
    assert_error(&kill(&s, "buttoncolortst", json!({"bucket": "purple"})), 400, "unknown_bucket", &needles);
    assert_error(&kill(&s, "buttoncolortst", json!({"bucket": 9})), 400, "unknown_bucket", &["9", "'green' (2)"]);
    assert_error(&kill(&s, "nope", json!({"bucket": "on"})), 404, "not_found", &["'nope'"]);
    assert_error(&kill(&s, "buttoncolortst", json!({})), 400, "invalid_field", &["bucket"]);
    assert_eq!(environment_state(&s, "development"), before);
}

#[test]
fn rolling_back_kills_restores_the_split_user_by_user() {
    let s = Server::start_demo();
    let before_kill = current(&s, "development");
    let split = assign(&s, "buttoncolortst", "");
    ok(kill(&s, "buttoncolortst", json!({"bucket": "green"})));
    ok(kill(&s, "newfeaturerollout", json!({"bucket": 0})));
    ok(kill(&s, "checkout-v2", json!({"bucket": "off"})));
    let body = json!({"revision": before_kill}).to_string();
    ok(s.admin("POST", &format!("{}/rollback", env_path("development")), Some(&body)));
    assert_eq!(assign(&s, "buttoncolortst", ""), split);
    assert!(assign(&s, "newfeaturerollout", "&ctx.loggedIn=false").iter().all(Value::is_null));
    assert_eq!(groups(&s, &dev_root(&s), "id.USER=u_1&test=checkout-v2")["checkout-v2"]["name"], "on");
}
