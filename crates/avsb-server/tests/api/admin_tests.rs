//! One test at a time (`PUT`, `GET` and `DELETE .../tests/{name}`): a saved test is served at
//! once in a new revision; a broken one is refused with the engine's diagnostics and changes
//! nothing.

use serde_json::{json, Value};

use crate::common::Server;
use crate::support::{
    assert_error, current, definition, dev_root, env_path, environment_state, everyone, groups, ok, put_test, sdk_root, text, version_of,
};

/// Proctor's stored form of a test: `specialConstants` and a rule without `${}`.
fn stored_promo() -> Value {
    json!({"testType": "USER", "salt": "promo", "rule": "plan == 'pro'",
        "specialConstants": {"__COUNTRIES": ["US", "CA"]},
        "buckets": [{"name": "off", "value": 0}, {"name": "on", "value": 1}],
        "allocations": [{"rule": "", "ranges": [{"bucketValue": 1, "length": 1.0}]}]})
}

#[test]
fn a_saved_test_is_served_at_once_in_a_new_revision() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let base = current(&s, "development");
    let saved = ok(put_test(&s, "development", "signup-flow", &everyone("signup-flow", 1)));
    let version = text(&saved["revision"]["version"]);
    assert_ne!(version, base);
    assert_eq!(text(&saved["revision"]["parent"]), base);
    assert_eq!(saved["revision"]["kind"], "edit");
    assert_eq!(saved["revision"]["updatedBy"], "demo");
    assert_eq!(saved["warnings"], json!([]));
    assert_eq!(current(&s, "development"), version);
    let got = ok(s.admin("GET", &format!("{dev}/tests/signup-flow"), None));
    assert_eq!(text(&got["version"]), version);
    assert_eq!(got["salt"], "signup-flow");
    assert_eq!(got["buckets"][1]["name"], "test");
    assert_eq!(
        groups(&s, &dev_root(&s), "id.USER=u1&test=signup-flow")["signup-flow"],
        json!({"name": "test", "value": 1, "payload": {"stringValue": "new"}, "version": version})
    );
}

#[test]
fn saving_a_test_keeps_the_other_tests_versions_and_other_environments() {
    let s = Server::start_demo();
    let root = dev_root(&s);
    ok(put_test(&s, "development", "signup-flow", &everyone("signup-flow", 1)));
    let buttoncolortst = ok(s.admin("GET", &format!("{}/tests/buttoncolortst", env_path("development")), None));
    assert_eq!(text(&buttoncolortst["version"]), "1");
    assert_eq!(groups(&s, &root, "id.USER=u1&test=buttoncolortst")["buttoncolortst"]["version"], "1");
    let staging = sdk_root(&s, "staging");
    assert_eq!(groups(&s, &staging, "id.USER=u1&test=signup-flow"), json!({}));
}

#[test]
fn a_test_in_proctors_stored_form_is_read_with_its_special_constants() {
    let s = Server::start_demo();
    let root = dev_root(&s);
    let promo_version = version_of(put_test(&s, "development", "promo", &stored_promo()));
    let got = ok(s.admin("GET", &format!("{}/tests/promo", env_path("development")), None));
    assert_eq!(got["rule"], "${proctor:contains(__COUNTRIES, country) && plan == 'pro'}");
    assert_eq!(got["constants"], json!({"__COUNTRIES": ["US", "CA"]}));
    assert_eq!(text(&got["version"]), promo_version);
    assert_eq!(groups(&s, &root, "id.USER=u1&ctx.country=CA&ctx.plan=pro&test=promo")["promo"]["name"], "on");
    assert_eq!(groups(&s, &root, "id.USER=u1&ctx.country=FR&ctx.plan=pro&test=promo"), json!({}));
    assert_eq!(groups(&s, &root, "id.USER=u1&ctx.country=CA&ctx.plan=free&test=promo"), json!({}));
}

#[test]
fn the_stored_format_when_named_is_read_without_special_constants_too() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let mut plain = stored_promo();
    plain.as_object_mut().expect("object").remove("specialConstants");
    let body = json!({"definition": plain, "format": "stored"}).to_string();
    ok(s.admin("PUT", &format!("{dev}/tests/promo"), Some(&body)));
    assert_eq!(ok(s.admin("GET", &format!("{dev}/tests/promo"), None))["rule"], "${plan == 'pro'}");
}

#[test]
fn an_unknown_definition_format_is_refused() {
    let s = Server::start_demo();
    let body = json!({"definition": stored_promo(), "format": "yaml"}).to_string();
    let reply = s.admin("PUT", &format!("{}/tests/promo", env_path("development")), Some(&body));
    assert_error(&reply, 400, "invalid_field", &["'yaml'"]);
}

#[test]
fn a_broken_definition_is_refused_with_a_diagnostic_naming_the_test_and_changes_nothing() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let root = dev_root(&s);
    let before = environment_state(&s, "development");
    let served = groups(&s, &root, "id.USER=u1&ctx.loggedIn=true");
    let mut unknown_variable = everyone("bad-rule", 1);
    unknown_variable["rule"] = json!("${nosuchvar == 'x'}");
    let mut no_type = everyone("bad-type", 1);
    no_type.as_object_mut().expect("object").remove("testType");
    let mut shorter = ok(s.admin("GET", &format!("{dev}/tests/buttoncolortst"), None));
    shorter["allocations"][0]["ranges"][1]["length"] = json!(0.2);
    let broken = [
        ("bad-rule", unknown_variable, "tests.bad-rule.rule", "unknown_variable"),
        ("bad-sum", definition("bad-sum", json!([{"length": 0.5, "bucketValue": 0}, {"length": 0.3, "bucketValue": 1}])), "tests.bad-sum.allocations[0].ranges", "ranges_sum"),
        ("bad-bucket", everyone("bad-bucket", 7), "tests.bad-bucket.allocations[0].ranges[0].bucketValue", "undefined_bucket"),
        ("bad-type", no_type, "tests.bad-type.testType", "invalid_field"),
        // A broken edit of a served test neither replaces nor drops it.
        ("buttoncolortst", shorter, "tests.buttoncolortst.allocations[0].ranges", "ranges_sum"),
    ];
    for (name, definition, path, code) in broken {
        let reply = put_test(&s, "development", name, &definition);
        let error = assert_error(&reply, 422, "invalid_matrix", &[name]);
        let diagnostics = error["diagnostics"].as_array().unwrap_or_else(|| panic!("no diagnostics: {error}"));
        assert!(
            diagnostics.iter().any(|d| d["test"] == name && d["path"] == path && d["code"] == code && d["severity"] == "error"),
            "no {code} diagnostic at {path} for {name}: {error}"
        );
        assert_eq!(environment_state(&s, "development"), before, "the refused {name} changed the environment");
        assert_eq!(groups(&s, &root, "id.USER=u1&ctx.loggedIn=true"), served, "the refused {name} changed what is served");
    }
}

#[test]
fn a_bucket_without_a_value_is_refused() {
    let s = Server::start_demo();
    let before = environment_state(&s, "development");
    let mut missing = everyone("no-value", 0);
    missing["buckets"][1].as_object_mut().expect("bucket").remove("value");
    let reply = put_test(&s, "development", "no-value", &missing);
    let error = assert_error(&reply, 422, "invalid_matrix", &["no-value"]);
    assert!(error["diagnostics"].as_array().expect("diagnostics").iter().any(|d| d["path"] == "tests.no-value.buckets[1].value"), "{error}");
    assert_eq!(environment_state(&s, "development"), before);
}

#[test]
fn a_deleted_test_is_no_longer_served_but_stays_in_its_old_revision() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let version = version_of(put_test(&s, "development", "signup-flow", &everyone("signup-flow", 1)));
    let deleted = ok(s.admin("DELETE", &format!("{dev}/tests/signup-flow"), None));
    assert_eq!(deleted["revision"]["kind"], "delete");
    assert_error(&s.admin("GET", &format!("{dev}/tests/signup-flow"), None), 404, "not_found", &["'signup-flow'"]);
    assert_eq!(groups(&s, &dev_root(&s), "id.USER=u1&test=signup-flow"), json!({}));
    let old = ok(s.admin("GET", &format!("{dev}/tests/signup-flow?revision={version}"), None));
    assert_eq!(text(&old["version"]), version, "the old revision still holds the deleted test");
    assert_error(&s.admin("DELETE", &format!("{dev}/tests/signup-flow"), None), 404, "not_found", &["'signup-flow'"]);
}

#[test]
fn an_unknown_test_environment_or_project_is_not_found() {
    let s = Server::start_demo();
    assert_error(&s.admin("GET", &format!("{}/tests/nope", env_path("development")), None), 404, "not_found", &["'nope'"]);
    let body = json!({"definition": everyone("x", 1)}).to_string();
    assert_error(&s.admin("PUT", "/projects/demo/environments/qa/tests/x", Some(&body)), 404, "not_found", &["'qa'"]);
    assert_error(&s.admin("PUT", "/projects/nope/environments/development/tests/x", Some(&body)), 404, "not_found", &["'nope'"]);
}

#[test]
fn a_test_name_with_a_space_is_refused() {
    let s = Server::start_demo();
    let body = json!({"definition": everyone("x", 1)}).to_string();
    let reply = s.admin("PUT", &format!("{}/tests/bad%20name", env_path("development")), Some(&body));
    assert_error(&reply, 400, "invalid_test_name", &["'bad name'"]);
}

/// Saves `parent-t` (a 50/50 split) and `child-t`, which depends on the parent's bucket 1.
fn parent_and_child(s: &Server) {
    let split = definition("parent-t", json!([{"length": 0.5, "bucketValue": 0}, {"length": 0.5, "bucketValue": 1}]));
    ok(put_test(s, "development", "parent-t", &split));
    let mut child = everyone("child-t", 1);
    child["dependsOn"] = json!({"testName": "parent-t", "bucketValue": 1});
    ok(put_test(s, "development", "child-t", &child));
}

#[test]
fn a_dependent_test_is_served_only_to_units_in_its_parents_bucket() {
    let s = Server::start_demo();
    parent_and_child(&s);
    let root = dev_root(&s);
    let assigned: Vec<Value> = (0..40).map(|i| groups(&s, &root, &format!("id.USER=user{i}&test=parent-t,child-t"))).collect();
    assert!(assigned.iter().all(|g| (g["parent-t"]["value"] == 1) == g.get("child-t").is_some()), "{assigned:?}");
    assert!(assigned.iter().any(|g| g.get("child-t").is_some()), "{assigned:?}");
}

#[test]
fn a_test_another_depends_on_cannot_be_deleted_before_it() {
    let s = Server::start_demo();
    let dev = env_path("development");
    parent_and_child(&s);
    let before = environment_state(&s, "development");
    let error = assert_error(&s.admin("DELETE", &format!("{dev}/tests/parent-t"), None), 422, "invalid_matrix", &["child-t"]);
    assert!(
        error["diagnostics"].as_array().expect("diagnostics").iter().any(|d| d["test"] == "child-t"
            && d["code"] == "depends_on_unknown"
            && d["path"] == "tests.child-t.dependsOn"),
        "{error}"
    );
    assert_eq!(environment_state(&s, "development"), before);
    ok(s.admin("DELETE", &format!("{dev}/tests/child-t"), None));
    ok(s.admin("DELETE", &format!("{dev}/tests/parent-t"), None));
}
