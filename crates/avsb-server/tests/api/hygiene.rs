//! What an unauthenticated or careless client cannot do any more: mint metrics series with
//! made-up methods, store names and comments of any length, send bodies over the admin limit,
//! name a test `..`, present a token without its scheme; and what every API answer says to
//! browsers and caches. Also the database's file modes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use avsb_server::Options;
use serde_json::json;

use crate::common::{try_request, Server};
use crate::support::{assert_error, env_path, everyone, exposure, ok, put_test, sdk_key};

/// One request over a raw connection, with the path exactly as given (no client normalises
/// `..` away); returns the status and body.
fn raw(s: &Server, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(s.address()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no answer: {answer:?}"));
    (status, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

#[test]
fn made_up_method_names_share_one_metrics_series() {
    let s = Server::start_demo();
    for i in 0..200 {
        let (status, _) = raw(&s, &format!("MADEUP{i:04}"), &format!("/nowhere/{i}"), None, "");
        assert!((400..500).contains(&status), "{status}");
    }
    let (status, _) = raw(&s, "BREW", "/healthz", None, "");
    assert_eq!(status, 405);
    let metrics = s.call("GET", "/metrics", None, None).body;
    assert!(!metrics.contains("MADEUP") && !metrics.contains("BREW"), "a made-up method became a label");
    assert!(metrics.contains(r#"avsb_http_requests_total{route="unmatched",method="other",status="404"} 200"#), "{metrics}");
    assert!(metrics.contains(r#"avsb_http_requests_total{route="/healthz",method="other",status="405"} 1"#), "{metrics}");
    let series = metrics.lines().filter(|l| l.starts_with("avsb_http_requests_total{")).count();
    assert!(series < 10, "{series} series of requests");
}

#[test]
fn names_and_comments_over_their_limits_are_refused_and_change_nothing() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let long = "n".repeat(201);
    let huge = "n".repeat(1024 * 1024);
    let cases = [
        ("POST", "/projects".to_string(), json!({"key": "shop", "name": long}), "name"),
        ("PATCH", "/projects/demo".to_string(), json!({"name": huge}), "name"),
        ("POST", "/projects/demo/environments".to_string(), json!({"key": "qa", "name": long}), "name"),
        ("POST", format!("{dev}/sdk-keys"), json!({"name": long}), "name"),
        ("POST", "/tokens".to_string(), json!({"name": long, "role": "read"}), "name"),
        ("PUT", format!("{dev}/tests/fresh"), json!({"definition": everyone("fresh", 1), "comment": "c".repeat(2001)}), "comment"),
        ("POST", format!("{dev}/tests/buttoncolortst/kill"), json!({"bucket": 1, "comment": "c".repeat(2001)}), "comment"),
    ];
    let before = (ok(s.admin("GET", "/projects", None)), ok(s.admin("GET", &format!("{dev}/revisions"), None)));
    for (method, path, body, field) in cases {
        let reply = s.admin(method, &path, Some(&body.to_string()));
        let error = assert_error(&reply, 400, "invalid_field", &[field, "limit"]);
        assert_eq!(error["field"], field, "{method} {path}");
        assert!(reply.body.len() < 1000, "the refusal echoes the value: {} bytes", reply.body.len());
    }
    assert_eq!((ok(s.admin("GET", "/projects", None)), ok(s.admin("GET", &format!("{dev}/revisions"), None))), before);
    // At the limits, they are taken.
    ok(s.admin("PATCH", "/projects/demo", Some(&json!({"name": "n".repeat(200)}).to_string())));
    let comment = "c".repeat(2000);
    let body = json!({"definition": everyone("fresh", 1), "comment": comment}).to_string();
    ok(s.admin("PUT", &format!("{dev}/tests/fresh"), Some(&body)));
    // A username no user can have is not looked up or echoed.
    let reply = s.admin("PUT", &format!("/projects/demo/members/{}", "u".repeat(5000)), Some(r#"{"role": "viewer"}"#));
    assert_error(&reply, 404, "not_found", &["no such user"]);
    assert!(reply.body.len() < 500);
}

#[test]
fn an_admin_body_over_the_configured_limit_is_refused_with_413() {
    let s = Server::start_with(Options { max_admin_body: 100_000, ..Options::default() });
    let dev = env_path("development");
    let padding = "x".repeat(100_000);
    let body = json!({"definition": everyone("padded", 1), "comment": padding}).to_string();
    let reply = s.admin("PUT", &format!("{dev}/tests/padded"), Some(&body));
    assert_error(&reply, 413, "body_too_large", &["100000"]);
    let small = json!({"definition": everyone("padded", 1)}).to_string();
    ok(s.admin("PUT", &format!("{dev}/tests/padded"), Some(&small)));
}

#[test]
fn unknown_fields_are_ignored_inside_a_matrix_and_refused_in_its_envelope() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let mut test = everyone("lenient", 1);
    test["proctorOnlyField"] = json!({"anything": [1, 2]});
    let matrix = json!({"tests": {"lenient": test}, "somethingProctorAdds": true});
    let reply = s.admin("PUT", &format!("{dev}/matrix"), Some(&json!({"matrix": matrix}).to_string()));
    ok(reply);
    let served = s.admin("GET", &format!("{dev}/matrix"), None).json();
    assert_eq!(served["tests"].as_object().map(|t| t.len()), Some(1), "{served}");
    let reply = s.admin("PUT", &format!("{dev}/matrix"), Some(&json!({"matrix": matrix, "matrixx": 1}).to_string()));
    assert_error(&reply, 400, "invalid_field", &["unknown field", "matrixx"]);
    // The document as text keeps every check it had as a tree.
    for (body, code) in [
        (json!({"matrix": []}), "invalid_field"),
        (json!({"matrix": {"audit": null, "tests": {}}}), "unreadable_matrix"),
        (json!({"matrix": {}}), "unreadable_matrix"),
        (json!({"matrix": {"tests": []}}), "unreadable_matrix"),
    ] {
        let reply = s.admin("PUT", &format!("{dev}/matrix"), Some(&body.to_string()));
        assert_eq!(reply.json()["error"]["code"], code, "{body}: {}", reply.body);
    }
    let mut missing = everyone("missing", 1);
    missing["allocations"][0]["ranges"][0].as_object_mut().unwrap().remove("length");
    let reply = s.admin("PUT", &format!("{dev}/matrix"), Some(&json!({"matrix": {"tests": {"missing": missing}}}).to_string()));
    let error = assert_error(&reply, 422, "invalid_matrix", &["length"]);
    assert_eq!(error["diagnostics"][0]["code"], "missing_field", "{error}");
    assert_eq!(error["diagnostics"][0]["path"], "tests.missing.allocations[0].ranges[0].length", "{error}");
}

#[test]
fn test_names_that_could_name_another_path_are_refused() {
    let s = Server::start_demo();
    let token = format!("Bearer {}", s.var("AVSB_ADMIN_TOKEN"));
    let dev = format!("/api/v1{}", env_path("development"));
    let before = s.admin("GET", &format!("{}/matrix", env_path("development")), None).json();
    for name in [".", "..", ".hidden", "..."] {
        let body = json!({"definition": everyone("x", 1)}).to_string();
        let (status, answer) = raw(&s, "PUT", &format!("{dev}/tests/{name}"), Some(&token), &body);
        assert_eq!(status, 400, "{name}: {answer}");
        assert!(answer.contains("invalid_test_name"), "{name}: {answer}");
        let matrix = json!({"matrix": {"tests": {name: everyone("x", 1)}}}).to_string();
        let reply = s.admin("PUT", &format!("{}/matrix", env_path("development")), Some(&matrix));
        assert_error(&reply, 400, "invalid_test_name", &["not starting with '.'"]);
    }
    assert_eq!(s.admin("GET", &format!("{}/matrix", env_path("development")), None).json(), before);
    // A dot inside a name is still fine.
    ok(put_test(&s, "development", "checkout.v2", &everyone("checkout.v2", 1)));
}

#[test]
fn a_token_without_the_bearer_scheme_is_refused_with_a_message_that_says_so() {
    let s = Server::start_demo();
    let admin = s.var("AVSB_ADMIN_TOKEN").to_string();
    let key = sdk_key(&s);
    let get = |path: &str, headers: &[(&str, &str)]| {
        try_request("GET", &format!("{}{path}", s.base()), headers, None).expect("an answer")
    };
    let bare = get("/api/v1/projects", &[("Authorization", &admin)]);
    assert_error(&bare, 401, "unauthorized", &["no scheme", "Bearer <token>"]);
    let basic = get("/api/v1/projects", &[("Authorization", "Basic Zm9vOmJhcg==")]);
    assert_error(&basic, 401, "unauthorized", &["scheme 'Basic' is not supported"]);
    let bare_key = get("/sdk/v1/datafile", &[("Authorization", &key)]);
    assert_error(&bare_key, 401, "unauthorized", &["Bearer"]);
    let ofrep = try_request(
        "POST",
        &format!("{}/ofrep/v1/evaluate/flags", s.base()),
        &[("Authorization", &key), ("Content-Type", "application/json")],
        Some(b"{}"),
    )
    .expect("an answer");
    assert_eq!(ofrep.status, 401, "{}", ofrep.body);
    assert!(ofrep.json()["errorDetails"].as_str().unwrap_or_default().contains("Bearer"), "{}", ofrep.body);
    // The documented ways still work: the scheme in any case, and X-API-Key.
    for header in [format!("Bearer {admin}"), format!("bearer {admin}"), format!("BEARER  {admin}")] {
        assert_eq!(get("/api/v1/projects", &[("Authorization", &header)]).status, 200, "{header}");
    }
    assert_eq!(get("/api/v1/projects", &[("X-API-Key", &admin)]).status, 200);
    assert_eq!(get("/sdk/v1/datafile", &[("X-API-Key", &key)]).status, 200);
}

#[test]
fn admin_and_sdk_key_answers_are_neither_sniffed_nor_stored() {
    let s = Server::start_demo();
    let key = sdk_key(&s);
    let dev = env_path("development");
    let created = s.admin("POST", &format!("{dev}/sdk-keys"), Some(r#"{"name": "new"}"#));
    assert_eq!(created.status, 201);
    assert!(created.json()["key"].is_string());
    let answers = [
        ("a new SDK key", created),
        ("a list", s.admin("GET", "/projects", None)),
        ("a refusal", s.call("GET", "/api/v1/projects", None, None)),
        ("a validation error", s.admin("PUT", &format!("{dev}/matrix"), Some("{"))),
        ("an OFREP answer", s.call("POST", "/ofrep/v1/evaluate/flags/checkout-v2", Some(&key), Some(r#"{"context":{"targetingKey":"u"}}"#))),
        ("stored events", s.call("POST", "/sdk/v1/events", Some(&key), Some(&json!({"events": [exposure("u")]}).to_string()))),
    ];
    for (what, reply) in answers {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{what}: {:?}", reply.headers);
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}: {:?}", reply.headers);
    }
    // The datafile keeps its documented revalidation (SDKs send its ETag back).
    let datafile = s.call("GET", "/sdk/v1/datafile", Some(&key), None);
    assert_eq!(datafile.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(datafile.header("cache-control"), Some("no-cache"));
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_the_database_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    use avsb_server::store::sqlite::secure_data_dir;
    use avsb_server::store::SqliteStore;
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let set = |p: &std::path::Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("new").join("data");
    secure_data_dir(&data).expect("the data directory");
    assert_eq!(mode(&data), 0o700);
    let db = data.join("avsb.sqlite3");
    let store = SqliteStore::open(&db).expect("open");
    let files = [db.clone(), data.join("avsb.sqlite3-wal"), data.join("avsb.sqlite3-shm")];
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    drop(store);
    // Left looser (by an older version, a copy, a umask): tightened at the next start.
    set(&data, 0o755);
    set(&db, 0o644);
    secure_data_dir(&data).expect("the data directory");
    let _store = SqliteStore::open(&db).expect("open");
    assert_eq!(mode(&data), 0o700);
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

#[test]
fn the_matrix_served_after_a_write_is_the_revision_stored() {
    // A write renders its matrix once, as the revision it stores, and serves that text.
    let s = Server::start_demo();
    let dev = env_path("development");
    let mut definition = everyone("rendered-once", 1);
    definition["description"] = json!("é ☃ \"quoted\" \u{1}");
    definition["buckets"][0]["payload"] = json!({"doubleValue": 1e-7});
    definition["buckets"][1]["payload"] = json!({"doubleValue": 0.1});
    let version = crate::support::save_test(&s, "rendered-once", &definition);
    let served = s.admin("GET", &format!("{dev}/matrix"), None);
    let stored = s.admin("GET", &format!("{dev}/matrix?revision={version}"), None);
    assert_eq!(served.status, 200);
    assert_eq!(served.body, stored.body);
    assert_eq!(crate::support::pipet(&s, "/proctor/matrix").body, stored.body);
}
