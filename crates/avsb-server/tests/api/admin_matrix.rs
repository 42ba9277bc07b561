//! The whole matrix (`GET`/`PUT .../matrix`): served with its revision as the ETag, replaced
//! keeping the versions of unchanged tests, refused whole when it would drop a test, and read
//! back at any revision.

use serde_json::{json, Value};

use crate::common::Server;
use crate::support::{assert_error, current, dev_root, env_path, environment_state, everyone, groups, matrix, ok, put_test, test_names, text, version_of};

const DEMO_TESTS: [&str; 5] = ["buttoncolortst", "checkout-v2", "countryalgotst", "newfeaturerollout", "ui-theme"];

/// Development before and after a replace that keeps three tests, changes `countryalgotst`,
/// removes `ui-theme` and adds `fresh`.
struct Replaced {
    r0: String,
    r1: String,
    original: Value,
    now: Value,
    /// The answer to the `PUT`.
    answer: Value,
}

fn replace(s: &Server) -> Replaced {
    let dev = env_path("development");
    let r0 = current(s, "development");
    let original = matrix(s, "development");
    let mut next = original.clone();
    next["tests"]["countryalgotst"]["description"] = json!("A new search algorithm, now tried everywhere");
    next["tests"].as_object_mut().expect("tests").remove("ui-theme");
    next["tests"]["fresh"] = everyone("fresh", 0);
    let body = json!({"matrix": next, "baseRevision": r0, "comment": "quarterly cleanup"}).to_string();
    let answer = ok(s.admin("PUT", &format!("{dev}/matrix"), Some(&body)));
    let r1 = text(&answer["revision"]["version"]);
    let now = matrix(s, "development");
    Replaced { r0, r1, original, now, answer }
}

/// `GET .../matrix` of development with `If-None-Match`.
fn conditional(s: &Server, tag: &str) -> u16 {
    let path = format!("/api/v1{}/matrix", env_path("development"));
    s.call_with("GET", &path, Some(s.var("AVSB_ADMIN_TOKEN")), None, &[("If-None-Match", tag)]).status
}

#[test]
fn the_matrix_is_served_with_its_revision_as_etag_and_is_what_pipet_serves() {
    let s = Server::start_demo();
    let r0 = current(&s, "development");
    let reply = s.admin("GET", &format!("{}/matrix", env_path("development")), None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("etag"), Some(format!("\"{r0}\"").as_str()));
    let original = reply.json();
    assert_eq!(text(&original["audit"]["version"]), r0);
    assert_eq!(original["audit"]["updatedBy"], "demo");
    assert_eq!(test_names(&original), DEMO_TESTS.iter().map(|t| t.to_string()).collect());
    let pipet = s.call("GET", &format!("{}/proctor/matrix", dev_root(&s)), None, None).json();
    assert_eq!(pipet, original, "Pipet and the admin API serve different matrices");
    assert_eq!(conditional(&s, &format!("\"{r0}\"")), 304);
}

#[test]
fn replacing_the_matrix_keeps_the_versions_of_unchanged_tests() {
    let s = Server::start_demo();
    let Replaced { r0, r1, now, answer, .. } = replace(&s);
    assert_eq!(answer["revision"]["kind"], "replace");
    assert_eq!(text(&answer["revision"]["parent"]), r0);
    assert_eq!(answer["revision"]["comment"], "quarterly cleanup");
    let reply = s.admin("GET", &format!("{}/matrix", env_path("development")), None);
    assert_eq!(reply.header("etag"), Some(format!("\"{r1}\"").as_str()));
    assert_eq!(reply.json(), now);
    assert_eq!(text(&now["audit"]["version"]), r1);
    for (test, version) in [("buttoncolortst", "1"), ("checkout-v2", "1"), ("newfeaturerollout", "1"), ("countryalgotst", &r1), ("fresh", &r1)] {
        assert_eq!(text(&now["tests"][test]["version"]), version, "{test}");
    }
    assert!(now["tests"].get("ui-theme").is_none());
}

#[test]
fn a_replaced_matrix_is_served_at_once_and_the_old_etag_no_longer_matches() {
    let s = Server::start_demo();
    let Replaced { r0, r1, .. } = replace(&s);
    let served = groups(&s, &dev_root(&s), "id.USER=u1&test=fresh,ui-theme,buttoncolortst");
    assert_eq!(served["fresh"]["version"], json!(r1));
    assert_eq!(served["buttoncolortst"]["version"], "1");
    assert!(served.get("ui-theme").is_none(), "{served}");
    assert_eq!(conditional(&s, &format!("\"{r0}\"")), 200, "the old ETag still matches after a replace");
}

#[test]
fn every_earlier_revision_of_the_matrix_stays_readable() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let Replaced { r0, r1, original, now, .. } = replace(&s);
    let reply = s.admin("GET", &format!("{dev}/matrix?revision={r0}"), None);
    assert_eq!(reply.header("etag"), Some(format!("\"{r0}\"").as_str()));
    assert_eq!(reply.json(), original);
    assert_eq!(ok(s.admin("GET", &format!("{dev}/matrix?revision={r1}"), None)), now);
    let old = ok(s.admin("GET", &format!("{dev}/tests/countryalgotst?revision={r0}"), None));
    assert_eq!(old["description"], original["tests"]["countryalgotst"]["description"]);
}

#[test]
fn a_matrix_revision_unknown_malformed_or_of_another_environment_is_refused() {
    let s = Server::start_demo();
    let dev = env_path("development");
    assert_error(&s.admin("GET", &format!("{dev}/matrix?revision=999999"), None), 404, "not_found", &["999999"]);
    assert_error(&s.admin("GET", &format!("{dev}/matrix?revision=abc"), None), 400, "invalid_field", &["revision"]);
    let staging_revision = current(&s, "staging");
    let reply = s.admin("GET", &format!("{dev}/matrix?revision={staging_revision}"), None);
    assert_error(&reply, 404, "not_found", &[&staging_revision]);
}

#[test]
fn a_matrix_that_would_drop_a_test_is_refused_whole() {
    let s = Server::start_demo();
    let dev = env_path("development");
    ok(put_test(&s, "development", "fresh", &everyone("fresh", 0)));
    let before = environment_state(&s, "development");
    let mut bad = matrix(&s, "development");
    bad["tests"]["fresh"]["allocations"][0]["ranges"][0]["length"] = json!(0.5);
    bad["tests"]["another"] = everyone("another", 1);
    let reply = s.admin("PUT", &format!("{dev}/matrix"), Some(&json!({"matrix": bad}).to_string()));
    let error = assert_error(&reply, 422, "invalid_matrix", &["fresh"]);
    assert!(error["diagnostics"].as_array().expect("diagnostics").iter().any(|d| d["test"] == "fresh" && d["code"] == "ranges_sum"), "{error}");
    assert_eq!(environment_state(&s, "development"), before);
}

#[test]
fn a_matrix_that_is_no_object_or_names_a_test_badly_is_refused() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let before = environment_state(&s, "development");
    assert_error(&s.admin("PUT", &format!("{dev}/matrix"), Some(r#"{"matrix": []}"#)), 400, "invalid_field", &["matrix"]);
    let body = json!({"matrix": {"tests": {"bad name": everyone("b", 1)}}}).to_string();
    assert_error(&s.admin("PUT", &format!("{dev}/matrix"), Some(&body)), 400, "invalid_test_name", &["'bad name'"]);
    assert_eq!(environment_state(&s, "development"), before);
}

#[test]
fn writing_the_same_matrix_back_keeps_every_tests_version() {
    let s = Server::start_demo();
    let Replaced { now, .. } = replace(&s);
    let mut same = now.clone();
    same.as_object_mut().expect("object").remove("audit");
    let r2 = version_of(s.admin("PUT", &format!("{}/matrix", env_path("development")), Some(&json!({"matrix": same}).to_string())));
    let again = matrix(&s, "development");
    assert_eq!(text(&again["audit"]["version"]), r2);
    assert_eq!(again["tests"], now["tests"]);
}
