//! Optimistic concurrency: a write may name the revision it was based on (`baseRevision`, or
//! `If-Match`). A stale base conflicts only when what the write changes changed since (for a
//! whole-matrix write, anything did); without a base a write applies to whatever is current.
//! Concurrent writers never lose each other's change and never fork the history.

use std::collections::BTreeSet;
use std::sync::Barrier;

use serde_json::{json, Value};

use crate::common::{Reply, Server};
use crate::support::{assert_error, current, env_path, environment_state, everyone, matrix, ok, put_test, revisions, test_names, text, version_of};

const WRITERS: usize = 8;

/// Runs `write(i)` for `i` in `0..WRITERS` on as many threads, released together.
fn concurrently(write: impl Fn(usize) -> Reply + Sync) -> Vec<Reply> {
    let barrier = Barrier::new(WRITERS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (barrier, write) = (&barrier, &write);
                scope.spawn(move || {
                    barrier.wait();
                    write(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).collect()
    })
}

/// Asserts that the newest `n` revisions of development are one chain (each the parent's child).
#[track_caller]
fn assert_one_chain(history: &[Value], n: usize) {
    for pair in history.iter().take(n).collect::<Vec<_>>().windows(2) {
        assert_eq!(pair[0]["parent"], pair[1]["version"], "the history forks: {history:?}");
    }
}

/// A write of `method path` with `If-Match: tag` and the demo's write token.
fn if_match(s: &Server, method: &str, path: &str, body: Option<&str>, tag: &str) -> Reply {
    s.call_with(method, &format!("/api/v1{path}"), Some(s.var("AVSB_ADMIN_TOKEN")), body, &[("If-Match", tag)])
}

/// Revision r0 (the demo's), then r1 adding the test `first`.
fn first_added(s: &Server) -> (String, String) {
    let r0 = current(s, "development");
    let r1 = version_of(put_test(s, "development", "first", &everyone("first", 0)));
    (r0, r1)
}

#[test]
fn a_stale_base_conflicts_when_the_test_changed_since_naming_the_change() {
    let s = Server::start_demo();
    let (r0, r1) = first_added(&s);
    let before = environment_state(&s, "development");
    let reply = s.admin("DELETE", &format!("{}/tests/first?baseRevision={r0}", env_path("development")), None);
    let error = assert_error(&reply, 409, "conflict", &[&r0, &r1, "'first'"]);
    assert_eq!(error["currentRevision"], json!(r1));
    assert_eq!(error["baseRevision"], json!(r0));
    assert_eq!(error["changes"][0]["test"], "first");
    assert_eq!(error["changes"][0]["revision"], json!(r1));
    assert_eq!(environment_state(&s, "development"), before, "a stale write changed the environment");
}

#[test]
fn every_write_of_a_test_changed_since_a_stale_base_conflicts() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let (r0, r1) = first_added(&s);
    let before = environment_state(&s, "development");
    assert_error(&if_match(&s, "DELETE", &format!("{dev}/tests/first"), None, &format!("\"{r0}\"")), 409, "conflict", &[&r1]);
    let body = json!({"definition": everyone("first", 1), "baseRevision": r0}).to_string();
    assert_error(&s.admin("PUT", &format!("{dev}/tests/first"), Some(&body)), 409, "conflict", &[&r1]);
    let body = json!({"bucket": 0, "baseRevision": r0}).to_string();
    assert_error(&s.admin("POST", &format!("{dev}/tests/first/kill"), Some(&body)), 409, "conflict", &[&r1]);
    assert_eq!(environment_state(&s, "development"), before, "a stale write changed the environment");
}

#[test]
fn a_whole_matrix_write_on_a_stale_base_always_conflicts() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let (r0, r1) = first_added(&s);
    let before = environment_state(&s, "development");
    let body = json!({"revision": r0, "baseRevision": r0}).to_string();
    assert_error(&s.admin("POST", &format!("{dev}/rollback"), Some(&body)), 409, "conflict", &[&r1]);
    let body = json!({"matrix": before["matrix"], "baseRevision": r0}).to_string();
    assert_error(&s.admin("PUT", &format!("{dev}/matrix"), Some(&body)), 409, "conflict", &[&r1]);
    assert_eq!(environment_state(&s, "development"), before, "a stale write changed the environment");
}

#[test]
fn a_stale_base_applies_on_the_current_revision_until_the_test_itself_changes() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let (r0, r1) = first_added(&s);
    // 'second' did not exist at r0 and does not now.
    let body = json!({"definition": everyone("second", 1)}).to_string();
    let rebased = ok(if_match(&s, "PUT", &format!("{dev}/tests/second"), Some(&body), &format!("\"{r0}\"")));
    assert_eq!(text(&rebased["revision"]["parent"]), r1, "the edit is applied on the current revision");
    let reply = s.admin("DELETE", &format!("{dev}/tests/second?baseRevision={r0}"), None);
    assert_error(&reply, 409, "conflict", &["'second'"]);
    ok(s.admin("DELETE", &format!("{dev}/tests/second"), None));
}

#[test]
fn the_base_may_be_the_matrix_etag_a_weak_tag_or_a_number() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let etag = s.admin("GET", &format!("{dev}/matrix"), None).header("etag").expect("etag").to_string();
    let body = json!({"definition": everyone("second", 1)}).to_string();
    let r2 = text(&ok(if_match(&s, "PUT", &format!("{dev}/tests/second"), Some(&body), &etag))["revision"]["version"]);
    let reply = if_match(&s, "PUT", &format!("{dev}/tests/third"), Some(&body), &format!("W/\"{r2}\""));
    assert_eq!(text(&ok(reply)["revision"]["parent"]), r2);
    let number: i64 = current(&s, "development").parse().expect("numeric revision");
    let body = json!({"definition": everyone("fourth", 1), "baseRevision": number}).to_string();
    ok(s.admin("PUT", &format!("{dev}/tests/fourth"), Some(&body)));
}

#[test]
fn a_write_without_a_base_applies_to_whatever_is_current() {
    let s = Server::start_demo();
    first_added(&s);
    let head = current(&s, "development");
    let saved = ok(put_test(&s, "development", "fifth", &everyone("fifth", 1)));
    assert_eq!(text(&saved["revision"]["parent"]), head);
}

#[test]
fn concurrent_writers_of_different_tests_all_land_in_one_chain() {
    let s = Server::start_demo();
    let start = current(&s, "development");
    let replies = concurrently(|i| put_test(&s, "development", &format!("writer-{i}"), &everyone(&format!("writer-{i}"), (i % 2) as i64)));
    let versions: Vec<String> = replies.into_iter().map(version_of).collect();
    assert_eq!(versions.iter().collect::<BTreeSet<_>>().len(), WRITERS, "{versions:?}");
    let now = matrix(&s, "development");
    for (i, version) in versions.iter().enumerate() {
        assert_eq!(text(&now["tests"][format!("writer-{i}")]["version"]), *version, "writer-{i} was lost: {now}");
    }
    let history = revisions(&s, "development");
    assert_one_chain(&history, WRITERS);
    assert_eq!(text(&history[WRITERS - 1]["parent"]), start);
    let listed: BTreeSet<String> = history.iter().take(WRITERS).map(|r| text(&r["version"])).collect();
    assert_eq!(listed, versions.iter().cloned().collect());
}

#[test]
fn of_concurrent_writers_of_one_test_on_one_base_exactly_one_wins() {
    let s = Server::start_demo();
    let base = current(&s, "development");
    let replies = concurrently(|i| {
        let body = json!({"definition": everyone(&format!("race-{i}"), 1), "baseRevision": base}).to_string();
        s.admin("PUT", &format!("{}/tests/race", env_path("development")), Some(&body))
    });
    let winners: Vec<usize> = (0..WRITERS).filter(|i| replies[*i].status == 200).collect();
    assert_eq!(winners.len(), 1, "{:?}", replies.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>());
    let winner = text(&replies[winners[0]].json()["revision"]["version"]);
    // The others get 409 naming the winner's revision as the change to that test.
    for (i, reply) in replies.iter().enumerate().filter(|(i, _)| *i != winners[0]) {
        let error = assert_error(reply, 409, "conflict", &[&base, "'race'"]);
        assert_eq!(error["currentRevision"], json!(winner), "writer {i}");
        assert_eq!(error["changes"][0]["revision"], json!(winner), "writer {i}");
    }
    let now = matrix(&s, "development");
    assert_eq!(now["tests"]["race"]["salt"], json!(format!("race-{}", winners[0])));
    assert_eq!(current(&s, "development"), winner);
}

#[test]
fn concurrent_writers_of_different_tests_on_one_base_all_land_in_one_chain() {
    let s = Server::start_demo();
    let base = current(&s, "development");
    // Nothing they change overlaps, so no write conflicts.
    let replies = concurrently(|i| {
        let body = json!({"definition": everyone(&format!("apart-{i}"), 1), "baseRevision": base}).to_string();
        s.admin("PUT", &format!("{}/tests/apart-{i}", env_path("development")), Some(&body))
    });
    assert!(replies.iter().all(|r| r.status == 200), "{:?}", replies.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>());
    let now = matrix(&s, "development");
    assert_eq!(test_names(&now).into_iter().filter(|t| t.starts_with("apart-")).count(), WRITERS);
    assert_one_chain(&revisions(&s, "development"), WRITERS);
}
