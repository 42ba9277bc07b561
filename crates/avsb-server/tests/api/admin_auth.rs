//! Admin tokens: who may call `/api/v1`, and what a read token may do. (`avsb token` itself is
//! tested in `crates/avsb/tests`.)

use serde_json::{json, Value};

use crate::common::Server;
use crate::support::{assert_error, env_path, environment_state, everyone, ok};

/// A read token named `reader`, made with the demo's write token; its secret and id.
fn read_token(s: &Server) -> (String, i64) {
    let reply = s.admin("POST", "/tokens", Some(r#"{"name": "reader", "role": "read"}"#));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = reply.json();
    (token["token"].as_str().expect("token").to_string(), token["id"].as_i64().expect("id"))
}

#[test]
fn admin_calls_without_a_token_are_unauthorized() {
    let s = Server::start_demo();
    let reply = s.call("GET", "/api/v1/projects", None, None);
    assert_error(&reply, 401, "unauthorized", &["admin token is required"]);
    let body = json!({"definition": everyone("x", 1)}).to_string();
    let reply = s.call("PUT", &format!("/api/v1{}/tests/x", env_path("development")), None, Some(&body));
    assert_error(&reply, 401, "unauthorized", &["admin token"]);
}

#[test]
fn an_unknown_token_or_an_sdk_key_is_no_admin_token() {
    let s = Server::start_demo();
    for secret in ["adm-no-such-token", s.var("AVSB_SDK_KEY")] {
        let reply = s.call("GET", "/api/v1/projects", Some(secret), None);
        assert_error(&reply, 401, "unauthorized", &["unknown or revoked"]);
    }
}

#[test]
fn a_read_token_may_read_every_admin_resource() {
    let s = Server::start_demo();
    let (reader, _) = read_token(&s);
    let dev = env_path("development");
    for path in [
        "/projects".to_string(),
        "/projects/demo".into(),
        "/projects/demo/schema".into(),
        "/projects/demo/environments".into(),
        format!("{dev}/matrix"),
        format!("{dev}/tests/buttoncolortst"),
        format!("{dev}/revisions"),
        format!("{dev}/sdk-keys"),
        format!("{dev}/events"),
    ] {
        let reply = s.call("GET", &format!("/api/v1{path}"), Some(&reader), None);
        assert_eq!(reply.status, 200, "GET {path} with a read token: {}", reply.body);
    }
}

#[test]
fn a_read_token_may_not_write_and_its_refused_writes_change_nothing() {
    let s = Server::start_demo();
    let (reader, _) = read_token(&s);
    let dev = env_path("development");
    let before = environment_state(&s, "development");
    let schema = s.admin("GET", "/projects/demo/schema", None).body;
    let writes: Vec<(&str, String, String)> = vec![
        ("POST", "/projects".into(), json!({"key": "shop"}).to_string()),
        ("PATCH", "/projects/demo".into(), json!({"name": "Renamed"}).to_string()),
        ("PUT", "/projects/demo/schema".into(), schema),
        ("POST", "/projects/demo/environments".into(), json!({"key": "qa"}).to_string()),
        (
            "POST",
            "/projects/demo/promote".into(),
            json!({"from": "development", "to": "staging", "tests": ["buttoncolortst"]}).to_string(),
        ),
        ("PUT", format!("{dev}/matrix"), json!({"matrix": before["matrix"]}).to_string()),
        ("PUT", format!("{dev}/tests/x"), json!({"definition": everyone("x", 1)}).to_string()),
        ("DELETE", format!("{dev}/tests/buttoncolortst"), String::new()),
        ("POST", format!("{dev}/tests/buttoncolortst/kill"), json!({"bucket": "green"}).to_string()),
        ("POST", format!("{dev}/rollback"), json!({"revision": before["revisions"][0]["version"]}).to_string()),
        ("POST", format!("{dev}/sdk-keys"), json!({"name": "k"}).to_string()),
        ("DELETE", format!("{dev}/sdk-keys/1"), String::new()),
    ];
    for (method, path, body) in &writes {
        let body = (!body.is_empty()).then_some(body.as_str());
        let reply = s.call(method, &format!("/api/v1{path}"), Some(&reader), body);
        assert_error(&reply, 403, "forbidden", &["'reader'", "read role"]);
    }
    assert_eq!(environment_state(&s, "development"), before, "a refused write changed development");
    let projects = ok(s.admin("GET", "/projects", None));
    assert_eq!(projects["projects"].as_array().expect("projects").len(), 1, "{projects}");
    assert_eq!(projects["projects"][0]["name"], "Demo");
    let keys = ok(s.admin("GET", &format!("{dev}/sdk-keys"), None));
    assert_eq!(keys["keys"].as_array().expect("keys").len(), 1, "{keys}");
    assert!(keys["keys"][0]["revokedAt"].is_null(), "{keys}");
}

#[test]
fn a_revoked_token_is_refused_on_the_very_next_request_and_other_tokens_still_work() {
    let s = Server::start_demo();
    let (reader, id) = read_token(&s);
    assert_eq!(s.call("GET", "/api/v1/projects", Some(&reader), None).status, 200);
    assert_eq!(s.admin("DELETE", &format!("/tokens/{id}"), None).status, 204);
    let reply = s.call("GET", "/api/v1/projects", Some(&reader), None);
    assert_error(&reply, 401, "unauthorized", &["unknown or revoked"]);
    let projects: Value = ok(s.admin("GET", "/projects", None));
    assert_eq!(projects["projects"][0]["key"], "demo", "the demo's write token was touched");
}
