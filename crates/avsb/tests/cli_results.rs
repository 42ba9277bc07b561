//! `avsb results`: a test's results from a running server, as a table and as JSON.

mod common;

use std::process::{Command, Output};

use common::Server;
use serde_json::{json, Value};

fn avsb(server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avsb"))
        .args(args)
        .env("AVSB_BASE_URL", server.base())
        .env("AVSB_ADMIN_TOKEN", server.var("AVSB_ADMIN_TOKEN"))
        .env_remove("AVSB_PROJECT")
        .env_remove("AVSB_ENVIRONMENT")
        .output()
        .expect("run avsb")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A 50/50 test in development with 400 units and a purchase metric (20% against 40%).
fn experiment(server: &Server) {
    let definition = json!({
        "testType": "USER", "salt": "exp", "buckets": [{"name": "control", "value": 0}, {"name": "treatment", "value": 1}],
        "allocations": [{"ranges": [{"length": 0.5, "bucketValue": 0}, {"length": 0.5, "bucketValue": 1}]}]
    });
    let put = server.admin("PUT", "/projects/demo/environments/development/tests/exp", Some(&json!({"definition": definition}).to_string()));
    assert_eq!(put.status, 200, "{}", put.body);
    let metric = json!({"key": "buy", "name": "Purchase rate", "event": "purchase", "type": "conversion"});
    assert_eq!(server.admin("POST", "/projects/demo/metrics", Some(&metric.to_string())).status, 201);
    let mut events = Vec::new();
    for i in 0..400 {
        let user = format!("u{i}");
        let bucket = i % 2;
        events.push(json!({"kind": "exposure", "identifiers": {"USER": user}, "test": "exp", "bucket": bucket, "reason": "split", "allocation": 0}));
        // Control: i % 10 == 0 (one in five); treatment: i % 10 is 1 or 5 (two in five).
        if matches!(i % 10, 0 | 1 | 5) {
            events.push(json!({"kind": "track", "identifiers": {"USER": user}, "key": "purchase", "value": 1}));
        }
    }
    let reply = server.call("POST", "/sdk/v1/events", Some(server.var("AVSB_SDK_KEY")), Some(&json!({"events": events}).to_string()));
    assert_eq!(reply.status, 202, "{}", reply.body);
}

#[test]
fn results_prints_a_table_per_metric_and_the_api_json_with_json() {
    let server = Server::start_demo();
    experiment(&server);
    let out = avsb(&server, &["results", "exp", "--env", "development"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{}", stdout, text(&out.stderr));
    for needle in ["exp in development", "Purchase rate (conversion)", "control", "treatment", "Sample ratio: fine", "frequentist statistics"] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
    assert!(stdout.contains("+100.0%"), "the lift (40% against 20%):\n{stdout}");
    assert!(stdout.contains("better"), "{stdout}");

    let out = avsb(&server, &["results", "exp", "--env", "development", "--engine", "bayesian", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["settings"]["engine"], "bayesian");
    assert!(json["metrics"][0]["variants"][1]["chanceToWin"].as_f64().is_some());
}

#[test]
fn results_says_what_is_wrong_without_a_token_or_with_an_unknown_test() {
    let server = Server::start_demo();
    let out = Command::new(env!("CARGO_BIN_EXE_avsb"))
        .args(["results", "exp", "--url", server.base()])
        .env_remove("AVSB_ADMIN_TOKEN")
        .output()
        .expect("run avsb");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("AVSB_ADMIN_TOKEN"), "{}", text(&out.stderr));
    let out = avsb(&server, &["results", "nope", "--env", "development"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no test 'nope'"), "{}", text(&out.stderr));
}
