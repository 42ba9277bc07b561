//! The admin API (`/api/v1`) driven over HTTP the way a demanding user drives it, against the
//! real `avsb serve --demo` binary. Every write is checked by what Pipet then serves and by the
//! revision history; every refused write is checked to have changed nothing.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::sync::Barrier;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Reply, Server};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The admin path of a demo environment.
fn env_path(environment: &str) -> String {
    format!("/projects/demo/environments/{environment}")
}

/// A successful answer's JSON.
#[track_caller]
fn ok(reply: Reply) -> Value {
    assert!((200..300).contains(&reply.status), "expected success, got {}: {}", reply.status, reply.body);
    reply.json()
}

/// Asserts the one error shape `{"error": {"code", "message"}}` with this status and code, and a
/// message that mentions each of `needles`. Returns the error object.
#[track_caller]
fn assert_error(reply: &Reply, status: u16, code: &str, needles: &[&str]) -> Value {
    assert_eq!(reply.status, status, "wrong status; body: {}", reply.body);
    let body: Value = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("the {status} answer is not JSON ({e}): {:?}", reply.body));
    let error = &body["error"];
    assert_eq!(error["code"], code, "wrong error code: {}", reply.body);
    let message = error["message"].as_str().unwrap_or_else(|| panic!("no error.message: {}", reply.body));
    for needle in needles {
        assert!(message.contains(needle), "the message {message:?} does not mention {needle:?}");
    }
    error.clone()
}

/// A version given as a JSON string or number, as text.
#[track_caller]
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("expected a version, got {other}"),
    }
}

/// The current revision of a demo environment.
fn current(s: &Server, environment: &str) -> String {
    text(&ok(s.admin("GET", &format!("{}/revisions?limit=1", env_path(environment)), None))["current"])
}

/// A demo environment's revisions, newest first.
fn revisions(s: &Server, environment: &str) -> Vec<Value> {
    let list = ok(s.admin("GET", &format!("{}/revisions?limit=500", env_path(environment)), None));
    list["revisions"].as_array().expect("revisions").clone()
}

/// A demo environment's current matrix.
fn matrix(s: &Server, environment: &str) -> Value {
    ok(s.admin("GET", &format!("{}/matrix", env_path(environment)), None))
}

/// What a refused write must leave alone: the revision history and the served matrix.
fn environment_state(s: &Server, environment: &str) -> Value {
    json!({"revisions": revisions(s, environment), "matrix": matrix(s, environment)})
}

/// The revision id a successful write answered with.
#[track_caller]
fn version_of(reply: Reply) -> String {
    text(&ok(reply)["revision"]["version"])
}

/// `PUT .../tests/{name}` with a consumable definition.
fn put_test(s: &Server, environment: &str, name: &str, definition: &Value) -> Reply {
    let body = json!({ "definition": definition }).to_string();
    s.admin("PUT", &format!("{}/tests/{name}", env_path(environment)), Some(&body))
}

/// A USER test with buckets control (0, "old") and test (1, "new") and one allocation.
fn definition(salt: &str, ranges: Value) -> Value {
    json!({
        "testType": "USER", "salt": salt, "description": format!("the {salt} test"), "rule": null, "constants": {},
        "buckets": [
            {"name": "control", "value": 0, "payload": {"stringValue": "old"}},
            {"name": "test", "value": 1, "payload": {"stringValue": "new"}}
        ],
        "allocations": [{"rule": null, "ranges": ranges}]
    })
}

/// A test that gives everyone the bucket with `value`.
fn everyone(salt: &str, value: i64) -> Value {
    definition(salt, json!([{"length": 1.0, "bucketValue": value}]))
}

/// The Pipet root the server printed (development).
fn dev_root(s: &Server) -> String {
    s.var("PROCTOR_API_ROOT").to_string()
}

/// A new SDK key's Pipet root for a demo environment, made through the admin API.
fn sdk_root(s: &Server, environment: &str) -> String {
    let reply = s.admin("POST", &format!("{}/sdk-keys", env_path(environment)), Some(r#"{"name": "test client"}"#));
    assert_eq!(reply.status, 201, "{}", reply.body);
    format!("{}{}", s.base(), reply.json()["pipetRoot"].as_str().expect("pipetRoot"))
}

/// Pipet's `groups` for one identify request (`query` without the `?`).
#[track_caller]
fn groups(s: &Server, root: &str, query: &str) -> Value {
    let reply = s.call("GET", &format!("{root}/groups/identify?{query}"), None, None);
    assert_eq!(reply.status, 200, "identify?{query}: {}", reply.body);
    reply.json()["data"]["groups"].clone()
}

/// The names of a matrix's tests.
fn test_names(matrix: &Value) -> BTreeSet<String> {
    matrix["tests"].as_object().expect("tests").keys().cloned().collect()
}

/// Runs the `avsb` binary.
fn avsb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avsb")).args(args).env_remove("AVSB_DATA").output().expect("run avsb")
}

fn now_millis() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis()).expect("time")
}

// ---------------------------------------------------------------------------------------------
// Authentication

#[test]
fn admin_tokens_authenticate_and_read_tokens_may_only_read() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let before = environment_state(&s, "development");

    // No token, an unknown token, and an SDK key (not an admin token) are all 401.
    let reply = s.call("GET", "/api/v1/projects", None, None);
    assert_error(&reply, 401, "unauthorized", &["admin token is required"]);
    let body = json!({"definition": everyone("x", 1)}).to_string();
    let reply = s.call("PUT", &format!("/api/v1{dev}/tests/x"), None, Some(&body));
    assert_error(&reply, 401, "unauthorized", &["admin token"]);
    for secret in ["adm-no-such-token", s.var("AVSB_SDK_KEY")] {
        let reply = s.call("GET", "/api/v1/projects", Some(secret), None);
        assert_error(&reply, 401, "unauthorized", &["unknown or revoked"]);
    }

    // A read token made with the CLI while the server runs.
    let data = s.data_path().to_str().expect("utf-8 path").to_string();
    let out = avsb(&["token", "create", "--name", "reader", "--role", "read", "--data", &data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reader = String::from_utf8(out.stdout).expect("utf-8").trim().to_string();
    assert!(reader.len() > 20, "the token printed: {reader:?}");

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
        ("PUT", format!("{dev}/tests/x"), body.clone()),
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

    // `avsb token list` shows the token (never the secret).
    let out = avsb(&["token", "list", "--data", &data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8(out.stdout).expect("utf-8");
    assert!(!listing.contains(&reader), "the listing shows a secret: {listing}");
    let line = listing.lines().find(|l| l.split('\t').nth(1) == Some("reader")).unwrap_or_else(|| panic!("{listing}"));
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields[2], "read", "{line}");
    assert_eq!(fields[4], "active", "{line}");
    let prefix = fields[3].trim_end_matches('…');
    assert!(prefix.len() >= 6 && reader.starts_with(prefix), "prefix {prefix:?} of {reader:?}");
    let id = fields[0].to_string();

    // Revoking it takes effect on the very next request.
    let out = avsb(&["token", "revoke", &id, "--data", &data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("revoked token {id}")));
    let reply = s.call("GET", "/api/v1/projects", Some(&reader), None);
    assert_error(&reply, 401, "unauthorized", &["unknown or revoked"]);
    let listing = String::from_utf8(avsb(&["token", "list", "--data", &data]).stdout).expect("utf-8");
    assert!(listing.lines().any(|l| l.starts_with(&format!("{id}\treader\t")) && l.ends_with("revoked")), "{listing}");
    let out = avsb(&["token", "revoke", &id, "--data", &data]);
    assert!(!out.status.success(), "revoking twice succeeded");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&id), "{}", String::from_utf8_lossy(&out.stderr));

    // The demo's write token is untouched.
    assert_eq!(s.admin("GET", "/projects", None).status, 200);
}

// ---------------------------------------------------------------------------------------------
// Projects

#[test]
fn projects_are_created_with_checked_keys_schemas_and_environments() {
    let s = Server::start_demo();

    let list = ok(s.admin("GET", "/projects", None));
    let demo = &list["projects"][0];
    assert_eq!(list["projects"].as_array().expect("projects").len(), 1);
    assert_eq!(demo["key"], "demo");
    assert_eq!(demo["defaultIdentifierType"], "USER");
    let keys: Vec<&Value> = demo["environments"].as_array().expect("environments").iter().map(|e| &e["key"]).collect();
    assert_eq!(keys, ["development", "staging", "production"]);
    assert!(demo["environments"].as_array().expect("environments").iter().all(|e| e["tests"] == 5), "{demo}");

    // Defaults: three environments with empty matrices, the USER identifier.
    let reply = s.admin("POST", "/projects", Some(r#"{"key": "shop"}"#));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let shop = reply.json();
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["defaultIdentifierType"], "USER");
    let envs = shop["environments"].as_array().expect("environments");
    assert_eq!(envs.iter().map(|e| e["key"].as_str().expect("key")).collect::<Vec<_>>(), ["development", "staging", "production"]);
    assert!(envs.iter().all(|e| e["tests"] == 0), "{shop}");
    assert_eq!(ok(s.admin("GET", "/projects/shop", None)), shop);
    let schema = ok(s.admin("GET", "/projects/shop/schema", None));
    assert!(schema["identifiers"]["USER"].is_object(), "{schema}");
    let empty = ok(s.admin("GET", "/projects/shop/environments/staging/matrix", None));
    assert_eq!(empty["tests"], json!({}));
    assert_eq!(text(&empty["audit"]["version"]), text(&envs[1]["currentRevision"]));

    // A custom schema, default identifier type and environments.
    let custom_schema = json!({
        "context": {"tier": {"source": "QUERY", "type": "String", "defaultValue": "basic"}},
        "identifiers": {"ACCOUNT": {"source": "QUERY", "sourceKey": "account"}, "USER": {"source": "QUERY"}}
    });
    let body = json!({"key": "billing", "name": "Billing", "schema": custom_schema,
        "defaultIdentifierType": "ACCOUNT", "environments": ["dev", "prod"]});
    let reply = s.admin("POST", "/projects", Some(&body.to_string()));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let billing = reply.json();
    assert_eq!(billing["name"], "Billing");
    assert_eq!(billing["defaultIdentifierType"], "ACCOUNT");
    let envs = billing["environments"].as_array().expect("environments");
    assert_eq!(envs.iter().map(|e| e["key"].as_str().expect("key")).collect::<Vec<_>>(), ["dev", "prod"]);
    assert_eq!(envs.iter().map(|e| e["position"].as_i64().expect("position")).collect::<Vec<_>>(), [0, 1]);
    let schema = ok(s.admin("GET", "/projects/billing/schema", None));
    assert!(schema["context"]["tier"].is_object(), "{schema}");
    let key = ok(s.admin("POST", "/projects/billing/environments/dev/sdk-keys", Some("{}")));
    let root = format!("{}{}", s.base(), key["pipetRoot"].as_str().expect("pipetRoot"));
    let context = s.call("GET", &format!("{root}/config/context"), None, None).json();
    assert_eq!(context["data"]["tier"]["defaultValue"], "basic", "{context}");
    let identifiers = s.call("GET", &format!("{root}/config/identifiers"), None, None).json();
    assert_eq!(identifiers["data"]["ACCOUNT"]["sourceKey"], "id.account", "{identifiers}");

    // Refused creations; none may leave a project behind.
    let reply = s.admin("POST", "/projects", Some(r#"{"key": "shop", "name": "Another shop"}"#));
    assert_error(&reply, 409, "already_exists", &["shop"]);
    assert_eq!(ok(s.admin("GET", "/projects/shop", None))["name"], "shop");
    for key in ["Shop", "has space", "-lead", "", &"a".repeat(64), "naïve", "a/b"] {
        let reply = s.admin("POST", "/projects", Some(&json!({"key": key}).to_string()));
        assert_error(&reply, 400, "invalid_key", &[&format!("project key '{key}'")]);
    }
    let reply = s.admin("POST", "/projects", Some(r#"{"key": "ok1", "environments": ["dev", "Prod"]}"#));
    assert_error(&reply, 400, "invalid_key", &["environment key 'Prod'"]);
    let reply = s.admin("POST", "/projects", Some(r#"{"key": "ok2", "environments": ["a", "a"]}"#));
    assert_error(&reply, 400, "invalid_field", &["'a'", "twice"]);
    for (field, bad, path) in [("type", json!("NotAType"), "context.x.type"), ("source", json!("BODY"), "context.x.source")] {
        let mut variable = json!({"source": "QUERY", "type": "String"});
        variable[field] = bad;
        let body = json!({"key": "bad1", "schema": {"context": {"x": variable}, "identifiers": {"USER": {"source": "QUERY"}}}});
        let error = assert_error(&s.admin("POST", "/projects", Some(&body.to_string())), 400, "invalid_schema", &[path]);
        assert_eq!(error["path"], path);
    }
    let reply = s.admin("POST", "/projects", Some(r#"{"key": "bad2", "colour": "red"}"#));
    assert_error(&reply, 400, "invalid_field", &["colour"]);
    let reply = s.admin("POST", "/projects", Some(r#"{"key": "bad3", "defaultIdentifierType": "ACCOUNT"}"#));
    assert_error(&reply, 400, "invalid_field", &["defaultIdentifierType 'ACCOUNT'"]);
    let list = ok(s.admin("GET", "/projects", None));
    let keys: Vec<&str> = list["projects"].as_array().expect("projects").iter().map(|p| p["key"].as_str().expect("key")).collect();
    assert_eq!(keys, ["billing", "demo", "shop"]);

    // PATCH changes the name and the default identifier type, checked against the schema.
    let patched = ok(s.admin("PATCH", "/projects/shop", Some(r#"{"name": "The Shop"}"#)));
    assert_eq!(patched["name"], "The Shop");
    assert_eq!(patched["defaultIdentifierType"], "USER");
    assert_eq!(ok(s.admin("GET", "/projects/shop", None))["name"], "The Shop");
    let patched = ok(s.admin("PATCH", "/projects/demo", Some(r#"{"defaultIdentifierType": "ACCOUNT"}"#)));
    assert_eq!(patched["defaultIdentifierType"], "ACCOUNT");
    assert_eq!(patched["name"], "Demo");
    assert_eq!(ok(s.admin("GET", "/projects/demo", None))["defaultIdentifierType"], "ACCOUNT");
    let reply = s.admin("PATCH", "/projects/shop", Some(r#"{"defaultIdentifierType": "ACCOUNT"}"#));
    assert_error(&reply, 400, "invalid_field", &["'ACCOUNT'"]);
    assert_eq!(ok(s.admin("GET", "/projects/shop", None))["defaultIdentifierType"], "USER");
    assert_error(&s.admin("PATCH", "/projects/shop", Some(r#"{"title": "x"}"#)), 400, "invalid_field", &["title"]);
    assert_error(&s.admin("PATCH", "/projects/nope", Some(r#"{"name": "x"}"#)), 404, "not_found", &["'nope'"]);
    assert_error(&s.admin("GET", "/projects/nope", None), 404, "not_found", &["'nope'"]);
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn a_saved_test_is_served_at_once_and_a_broken_one_changes_nothing() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let root = dev_root(&s);
    let base = current(&s, "development");

    // A new test in the consumable form.
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
        groups(&s, &root, "id.USER=u1&test=signup-flow")["signup-flow"],
        json!({"name": "test", "value": 1, "payload": {"stringValue": "new"}, "version": version})
    );
    // Other tests keep their versions; other environments do not see it.
    assert_eq!(text(&ok(s.admin("GET", &format!("{dev}/tests/buttoncolortst"), None))["version"]), "1");
    assert_eq!(groups(&s, &root, "id.USER=u1&test=buttoncolortst")["buttoncolortst"]["version"], "1");
    let staging = sdk_root(&s, "staging");
    assert_eq!(groups(&s, &staging, "id.USER=u1&test=signup-flow"), json!({}));

    // Proctor's stored form: specialConstants and __COUNTRIES.
    let stored = json!({"testType": "USER", "salt": "promo", "rule": "plan == 'pro'",
        "specialConstants": {"__COUNTRIES": ["US", "CA"]},
        "buckets": [{"name": "off", "value": 0}, {"name": "on", "value": 1}],
        "allocations": [{"rule": "", "ranges": [{"bucketValue": 1, "length": 1.0}]}]});
    let promo_version = version_of(put_test(&s, "development", "promo", &stored));
    let got = ok(s.admin("GET", &format!("{dev}/tests/promo"), None));
    assert_eq!(got["rule"], "${proctor:contains(__COUNTRIES, country) && plan == 'pro'}");
    assert_eq!(got["constants"], json!({"__COUNTRIES": ["US", "CA"]}));
    assert_eq!(text(&got["version"]), promo_version);
    assert_eq!(groups(&s, &root, "id.USER=u1&ctx.country=CA&ctx.plan=pro&test=promo")["promo"]["name"], "on");
    assert_eq!(groups(&s, &root, "id.USER=u1&ctx.country=FR&ctx.plan=pro&test=promo"), json!({}));
    assert_eq!(groups(&s, &root, "id.USER=u1&ctx.country=CA&ctx.plan=free&test=promo"), json!({}));
    // `format: stored` without specialConstants.
    let mut plain = stored.clone();
    plain.as_object_mut().expect("object").remove("specialConstants");
    let body = json!({"definition": plain, "format": "stored"}).to_string();
    ok(s.admin("PUT", &format!("{dev}/tests/promo"), Some(&body)));
    assert_eq!(ok(s.admin("GET", &format!("{dev}/tests/promo"), None))["rule"], "${plan == 'pro'}");
    let body = json!({"definition": plain, "format": "yaml"}).to_string();
    assert_error(&s.admin("PUT", &format!("{dev}/tests/promo"), Some(&body)), 400, "invalid_field", &["'yaml'"]);

    // Broken definitions: 422 with a diagnostic naming the test, the path and a code.
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

    // Delete.
    let deleted = ok(s.admin("DELETE", &format!("{dev}/tests/signup-flow"), None));
    assert_eq!(deleted["revision"]["kind"], "delete");
    assert_error(&s.admin("GET", &format!("{dev}/tests/signup-flow"), None), 404, "not_found", &["'signup-flow'"]);
    assert_eq!(groups(&s, &root, "id.USER=u1&test=signup-flow"), json!({}));
    let old = ok(s.admin("GET", &format!("{dev}/tests/signup-flow?revision={version}"), None));
    assert_eq!(text(&old["version"]), version, "the old revision still holds the deleted test");
    assert_error(&s.admin("DELETE", &format!("{dev}/tests/signup-flow"), None), 404, "not_found", &["'signup-flow'"]);
    assert_error(&s.admin("GET", &format!("{dev}/tests/nope"), None), 404, "not_found", &["'nope'"]);
    let body = json!({"definition": everyone("x", 1)}).to_string();
    assert_error(&s.admin("PUT", "/projects/demo/environments/qa/tests/x", Some(&body)), 404, "not_found", &["'qa'"]);
    assert_error(&s.admin("PUT", "/projects/nope/environments/development/tests/x", Some(&body)), 404, "not_found", &["'nope'"]);
    assert_error(&s.admin("PUT", &format!("{dev}/tests/bad%20name"), Some(&body)), 400, "invalid_test_name", &["'bad name'"]);

    // A test another depends on cannot be deleted.
    ok(put_test(&s, "development", "parent-t", &definition("parent-t", json!([{"length": 0.5, "bucketValue": 0}, {"length": 0.5, "bucketValue": 1}]))));
    let mut child = everyone("child-t", 1);
    child["dependsOn"] = json!({"testName": "parent-t", "bucketValue": 1});
    ok(put_test(&s, "development", "child-t", &child));
    let assigned: Vec<Value> = (0..40).map(|i| groups(&s, &root, &format!("id.USER=user{i}&test=parent-t,child-t"))).collect();
    assert!(assigned.iter().all(|g| (g["parent-t"]["value"] == 1) == g.get("child-t").is_some()), "{assigned:?}");
    assert!(assigned.iter().any(|g| g.get("child-t").is_some()), "{assigned:?}");
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

// ---------------------------------------------------------------------------------------------
// The whole matrix

#[test]
fn the_whole_matrix_is_replaced_keeping_unchanged_versions_and_read_back_at_any_revision() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let root = dev_root(&s);

    let r0 = current(&s, "development");
    let reply = s.admin("GET", &format!("{dev}/matrix"), None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("etag"), Some(format!("\"{r0}\"").as_str()));
    let original = reply.json();
    assert_eq!(text(&original["audit"]["version"]), r0);
    assert_eq!(original["audit"]["updatedBy"], "demo");
    let demo_tests = ["buttoncolortst", "checkout-v2", "countryalgotst", "newfeaturerollout", "ui-theme"];
    assert_eq!(test_names(&original), demo_tests.iter().map(|t| t.to_string()).collect());
    let pipet = s.call("GET", &format!("{root}/proctor/matrix"), None, None).json();
    assert_eq!(pipet, original, "Pipet and the admin API serve different matrices");
    let token = s.var("AVSB_ADMIN_TOKEN").to_string();
    let etag0 = format!("\"{r0}\"");
    let conditional = |tag: &str| s.call_with("GET", &format!("/api/v1{dev}/matrix"), Some(&token), None, &[("If-None-Match", tag)]);
    assert_eq!(conditional(&etag0).status, 304);

    // One test unchanged, one changed, one removed, one added.
    let mut next = original.clone();
    next["tests"]["countryalgotst"]["description"] = json!("A new search algorithm, now tried everywhere");
    next["tests"].as_object_mut().expect("tests").remove("ui-theme");
    next["tests"]["fresh"] = everyone("fresh", 0);
    let body = json!({"matrix": next, "baseRevision": r0, "comment": "quarterly cleanup"}).to_string();
    let replaced = ok(s.admin("PUT", &format!("{dev}/matrix"), Some(&body)));
    let r1 = text(&replaced["revision"]["version"]);
    assert_eq!(replaced["revision"]["kind"], "replace");
    assert_eq!(text(&replaced["revision"]["parent"]), r0);
    assert_eq!(replaced["revision"]["comment"], "quarterly cleanup");
    let reply = s.admin("GET", &format!("{dev}/matrix"), None);
    assert_eq!(reply.header("etag"), Some(format!("\"{r1}\"").as_str()));
    let now = reply.json();
    assert_eq!(text(&now["audit"]["version"]), r1);
    for (test, version) in [("buttoncolortst", "1"), ("checkout-v2", "1"), ("newfeaturerollout", "1"), ("countryalgotst", &r1), ("fresh", &r1)] {
        assert_eq!(text(&now["tests"][test]["version"]), version, "{test}");
    }
    assert!(now["tests"].get("ui-theme").is_none());
    let served = groups(&s, &root, "id.USER=u1&test=fresh,ui-theme,buttoncolortst");
    assert_eq!(served["fresh"]["version"], json!(r1));
    assert_eq!(served["buttoncolortst"]["version"], "1");
    assert!(served.get("ui-theme").is_none(), "{served}");
    assert_eq!(conditional(&etag0).status, 200, "the old ETag still matches after a replace");

    // The past stays readable.
    let reply = s.admin("GET", &format!("{dev}/matrix?revision={r0}"), None);
    assert_eq!(reply.header("etag"), Some(format!("\"{r0}\"").as_str()));
    assert_eq!(reply.json(), original);
    assert_eq!(ok(s.admin("GET", &format!("{dev}/matrix?revision={r1}"), None)), now);
    let old = ok(s.admin("GET", &format!("{dev}/tests/countryalgotst?revision={r0}"), None));
    assert_eq!(old["description"], original["tests"]["countryalgotst"]["description"]);
    assert_error(&s.admin("GET", &format!("{dev}/matrix?revision=999999"), None), 404, "not_found", &["999999"]);
    assert_error(&s.admin("GET", &format!("{dev}/matrix?revision=abc"), None), 400, "invalid_field", &["revision"]);
    let staging_revision = current(&s, "staging");
    let reply = s.admin("GET", &format!("{dev}/matrix?revision={staging_revision}"), None);
    assert_error(&reply, 404, "not_found", &[&staging_revision]);

    // A matrix that would drop a test is refused whole.
    let before = environment_state(&s, "development");
    let mut bad = now.clone();
    bad["tests"]["fresh"]["allocations"][0]["ranges"][0]["length"] = json!(0.5);
    bad["tests"]["another"] = everyone("another", 1);
    let error = assert_error(&s.admin("PUT", &format!("{dev}/matrix"), Some(&json!({"matrix": bad}).to_string())), 422, "invalid_matrix", &["fresh"]);
    assert!(error["diagnostics"].as_array().expect("diagnostics").iter().any(|d| d["test"] == "fresh" && d["code"] == "ranges_sum"), "{error}");
    assert_error(&s.admin("PUT", &format!("{dev}/matrix"), Some(r#"{"matrix": []}"#)), 400, "invalid_field", &["matrix"]);
    let body = json!({"matrix": {"tests": {"bad name": everyone("b", 1)}}}).to_string();
    assert_error(&s.admin("PUT", &format!("{dev}/matrix"), Some(&body)), 400, "invalid_test_name", &["'bad name'"]);
    assert_eq!(environment_state(&s, "development"), before);

    // Writing the same matrix back (without an audit) keeps every test's version.
    let mut same = now.clone();
    same.as_object_mut().expect("object").remove("audit");
    let r2 = version_of(s.admin("PUT", &format!("{dev}/matrix"), Some(&json!({"matrix": same}).to_string())));
    let again = matrix(&s, "development");
    assert_eq!(text(&again["audit"]["version"]), r2);
    assert_eq!(again["tests"], now["tests"]);
}

// ---------------------------------------------------------------------------------------------
// Optimistic concurrency

#[test]
fn stale_writes_are_refused_and_concurrent_writers_lose_nothing() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let token = s.var("AVSB_ADMIN_TOKEN").to_string();

    let r0 = current(&s, "development");
    let r1 = version_of(put_test(&s, "development", "first", &everyone("first", 0)));
    let before = environment_state(&s, "development");

    // A stale base conflicts when what the write changes changed since: here the test 'first'
    // (added after r0), and, for writes of the whole matrix, anything. Nothing changes.
    let stale = format!("\"{r0}\"");
    let reply = s.admin("DELETE", &format!("{dev}/tests/first?baseRevision={r0}"), None);
    let error = assert_error(&reply, 409, "conflict", &[&r0, &r1, "'first'"]);
    assert_eq!(error["currentRevision"], json!(r1));
    assert_eq!(error["baseRevision"], json!(r0));
    assert_eq!(error["changes"][0]["test"], "first");
    assert_eq!(error["changes"][0]["revision"], json!(r1));
    let reply = s.call_with("DELETE", &format!("/api/v1{dev}/tests/first"), Some(&token), None, &[("If-Match", &stale)]);
    assert_error(&reply, 409, "conflict", &[&r1]);
    let body = json!({"definition": everyone("first", 1), "baseRevision": r0}).to_string();
    assert_error(&s.admin("PUT", &format!("{dev}/tests/first"), Some(&body)), 409, "conflict", &[&r1]);
    let body = json!({"bucket": 0, "baseRevision": r0}).to_string();
    assert_error(&s.admin("POST", &format!("{dev}/tests/first/kill"), Some(&body)), 409, "conflict", &[&r1]);
    let body = json!({"revision": r0, "baseRevision": r0}).to_string();
    assert_error(&s.admin("POST", &format!("{dev}/rollback"), Some(&body)), 409, "conflict", &[&r1]);
    let body = json!({"matrix": before["matrix"], "baseRevision": r0}).to_string();
    assert_error(&s.admin("PUT", &format!("{dev}/matrix"), Some(&body)), 409, "conflict", &[&r1]);
    assert_eq!(environment_state(&s, "development"), before, "a stale write changed the environment");

    // A stale base whose write touches only tests unchanged since is applied on the current
    // revision: 'second' did not exist at r0 and does not now.
    let body = json!({"definition": everyone("second", 1)}).to_string();
    let reply = s.call_with("PUT", &format!("/api/v1{dev}/tests/second"), Some(&token), Some(&body), &[("If-Match", &stale)]);
    let rebased = ok(reply);
    assert_eq!(text(&rebased["revision"]["parent"]), r1, "the edit is applied on the current revision");
    let reply = s.admin("DELETE", &format!("{dev}/tests/second?baseRevision={r0}"), None);
    assert_error(&reply, 409, "conflict", &["'second'"]);
    ok(s.admin("DELETE", &format!("{dev}/tests/second"), None));

    // The current base, taken from the matrix's ETag, applies; so do W/ tags and numbers.
    let etag = s.admin("GET", &format!("{dev}/matrix"), None).header("etag").expect("etag").to_string();
    let body = json!({"definition": everyone("second", 1)}).to_string();
    let reply = s.call_with("PUT", &format!("/api/v1{dev}/tests/second"), Some(&token), Some(&body), &[("If-Match", &etag)]);
    let r2 = text(&ok(reply)["revision"]["version"]);
    let weak = format!("W/\"{r2}\"");
    let reply = s.call_with("PUT", &format!("/api/v1{dev}/tests/third"), Some(&token), Some(&body), &[("If-Match", &weak)]);
    assert_eq!(text(&ok(reply)["revision"]["parent"]), r2);
    let number: i64 = current(&s, "development").parse().expect("numeric revision");
    let body = json!({"definition": everyone("fourth", 1), "baseRevision": number}).to_string();
    ok(s.admin("PUT", &format!("{dev}/tests/fourth"), Some(&body)));

    // Without a base, a write applies to whatever is current.
    let head = current(&s, "development");
    let saved = ok(put_test(&s, "development", "fifth", &everyone("fifth", 1)));
    assert_eq!(text(&saved["revision"]["parent"]), head);

    // Concurrent writers of different tests without a base: every write lands, in one chain.
    const WRITERS: usize = 8;
    let start = current(&s, "development");
    let barrier = Barrier::new(WRITERS);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (s, barrier) = (&s, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    put_test(s, "development", &format!("writer-{i}"), &everyone(&format!("writer-{i}"), (i % 2) as i64))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).collect()
    });
    let versions: Vec<String> = replies.into_iter().map(version_of).collect();
    assert_eq!(versions.iter().collect::<BTreeSet<_>>().len(), WRITERS, "{versions:?}");
    let now = matrix(&s, "development");
    for (i, version) in versions.iter().enumerate() {
        assert_eq!(text(&now["tests"][format!("writer-{i}")]["version"]), *version, "writer-{i} was lost: {now}");
    }
    let history = revisions(&s, "development");
    let newest: Vec<&Value> = history.iter().take(WRITERS).collect();
    for pair in newest.windows(2) {
        assert_eq!(pair[0]["parent"], pair[1]["version"], "the history forks: {history:?}");
    }
    assert_eq!(text(&newest[WRITERS - 1]["parent"]), start);
    let listed: BTreeSet<String> = newest.iter().map(|r| text(&r["version"])).collect();
    assert_eq!(listed, versions.iter().cloned().collect());

    // Concurrent writers of one test with the same base: exactly one wins, the others get 409
    // naming the winner's revision as the change to that test.
    let base = current(&s, "development");
    let barrier = Barrier::new(WRITERS);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (s, barrier, base) = (&s, &barrier, &base);
                scope.spawn(move || {
                    let body = json!({"definition": everyone(&format!("race-{i}"), 1), "baseRevision": base}).to_string();
                    barrier.wait();
                    s.admin("PUT", &format!("{}/tests/race", env_path("development")), Some(&body))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).collect()
    });
    let winners: Vec<usize> = (0..WRITERS).filter(|i| replies[*i].status == 200).collect();
    assert_eq!(winners.len(), 1, "{:?}", replies.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>());
    let winner = text(&replies[winners[0]].json()["revision"]["version"]);
    for (i, reply) in replies.iter().enumerate().filter(|(i, _)| *i != winners[0]) {
        let error = assert_error(reply, 409, "conflict", &[&base, "'race'"]);
        assert_eq!(error["currentRevision"], json!(winner), "writer {i}");
        assert_eq!(error["changes"][0]["revision"], json!(winner), "writer {i}");
    }
    let now = matrix(&s, "development");
    assert_eq!(now["tests"]["race"]["salt"], json!(format!("race-{}", winners[0])));
    assert_eq!(current(&s, "development"), winner);

    // Concurrent writers of different tests with the same base: nothing they change overlaps,
    // so every write lands, in one chain.
    let base = current(&s, "development");
    let barrier = Barrier::new(WRITERS);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (s, barrier, base) = (&s, &barrier, &base);
                scope.spawn(move || {
                    let body = json!({"definition": everyone(&format!("apart-{i}"), 1), "baseRevision": base}).to_string();
                    barrier.wait();
                    s.admin("PUT", &format!("{}/tests/apart-{i}", env_path("development")), Some(&body))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).collect()
    });
    assert!(replies.iter().all(|r| r.status == 200), "{:?}", replies.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>());
    let now = matrix(&s, "development");
    assert_eq!(test_names(&now).into_iter().filter(|t| t.starts_with("apart-")).count(), WRITERS);
    let history = revisions(&s, "development");
    for pair in history.iter().take(WRITERS).collect::<Vec<_>>().windows(2) {
        assert_eq!(pair[0]["parent"], pair[1]["version"], "the history forks: {history:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Revisions and diffs

#[test]
fn revisions_are_listed_newest_first_paged_and_diffed_across_environments() {
    let s = Server::start_demo();
    let dev = env_path("development");

    let r0 = current(&s, "development");
    let body = json!({"definition": everyone("alpha", 1), "comment": "add alpha"}).to_string();
    let r1 = version_of(s.admin("PUT", &format!("{dev}/tests/alpha"), Some(&body)));
    let mut reworded = ok(s.admin("GET", &format!("{dev}/tests/countryalgotst"), None));
    reworded["description"] = json!("reworded");
    let body = json!({"definition": reworded, "comment": "reword"}).to_string();
    let r2 = version_of(s.admin("PUT", &format!("{dev}/tests/countryalgotst"), Some(&body)));
    let r3 = version_of(s.admin("DELETE", &format!("{dev}/tests/ui-theme?comment=retire%20the%20theme"), None));

    let list = ok(s.admin("GET", &format!("{dev}/revisions"), None));
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

    // Paging.
    let page = |query: &str| ok(s.admin("GET", &format!("{dev}/revisions?{query}"), None))["revisions"].clone();
    assert_eq!(page("limit=2"), json!(history[..2]));
    assert_eq!(page(&format!("limit=2&before={r2}")), json!(history[2..]));
    assert_eq!(page(&format!("before={r0}")), json!([]));
    assert_error(&s.admin("GET", &format!("{dev}/revisions?before=abc"), None), 400, "invalid_field", &["before"]);

    // One revision.
    let one = ok(s.admin("GET", &format!("{dev}/revisions/{r1}"), None));
    assert_eq!(one["revision"], history[2]);
    assert_eq!(text(&one["matrix"]["audit"]["version"]), r1);
    assert!(one["matrix"]["tests"]["alpha"].is_object() && one["matrix"]["tests"]["ui-theme"].is_object());
    assert_error(&s.admin("GET", &format!("{dev}/revisions/999999"), None), 404, "not_found", &["999999"]);
    assert_error(&s.admin("GET", &format!("{dev}/revisions/abc"), None), 400, "invalid_field", &["revision"]);
    let production = current(&s, "production");
    assert_error(&s.admin("GET", &format!("{dev}/revisions/{production}"), None), 404, "not_found", &[&production]);
    assert_error(&s.admin("GET", "/projects/demo/environments/qa/revisions", None), 404, "not_found", &["'qa'"]);

    // A diff names added, removed and changed tests (with the fields) and counts the rest.
    let diff = |from: &str, to: &str| s.admin("GET", &format!("/projects/demo/diff?from={from}&to={to}"), None);
    let names = |list: &Value| list.as_array().expect("list").iter().map(|e| e["test"].as_str().expect("test").to_string()).collect::<Vec<_>>();
    let d = ok(diff(&r0, &r3));
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
    let back = ok(diff(&r3, &r0));
    assert_eq!(names(&back["added"]), ["ui-theme"]);
    assert_eq!(names(&back["removed"]), ["alpha"]);
    let same = ok(diff(&r2, &r2));
    assert_eq!((same["added"].clone(), same["removed"].clone(), same["changed"].clone()), (json!([]), json!([]), json!([])));
    assert_eq!(same["unchanged"], 6);

    // Across environments of the project: production still holds the demo matrix.
    let d = ok(diff(&production, &r3));
    assert_eq!(names(&d["added"]), ["alpha"]);
    assert_eq!(names(&d["removed"]), ["ui-theme"]);
    assert_eq!(names(&d["changed"]), ["countryalgotst"]);
    assert_eq!(d["unchanged"], 3);

    // Unknown revisions and revisions of other projects are not found.
    assert_error(&diff("999999", &r3), 404, "not_found", &["999999"]);
    assert_error(&diff(&r0, "999999"), 404, "not_found", &["999999"]);
    let other = ok(s.admin("POST", "/projects", Some(r#"{"key": "other"}"#)));
    let foreign = text(&other["environments"][0]["currentRevision"]);
    assert_error(&diff(&foreign, &r3), 404, "not_found", &[&foreign]);
    assert_error(&diff("abc", &r3), 400, "invalid_field", &["from"]);
}

// ---------------------------------------------------------------------------------------------
// Rollback

#[test]
fn rollback_makes_a_new_revision_holding_an_earlier_matrix() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let root = dev_root(&s);
    let query = "id.USER=u7&ctx.loggedIn=true";

    let r0 = current(&s, "development");
    let m0 = matrix(&s, "development");
    let served0 = groups(&s, &root, query);
    assert!(served0.get("buttoncolortst").is_some(), "{served0}");
    ok(put_test(&s, "development", "extra", &everyone("extra", 1)));
    let r2 = version_of(s.admin("DELETE", &format!("{dev}/tests/buttoncolortst"), None));
    let r3 = version_of(put_test(&s, "development", "newfeaturerollout", &everyone("newfeaturerollout", 0)));
    assert_ne!(groups(&s, &root, query), served0);

    let body = json!({"revision": r0, "comment": "back to the demo"}).to_string();
    let rolled = ok(s.admin("POST", &format!("{dev}/rollback"), Some(&body)));
    let r4 = text(&rolled["revision"]["version"]);
    assert_eq!(rolled["revision"]["kind"], "rollback");
    assert_eq!(text(&rolled["revision"]["parent"]), r3);
    assert_eq!(rolled["revision"]["comment"], "back to the demo");
    assert!(![r0.clone(), r2.clone(), r3.clone()].contains(&r4));
    let m4 = matrix(&s, "development");
    assert_eq!(m4["tests"], m0["tests"], "the rollback did not restore the matrix");
    assert_eq!(text(&m4["audit"]["version"]), r4);
    assert_eq!(groups(&s, &root, query), served0, "identify does not serve the restored matrix");
    let history = revisions(&s, "development");
    assert_eq!(history.len(), 5, "the history must be kept: {history:?}");
    assert_eq!(text(&history[0]["version"]), r4);

    // Rolling back to a later revision (given as a number) works the same way.
    let number: i64 = r2.parse().expect("numeric revision");
    ok(s.admin("POST", &format!("{dev}/rollback"), Some(&json!({"revision": number}).to_string())));
    let at_r2 = ok(s.admin("GET", &format!("{dev}/revisions/{r2}"), None));
    assert_eq!(matrix(&s, "development")["tests"], at_r2["matrix"]["tests"]);
    assert!(groups(&s, &root, query).get("buttoncolortst").is_none());

    // Refused rollbacks.
    let before = environment_state(&s, "development");
    let rollback = |body: Value| s.admin("POST", &format!("{dev}/rollback"), Some(&body.to_string()));
    assert_error(&rollback(json!({"revision": "999999"})), 404, "not_found", &["999999"]);
    let staging = current(&s, "staging");
    assert_error(&rollback(json!({"revision": staging})), 404, "not_found", &[&staging]);
    assert_error(&rollback(json!({"revision": "abc"})), 400, "invalid_field", &["revision"]);
    assert_error(&rollback(json!({})), 400, "invalid_field", &["revision"]);
    assert_eq!(environment_state(&s, "development"), before);
}

// ---------------------------------------------------------------------------------------------
// Promotion

#[test]
fn promotion_copies_a_test_forward_with_its_development_version() {
    let s = Server::start_demo();
    let staging_root = sdk_root(&s, "staging");
    let production_root = sdk_root(&s, "production");
    let promote = |body: Value| s.admin("POST", "/projects/demo/promote", Some(&body.to_string()));

    let r0 = current(&s, "development");
    let d = version_of(put_test(&s, "development", "launch", &everyone("launch", 1)));
    assert_eq!(groups(&s, &staging_root, "id.USER=u1&test=launch"), json!({}));

    // development -> staging.
    let staging_before = current(&s, "staging");
    let promoted = ok(promote(json!({"from": "development", "to": "staging", "tests": ["launch"], "sourceRevision": d})));
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

    // staging -> production.
    ok(promote(json!({"from": "staging", "to": "production", "tests": ["launch"]})));
    assert_eq!(groups(&s, &production_root, "id.USER=u1&test=launch")["launch"]["name"], "test");

    // Refused promotions change nothing.
    let before = environment_state(&s, "staging");
    let error = assert_error(
        &promote(json!({"from": "staging", "to": "development", "tests": ["launch"]})),
        400,
        "invalid_promotion",
        &["forward", "development → staging → production"],
    );
    assert!(error.get("diagnostics").is_none());
    assert_error(&promote(json!({"from": "staging", "to": "staging", "tests": ["launch"]})), 400, "invalid_promotion", &[]);
    assert_error(&promote(json!({"from": "development", "to": "staging", "tests": ["nope"]})), 404, "not_found", &["'nope'"]);
    assert_error(&promote(json!({"from": "development", "to": "qa", "tests": ["launch"]})), 404, "not_found", &["'qa'"]);
    assert_error(&promote(json!({"from": "development", "to": "staging", "tests": []})), 400, "invalid_field", &["tests"]);
    let error = assert_error(
        &promote(json!({"from": "development", "to": "staging", "tests": ["launch"], "sourceRevision": r0})),
        409,
        "conflict",
        &[&r0, &d],
    );
    assert_eq!(error["currentRevision"], json!(d));
    let stale = json!({"from": "development", "to": "staging", "tests": ["launch"], "baseRevision": staging_before});
    assert_error(&promote(stale), 409, "conflict", &[&staging_before]);
    // A test whose dependency the target lacks would be dropped there.
    ok(put_test(&s, "development", "parent-t", &everyone("parent-t", 1)));
    let mut child = everyone("child-t", 1);
    child["dependsOn"] = json!({"testName": "parent-t", "bucketValue": 1});
    ok(put_test(&s, "development", "child-t", &child));
    let error = assert_error(&promote(json!({"from": "development", "to": "staging", "tests": ["child-t"]})), 422, "invalid_matrix", &["child-t"]);
    assert!(error["diagnostics"].as_array().expect("diagnostics").iter().any(|d| d["test"] == "child-t" && d["code"] == "depends_on_unknown"), "{error}");
    assert_eq!(environment_state(&s, "staging"), before, "a refused promotion changed staging");
    ok(promote(json!({"from": "development", "to": "staging", "tests": ["parent-t", "child-t"]})));
    assert_eq!(groups(&s, &staging_root, "id.USER=u1&test=child-t")["child-t"]["name"], "test");
}

#[test]
fn a_test_promoted_on_to_production_keeps_its_development_version() {
    let s = Server::start_demo();
    let production_root = sdk_root(&s, "production");
    let d = version_of(put_test(&s, "development", "launch", &everyone("launch", 1)));
    let promote = |from: &str, to: &str| {
        let body = json!({"from": from, "to": to, "tests": ["launch"]}).to_string();
        ok(s.admin("POST", "/projects/demo/promote", Some(&body)))
    };
    promote("development", "staging");
    promote("staging", "production");
    let in_production = ok(s.admin("GET", &format!("{}/tests/launch", env_path("production")), None));
    assert_eq!(text(&in_production["version"]), d, "production's version is not the development revision");
    assert_eq!(groups(&s, &production_root, "id.USER=u1&test=launch")["launch"]["version"], json!(d));
}

// ---------------------------------------------------------------------------------------------
// Kill switch

#[test]
fn the_kill_switch_gives_everyone_one_bucket_until_rolled_back() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let root = dev_root(&s);
    let assign = |test: &str, context: &str| -> Vec<Value> {
        (0..60).map(|i| groups(&s, &root, &format!("id.USER=user{i}&test={test}{context}"))[test].clone()).collect()
    };
    let kill = |test: &str, body: Value| s.admin("POST", &format!("{dev}/tests/{test}/kill"), Some(&body.to_string()));

    let before_kill = current(&s, "development");
    let split = assign("buttoncolortst", "");
    let buckets: BTreeSet<String> = split.iter().map(|g| g["name"].to_string()).collect();
    assert!(buckets.len() >= 2, "the demo split gave one bucket: {buckets:?}");

    // By name.
    let killed = ok(kill("buttoncolortst", json!({"bucket": "green"})));
    let k1 = text(&killed["revision"]["version"]);
    assert_eq!(killed["revision"]["kind"], "kill");
    for group in assign("buttoncolortst", "") {
        assert_eq!(group, json!({"name": "green", "value": 2, "payload": {"stringValue": "#3DFF33"}, "version": k1}));
    }
    let latest = &revisions(&s, "development")[0];
    assert_eq!(latest["kind"], "kill");
    assert!(latest["comment"].as_str().expect("comment").contains("buttoncolortst"), "{latest}");
    let definition = ok(s.admin("GET", &format!("{dev}/tests/buttoncolortst"), None));
    assert_eq!(definition["allocations"].as_array().expect("allocations").len(), 1, "{definition}");
    assert_eq!(definition["allocations"][0]["ranges"], json!([{"bucketValue": 2, "length": 1.0}]));

    // By value, overriding the test's rule: newfeaturerollout is for logged-in users only.
    assert!(assign("newfeaturerollout", "&ctx.loggedIn=false").iter().all(Value::is_null));
    ok(kill("newfeaturerollout", json!({"bucket": 0})));
    assert!(assign("newfeaturerollout", "&ctx.loggedIn=false").iter().all(|g| g["name"] == "active"));
    // And its targets: checkout-v2 is always on for u_1.
    assert_eq!(groups(&s, &root, "id.USER=u_1&test=checkout-v2")["checkout-v2"]["name"], "on");
    ok(kill("checkout-v2", json!({"bucket": "off"})));
    assert_eq!(groups(&s, &root, "id.USER=u_1&test=checkout-v2")["checkout-v2"]["name"], "off");

    // Unknown buckets and tests.
    let before = environment_state(&s, "development");
    let needles = ["purple", "'inactive' (-1)", "'control' (0)", "'blue' (1)", "'green' (2)"];
    assert_error(&kill("buttoncolortst", json!({"bucket": "purple"})), 400, "unknown_bucket", &needles);
    assert_error(&kill("buttoncolortst", json!({"bucket": 9})), 400, "unknown_bucket", &["9", "'green' (2)"]);
    assert_error(&kill("nope", json!({"bucket": "on"})), 404, "not_found", &["'nope'"]);
    assert_error(&kill("buttoncolortst", json!({})), 400, "invalid_field", &["bucket"]);
    assert_eq!(environment_state(&s, "development"), before);

    // Rolling back restores the split, user by user.
    ok(s.admin("POST", &format!("{dev}/rollback"), Some(&json!({"revision": before_kill}).to_string())));
    assert_eq!(assign("buttoncolortst", ""), split);
    assert!(assign("newfeaturerollout", "&ctx.loggedIn=false").iter().all(Value::is_null));
    assert_eq!(groups(&s, &root, "id.USER=u_1&test=checkout-v2")["checkout-v2"]["name"], "on");
}

// ---------------------------------------------------------------------------------------------
// Schema

#[test]
fn a_schema_change_is_checked_against_every_environment_before_it_is_served() {
    let s = Server::start_demo();
    let root = dev_root(&s);
    let staging_root = sdk_root(&s, "staging");
    let key = s.var("AVSB_SDK_KEY").to_string();
    let datafile = |if_none_match: Option<&str>| {
        let headers: Vec<(&str, &str)> = if_none_match.map(|tag| vec![("If-None-Match", tag)]).unwrap_or_default();
        s.call_with("GET", "/sdk/v1/datafile", Some(&key), None, &headers)
    };
    let schema_of = || s.admin("GET", "/projects/demo/schema", None);

    let reply = schema_of();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("etag"), Some("\"1\""));
    let schema = reply.json();
    assert!(schema["context"]["country"].is_object(), "{schema}");
    let etag1 = datafile(None).header("etag").expect("datafile etag").to_string();
    let before = (reply.body.clone(), environment_state(&s, "development"), ok(s.admin("GET", "/projects/demo", None)));

    // Removing a variable a rule uses would drop tests in every environment: 422, nothing changed.
    let mut without_country = schema.clone();
    without_country["context"].as_object_mut().expect("context").remove("country");
    let reply = s.admin("PUT", "/projects/demo/schema", Some(&without_country.to_string()));
    let error = assert_error(&reply, 422, "invalid_matrix", &["development", "staging", "production"]);
    for environment in ["development", "staging", "production"] {
        let diagnostics = error["diagnostics"][environment].as_array().unwrap_or_else(|| panic!("no {environment}: {error}"));
        assert!(
            diagnostics.iter().any(|d| d["test"] == "countryalgotst"
                && d["code"] == "unknown_variable"
                && d["path"] == "tests.countryalgotst.allocations[0].rule"),
            "{environment}: {error}"
        );
    }
    let invalid = json!({"context": {"x": {"source": "QUERY", "type": "NotAType"}}, "identifiers": {"USER": {"source": "QUERY"}}});
    let error = assert_error(&s.admin("PUT", "/projects/demo/schema", Some(&invalid.to_string())), 400, "invalid_schema", &["context.x.type"]);
    assert_eq!(error["path"], "context.x.type");
    let mut without_user = schema.clone();
    without_user["identifiers"].as_object_mut().expect("identifiers").remove("USER");
    let reply = s.admin("PUT", "/projects/demo/schema", Some(&without_user.to_string()));
    assert_error(&reply, 400, "invalid_schema", &["'USER'"]);
    let token = s.var("AVSB_ADMIN_TOKEN").to_string();
    let reply = s.call_with("PUT", "/api/v1/projects/demo/schema", Some(&token), Some(&schema.to_string()), &[("If-Match", "\"0\"")]);
    assert_eq!(assert_error(&reply, 409, "conflict", &["version 1"])["currentSchemaVersion"], 1);
    let reply = schema_of();
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!((reply.body.clone(), environment_state(&s, "development"), ok(s.admin("GET", "/projects/demo", None))), before);
    let context = s.call("GET", &format!("{root}/config/context"), None, None).json();
    assert!(context["data"]["country"].is_object(), "{context}");
    assert_eq!(datafile(Some(&etag1)).status, 304, "the datafile changed after a refused schema");

    // A compatible change: a new variable. The version bumps and every API reflects it.
    let mut with_tier = schema.clone();
    with_tier["context"]["tier"] = json!({"source": "QUERY", "type": "String", "defaultValue": "basic"});
    let reply = s.call_with("PUT", "/api/v1/projects/demo/schema", Some(&token), Some(&with_tier.to_string()), &[("If-Match", "\"1\"")]);
    let project = ok(reply);
    assert_eq!(project["schemaVersion"], 2);
    let reply = schema_of();
    assert_eq!(reply.header("etag"), Some("\"2\""));
    assert_eq!(reply.json()["context"]["tier"]["defaultValue"], "basic");
    for pipet in [&root, &staging_root] {
        let context = s.call("GET", &format!("{pipet}/config/context"), None, None).json();
        assert_eq!(context["data"]["tier"]["defaultValue"], "basic", "{context}");
        assert_eq!(context["data"]["tier"]["source"], "QUERY", "{context}");
    }
    let reply = datafile(Some(&etag1));
    assert_eq!(reply.status, 200, "the datafile kept its ETag after a schema change");
    let etag2 = reply.header("etag").expect("etag").to_string();
    assert_ne!(etag2, etag1);
    assert_eq!(reply.json()["schemaVersion"], 2);
    assert_eq!(datafile(Some(&etag2)).status, 304);

    // Rules may now use the new variable.
    let mut gold = everyone("gold", 1);
    gold["rule"] = json!("${tier == 'gold'}");
    ok(put_test(&s, "development", "gold", &gold));
    assert_eq!(groups(&s, &root, "id.USER=u1&ctx.tier=gold&test=gold")["gold"]["name"], "test");
    assert_eq!(groups(&s, &root, "id.USER=u1&test=gold"), json!({}));
}

// ---------------------------------------------------------------------------------------------
// SDK keys

#[test]
fn sdk_keys_are_shown_once_listed_without_secrets_and_revoked_at_once() {
    let s = Server::start_demo();
    let production = env_path("production");

    let reply = s.admin("POST", &format!("{production}/sdk-keys"), Some(r#"{"name": "web"}"#));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let web = reply.json();
    let web_key = web["key"].as_str().expect("key").to_string();
    assert_eq!(web["name"], "web");
    assert_eq!(web["pipetRoot"], format!("/pipet/{web_key}"));
    assert!(web["revokedAt"].is_null());
    assert!(web_key.starts_with(web["prefix"].as_str().expect("prefix")));
    let reply = s.admin("POST", &format!("{production}/sdk-keys"), None);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let batch = reply.json();
    let batch_key = batch["key"].as_str().expect("key").to_string();
    assert_ne!(batch_key, web_key);

    let reply = s.admin("GET", &format!("{production}/sdk-keys"), None);
    assert_eq!(reply.status, 200);
    for secret in [&web_key, &batch_key, &s.var("AVSB_SDK_KEY_PRODUCTION").to_string()] {
        assert!(!reply.body.contains(secret.as_str()), "the listing shows a secret: {}", reply.body);
    }
    let listed = reply.json()["keys"].as_array().expect("keys").clone();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for (key, secret) in [(&web, &web_key), (&batch, &batch_key)] {
        let entry = listed.iter().find(|k| k["id"] == key["id"]).unwrap_or_else(|| panic!("{key} not listed"));
        assert!(entry.get("key").is_none(), "{entry}");
        let prefix = entry["prefix"].as_str().expect("prefix");
        assert!(secret.starts_with(prefix) && prefix.len() < secret.len() / 2, "prefix {prefix:?}");
    }

    // Several keys work at once, on every API.
    let pipet = |key: &str| s.call("GET", &format!("/pipet/{key}/groups/identify?id.USER=u1&test=buttoncolortst"), None, None);
    let ofrep = |key: &str| s.call("POST", "/ofrep/v1/evaluate/flags/checkout-v2", Some(key), Some(r#"{"context": {"targetingKey": "u_1"}}"#));
    let datafile = |key: &str| s.call("GET", "/sdk/v1/datafile", Some(key), None);
    let events = |key: &str| s.call("POST", "/sdk/v1/events", Some(key), Some(r#"{"events": []}"#));
    for key in [&web_key, &batch_key] {
        assert_eq!(pipet(key).status, 200);
        assert_eq!(ofrep(key).json()["value"], true);
        assert_eq!(datafile(key).json()["environment"], "production");
        assert_eq!(events(key).status, 202);
    }

    // Revoking one shuts it out at once; the other keeps working.
    let reply = s.admin("DELETE", &format!("{production}/sdk-keys/{}", web["id"]), None);
    assert_eq!(reply.status, 204, "{}", reply.body);
    let reply = pipet(&web_key);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["meta"]["status"], 401);
    assert_eq!(ofrep(&web_key).status, 401);
    assert_error(&datafile(&web_key), 401, "unauthorized", &["revoked"]);
    assert_error(&events(&web_key), 401, "unauthorized", &["revoked"]);
    assert_eq!(pipet(&batch_key).status, 200);
    assert_eq!(ofrep(&batch_key).json()["value"], true);
    assert_eq!(datafile(&batch_key).status, 200);
    let listed = ok(s.admin("GET", &format!("{production}/sdk-keys"), None))["keys"].clone();
    for key in listed.as_array().expect("keys") {
        assert_eq!(key["revokedAt"].is_null(), key["id"] != web["id"], "{key}");
    }

    // Revoking twice, a malformed id, or another environment's key: nothing is revoked.
    let revoke = |id: &str| s.admin("DELETE", &format!("{production}/sdk-keys/{id}"), None);
    assert_error(&revoke(&web["id"].to_string()), 404, "not_found", &[&web["id"].to_string()]);
    assert_error(&revoke("999999"), 404, "not_found", &["999999"]);
    assert_error(&revoke("abc"), 400, "invalid_field", &["integer"]);
    let development_keys = ok(s.admin("GET", &format!("{}/sdk-keys", env_path("development")), None));
    let development_id = development_keys["keys"][0]["id"].to_string();
    assert_error(&revoke(&development_id), 404, "not_found", &[&development_id]);
    assert_eq!(pipet(s.var("AVSB_SDK_KEY")).status, 200, "another environment's key was revoked");
}

// ---------------------------------------------------------------------------------------------
// Events

#[test]
fn events_posted_by_an_sdk_are_listed_for_admins() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let key = s.var("AVSB_SDK_KEY").to_string();
    let time = now_millis() - 1000;
    let batch = json!({"events": [
        {"kind": "exposure", "identifiers": {"USER": "u1"}, "test": "buttoncolortst", "bucket": 1, "time": time},
        {"kind": "track", "identifiers": {"USER": "u1"}, "key": "purchase", "value": 149.99, "properties": {"currency": "usd"}}
    ]});
    let reply = s.call("POST", "/sdk/v1/events", Some(&key), Some(&batch.to_string()));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json(), json!({"accepted": 2}));

    let listed = ok(s.admin("GET", &format!("{dev}/events"), None))["events"].clone();
    let events = listed.as_array().expect("events");
    assert_eq!(events.len(), 2, "{listed}");
    let (exposure, track) = (&events[0], &events[1]);
    assert_eq!(exposure["kind"], "exposure");
    assert_eq!(exposure["identifiers"], json!({"USER": "u1"}));
    assert_eq!(exposure["test"], "buttoncolortst");
    assert_eq!(exposure["bucket"], 1);
    assert_eq!(exposure["time"], time);
    assert_eq!(track["kind"], "track");
    assert_eq!(track["identifiers"], json!({"USER": "u1"}));
    assert_eq!(track["key"], "purchase");
    assert_eq!(track["value"], 149.99);
    assert_eq!(track["properties"], json!({"currency": "usd"}));
    assert!(track["time"].as_i64().expect("time") >= time, "{track}");
    assert!(exposure["id"].as_i64().expect("id") < track["id"].as_i64().expect("id"));
    let keys = ok(s.admin("GET", &format!("{dev}/sdk-keys"), None));
    for event in events {
        assert_eq!(event["sdkKeyId"], keys["keys"][0]["id"], "{event}");
        assert!(event["receivedAt"].as_i64().expect("receivedAt") >= time, "{event}");
    }

    // Paging, and other environments.
    let page = |query: &str| ok(s.admin("GET", &format!("{dev}/events?{query}"), None))["events"].clone();
    assert_eq!(page(&format!("after={}", exposure["id"])), json!([track]));
    assert_eq!(page("limit=1"), json!([exposure]));
    assert_eq!(ok(s.admin("GET", &format!("{}/events", env_path("staging")), None))["events"], json!([]));

    // A refused batch stores nothing; listing needs an admin token.
    let bad = json!({"events": [{"kind": "track", "identifiers": {"USER": "u2"}, "key": "ok"}, {"kind": "exposure", "identifiers": {"USER": "u2"}}]});
    let reply = s.call("POST", "/sdk/v1/events", Some(&key), Some(&bad.to_string()));
    assert_error(&reply, 400, "invalid_event", &["events[1]"]);
    assert_eq!(page(""), listed);
    assert_error(&s.call("GET", &format!("/api/v1{dev}/events"), None, None), 401, "unauthorized", &[]);
    assert_error(&s.call("GET", &format!("/api/v1{dev}/events"), Some(&key), None), 401, "unauthorized", &[]);
}

// ---------------------------------------------------------------------------------------------
// Malformed input

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

#[test]
fn malformed_admin_bodies_are_refused_in_the_error_shape_and_change_nothing() {
    let s = Server::start_demo();
    let before = everything(&s);

    for (method, path, valid) in json_endpoints(&s) {
        let call = |body: &str| s.admin(method, &path, Some(body));
        let what = format!("{method} {path}");
        // Not JSON, truncated JSON, empty (an empty body asks sdk-keys for a default name).
        for body in ["not json", "{", "{\"na", "{'single': 'quotes'}"] {
            let error = assert_error(&call(body), 400, "invalid_json", &["not valid JSON", "line 1 column"]);
            assert!(!error["message"].as_str().unwrap_or_default().is_empty(), "{what}");
        }
        if !path.ends_with("sdk-keys") {
            for body in ["", "  \n"] {
                assert_error(&call(body), 400, "invalid_json", &["empty"]);
            }
        }
        // The wrong type of document.
        for body in ["[1, 2]", "\"text\"", "42", "null", "true"] {
            let reply = call(body);
            assert_eq!(reply.status, 400, "{what} with {body}: {}", reply.body);
            assert_error(&reply, 400, "invalid_field", &["invalid type"]);
        }
        // An unknown field is named.
        let mut extra = valid.clone();
        extra["bogusField"] = json!(1);
        assert_error(&call(&extra.to_string()), 400, "invalid_field", &["unknown field", "bogusField"]);
        // A known field of the wrong type is a 400 in the error shape.
        let (field, _) = valid.as_object().expect("object").iter().next().expect("a field");
        let mut wrong = valid.clone();
        wrong[field.as_str()] = json!([true]);
        let reply = call(&wrong.to_string());
        assert!(reply.status == 400, "{what} with {field} of the wrong type: {} {}", reply.status, reply.body);
        assert!(reply.json()["error"]["code"].is_string(), "{what}: {}", reply.body);
    }

    // The schema endpoint takes the schema itself.
    let put_schema = |body: &str| s.admin("PUT", "/projects/demo/schema", Some(body));
    assert_error(&put_schema("not json"), 400, "invalid_json", &["not valid JSON"]);
    assert_error(&put_schema(""), 400, "invalid_json", &["empty"]);
    assert_eq!(assert_error(&put_schema("[1]"), 400, "invalid_schema", &[])["path"], "$");
    let wrong = json!({"context": {"country": {"source": "QUERY", "type": 5}}, "identifiers": {"USER": {"source": "QUERY"}}});
    assert_error(&put_schema(&wrong.to_string()), 400, "invalid_schema", &["context.country.type"]);

    // Body-less writes with bad parameters.
    let dev = env_path("development");
    assert_error(&s.admin("DELETE", &format!("{dev}/tests/buttoncolortst?baseRevision=abc"), None), 400, "invalid_field", &["baseRevision"]);
    let token = s.var("AVSB_ADMIN_TOKEN").to_string();
    let reply = s.call_with("DELETE", &format!("/api/v1{dev}/tests/buttoncolortst"), Some(&token), None, &[("If-Match", "\"abc\"")]);
    assert_error(&reply, 400, "invalid_field", &["If-Match"]);
    assert_error(&s.admin("DELETE", &format!("{dev}/sdk-keys/abc"), None), 400, "invalid_field", &["key id"]);

    assert_eq!(everything(&s), before, "a refused request changed something");
}

/// Sends `method path` with a body of `length` spaces over a raw connection (so the server may
/// answer before the body ends) and returns the status and body of the answer.
fn send_oversized(s: &Server, method: &str, path: &str, length: usize) -> (u16, String) {
    let address = s.base().trim_start_matches("http://").to_string();
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
fn an_admin_body_over_64_mib_is_refused_with_413() {
    let s = Server::start_demo();
    let before = environment_state(&s, "development");
    let (status, body) = send_oversized(&s, "PUT", &format!("{}/matrix", env_path("development")), 64 * 1024 * 1024 + 1);
    assert_eq!(status, 413, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    assert_eq!(error["error"]["code"], "body_too_large", "{body}");
    assert!(error["error"]["message"].as_str().expect("message").contains("67108864"), "{body}");
    assert_eq!(environment_state(&s, "development"), before);
}

// ---------------------------------------------------------------------------------------------
// Known bugs (each test states the behaviour a user should get)

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
fn unknown_fields_in_a_schema_are_refused() {
    let s = Server::start_demo();
    let schema = ok(s.admin("GET", "/projects/demo/schema", None));
    let mut typo = schema.clone();
    typo["context"]["tier"] = json!({"source": "QUERY", "type": "String", "defualtValue": "basic"});
    let reply = s.admin("PUT", "/projects/demo/schema", Some(&typo.to_string()));
    assert_error(&reply, 400, "invalid_schema", &["defualtValue"]);
    let mut extra = schema.clone();
    extra["identifers"] = json!({});
    let reply = s.admin("PUT", "/projects/demo/schema", Some(&extra.to_string()));
    assert_error(&reply, 400, "invalid_schema", &["identifers"]);
    assert_eq!(ok(s.admin("GET", "/projects/demo", None))["schemaVersion"], 1);
}
