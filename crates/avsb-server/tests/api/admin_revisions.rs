//! Revisions: the history of an environment, newest first and paged; one revision with its
//! matrix; diffs between any two revisions of a project; and rollback, which makes a new
//! revision holding an earlier matrix.

use serde_json::{json, Value};

use crate::common::Server;
use crate::support::{assert_error, current, dev_root, env_path, environment_state, everyone, groups, matrix, ok, put_test, revisions, text, version_of};

/// Development's history after three edits: r1 adds `alpha`, r2 rewords `countryalgotst`, r3
/// deletes `ui-theme`. Returns r0 (the demo's revision) to r3.
fn three_edits(s: &Server) -> [String; 4] {
    let dev = env_path("development");
    let r0 = current(s, "development");
    let body = json!({"definition": everyone("alpha", 1), "comment": "add alpha"}).to_string();
    let r1 = version_of(s.admin("PUT", &format!("{dev}/tests/alpha"), Some(&body)));
    let mut reworded = ok(s.admin("GET", &format!("{dev}/tests/countryalgotst"), None));
    reworded["description"] = json!("reworded");
    let body = json!({"definition": reworded, "comment": "reword"}).to_string();
    let r2 = version_of(s.admin("PUT", &format!("{dev}/tests/countryalgotst"), Some(&body)));
    let r3 = version_of(s.admin("DELETE", &format!("{dev}/tests/ui-theme?comment=retire%20the%20theme"), None));
    [r0, r1, r2, r3]
}

/// The diff between two revisions of the demo project.
fn diff(s: &Server, from: &str, to: &str) -> crate::common::Reply {
    s.admin("GET", &format!("/projects/demo/diff?from={from}&to={to}"), None)
}

/// The test names of a diff's list.
fn names(list: &Value) -> Vec<String> {
    list.as_array().expect("list").iter().map(|e| e["test"].as_str().expect("test").to_string()).collect()
}

#[test]
fn revisions_are_listed_newest_first_with_kind_comment_author_and_test_count() {
    let s = Server::start_demo();
    let [r0, r1, r2, r3] = three_edits(&s);
    let list = ok(s.admin("GET", &format!("{}/revisions", env_path("development")), None));
    assert_eq!(text(&list["current"]), r3);
    let history = list["revisions"].as_array().expect("revisions");
    let field = |name: &str| history.iter().map(|r| r[name].clone()).collect::<Vec<_>>();
    assert_eq!(field("version"), [json!(r3), json!(r2), json!(r1), json!(r0)]);
    assert_eq!(field("parent"), [json!(r2), json!(r1), json!(r0), Value::Null]);
    assert_eq!(field("kind"), ["delete", "edit", "edit", "create"]);
    assert_eq!(field("comment"), ["retire the theme", "reword", "add alpha", "environment created"]);
    assert_eq!(field("updatedBy"), ["demo", "demo", "demo", "demo"]);
    assert_eq!(field("tests"), [5, 6, 6, 5]);
    for revision in history {
        let date = revision["updatedDate"].as_str().unwrap_or_else(|| panic!("no updatedDate: {revision}"));
        assert!(date.len() >= 16 && date.contains('T'), "updatedDate {date:?}");
    }
    let times: Vec<i64> = field("updated").iter().map(|t| t.as_i64().expect("updated")).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
}

#[test]
fn revisions_are_paged_with_limit_and_before() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let [r0, _, r2, _] = three_edits(&s);
    let history = revisions(&s, "development");
    let page = |query: &str| ok(s.admin("GET", &format!("{dev}/revisions?{query}"), None))["revisions"].clone();
    assert_eq!(page("limit=2"), json!(history[..2]));
    assert_eq!(page(&format!("limit=2&before={r2}")), json!(history[2..]));
    assert_eq!(page(&format!("before={r0}")), json!([]));
    assert_error(&s.admin("GET", &format!("{dev}/revisions?before=abc"), None), 400, "invalid_field", &["before"]);
}

#[test]
fn one_revision_is_read_with_its_matrix() {
    let s = Server::start_demo();
    let [_, r1, _, _] = three_edits(&s);
    let history = revisions(&s, "development");
    let one = ok(s.admin("GET", &format!("{}/revisions/{r1}", env_path("development")), None));
    assert_eq!(one["revision"], history[2]);
    assert_eq!(text(&one["matrix"]["audit"]["version"]), r1);
    assert!(one["matrix"]["tests"]["alpha"].is_object() && one["matrix"]["tests"]["ui-theme"].is_object());
}

#[test]
fn a_revision_unknown_malformed_or_of_another_environment_is_not_served() {
    let s = Server::start_demo();
    let dev = env_path("development");
    assert_error(&s.admin("GET", &format!("{dev}/revisions/999999"), None), 404, "not_found", &["999999"]);
    assert_error(&s.admin("GET", &format!("{dev}/revisions/abc"), None), 400, "invalid_field", &["revision"]);
    let production = current(&s, "production");
    assert_error(&s.admin("GET", &format!("{dev}/revisions/{production}"), None), 404, "not_found", &[&production]);
    assert_error(&s.admin("GET", "/projects/demo/environments/qa/revisions", None), 404, "not_found", &["'qa'"]);
}

#[test]
fn a_diff_names_added_removed_and_changed_tests_with_the_fields_and_counts_the_rest() {
    let s = Server::start_demo();
    let [r0, r1, _, r3] = three_edits(&s);
    let d = ok(diff(&s, &r0, &r3));
    assert_eq!(text(&d["from"]["version"]), r0);
    assert_eq!(text(&d["to"]["version"]), r3);
    assert_eq!(names(&d["added"]), ["alpha"]);
    assert_eq!(text(&d["added"][0]["definition"]["version"]), r1);
    assert_eq!(names(&d["removed"]), ["ui-theme"]);
    assert_eq!(names(&d["changed"]), ["countryalgotst"]);
    let fields = d["changed"][0]["fields"].as_array().expect("fields");
    assert!(fields.contains(&json!("description")), "{d}");
    assert!(!fields.contains(&json!("buckets")), "{d}");
    assert_eq!(d["changed"][0]["to"]["description"], "reworded");
    assert_eq!(d["unchanged"], 3);
}

#[test]
fn a_diff_backwards_swaps_added_and_removed() {
    let s = Server::start_demo();
    let [r0, _, _, r3] = three_edits(&s);
    let back = ok(diff(&s, &r3, &r0));
    assert_eq!(names(&back["added"]), ["ui-theme"]);
    assert_eq!(names(&back["removed"]), ["alpha"]);
}

#[test]
fn a_revision_diffed_with_itself_changes_nothing() {
    let s = Server::start_demo();
    let [_, _, r2, _] = three_edits(&s);
    let same = ok(diff(&s, &r2, &r2));
    assert_eq!((same["added"].clone(), same["removed"].clone(), same["changed"].clone()), (json!([]), json!([]), json!([])));
    assert_eq!(same["unchanged"], 6);
}

#[test]
fn a_diff_spans_the_environments_of_a_project() {
    let s = Server::start_demo();
    let [_, _, _, r3] = three_edits(&s);
    // Production still holds the demo matrix.
    let production = current(&s, "production");
    let d = ok(diff(&s, &production, &r3));
    assert_eq!(names(&d["added"]), ["alpha"]);
    assert_eq!(names(&d["removed"]), ["ui-theme"]);
    assert_eq!(names(&d["changed"]), ["countryalgotst"]);
    assert_eq!(d["unchanged"], 3);
}

#[test]
fn a_diff_with_an_unknown_malformed_or_foreign_revision_is_refused() {
    let s = Server::start_demo();
    let [r0, _, _, r3] = three_edits(&s);
    assert_error(&diff(&s, "999999", &r3), 404, "not_found", &["999999"]);
    assert_error(&diff(&s, &r0, "999999"), 404, "not_found", &["999999"]);
    let other = ok(s.admin("POST", "/projects", Some(r#"{"key": "other"}"#)));
    let foreign = text(&other["environments"][0]["currentRevision"]);
    assert_error(&diff(&s, &foreign, &r3), 404, "not_found", &[&foreign]);
    assert_error(&diff(&s, "abc", &r3), 400, "invalid_field", &["from"]);
}

// ---------------------------------------------------------------------------------------------
// Rollback

const QUERY: &str = "id.USER=u7&ctx.loggedIn=true";

/// Development after r1 adds `extra`, r2 deletes `buttoncolortst` and r3 replaces
/// `newfeaturerollout`; returns r0 (the demo's), r2 and r3.
fn edits_to_roll_back(s: &Server) -> (String, String, String) {
    let r0 = current(s, "development");
    ok(put_test(s, "development", "extra", &everyone("extra", 1)));
    let r2 = version_of(s.admin("DELETE", &format!("{}/tests/buttoncolortst", env_path("development")), None));
    let r3 = version_of(put_test(s, "development", "newfeaturerollout", &everyone("newfeaturerollout", 0)));
    (r0, r2, r3)
}

#[test]
fn a_rollback_makes_a_new_revision_holding_the_earlier_matrix() {
    let s = Server::start_demo();
    let root = dev_root(&s);
    let m0 = matrix(&s, "development");
    let served0 = groups(&s, &root, QUERY);
    assert!(served0.get("buttoncolortst").is_some(), "{served0}");
    let (r0, r2, r3) = edits_to_roll_back(&s);
    assert_ne!(groups(&s, &root, QUERY), served0);

    let body = json!({"revision": r0, "comment": "back to the demo"}).to_string();
    let rolled = ok(s.admin("POST", &format!("{}/rollback", env_path("development")), Some(&body)));
    let r4 = text(&rolled["revision"]["version"]);
    assert_eq!(rolled["revision"]["kind"], "rollback");
    assert_eq!(text(&rolled["revision"]["parent"]), r3);
    assert_eq!(rolled["revision"]["comment"], "back to the demo");
    assert!(![r0.clone(), r2.clone(), r3.clone()].contains(&r4));
    let m4 = matrix(&s, "development");
    assert_eq!(m4["tests"], m0["tests"], "the rollback did not restore the matrix");
    assert_eq!(text(&m4["audit"]["version"]), r4);
    assert_eq!(groups(&s, &root, QUERY), served0, "identify does not serve the restored matrix");
    let history = revisions(&s, "development");
    assert_eq!(history.len(), 5, "the history must be kept: {history:?}");
    assert_eq!(text(&history[0]["version"]), r4);
}

#[test]
fn a_rollback_to_a_revision_given_as_a_number_restores_it_too() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let (r0, r2, _) = edits_to_roll_back(&s);
    ok(s.admin("POST", &format!("{dev}/rollback"), Some(&json!({"revision": r0}).to_string())));
    // Back to the later r2 from the rolled-back state.
    let number: i64 = r2.parse().expect("numeric revision");
    ok(s.admin("POST", &format!("{dev}/rollback"), Some(&json!({"revision": number}).to_string())));
    let at_r2 = ok(s.admin("GET", &format!("{dev}/revisions/{r2}"), None));
    assert_eq!(matrix(&s, "development")["tests"], at_r2["matrix"]["tests"]);
    assert!(groups(&s, &dev_root(&s), QUERY).get("buttoncolortst").is_none());
}

#[test]
fn a_rollback_to_an_unknown_foreign_or_malformed_revision_is_refused_and_changes_nothing() {
    let s = Server::start_demo();
    let dev = env_path("development");
    edits_to_roll_back(&s);
    let before = environment_state(&s, "development");
    let rollback = |body: Value| s.admin("POST", &format!("{dev}/rollback"), Some(&body.to_string()));
    assert_error(&rollback(json!({"revision": "999999"})), 404, "not_found", &["999999"]);
    let staging = current(&s, "staging");
    assert_error(&rollback(json!({"revision": staging})), 404, "not_found", &[&staging]);
    assert_error(&rollback(json!({"revision": "abc"})), 400, "invalid_field", &["revision"]);
    assert_error(&rollback(json!({})), 400, "invalid_field", &["revision"]);
    assert_eq!(environment_state(&s, "development"), before);
}
