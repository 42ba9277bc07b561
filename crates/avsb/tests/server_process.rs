//! What only the real `avsb serve` process does: it ends open streams and exits promptly on
//! SIGTERM, its flags reach the server, its debug logs never hold a secret, and tokens made and
//! revoked with `avsb token` while it runs (another process, the same database) take effect on
//! its next request. Everything else about the server is tested in process in
//! `crates/avsb-server/tests`.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::sse::Item;
use common::Server;
use serde_json::json;

fn avsb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avsb")).args(args).env_remove("AVSB_DATA").output().expect("run avsb")
}

#[test]
fn sigterm_ends_open_streams_and_the_server_exits_promptly() {
    let mut server = Server::start_demo();
    let key = server.var("AVSB_SDK_KEY").to_string();
    let mut streams: Vec<_> = (0..3).map(|_| server.stream(&key)).collect();
    for stream in &mut streams {
        stream.next_event(Duration::from_secs(5));
    }
    let started = Instant::now();
    let code = server.stop();
    let elapsed = started.elapsed();
    assert_eq!(code, Some(0));
    assert!(elapsed < Duration::from_secs(3), "the server took {elapsed:?} to stop with open streams");
    for stream in &mut streams {
        stream.assert_ends(Duration::from_secs(2));
    }
}

#[test]
fn the_heartbeat_flag_sets_the_interval_of_idle_streams() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(data.path(), &["--demo", "--heartbeat-secs", "1"]);
    let mut stream = server.stream(server.var("AVSB_SDK_KEY"));
    stream.next_event(Duration::from_secs(5));
    let started = Instant::now();
    match stream.next(Duration::from_millis(2500)) {
        Item::Comment(_) => {}
        Item::Timeout => panic!("no heartbeat within 2.5 s"),
        other => panic!("expected a heartbeat, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(2500));
    // And they keep coming.
    match stream.next(Duration::from_millis(2500)) {
        Item::Comment(_) => {}
        other => panic!("expected a second heartbeat, got {other:?}"),
    }
}

#[test]
fn debug_logs_never_contain_secrets() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(data.path(), &["--demo", "--log-level", "debug"]);
    let key = server.var("AVSB_SDK_KEY").to_string();
    let token = server.var("AVSB_ADMIN_TOKEN").to_string();
    let root = server.var("PROCTOR_API_ROOT").to_string();
    let ofrep = |flag: &str, body: &str| server.call("POST", &format!("/ofrep/v1/evaluate/flags{flag}"), Some(&key), Some(body));
    let events = |body: serde_json::Value| server.call("POST", "/sdk/v1/events", Some(&key), Some(&body.to_string()));
    assert_eq!(server.call("GET", &format!("{root}/groups/identify?id.USER=u_1&ctx.loggedIn=true"), None, None).status, 200);
    assert_eq!(server.call("GET", &format!("{root}/groups/identify?ctx.loggedIn=true"), None, None).status, 400);
    assert_eq!(server.call("GET", &format!("{root}/proctor/matrix"), None, None).status, 200);
    assert_eq!(server.call("GET", &format!("{root}/nope"), None, None).status, 404);
    assert_eq!(ofrep("/checkout-v2", r#"{"context":{"targetingKey":"u_1"}}"#).status, 200);
    assert_eq!(ofrep("/checkout-v2", "{bad").status, 400);
    assert_eq!(ofrep("", r#"{"context":{"targetingKey":"u_1"}}"#).status, 200);
    assert_eq!(server.call("GET", "/sdk/v1/datafile", Some(&key), None).status, 200);
    assert_eq!(server.call_with("GET", "/sdk/v1/datafile", None, None, &[("X-API-Key", &key)]).status, 200);
    let exposure = json!({"kind": "exposure", "identifiers": {"USER": "u"}, "test": "checkout-v2", "bucket": 1});
    assert_eq!(events(json!([exposure])).status, 202);
    assert_eq!(events(json!([{"kind": "x"}])).status, 400);
    let mut stream = server.stream(&key);
    stream.next_event(Duration::from_secs(5));
    let flag = json!({
        "testType": "USER", "salt": "float-flag",
        "buckets": [{"name": "one", "value": 0, "payload": {"doubleValue": 1.0}}],
        "allocations": [{"rule": null, "ranges": [{"length": 1.0, "bucketValue": 0}]}]
    });
    let body = json!({"definition": flag}).to_string();
    assert_eq!(server.admin("PUT", "/projects/demo/environments/development/tests/float-flag", Some(&body)).status, 200);
    stream.next_event(Duration::from_secs(5));
    drop(stream);
    assert_eq!(server.admin("GET", "/projects", None).status, 200);
    assert_eq!(server.call("GET", "/api/v1/projects", Some("adm-wrong"), None).status, 401);
    assert_eq!(server.stop(), Some(0));
    std::thread::sleep(Duration::from_millis(300));
    let logs = server.stderr.lock().expect("stderr").clone();
    assert!(logs.contains("DEBUG"), "debug logging is not on: {logs}");
    assert!(!logs.contains(&key), "the SDK key appears in the logs:\n{logs}");
    assert!(!logs.contains(&key[4..]), "the SDK key (without its prefix) appears in the logs");
    assert!(!logs.contains(&token), "the admin token appears in the logs:\n{logs}");
    assert!(!logs.contains(&token[4..]), "the admin token (without its prefix) appears in the logs");
}

#[test]
fn a_token_made_with_the_cli_while_the_server_runs_works_at_once_and_is_refused_once_revoked() {
    let s = Server::start_demo();
    let data = s.data_path().to_str().expect("utf-8 path").to_string();
    let out = avsb(&["token", "create", "--name", "reader", "--role", "read", "--data", &data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reader = String::from_utf8(out.stdout).expect("utf-8").trim().to_string();
    assert_eq!(s.call("GET", "/api/v1/projects", Some(&reader), None).status, 200);
    let reply = s.call("POST", "/api/v1/projects", Some(&reader), Some(r#"{"key": "shop"}"#));
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("'reader'"), "{}", reply.body);

    let listing = String::from_utf8(avsb(&["token", "list", "--data", &data]).stdout).expect("utf-8");
    let id = listing.lines().find(|l| l.split('\t').nth(1) == Some("reader")).and_then(|l| l.split('\t').next()).expect("listed");
    let out = avsb(&["token", "revoke", id, "--data", &data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reply = s.call("GET", "/api/v1/projects", Some(&reader), None);
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "unauthorized");
    assert!(reply.json()["error"]["message"].as_str().is_some_and(|m| m.contains("unknown or revoked")), "{}", reply.body);
    // The demo's write token is untouched.
    assert_eq!(s.admin("GET", "/projects", None).status, 200);
}
