//! Promotion (`POST /projects/{p}/promote`): copies tests forward (development → staging →
//! production) with the version they have in development; a refused promotion changes nothing.

use serde_json::{json, Value};

use crate::common::{Reply, Server};
use crate::support::{assert_error, current, env_path, environment_state, everyone, groups, ok, put_test, sdk_root, text, version_of};

fn promote(s: &Server, body: Value) -> Reply {
    s.admin("POST", "/projects/demo/promote", Some(&body.to_string()))
}

/// Saves the test `launch` in development; returns development's revision before and after.
fn launch(s: &Server) -> (String, String) {
    let r0 = current(s, "development");
    let d = version_of(put_test(s, "development", "launch", &everyone("launch", 1)));
    (r0, d)
}

#[test]
fn promotion_copies_a_test_forward_with_its_development_version() {
    let s = Server::start_demo();
    let staging_root = sdk_root(&s, "staging");
    let production_root = sdk_root(&s, "production");
    let (_, d) = launch(&s);
    assert_eq!(groups(&s, &staging_root, "id.USER=u1&test=launch"), json!({}));
    let staging_before = current(&s, "staging");
    let promoted = ok(promote(&s, json!({"from": "development", "to": "staging", "tests": ["launch"], "sourceRevision": d})));
    assert_eq!(promoted["revision"]["kind"], "promote");
    assert_eq!(text(&promoted["revision"]["parent"]), staging_before);
    let in_staging = ok(s.admin("GET", &format!("{}/tests/launch", env_path("staging")), None));
    let in_development = ok(s.admin("GET", &format!("{}/tests/launch", env_path("development")), None));
    assert_eq!(in_staging, in_development, "the promoted definition differs");
    assert_eq!(text(&in_staging["version"]), d);
    let served = groups(&s, &staging_root, "id.USER=u1&test=launch");
    assert_eq!(served["launch"]["name"], "test");
    assert_eq!(served["launch"]["version"], json!(d));
    assert_eq!(groups(&s, &production_root, "id.USER=u1&test=launch"), json!({}));
}

#[test]
fn a_test_promoted_on_to_production_keeps_its_development_version() {
    let s = Server::start_demo();
    let production_root = sdk_root(&s, "production");
    let (_, d) = launch(&s);
    for (from, to) in [("development", "staging"), ("staging", "production")] {
        ok(promote(&s, json!({"from": from, "to": to, "tests": ["launch"]})));
    }
    let in_production = ok(s.admin("GET", &format!("{}/tests/launch", env_path("production")), None));
    assert_eq!(text(&in_production["version"]), d, "production's version is not the development revision");
    let served = groups(&s, &production_root, "id.USER=u1&test=launch");
    assert_eq!(served["launch"]["name"], "test");
    assert_eq!(served["launch"]["version"], json!(d));
}

#[test]
fn a_promotion_backwards_or_in_place_is_refused() {
    let s = Server::start_demo();
    launch(&s);
    ok(promote(&s, json!({"from": "development", "to": "staging", "tests": ["launch"]})));
    let before = environment_state(&s, "staging");
    let error = assert_error(
        &promote(&s, json!({"from": "staging", "to": "development", "tests": ["launch"]})),
        400,
        "invalid_promotion",
        &["forward", "development → staging → production"],
    );
    assert!(error.get("diagnostics").is_none());
    assert_error(&promote(&s, json!({"from": "staging", "to": "staging", "tests": ["launch"]})), 400, "invalid_promotion", &[]);
    assert_eq!(environment_state(&s, "staging"), before, "a refused promotion changed staging");
}

#[test]
fn a_promotion_of_unknown_tests_no_tests_or_to_an_unknown_environment_is_refused() {
    let s = Server::start_demo();
    launch(&s);
    let before = environment_state(&s, "staging");
    assert_error(&promote(&s, json!({"from": "development", "to": "staging", "tests": ["nope"]})), 404, "not_found", &["'nope'"]);
    assert_error(&promote(&s, json!({"from": "development", "to": "qa", "tests": ["launch"]})), 404, "not_found", &["'qa'"]);
    assert_error(&promote(&s, json!({"from": "development", "to": "staging", "tests": []})), 400, "invalid_field", &["tests"]);
    assert_eq!(environment_state(&s, "staging"), before, "a refused promotion changed staging");
}

#[test]
fn a_promotion_from_a_stale_source_revision_conflicts() {
    let s = Server::start_demo();
    let (r0, d) = launch(&s);
    let before = environment_state(&s, "staging");
    let error = assert_error(
        &promote(&s, json!({"from": "development", "to": "staging", "tests": ["launch"], "sourceRevision": r0})),
        409,
        "conflict",
        &[&r0, &d],
    );
    assert_eq!(error["currentRevision"], json!(d));
    assert_eq!(environment_state(&s, "staging"), before, "a refused promotion changed staging");
}

#[test]
fn a_promotion_onto_a_stale_base_conflicts() {
    let s = Server::start_demo();
    launch(&s);
    let staging_before = current(&s, "staging");
    ok(promote(&s, json!({"from": "development", "to": "staging", "tests": ["launch"]})));
    let before = environment_state(&s, "staging");
    let stale = json!({"from": "development", "to": "staging", "tests": ["launch"], "baseRevision": staging_before});
    assert_error(&promote(&s, stale), 409, "conflict", &[&staging_before]);
    assert_eq!(environment_state(&s, "staging"), before, "a refused promotion changed staging");
}

#[test]
fn a_test_is_promoted_only_with_the_test_it_depends_on() {
    let s = Server::start_demo();
    let staging_root = sdk_root(&s, "staging");
    ok(put_test(&s, "development", "parent-t", &everyone("parent-t", 1)));
    let mut child = everyone("child-t", 1);
    child["dependsOn"] = json!({"testName": "parent-t", "bucketValue": 1});
    ok(put_test(&s, "development", "child-t", &child));
    let before = environment_state(&s, "staging");
    // Alone it would be dropped in staging, which lacks its dependency.
    let reply = promote(&s, json!({"from": "development", "to": "staging", "tests": ["child-t"]}));
    let error = assert_error(&reply, 422, "invalid_matrix", &["child-t"]);
    assert!(error["diagnostics"].as_array().expect("diagnostics").iter().any(|d| d["test"] == "child-t" && d["code"] == "depends_on_unknown"), "{error}");
    assert_eq!(environment_state(&s, "staging"), before, "a refused promotion changed staging");
    ok(promote(&s, json!({"from": "development", "to": "staging", "tests": ["parent-t", "child-t"]})));
    assert_eq!(groups(&s, &staging_root, "id.USER=u1&test=child-t")["child-t"]["name"], "test");
}
