//! Malformed admin requests: bodies that are not JSON, not the right document, or too large;
//! bad query parameters and methods. Each is refused in the one error shape and changes nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::Server;
use crate::support::{assert_error, current, env_path, environment_state, everyone, ok};

/// Every admin endpoint with a JSON body: method, path, and a body it accepts.
fn json_endpoints(s: &Server) -> Vec<(&'static str, String, Value)> {
    let dev = env_path("development");
    vec![
        ("POST", "/projects".into(), json!({"key": "shop"})),
        ("PATCH", "/projects/demo".into(), json!({"name": "Renamed"})),
        ("POST", "/projects/demo/environments".into(), json!({"key": "qa"})),
        ("POST", "/projects/demo/promote".into(), json!({"from": "development", "to": "staging", "tests": ["buttoncolortst"]})),
        ("PUT", format!("{dev}/matrix"), json!({"matrix": {"tests": {}}})),
        ("PUT", format!("{dev}/tests/fresh"), json!({"definition": everyone("fresh", 1)})),
        ("POST", format!("{dev}/tests/buttoncolortst/kill"), json!({"bucket": "green"})),
        ("POST", format!("{dev}/rollback"), json!({"revision": current(s, "development")})),
        ("POST", format!("{dev}/sdk-keys"), json!({"name": "web"})),
    ]
}

/// Everything a refused request must leave alone.
fn everything(s: &Server) -> Value {
    let mut state = json!({
        "projects": ok(s.admin("GET", "/projects", None)),
        "schema": ok(s.admin("GET", "/projects/demo/schema", None)),
    });
    for environment in ["development", "staging", "production"] {
        state[environment] = environment_state(s, environment);
        state[format!("{environment} keys")] = ok(s.admin("GET", &format!("{}/sdk-keys", env_path(environment)), None));
    }
    state
}

/// Runs `check` on every admin endpoint with a JSON body (method, path and a body it accepts)
/// of a new demo server, then asserts that nothing changed.
fn on_every_endpoint(check: impl Fn(&Server, &str, &str, &Value)) {
    let s = Server::start_demo();
    let before = everything(&s);
    for (method, path, valid) in json_endpoints(&s) {
        check(&s, method, &path, &valid);
    }
    assert_eq!(everything(&s), before, "a refused request changed something");
}

#[test]
fn a_body_that_is_not_json_is_refused_on_every_endpoint_naming_the_place() {
    on_every_endpoint(|s, method, path, _| {
        for body in ["not json", "{", "{\"na", "{'single': 'quotes'}"] {
            let error = assert_error(&s.admin(method, path, Some(body)), 400, "invalid_json", &["not valid JSON", "line 1 column"]);
            assert!(!error["message"].as_str().unwrap_or_default().is_empty(), "{method} {path}");
        }
    });
}

#[test]
fn an_empty_body_is_refused_where_one_is_needed() {
    on_every_endpoint(|s, method, path, _| {
        // An empty body asks sdk-keys for a default name.
        if !path.ends_with("sdk-keys") {
            for body in ["", "  \n"] {
                assert_error(&s.admin(method, path, Some(body)), 400, "invalid_json", &["empty"]);
            }
        }
    });
}

#[test]
fn a_json_document_that_is_no_object_is_refused_on_every_endpoint() {
    on_every_endpoint(|s, method, path, _| {
        for body in ["[1, 2]", "\"text\"", "42", "null", "true"] {
            let reply = s.admin(method, path, Some(body));
            assert_eq!(reply.status, 400, "{method} {path} with {body}: {}", reply.body);
            assert_error(&reply, 400, "invalid_field", &["invalid type"]);
        }
    });
}

#[test]
fn an_unknown_field_is_named_on_every_endpoint() {
    on_every_endpoint(|s, method, path, valid| {
        let mut extra = valid.clone();
        extra["bogusField"] = json!(1);
        assert_error(&s.admin(method, path, Some(&extra.to_string())), 400, "invalid_field", &["unknown field", "bogusField"]);
    });
}

#[test]
fn a_known_field_of_the_wrong_type_is_refused_in_the_error_shape_on_every_endpoint() {
    on_every_endpoint(|s, method, path, valid| {
        let (field, _) = valid.as_object().expect("object").iter().next().expect("a field");
        let mut wrong = valid.clone();
        wrong[field.as_str()] = json!([true]);
        let reply = s.admin(method, path, Some(&wrong.to_string()));
        assert!(reply.status == 400, "{method} {path} with {field} of the wrong type: {} {}", reply.status, reply.body);
        assert!(reply.json()["error"]["code"].is_string(), "{method} {path}: {}", reply.body);
    });
}

#[test]
fn a_field_of_the_wrong_type_is_named_in_the_message() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let cases = [
        ("POST", "/projects".to_string(), json!({"key": 5}), "key"),
        ("PATCH", "/projects/demo".to_string(), json!({"name": 5}), "name"),
        ("POST", "/projects/demo/environments".to_string(), json!({"key": ["qa"]}), "key"),
        ("POST", "/projects/demo/promote".to_string(), json!({"from": "development", "to": "staging", "tests": "buttoncolortst"}), "tests"),
        ("PUT", format!("{dev}/tests/fresh"), json!({"definition": everyone("fresh", 1), "comment": 5}), "comment"),
        ("PUT", format!("{dev}/matrix"), json!({"matrix": {"tests": {}}, "comment": false}), "comment"),
        ("POST", format!("{dev}/tests/buttoncolortst/kill"), json!({"bucket": "green", "comment": 5}), "comment"),
        ("POST", format!("{dev}/rollback"), json!({"revision": "1", "comment": 5}), "comment"),
        ("POST", format!("{dev}/sdk-keys"), json!({"name": 5}), "name"),
    ];
    for (method, path, body, field) in cases {
        let reply = s.admin(method, &path, Some(&body.to_string()));
        assert_error(&reply, 400, "invalid_field", &[field]);
    }
}

#[test]
fn a_json_array_is_not_taken_for_the_request_object() {
    let s = Server::start_demo();
    let before = environment_state(&s, "development");
    let kill = s.admin("POST", &format!("{}/tests/buttoncolortst/kill", env_path("development")), Some(r#"["green", null, null]"#));
    assert_error(&kill, 400, "invalid_field", &["object"]);
    let create = s.admin("POST", "/projects", Some(r#"["shop", null, null, null, null]"#));
    assert_error(&create, 400, "invalid_field", &["object"]);
    assert_eq!(environment_state(&s, "development"), before);
    assert_error(&s.admin("GET", "/projects/shop", None), 404, "not_found", &[]);
}

#[test]
fn the_schema_endpoint_refuses_a_malformed_schema_document() {
    let s = Server::start_demo();
    let before = everything(&s);
    let put_schema = |body: &str| s.admin("PUT", "/projects/demo/schema", Some(body));
    assert_error(&put_schema("not json"), 400, "invalid_json", &["not valid JSON"]);
    assert_error(&put_schema(""), 400, "invalid_json", &["empty"]);
    assert_eq!(assert_error(&put_schema("[1]"), 400, "invalid_schema", &[])["path"], "$");
    let wrong = json!({"context": {"country": {"source": "QUERY", "type": 5}}, "identifiers": {"USER": {"source": "QUERY"}}});
    assert_error(&put_schema(&wrong.to_string()), 400, "invalid_schema", &["context.country.type"]);
    assert_eq!(everything(&s), before, "a refused request changed something");
}

#[test]
fn bodyless_writes_with_malformed_parameters_are_refused() {
    let s = Server::start_demo();
    let before = everything(&s);
    let dev = env_path("development");
    assert_error(&s.admin("DELETE", &format!("{dev}/tests/buttoncolortst?baseRevision=abc"), None), 400, "invalid_field", &["baseRevision"]);
    let token = s.var("AVSB_ADMIN_TOKEN").to_string();
    let reply = s.call_with("DELETE", &format!("/api/v1{dev}/tests/buttoncolortst"), Some(&token), None, &[("If-Match", "\"abc\"")]);
    assert_error(&reply, 400, "invalid_field", &["If-Match"]);
    assert_error(&s.admin("DELETE", &format!("{dev}/sdk-keys/abc"), None), 400, "invalid_field", &["key id"]);
    assert_eq!(everything(&s), before, "a refused request changed something");
}

#[test]
fn bad_query_parameters_are_refused_in_the_error_shape() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let before = environment_state(&s, "development");
    let cases = [
        ("GET", format!("{dev}/revisions?limit=abc"), "limit"),
        ("GET", format!("{dev}/events?after=x"), "after"),
        ("GET", "/projects/demo/diff?to=1".to_string(), "from"),
        ("DELETE", format!("{dev}/tests/buttoncolortst?colour=red"), "colour"),
    ];
    for (method, path, field) in cases {
        assert_error(&s.admin(method, &path, None), 400, "invalid_query", &[field]);
    }
    assert_eq!(environment_state(&s, "development"), before);
}

#[test]
fn a_method_the_path_does_not_have_is_refused_in_the_error_shape() {
    let s = Server::start_demo();
    for (method, path) in [("DELETE", "/projects"), ("PUT", "/projects/demo/diff"), ("GET", "/projects/demo/promote")] {
        let reply = s.admin(method, path, None);
        assert_eq!(reply.status, 405, "{method} {path}");
        assert!(reply.header("allow").is_some(), "{method} {path}: no Allow header");
        let body: Value = serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {:?}", reply.body));
        assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{method} {path}: {}", reply.body);
    }
}

/// Sends `method path` with a body of `length` spaces over a raw connection (so the server may
/// answer before the body ends) and returns the status and body of the answer.
fn send_oversized(s: &Server, method: &str, path: &str, length: usize) -> (u16, String) {
    let address = s.address();
    let mut stream = TcpStream::connect(&address).expect("connect");
    stream.set_write_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let head = format!(
        "{method} /api/v1{path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
        s.var("AVSB_ADMIN_TOKEN")
    );
    stream.write_all(head.as_bytes()).expect("write head");
    let chunk = vec![b' '; 1 << 20];
    let mut left = length;
    while left > 0 {
        let n = left.min(chunk.len());
        if stream.write_all(&chunk[..n]).is_err() {
            break; // The server answered and closed early, as it may.
        }
        left -= n;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no answer: {response:?}"));
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn an_admin_body_over_the_32_mib_default_is_refused_with_413() {
    let s = Server::start_demo();
    let before = environment_state(&s, "development");
    let (status, body) = send_oversized(&s, "PUT", &format!("{}/matrix", env_path("development")), 32 * 1024 * 1024 + 1);
    assert_eq!(status, 413, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    assert_eq!(error["error"]["code"], "body_too_large", "{body}");
    assert!(error["error"]["message"].as_str().expect("message").contains("33554432"), "{body}");
    assert_eq!(environment_state(&s, "development"), before);
}
