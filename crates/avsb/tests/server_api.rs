//! The server's public APIs through real HTTP against the real `avsb serve` binary: Pipet
//! (docs/proctor.md §6), OFREP (docs/openfeature.md §2), the SDK datafile and stream, events, operations,
//! concurrency during edits, and malformed input.
//!
//! Every test starts its own server on a free loopback port with a fresh data directory.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Reply, Server};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers

const DEV: &str = "/projects/demo/environments/development";

fn root(server: &Server) -> String {
    server.var("PROCTOR_API_ROOT").to_string()
}

fn sdk_key(server: &Server) -> String {
    server.var("AVSB_SDK_KEY").to_string()
}

/// `GET <PROCTOR_API_ROOT>/groups/identify?<query>`.
fn identify(server: &Server, query: &str) -> Reply {
    server.call("GET", &format!("{}/groups/identify?{query}", root(server)), None, None)
}

/// `GET <PROCTOR_API_ROOT><path>`.
fn pipet(server: &Server, path: &str) -> Reply {
    server.call("GET", &format!("{}{path}", root(server)), None, None)
}

/// `POST /ofrep/v1/evaluate/flags[/<flag>]` with the development SDK key.
fn ofrep(server: &Server, flag: Option<&str>, body: Option<&str>) -> Reply {
    let path = match flag {
        Some(flag) => format!("/ofrep/v1/evaluate/flags/{flag}"),
        None => "/ofrep/v1/evaluate/flags".to_string(),
    };
    server.call("POST", &path, Some(&sdk_key(server)), body)
}

/// Saves a test in the demo's development environment; returns the new revision's version.
fn put_test(server: &Server, name: &str, definition: &Value) -> String {
    let body = json!({"definition": definition, "comment": format!("save {name}")}).to_string();
    let reply = server.admin("PUT", &format!("{DEV}/tests/{name}"), Some(&body));
    assert_eq!(reply.status, 200, "PUT test {name}: {}", reply.body);
    reply.json()["revision"]["version"].as_str().expect("revision.version").to_string()
}

/// The matrix version development serves now (`/proctor/matrix/audit`).
fn dev_version(server: &Server) -> String {
    let reply = pipet(server, "/proctor/matrix/audit");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["data"]["version"].as_str().expect("audit.version").to_string()
}

fn stored_events(server: &Server) -> Vec<Value> {
    let reply = server.admin("GET", &format!("{DEV}/events?limit=1000"), None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["events"].as_array().expect("events").clone()
}

/// A Pipet error envelope with this status and message, with the HTTP status to match.
fn assert_pipet_error(reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.json(), json!({"data": {}, "meta": {"status": status, "error": message}}), "{}", reply.body);
    assert_json_content_type(reply);
}

fn assert_json_content_type(reply: &Reply) {
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "content-type {content_type:?}");
}

/// Proctor's `updatedDate`: `yyyy-MM-dd'T'HH:mmZ`, e.g. `1969-12-31T18:00-0600`.
fn is_proctor_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() == 21
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && (b[16] == b'-' || b[16] == b'+')
        && digits(17..21)
}

fn now_millis() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis()).expect("millis")
}

/// A request with a raw byte body and arbitrary headers; a transport error is returned, not
/// raised (the server may close a connection it refuses).
fn raw(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Reply, String> {
    common::try_request(method, url, headers, body)
}

/// A float-valued flag (doubleValue 1.0 for everyone).
fn float_flag() -> Value {
    json!({
        "testType": "USER", "salt": "float-flag", "description": "a float flag",
        "buckets": [{"name": "one", "value": 0, "payload": {"doubleValue": 1.0}}],
        "allocations": [{"rule": null, "ranges": [{"length": 1.0, "bucketValue": 0}]}]
    })
}

/// A flag hashed on ACCOUNT identifiers (OFREP's targetingKey is a USER identifier).
fn account_flag() -> Value {
    json!({
        "testType": "ACCOUNT", "salt": "account-flag",
        "buckets": [{"name": "on", "value": 1, "payload": {"booleanValue": true}}],
        "allocations": [{"rule": null, "ranges": [{"length": 1.0, "bucketValue": 1}]}]
    })
}

// ---------------------------------------------------------------------------------------------
// A Server-Sent Events client on a raw socket (hand-written HTTP/1.1, chunked decoding).

#[derive(Debug, Clone, Default, PartialEq)]
struct SseEvent {
    event: String,
    id: String,
    data: String,
}

#[derive(Debug)]
enum Item {
    Event(SseEvent),
    Comment(#[allow(dead_code)] String),
    Eof,
    Timeout,
}

struct Sse {
    status: u16,
    headers: HashMap<String, String>,
    lines: Receiver<Option<String>>,
    socket: TcpStream,
    pending: SseEvent,
    has_fields: bool,
}

fn read_chunked(reader: &mut impl BufRead, tx: &mpsc::Sender<Option<String>>) -> std::io::Result<()> {
    let mut partial = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Ok(());
        }
        let size_text = size_line.trim().split(';').next().unwrap_or("").trim().to_string();
        if size_text.is_empty() {
            continue;
        }
        let size = usize::from_str_radix(&size_text, 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("chunk size {size_text:?}: {e}")))?;
        if size == 0 {
            return Ok(());
        }
        let mut chunk = vec![0u8; size];
        reader.read_exact(&mut chunk)?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        partial.extend_from_slice(&chunk);
        while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            if tx.send(Some(text)).is_err() {
                return Ok(());
            }
        }
    }
}

impl Sse {
    /// `GET /sdk/v1/stream` with a bearer key and optionally `Last-Event-ID`.
    fn open(server: &Server, key: &str, last_event_id: Option<&str>) -> Sse {
        let host = server.base().trim_start_matches("http://").to_string();
        let mut socket = TcpStream::connect(&host).expect("connect");
        let mut request = format!(
            "GET /sdk/v1/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n"
        );
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
        socket.write_all(request.as_bytes()).expect("send request");
        let mut reader = BufReader::new(socket.try_clone().expect("clone socket"));
        socket.set_read_timeout(None).expect("timeout");
        reader.get_ref().set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status code");
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        reader.get_ref().set_read_timeout(None).expect("timeout");
        let (tx, rx) = mpsc::channel();
        let chunked = headers.get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        std::thread::spawn(move || {
            if chunked {
                let _ = read_chunked(&mut reader, &tx);
            } else {
                for line in reader.lines() {
                    match line {
                        Ok(l) => {
                            if tx.send(Some(l)).is_err() {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            let _ = tx.send(None);
        });
        Sse { status, headers, lines: rx, socket, pending: SseEvent::default(), has_fields: false }
    }

    /// The next event or comment within `timeout`.
    fn next(&mut self, timeout: Duration) -> Item {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Some(line)) => {
                    if line.is_empty() {
                        if self.has_fields {
                            self.has_fields = false;
                            return Item::Event(std::mem::take(&mut self.pending));
                        }
                        continue;
                    }
                    if let Some(comment) = line.strip_prefix(':') {
                        return Item::Comment(comment.trim().to_string());
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => self.pending.event = value.to_string(),
                        "id" => self.pending.id = value.to_string(),
                        "data" => {
                            if !self.pending.data.is_empty() {
                                self.pending.data.push('\n');
                            }
                            self.pending.data.push_str(value);
                        }
                        _ => {}
                    }
                    self.has_fields = true;
                }
                Ok(None) | Err(RecvTimeoutError::Disconnected) => return Item::Eof,
                Err(RecvTimeoutError::Timeout) => return Item::Timeout,
            }
        }
    }

    /// The next event within `timeout`, skipping comments; panics on anything else.
    fn next_event(&mut self, timeout: Duration) -> SseEvent {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Item::Event(e) => return e,
                Item::Comment(_) => continue,
                other => panic!("expected an event within {timeout:?}, got {other:?}"),
            }
        }
    }

    /// Asserts that no event arrives within `wait` (comments are fine).
    fn assert_no_event(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Item::Timeout => return,
                Item::Comment(_) => continue,
                other => panic!("expected no event within {wait:?}, got {other:?}"),
            }
        }
    }

    fn close(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

impl Drop for Sse {
    fn drop(&mut self) {
        self.close();
    }
}

// ---------------------------------------------------------------------------------------------
// Pipet

#[test]
fn pipet_identify_answers_the_reference_example() {
    let server = Server::start_demo();
    let reply = identify(
        &server,
        "id.USER=pa5xq0lz4n80&ctx.loggedIn=true&test=buttoncolortst,newfeaturerollout&prforceGroups=buttoncolortst2",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    let doc = reply.json();
    assert_eq!(doc["meta"], json!({"status": 200}));
    let data = &doc["data"];
    assert_eq!(
        data["groups"],
        json!({
            "buttoncolortst": {"name": "green", "value": 2, "payload": {"stringValue": "#3DFF33"}, "version": "1"},
            "newfeaturerollout": {"name": "active", "value": 0, "version": "1"}
        })
    );
    assert!(data["groups"]["newfeaturerollout"].as_object().expect("object").get("payload").is_none());
    // Every configured variable, converted, with defaults for the absent ones.
    assert_eq!(data["context"], json!({"country": "US", "loggedIn": true, "plan": "free", "ua": ""}));
    let audit = &data["audit"];
    assert_eq!(audit["version"], json!(dev_version(&server)));
    assert!(audit["updated"].as_i64().is_some_and(|t| t > 0), "{audit}");
    assert!(audit["updatedDate"].as_str().is_some_and(is_proctor_date), "{audit}");
    assert_eq!(audit["updatedBy"], "demo");
    assert_eq!(audit.as_object().expect("audit").len(), 4, "{audit}");
}

#[test]
fn pipet_identify_test_parameter_and_repeated_parameters() {
    let server = Server::start_demo();
    let version = dev_version(&server);

    // `test=` present but empty, or only commas: no tests, audit still there.
    for query in ["id.USER=u_1&test=", "id.USER=u_1&test=,,", "id.USER=u_1&test=%20,%20"] {
        let reply = identify(&server, query);
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        let data = &reply.json()["data"];
        assert_eq!(data["groups"], json!({}), "{query}");
        assert_eq!(data["audit"]["version"], json!(version), "{query}");
    }

    // Absent: every test that gets a bucket.
    let all = identify(&server, "id.USER=u_1&ctx.loggedIn=true").json();
    let groups = all["data"]["groups"].as_object().expect("groups");
    for test in ["buttoncolortst", "checkout-v2", "ui-theme"] {
        assert!(groups.contains_key(test), "{test} missing from {groups:?}");
    }
    // checkout-v2 targets u_1.
    assert_eq!(groups["checkout-v2"]["value"], 1);
    // ... and the matrix has no other tests than these five.
    let matrix = pipet(&server, "/proctor/matrix").json();
    let tests: HashSet<&String> = matrix["tests"].as_object().expect("tests").keys().collect();
    assert!(groups.keys().all(|k| tests.contains(k)));

    // Unknown names are ignored; names are trimmed.
    let reply = identify(&server, "id.USER=u_1&test=nope,%20checkout-v2%20,,also-nope");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let groups = reply.json()["data"]["groups"].clone();
    assert_eq!(groups.as_object().expect("groups").keys().collect::<Vec<_>>(), vec!["checkout-v2"]);

    // Repeated parameters: the first wins (test, ctx.*, id.*, prforceGroups).
    let reply = identify(&server, "id.USER=u_1&test=checkout-v2&test=ui-theme&ctx.loggedIn=True&ctx.loggedIn=false");
    let data = reply.json()["data"].clone();
    assert_eq!(data["groups"].as_object().expect("groups").keys().collect::<Vec<_>>(), vec!["checkout-v2"]);
    assert_eq!(data["context"]["loggedIn"], true);
    let first = identify(&server, "id.USER=u_1&id.USER=someone-else&test=checkout-v2").json();
    assert_eq!(first["data"]["groups"]["checkout-v2"]["value"], 1, "u_1 (first) is targeted");
    let forced = identify(&server, "id.USER=u_1&test=buttoncolortst&prforceGroups=buttoncolortst1&prforceGroups=buttoncolortst2").json();
    assert_eq!(forced["data"]["groups"]["buttoncolortst"]["value"], 1);
}

#[test]
fn pipet_identify_identifiers() {
    let server = Server::start_demo();
    // No configured identifier: the exact 400 envelope.
    for query in ["test=checkout-v2", "", "id.COMPANY=x&ctx.country=US", "id.user=lowercase-name-is-not-USER"] {
        let reply = identify(&server, query);
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert_eq!(
            reply.json(),
            json!({"data": {}, "meta": {"status": 400, "error": "Request must have at least one identifier."}}),
            "{query}"
        );
        assert_json_content_type(&reply);
    }
    // An empty identifier counts as present and is hashed.
    let reply = identify(&server, "id.USER=&test=checkout-v2,buttoncolortst");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let groups = reply.json()["data"]["groups"].clone();
    assert!(groups["checkout-v2"]["value"].is_i64(), "{groups}");
    assert!(groups["buttoncolortst"]["value"].is_i64(), "{groups}");
    // ACCOUNT is read from its sourceKey, `id.account`; a USER test needs a USER identifier.
    let reply = identify(&server, "id.account=a1&test=checkout-v2");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["data"]["groups"], json!({}));
    let reply = identify(&server, "id.ACCOUNT=a1&test=checkout-v2");
    assert_eq!(reply.status, 400, "id.ACCOUNT is not the configured parameter (id.account): {}", reply.body);
}

#[test]
fn pipet_identify_boolean_conversion() {
    let server = Server::start_demo();
    // pa5xq0lz4n80 gets `active` in newfeaturerollout when the rule ${loggedIn} holds.
    for (raw, expected) in
        [("True", true), ("TRUE", true), ("true", true), ("1", true), ("yes", false), ("0", false), ("", false), ("on", false)]
    {
        let reply = identify(&server, &format!("id.USER=pa5xq0lz4n80&test=newfeaturerollout&ctx.loggedIn={raw}"));
        assert_eq!(reply.status, 200, "{raw:?}: {}", reply.body);
        let data = reply.json()["data"].clone();
        assert_eq!(data["context"]["loggedIn"], json!(expected), "{raw:?}");
        let eligible = data["groups"].get("newfeaturerollout").is_some();
        assert_eq!(eligible, expected, "{raw:?}: {}", data["groups"]);
    }
    // The default (false) when absent.
    let data = identify(&server, "id.USER=pa5xq0lz4n80&test=newfeaturerollout").json()["data"].clone();
    assert_eq!(data["context"]["loggedIn"], false);
    assert_eq!(data["groups"], json!({}));
}

/// Creates a project with typed variables and returns its development SDK key.
fn typed_project(server: &Server) -> String {
    let body = json!({
        "key": "typed",
        "schema": {
            "context": {
                "age": {"source": "QUERY", "type": "int", "defaultValue": "30"},
                "score": {"source": "QUERY", "type": "double", "defaultValue": 0},
                "letter": {"source": "HEADER", "sourceKey": "X-Letter", "type": "char", "defaultValue": "a"},
                "country": {"source": "QUERY", "type": "String"}
            },
            "identifiers": {"USER": {"source": "QUERY"}, "ACCOUNT": {"source": "HEADER", "sourceKey": "X-Account"}}
        }
    });
    let reply = server.admin("POST", "/projects", Some(&body.to_string()));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = server.admin("POST", "/projects/typed/environments/development/sdk-keys", Some("{}"));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let key = reply.json()["key"].as_str().expect("key").to_string();
    let definition = json!({
        "testType": "USER", "salt": "adults",
        "buckets": [{"name": "on", "value": 1}],
        "allocations": [{"rule": "${age >= 18}", "ranges": [{"length": 1.0, "bucketValue": 1}]}]
    });
    let body = json!({"definition": definition, "comment": "adults"}).to_string();
    let reply = server.admin("PUT", "/projects/typed/environments/development/tests/adults", Some(&body));
    assert_eq!(reply.status, 200, "{}", reply.body);
    key
}

#[test]
fn pipet_typed_variables_convert_or_refuse_with_pipets_messages() {
    let server = Server::start_demo();
    let key = typed_project(&server);
    let root = format!("{}/pipet/{key}", server.base());
    let get = |query: &str, headers: &[(&str, &str)]| {
        server.call_with("GET", &format!("{root}/groups/identify?{query}"), None, None, headers)
    };

    let reply = get("id.USER=a&ctx.country=US&ctx.age=abc", &[]);
    assert_pipet_error(
        &reply,
        400,
        "Could not convert raw value 'abc' to type 'java.lang.Integer' for context variable 'age': NumberFormatException",
    );
    let reply = get("id.USER=a&ctx.country=US&ctx.age=99999999999", &[]);
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.json()["meta"]["error"]
        .as_str()
        .is_some_and(|m| m.starts_with("Could not convert raw value '99999999999' to type 'java.lang.Integer' for context variable 'age': ")));
    let reply = get("id.USER=a&ctx.country=US", &[("X-Letter", "ab")]);
    assert_pipet_error(
        &reply,
        400,
        "Could not convert raw value 'ab' to type 'java.lang.Character' for context variable 'letter': Parameter was length 2 but expecting length 1.",
    );
    // A variable without a default that the request lacks.
    let reply = get("id.USER=a&ctx.age=40", &[]);
    assert_pipet_error(&reply, 400, "Required variable 'country' not found by 'QUERY:ctx.country'. See the pipet configuration.");

    // Good values convert; the header source works; the converted age drives the rule.
    let reply = get("id.USER=a&ctx.country=FR&ctx.age=%2B40&ctx.score=1e3&test=adults", &[("X-Letter", "z")]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = reply.json()["data"].clone();
    assert_eq!(data["context"], json!({"age": 40, "score": 1000.0, "letter": "z", "country": "FR"}));
    assert_eq!(data["groups"]["adults"]["name"], "on");
    let data = get("id.USER=a&ctx.country=FR&ctx.age=12", &[]).json()["data"].clone();
    assert_eq!(data["groups"], json!({}), "age 12 is not eligible");
    assert_eq!(data["context"]["letter"], "a", "the default");
    // A header identifier.
    let reply = get("ctx.country=FR", &[("X-Account", "acct-1")]);
    assert_eq!(reply.status, 200, "a header identifier counts: {}", reply.body);

    // /config/context: computed sourceKey, canonical Java type, defaultValue as text.
    let reply = server.call("GET", &format!("{root}/config/context"), None, None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["data"],
        json!({
            "age": {"source": "QUERY", "sourceKey": "ctx.age", "type": "java.lang.Integer", "defaultValue": "30"},
            "score": {"source": "QUERY", "sourceKey": "ctx.score", "type": "java.lang.Double", "defaultValue": "0"},
            "letter": {"source": "HEADER", "sourceKey": "X-Letter", "type": "java.lang.Character", "defaultValue": "a"},
            "country": {"source": "QUERY", "sourceKey": "ctx.country", "type": "java.lang.String"}
        })
    );
    let reply = server.call("GET", &format!("{root}/config/identifiers"), None, None);
    assert_eq!(
        reply.json()["data"],
        json!({"USER": {"source": "QUERY", "sourceKey": "id.USER"}, "ACCOUNT": {"source": "HEADER", "sourceKey": "X-Account"}})
    );

    // OFREP converts by the same schema and refuses a bad value as INVALID_CONTEXT.
    let body = json!({"context": {"targetingKey": "u", "age": "x", "country": "US"}}).to_string();
    let reply = server.call("POST", "/ofrep/v1/evaluate/flags/adults", Some(&key), Some(&body));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["errorCode"], "INVALID_CONTEXT");
    let body = json!({"context": {"targetingKey": "u", "age": 21}}).to_string();
    let reply = server.call("POST", "/ofrep/v1/evaluate/flags/adults", Some(&key), Some(&body));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["variant"], "on");
}

#[test]
fn pipet_matrix_audit_definition_and_config() {
    let server = Server::start_demo();
    let version = dev_version(&server);

    // The raw artifact, no envelope.
    let reply = pipet(&server, "/proctor/matrix");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    let matrix = reply.json();
    let top: Vec<&String> = matrix.as_object().expect("object").keys().collect();
    assert_eq!(top.len(), 2, "{top:?}");
    assert!(matrix.get("data").is_none() && matrix.get("meta").is_none());
    assert_eq!(matrix["audit"]["version"], json!(version));
    assert_eq!(matrix["audit"]["updatedBy"], "demo");
    let tests = matrix["tests"].as_object().expect("tests");
    let names: HashSet<&str> = tests.keys().map(String::as_str).collect();
    assert_eq!(names, HashSet::from(["buttoncolortst", "countryalgotst", "newfeaturerollout", "checkout-v2", "ui-theme"]));
    assert_eq!(tests["buttoncolortst"]["version"], "1");
    assert_eq!(tests["buttoncolortst"]["buckets"][3]["payload"], json!({"stringValue": "#3DFF33"}));
    assert_eq!(tests["buttoncolortst"]["allocations"][0]["ranges"][1]["length"], json!(0.3));

    // The audit in an envelope.
    let reply = pipet(&server, "/proctor/matrix/audit");
    assert_eq!(reply.status, 200);
    assert_json_content_type(&reply);
    let doc = reply.json();
    assert_eq!(doc["meta"], json!({"status": 200}));
    assert_eq!(doc["data"], matrix["audit"]);

    // One definition in an envelope, or Pipet's 404.
    let reply = pipet(&server, "/proctor/matrix/definition/ui-theme");
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert_eq!(doc["meta"], json!({"status": 200}));
    assert_eq!(doc["data"]["salt"], "ui-theme");
    assert_eq!(doc["data"]["testType"], "USER");
    assert_eq!(doc["data"]["buckets"], tests["ui-theme"]["buckets"]);
    assert_pipet_error(
        &pipet(&server, "/proctor/matrix/definition/no-such-test"),
        404,
        "'no-such-test' test definition not found in test matrix.",
    );

    // Context and identifier configuration (any method).
    for method in ["GET", "POST"] {
        let reply = server.call(method, &format!("{}/config/context", root(&server)), None, None);
        assert_eq!(reply.status, 200, "{method}: {}", reply.body);
        assert_eq!(
            reply.json(),
            json!({"data": {
                "country": {"source": "QUERY", "sourceKey": "ctx.country", "type": "java.lang.String", "defaultValue": "US"},
                "loggedIn": {"source": "QUERY", "sourceKey": "ctx.loggedIn", "type": "java.lang.Boolean", "defaultValue": "false"},
                "plan": {"source": "QUERY", "sourceKey": "ctx.plan", "type": "java.lang.String", "defaultValue": "free"},
                "ua": {"source": "QUERY", "sourceKey": "ctx.ua", "type": "java.lang.String", "defaultValue": ""}
            }, "meta": {"status": 200}})
        );
        let reply = server.call(method, &format!("{}/config/identifiers", root(&server)), None, None);
        assert_eq!(reply.status, 200, "{method}: {}", reply.body);
        assert_eq!(
            reply.json(),
            json!({"data": {
                "USER": {"source": "QUERY", "sourceKey": "id.USER"},
                "ACCOUNT": {"source": "QUERY", "sourceKey": "id.account"}
            }, "meta": {"status": 200}})
        );
    }
}

#[test]
fn pipet_unknown_keys_and_paths() {
    let server = Server::start_demo();
    let base = server.base().to_string();
    let message = |reply: &Reply| reply.json()["meta"]["error"].as_str().unwrap_or_default().to_string();
    for path in ["/groups/identify?id.USER=a", "/proctor/matrix", "/proctor/matrix/audit", "/config/context", "/elsewhere"] {
        let reply = server.call("GET", &format!("{base}/pipet/sdk-not-a-real-key{path}"), None, None);
        assert_eq!(reply.status, 401, "{path}: {}", reply.body);
        let doc = reply.json();
        assert_eq!(doc["data"], json!({}), "{path}");
        assert_eq!(doc["meta"]["status"], 401, "{path}");
        assert!(!message(&reply).is_empty(), "{path}");
        assert_json_content_type(&reply);
    }
    // Another environment's key is a different root, not an error.
    let staging = format!("{base}/pipet/{}", server.var("AVSB_SDK_KEY_STAGING"));
    let reply = server.call("GET", &format!("{staging}/proctor/matrix/audit"), None, None);
    assert_eq!(reply.status, 200);
    assert_ne!(reply.json()["data"]["version"], json!(dev_version(&server)));

    for path in ["/groups", "/groups/identify/more", "/proctor/version", "/proctor/matrix/definition/a/b", "/nope"] {
        let reply = pipet(&server, path);
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        let doc = reply.json();
        assert_eq!(doc["data"], json!({}), "{path}");
        assert_eq!(doc["meta"]["status"], 404, "{path}");
        assert!(!message(&reply).is_empty(), "{path}");
        assert_json_content_type(&reply);
    }
}

#[test]
fn pipet_malformed_paths_still_get_pipet_envelopes() {
    let server = Server::start_demo();
    let root = root(&server);
    for (method, path) in [("GET", "/proctor/matrix/definition/%FF"), ("GET", "/"), ("POST", "/groups/identify?id.USER=a")] {
        let reply = raw(method, &format!("{root}{path}"), &[], None).expect("answer");
        assert!((400..500).contains(&reply.status), "{method} {path}: {}", reply.status);
        assert_json_content_type(&reply);
        let doc: Value = serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {:?}", reply.body));
        assert_eq!(doc["data"], json!({}), "{method} {path}: {}", reply.body);
        assert_eq!(doc["meta"]["status"], json!(reply.status), "{method} {path}: {}", reply.body);
    }
}

// ---------------------------------------------------------------------------------------------
// OFREP

#[test]
fn ofrep_single_evaluation() {
    let server = Server::start_demo();
    let version = dev_version(&server);
    let reply = ofrep(&server, Some("checkout-v2"), Some(r#"{"context": {"targetingKey": "u_1"}}"#));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    assert_eq!(
        reply.json(),
        json!({
            "key": "checkout-v2", "value": true, "variant": "on", "reason": "TARGETING_MATCH",
            "metadata": {"bucketValue": 1, "testVersion": "1", "matrixVersion": version}
        })
    );

    // ui-theme: a string flag split 90/10 by default; "dark" for pro plans.
    let doc = ofrep(&server, Some("ui-theme"), Some(r#"{"context": {"targetingKey": "u_2"}}"#)).json();
    assert_eq!(doc["reason"], "SPLIT", "{doc}");
    assert!(doc["value"].is_string(), "{doc}");
    assert_eq!(doc["value"], doc["variant"], "the payload equals the bucket name in the demo: {doc}");
    let doc = ofrep(&server, Some("ui-theme"), Some(r#"{"context": {"targetingKey": "u_2", "plan": "pro"}}"#)).json();
    assert_eq!((doc["value"].as_str(), doc["variant"].as_str(), doc["reason"].as_str()), (Some("dark"), Some("dark"), Some("TARGETING_MATCH")));

    // A test without a payload: no value (the caller's default applies), but a variant.
    let doc = ofrep(&server, Some("countryalgotst"), Some(r#"{"context": {"targetingKey": "u_3"}}"#)).json();
    assert!(doc.get("value").is_none(), "{doc}");
    assert!(doc.get("variant").is_some(), "{doc}");

    // Unknown flag.
    let reply = ofrep(&server, Some("no-such-flag"), Some(r#"{"context": {"targetingKey": "u_1"}}"#));
    assert_eq!(reply.status, 404, "{}", reply.body);
    let doc = reply.json();
    assert_eq!(doc["key"], "no-such-flag");
    assert_eq!(doc["errorCode"], "FLAG_NOT_FOUND");
    assert!(doc["errorDetails"].as_str().is_some_and(|d| !d.is_empty()), "{doc}");
}

#[test]
fn ofrep_errors_and_authentication() {
    let server = Server::start_demo();
    let error = |reply: &Reply, status: u16, code: &str| {
        assert_eq!(reply.status, status, "{}", reply.body);
        let doc = reply.json();
        assert_eq!(doc["errorCode"], code, "{doc}");
        assert_eq!(doc["key"], "checkout-v2", "{doc}");
        assert!(doc["errorDetails"].as_str().is_some_and(|d| !d.is_empty()), "{doc}");
    };
    // No body, no context, no targetingKey: checkout-v2 hashes USER identifiers.
    error(&ofrep(&server, Some("checkout-v2"), None), 400, "TARGETING_KEY_MISSING");
    for body in ["", "{}", r#"{"context": null}"#, r#"{"context": {}}"#, r#"{"context": {"plan": "pro"}}"#] {
        error(&ofrep(&server, Some("checkout-v2"), Some(body)), 400, "TARGETING_KEY_MISSING");
    }
    // A USER attribute stands in for the targetingKey.
    let reply = ofrep(&server, Some("checkout-v2"), Some(r#"{"context": {"USER": "u_1"}}"#));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["value"], true);
    // Invalid JSON.
    for body in [r#"{"context":"#, "not json", r#"{"context": {"targetingKey": "u_1"}} trailing"#] {
        error(&ofrep(&server, Some("checkout-v2"), Some(body)), 400, "PARSE_ERROR");
    }
    // A context that is not an object; a variable given an object or array; a targetingKey object.
    for body in [
        r#"{"context": [1, 2]}"#,
        r#"{"context": "u_1"}"#,
        r#"{"context": {"targetingKey": "u_1", "plan": {"a": 1}}}"#,
        r#"{"context": {"targetingKey": "u_1", "country": ["US"]}}"#,
        r#"{"context": {"targetingKey": {"id": "u_1"}}}"#,
    ] {
        error(&ofrep(&server, Some("checkout-v2"), Some(body)), 400, "INVALID_CONTEXT");
    }
    // Unknown attributes are ignored.
    let reply = ofrep(&server, Some("checkout-v2"), Some(r#"{"context": {"targetingKey": "u_1", "whatever": {"x": [1]}}}"#));
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Authentication: missing or invalid bearer -> 401; X-API-Key works; admin tokens are no SDK keys.
    let body = Some(r#"{"context": {"targetingKey": "u_1"}}"#);
    for flag in [Some("checkout-v2"), None] {
        let path = flag.map_or("/ofrep/v1/evaluate/flags".to_string(), |f| format!("/ofrep/v1/evaluate/flags/{f}"));
        assert_eq!(server.call("POST", &path, None, body).status, 401);
        assert_eq!(server.call("POST", &path, Some("sdk-not-a-real-key"), body).status, 401);
        assert_eq!(server.call("POST", &path, Some(server.var("AVSB_ADMIN_TOKEN")), body).status, 401);
        let reply = server.call_with("POST", &path, None, body, &[("X-API-Key", &sdk_key(&server))]);
        assert_eq!(reply.status, 200, "X-API-Key on {path}: {}", reply.body);
        let reply = server.call_with("POST", &path, None, body, &[("X-API-Key", "sdk-not-a-real-key")]);
        assert_eq!(reply.status, 401);
    }
}

#[test]
fn ofrep_float_flags_serialize_as_json_floats() {
    let server = Server::start_demo();
    put_test(&server, "float-flag", &float_flag());
    let reply = ofrep(&server, Some("float-flag"), Some(r#"{"context": {"targetingKey": "u_1"}}"#));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains(r#""value":1.0"#), "{}", reply.body);
    assert!(reply.json()["value"].is_f64());
    let reply = ofrep(&server, None, Some(r#"{"context": {"targetingKey": "u_1"}}"#));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let item_start = reply.body.find(r#""key":"float-flag""#).expect("float-flag in the bulk answer");
    let item = &reply.body[item_start..];
    let item = &item[..item.find("}}").expect("end of the item")];
    assert!(item.contains(r#""value":1.0"#), "{item}");
}

#[test]
fn ofrep_bulk_evaluation_with_etags() {
    let server = Server::start_demo();
    put_test(&server, "account-flag", &account_flag());
    let body = r#"{"context": {"targetingKey": "u_1"}}"#;
    let reply = ofrep(&server, None, Some(body));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    let etag = reply.header("etag").expect("ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");
    let doc = reply.json();
    let flags: BTreeMap<String, Value> = doc["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| (f["key"].as_str().expect("key").to_string(), f.clone()))
        .collect();
    assert_eq!(flags.len(), 6, "{doc}");
    // A success item.
    assert_eq!(flags["checkout-v2"]["value"], true);
    assert_eq!(flags["checkout-v2"]["variant"], "on");
    assert_eq!(flags["checkout-v2"]["reason"], "TARGETING_MATCH");
    assert!(flags["checkout-v2"].get("errorCode").is_none());
    // A failure item: the context has no ACCOUNT identifier.
    assert_eq!(flags["account-flag"]["errorCode"], "TARGETING_KEY_MISSING", "{}", flags["account-flag"]);
    assert!(flags["account-flag"]["errorDetails"].is_string());
    assert!(flags["account-flag"].get("value").is_none());
    // Every success item carries a variant (the Python provider reads it with []).
    for (key, flag) in &flags {
        assert!(flag.get("errorCode").is_some() || flag.get("variant").is_some(), "{key}: {flag}");
    }
    // With the ACCOUNT identifier too, the item succeeds.
    let reply = ofrep(&server, None, Some(r#"{"context": {"targetingKey": "u_1", "ACCOUNT": "a1"}}"#));
    let doc = reply.json();
    let item = doc["flags"].as_array().expect("flags").iter().find(|f| f["key"] == "account-flag").expect("account-flag").clone();
    assert_eq!(item["value"], true, "{item}");

    // If-None-Match with the tag: 304, no body.
    let reply = server.call_with("POST", "/ofrep/v1/evaluate/flags", Some(&sdk_key(&server)), Some(body), &[("If-None-Match", &etag)]);
    assert_eq!(reply.status, 304, "{}", reply.body);
    assert!(reply.body.is_empty(), "{:?}", reply.body);
    // Another tag: 200.
    let reply = server.call_with("POST", "/ofrep/v1/evaluate/flags", Some(&sdk_key(&server)), Some(body), &[("If-None-Match", "\"other\"")]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("etag"), Some(etag.as_str()));
    // Another context: another tag.
    let other = ofrep(&server, None, Some(r#"{"context": {"targetingKey": "u_2"}}"#));
    assert_eq!(other.status, 200);
    assert_ne!(other.header("etag"), Some(etag.as_str()));
    // After a matrix edit the tag changes and the old one no longer matches.
    put_test(&server, "float-flag", &float_flag());
    let reply = server.call_with("POST", "/ofrep/v1/evaluate/flags", Some(&sdk_key(&server)), Some(body), &[("If-None-Match", &etag)]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let new_etag = reply.header("etag").expect("ETag").to_string();
    assert_ne!(new_etag, etag);
    assert!(reply.json()["flags"].as_array().expect("flags").iter().any(|f| f["key"] == "float-flag"));
    let reply = server.call_with("POST", "/ofrep/v1/evaluate/flags", Some(&sdk_key(&server)), Some(body), &[("If-None-Match", &new_etag)]);
    assert_eq!(reply.status, 304);

    // Whole-request failures: {errorCode, errorDetails}.
    for (body, code) in [("{", "PARSE_ERROR"), (r#"{"context": 5}"#, "INVALID_CONTEXT")] {
        let reply = ofrep(&server, None, Some(body));
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json()["errorCode"], code, "{body}");
        assert!(reply.json()["errorDetails"].is_string());
    }
}

// ---------------------------------------------------------------------------------------------
// SDK datafile and stream

#[test]
fn sdk_datafile_with_etag() {
    let server = Server::start_demo();
    let key = sdk_key(&server);
    let reply = server.call("GET", "/sdk/v1/datafile", Some(&key), None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    let etag = reply.header("etag").expect("ETag").to_string();
    let doc = reply.json();
    assert_eq!(doc["project"], "demo");
    assert_eq!(doc["environment"], "development");
    assert_eq!(doc["version"], json!(dev_version(&server)));
    assert!(doc["schema"]["context"]["loggedIn"].is_object(), "{}", doc["schema"]);
    assert!(doc["schema"]["identifiers"]["USER"].is_object(), "{}", doc["schema"]);
    assert!(doc["matrix"]["tests"]["checkout-v2"].is_object());
    assert_eq!(doc["matrix"]["audit"]["version"], doc["version"]);

    let reply = server.call_with("GET", "/sdk/v1/datafile", Some(&key), None, &[("If-None-Match", &etag)]);
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    let reply = server.call_with("GET", "/sdk/v1/datafile", None, None, &[("X-API-Key", &key), ("If-None-Match", &etag)]);
    assert_eq!(reply.status, 304);

    // Staging has its own datafile.
    let staging = server.call("GET", "/sdk/v1/datafile", Some(server.var("AVSB_SDK_KEY_STAGING")), None);
    assert_eq!(staging.json()["environment"], "staging");
    assert_ne!(staging.header("etag"), Some(etag.as_str()));

    // After an edit: a new tag, and the new test is in the datafile.
    let version = put_test(&server, "float-flag", &float_flag());
    let reply = server.call_with("GET", "/sdk/v1/datafile", Some(&key), None, &[("If-None-Match", &etag)]);
    assert_eq!(reply.status, 200);
    assert_ne!(reply.header("etag"), Some(etag.as_str()));
    let doc = reply.json();
    assert_eq!(doc["version"], json!(version));
    assert_eq!(doc["matrix"]["tests"]["float-flag"]["buckets"][0]["payload"], json!({"doubleValue": 1.0}));

    // Wrong or missing key.
    for auth in [Some("sdk-not-a-real-key"), None, Some(server.var("AVSB_ADMIN_TOKEN"))] {
        let reply = server.call("GET", "/sdk/v1/datafile", auth, None);
        assert_eq!(reply.status, 401, "{auth:?}: {}", reply.body);
        assert!(reply.json()["error"]["code"].is_string());
    }
}

#[test]
fn sdk_stream_sends_the_datafile_then_every_change_within_a_second() {
    let server = Server::start_demo();
    let key = sdk_key(&server);
    let datafile = server.call("GET", "/sdk/v1/datafile", Some(&key), None);
    let mut stream = Sse::open(&server, &key, None);
    assert_eq!(stream.status, 200);
    assert!(stream.headers.get("content-type").is_some_and(|t| t.starts_with("text/event-stream")), "{:?}", stream.headers);
    let first = stream.next_event(Duration::from_secs(5));
    assert_eq!(first.event, "datafile");
    assert_eq!(first.id, datafile.header("etag").expect("etag").trim_matches('"'));
    let doc: Value = serde_json::from_str(&first.data).expect("data is JSON");
    assert_eq!(doc, datafile.json());

    // The stream counts in the metrics.
    let metrics = server.call("GET", "/metrics", None, None).body;
    assert!(metrics.lines().any(|l| l == "avsb_stream_clients 1"), "{metrics}");

    for round in 0..3 {
        let started = Instant::now();
        let version = put_test(&server, &format!("pushed-{round}"), &float_flag());
        let event = stream.next_event(Duration::from_secs(5));
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(1), "round {round}: the new datafile took {elapsed:?}");
        assert_eq!(event.event, "datafile");
        let doc: Value = serde_json::from_str(&event.data).expect("data is JSON");
        assert_eq!(doc["version"], json!(version));
        assert!(doc["matrix"]["tests"][format!("pushed-{round}")].is_object());
        assert_eq!(event.id, format!("{version}.1"));
    }
    // Edits to other environments are not sent.
    let body = json!({"definition": float_flag()}).to_string();
    let reply = server.admin("PUT", "/projects/demo/environments/staging/tests/elsewhere", Some(&body));
    assert_eq!(reply.status, 200);
    stream.assert_no_event(Duration::from_millis(500));

    stream.close();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = server.call("GET", "/metrics", None, None).body;
        if metrics.lines().any(|l| l == "avsb_stream_clients 0") {
            break;
        }
        assert!(Instant::now() < deadline, "the closed stream is still counted: {metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sdk_stream_heartbeats() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(data.path(), &["--demo", "--heartbeat-secs", "1"]);
    let mut stream = Sse::open(&server, &sdk_key(&server), None);
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
fn sdk_stream_resumes_from_last_event_id() {
    let server = Server::start_demo();
    let key = sdk_key(&server);
    let mut stream = Sse::open(&server, &key, None);
    let first = stream.next_event(Duration::from_secs(5));
    let old_id = first.id.clone();
    stream.close();

    // Nothing changed: no initial event. The first event is the next change.
    let mut resumed = Sse::open(&server, &key, Some(&old_id));
    assert_eq!(resumed.status, 200);
    resumed.assert_no_event(Duration::from_millis(800));
    let version = put_test(&server, "after-resume", &float_flag());
    let event = resumed.next_event(Duration::from_secs(2));
    assert_eq!(event.id, format!("{version}.1"), "the first event must be the new revision");
    let new_id = event.id.clone();
    resumed.close();

    // An older id: the current datafile at once.
    let started = Instant::now();
    let mut behind = Sse::open(&server, &key, Some(&old_id));
    let event = behind.next_event(Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(event.id, new_id);
    let doc: Value = serde_json::from_str(&event.data).expect("JSON");
    assert!(doc["matrix"]["tests"]["after-resume"].is_object());
    // An id the server never issued: the current datafile too.
    let mut unknown = Sse::open(&server, &key, Some("garbage-id"));
    assert_eq!(unknown.next_event(Duration::from_secs(2)).id, new_id);
    // The current id: nothing.
    let mut current = Sse::open(&server, &key, Some(&new_id));
    current.assert_no_event(Duration::from_millis(500));

    // A wrong key: 401 and no stream.
    let refused = Sse::open(&server, "sdk-not-a-real-key", None);
    assert_eq!(refused.status, 401);
}

#[test]
fn sdk_stream_ends_when_its_key_is_revoked() {
    let server = Server::start_demo();
    let reply = server.admin("POST", &format!("{DEV}/sdk-keys"), Some("{}"));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let created = reply.json();
    let key = created["key"].as_str().expect("key").to_string();
    let mut stream = Sse::open(&server, &key, None);
    stream.next_event(Duration::from_secs(5));
    let reply = server.admin("DELETE", &format!("{DEV}/sdk-keys/{}", created["id"]), None);
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(server.call("GET", "/sdk/v1/datafile", Some(&key), None).status, 401);
    put_test(&server, "after-revocation", &float_flag());
    loop {
        match stream.next(Duration::from_secs(2)) {
            Item::Eof => break,
            Item::Comment(_) => continue,
            Item::Event(e) => panic!("a revoked key received datafile {}", e.id),
            Item::Timeout => panic!("the revoked key's stream is still open"),
        }
    }
}

#[test]
fn sdk_stream_ends_on_sigterm_and_the_server_exits_promptly() {
    let mut server = Server::start_demo();
    let key = sdk_key(&server);
    let mut streams: Vec<Sse> = (0..3).map(|_| Sse::open(&server, &key, None)).collect();
    for stream in &mut streams {
        stream.next_event(Duration::from_secs(5));
    }
    let started = Instant::now();
    let code = server.stop();
    let elapsed = started.elapsed();
    assert_eq!(code, Some(0));
    assert!(elapsed < Duration::from_secs(3), "the server took {elapsed:?} to stop with open streams");
    for stream in &mut streams {
        loop {
            match stream.next(Duration::from_secs(2)) {
                Item::Eof => break,
                Item::Comment(_) => continue,
                other => panic!("expected the stream to end, got {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events

fn exposure(user: &str) -> Value {
    json!({"kind": "exposure", "identifiers": {"USER": user}, "test": "checkout-v2", "bucket": 1, "bucketName": "on", "version": "1"})
}

fn track(user: &str) -> Value {
    json!({"kind": "track", "identifiers": {"USER": user, "ACCOUNT": 42}, "key": "purchase", "value": 9.5, "properties": {"sku": "a-1"}, "time": now_millis() - 1000})
}

fn post_events(server: &Server, body: &str) -> Reply {
    server.call("POST", "/sdk/v1/events", Some(&sdk_key(server)), Some(body))
}

#[test]
fn events_are_stored_and_survive_a_restart() {
    let mut server = Server::start_demo();
    let before: HashMap<String, String> = server.env.clone();
    let reply = post_events(&server, &json!({"events": [exposure("u_1"), track("u_1")]}).to_string());
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json(), json!({"accepted": 2}));
    // A bare array is accepted too; an empty batch stores nothing.
    let reply = post_events(&server, &json!([exposure("u_2")]).to_string());
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json(), json!({"accepted": 1}));
    assert_eq!(post_events(&server, r#"{"events": []}"#).json(), json!({"accepted": 0}));

    let events = stored_events(&server);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["kind"], "exposure");
    assert_eq!(events[0]["identifiers"], json!({"USER": "u_1"}));
    assert_eq!(events[0]["test"], "checkout-v2");
    assert_eq!(events[0]["bucket"], 1);
    assert_eq!(events[1]["kind"], "track");
    assert_eq!(events[1]["key"], "purchase");
    assert_eq!(events[1]["value"], 9.5);
    assert_eq!(events[1]["properties"], json!({"sku": "a-1"}));
    assert_eq!(events[1]["identifiers"]["ACCOUNT"], "42");
    assert_eq!(events[2]["identifiers"], json!({"USER": "u_2"}));
    // Other environments hold none.
    let staging = server.admin("GET", "/projects/demo/environments/staging/events", None);
    assert_eq!(staging.json()["events"], json!([]));
    let version = put_test(&server, "float-flag", &float_flag());

    // Restart on the same data directory.
    let data = server.data.take().expect("temp dir");
    assert_eq!(server.stop(), Some(0));
    let server = Server::start_in(data.path(), &["--demo"]);
    assert_eq!(stored_events(&server), events);
    for name in ["AVSB_SDK_KEY", "AVSB_SDK_KEY_STAGING", "AVSB_SDK_KEY_PRODUCTION", "AVSB_ADMIN_TOKEN"] {
        assert_eq!(server.var(name), before[name], "{name} changed across the restart");
    }
    let projects = server.admin("GET", "/projects", None).json();
    let keys: Vec<&str> = projects["projects"].as_array().expect("projects").iter().filter_map(|p| p["key"].as_str()).collect();
    assert_eq!(keys, vec!["demo"]);
    assert_eq!(dev_version(&server), version, "the edit survived");
    // The old keys still work.
    assert_eq!(post_events(&server, &json!([track("u_3")]).to_string()).status, 202);
    assert_eq!(stored_events(&server).len(), 4);
    drop(server);
    drop(data);
}

#[test]
fn invalid_event_batches_are_refused_whole() {
    let server = Server::start_demo();
    assert_eq!(post_events(&server, &json!([exposure("u_0")]).to_string()).status, 202);
    let stored = stored_events(&server);
    assert_eq!(stored.len(), 1);

    let now = now_millis();
    let big_properties = json!({"blob": "x".repeat(9000)});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("missing kind", json!({"identifiers": {"USER": "u"}, "key": "k"}), "kind"),
        ("unknown kind", json!({"kind": "click", "identifiers": {"USER": "u"}, "key": "k"}), "kind"),
        ("missing identifiers", json!({"kind": "track", "key": "k"}), "identifiers"),
        ("empty identifiers", json!({"kind": "track", "identifiers": {}, "key": "k"}), "identifiers"),
        ("identifiers not an object", json!({"kind": "track", "identifiers": "u", "key": "k"}), "identifiers"),
        ("non-string identifier", json!({"kind": "track", "identifiers": {"USER": true}, "key": "k"}), "identifiers.USER"),
        ("object identifier", json!({"kind": "track", "identifiers": {"USER": {"id": 1}}, "key": "k"}), "identifiers.USER"),
        ("exposure without test", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "bucket": 1}), "test"),
        ("exposure without bucket", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "test": "t"}), "bucket"),
        ("bucket a string", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "test": "t", "bucket": "1"}), "bucket"),
        ("bucket a fraction", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "test": "t", "bucket": 1.5}), "bucket"),
        ("bucket too large", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "test": "t", "bucket": 4_294_967_296_i64}), "bucket"),
        ("track without key", json!({"kind": "track", "identifiers": {"USER": "u"}}), "key"),
        ("value a string", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "value": "9.5"}), "value"),
        ("properties not an object", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "properties": [1]}), "properties"),
        ("properties too large", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "properties": big_properties}), "properties"),
        ("time negative", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "time": -1}), "time"),
        ("time far future", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "time": now + 10 * 86_400_000}), "time"),
        ("time a string", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "time": "yesterday"}), "time"),
        ("event not an object", json!("track"), ""),
    ];
    for (what, bad, field) in &cases {
        // Two good events, then the bad one: index 2.
        let body = json!({"events": [exposure("u_1"), track("u_1"), bad]}).to_string();
        let reply = post_events(&server, &body);
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "invalid_event", "{what}: {error}");
        assert_eq!(error["index"], 2, "{what}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        let path = if field.is_empty() { "events[2]".to_string() } else { format!("events[2].{field}") };
        assert!(message.starts_with(&format!("{path}:")), "{what}: message {message:?} should name {path}");
    }

    // Non-finite values cannot be written in JSON: 1e999 overflows the parser.
    let body = r#"{"events": [{"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "value": 1e999}]}"#;
    let reply = post_events(&server, body);
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.json()["error"]["code"].is_string());
    for body in [r#"{"events": [{"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "value": NaN}]}"#, "not json", "", r#"{"events": 5}"#, "42"] {
        let reply = post_events(&server, body);
        assert_eq!(reply.status, 400, "{body:?}: {}", reply.body);
        assert!(reply.json()["error"]["code"].is_string(), "{body:?}");
    }
    // Too many events.
    let many: Vec<Value> = (0..1001).map(|i| exposure(&format!("u{i}"))).collect();
    let reply = post_events(&server, &json!({"events": many}).to_string());
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "too_many_events");
    // 1000 is fine (but would change the list; checked on its own below).
    // A body over 1 MiB.
    let huge = json!({"events": [exposure("u")], "padding": "x".repeat(1024 * 1024)}).to_string();
    let url = format!("{}/sdk/v1/events", server.base());
    let auth = format!("Bearer {}", sdk_key(&server));
    let reply = raw("POST", &url, &[("Authorization", &auth), ("Content-Type", "application/json")], Some(huge.as_bytes()))
        .expect("an answer to an oversized batch");
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "body_too_large");
    // Not UTF-8.
    let reply = raw("POST", &url, &[("Authorization", &auth)], Some(b"\xff\xfe{\"events\":[]}")).expect("answer");
    assert_eq!(reply.status, 400, "{}", reply.body);
    // Without a key.
    assert_eq!(server.call("POST", "/sdk/v1/events", None, Some("[]")).status, 401);

    assert_eq!(stored_events(&server), stored, "a refused batch stored something");

    let full: Vec<Value> = (0..1000).map(|i| exposure(&format!("u{i}"))).collect();
    let reply = post_events(&server, &json!({"events": full}).to_string());
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json(), json!({"accepted": 1000}));
}

// ---------------------------------------------------------------------------------------------
// Operations

fn metric_value(metrics: &str, line_prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(line_prefix) && l[line_prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn healthz_and_metrics() {
    let server = Server::start_demo();
    let reply = server.call("GET", "/healthz", None, None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");

    let key = sdk_key(&server);
    assert_eq!(identify(&server, "id.USER=u_1").status, 200);
    assert_eq!(identify(&server, "test=x").status, 400);
    assert_eq!(ofrep(&server, Some("checkout-v2"), Some(r#"{"context":{"targetingKey":"u"}}"#)).status, 200);
    assert_eq!(server.call("GET", "/sdk/v1/datafile", Some(&key), None).status, 200);
    assert_eq!(post_events(&server, &json!([exposure("u"), track("u")]).to_string()).status, 202);
    assert_eq!(post_events(&server, &json!([exposure("u"), {"kind": "nope"}]).to_string()).status, 400);
    // Paths holding the key that match no route, and a bad key in the Pipet root.
    assert_eq!(server.call("GET", &format!("/nowhere/{key}"), None, None).status, 404);
    assert_eq!(server.call("GET", &format!("/pipet/{key}x/groups/identify?id.USER=a"), None, None).status, 401);
    assert_eq!(raw("POST", &format!("{}/groups/identify", root(&server)), &[], Some(b"")).expect("answer").status, 405);

    let metrics_reply = server.call("GET", "/metrics", None, None);
    assert_eq!(metrics_reply.status, 200);
    let metrics = metrics_reply.body;
    assert!(
        metrics.contains(r#"avsb_http_requests_total{route="/pipet/{sdk_key}/groups/identify",method="GET",status="200"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"avsb_http_requests_total{route="/pipet/{sdk_key}/groups/identify",method="GET",status="400"} 1"#));
    assert!(metrics.contains(r#"route="/ofrep/v1/evaluate/flags/{key}""#));
    assert!(metrics.contains(r#"route="/sdk/v1/datafile""#));
    assert!(!metrics.contains(&key), "the SDK key leaked into /metrics");
    assert!(!metrics.contains(server.var("AVSB_ADMIN_TOKEN")));
    let version_line = r#"avsb_matrix_version{project="demo",environment="development"}"#;
    let version: f64 = dev_version(&server).parse().expect("numeric version");
    assert_eq!(metric_value(&metrics, version_line), Some(version), "{metrics}");
    assert!(metric_value(&metrics, r#"avsb_matrix_version{project="demo",environment="staging"}"#).is_some());
    assert_eq!(metric_value(&metrics, r#"avsb_events_accepted_total{kind="exposure"}"#), Some(1.0), "{metrics}");
    assert_eq!(metric_value(&metrics, r#"avsb_events_accepted_total{kind="track"}"#), Some(1.0), "{metrics}");
    assert_eq!(metric_value(&metrics, "avsb_events_rejected_total"), Some(2.0), "{metrics}");
    assert_eq!(metric_value(&metrics, "avsb_stream_clients"), Some(0.0), "{metrics}");

    let new_version: f64 = put_test(&server, "float-flag", &float_flag()).parse().expect("numeric");
    let metrics = server.call("GET", "/metrics", None, None).body;
    assert_eq!(metric_value(&metrics, version_line), Some(new_version), "{metrics}");
    assert_ne!(new_version, version);
}

#[test]
fn debug_logs_never_contain_secrets() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(data.path(), &["--demo", "--log-level", "debug"]);
    let key = sdk_key(&server);
    let token = server.var("AVSB_ADMIN_TOKEN").to_string();
    assert_eq!(identify(&server, "id.USER=u_1&ctx.loggedIn=true").status, 200);
    assert_eq!(identify(&server, "ctx.loggedIn=true").status, 400);
    assert_eq!(pipet(&server, "/proctor/matrix").status, 200);
    assert_eq!(pipet(&server, "/nope").status, 404);
    assert_eq!(ofrep(&server, Some("checkout-v2"), Some(r#"{"context":{"targetingKey":"u_1"}}"#)).status, 200);
    assert_eq!(ofrep(&server, Some("checkout-v2"), Some("{bad")).status, 400);
    assert_eq!(ofrep(&server, None, Some(r#"{"context":{"targetingKey":"u_1"}}"#)).status, 200);
    assert_eq!(server.call("GET", "/sdk/v1/datafile", Some(&key), None).status, 200);
    assert_eq!(server.call_with("GET", "/sdk/v1/datafile", None, None, &[("X-API-Key", &key)]).status, 200);
    assert_eq!(post_events(&server, &json!([exposure("u")]).to_string()).status, 202);
    assert_eq!(post_events(&server, &json!([{"kind": "x"}]).to_string()).status, 400);
    let mut stream = Sse::open(&server, &key, None);
    stream.next_event(Duration::from_secs(5));
    put_test(&server, "float-flag", &float_flag());
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

// ---------------------------------------------------------------------------------------------
// Concurrency

/// Revision `n` of the test edited under load: everyone gets bucket `even` (n even) or `odd`,
/// with the payload `rev-n`.
fn revision_definition(n: usize) -> Value {
    let even = if n % 2 == 0 { 1.0 } else { 0.0 };
    json!({
        "testType": "USER", "salt": "racetest",
        "buckets": [
            {"name": "even", "value": 0, "payload": {"stringValue": format!("rev-{n}")}},
            {"name": "odd", "value": 1, "payload": {"stringValue": format!("rev-{n}")}}
        ],
        "allocations": [{"rule": null, "ranges": [{"length": even, "bucketValue": 0}, {"length": 1.0 - even, "bucketValue": 1}]}]
    })
}

#[test]
fn identify_under_concurrent_edits_answers_from_exactly_one_revision() {
    const CLIENTS: usize = 64;
    const EDITS: usize = 30;
    let server = Server::start_demo();
    let mut revisions: HashMap<String, usize> = HashMap::new();
    revisions.insert(put_test(&server, "racetest", &revision_definition(0)), 0);
    let root = root(&server);
    let done = Arc::new(AtomicBool::new(false));
    // (audit version, group entry) per answer; failures as text.
    let answers: Arc<Mutex<Vec<(String, Value)>>> = Arc::new(Mutex::new(Vec::new()));
    let failures: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (root, done, answers, failures) = (root.clone(), Arc::clone(&done), Arc::clone(&answers), Arc::clone(&failures));
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                let mut mine = Vec::new();
                let mut i = 0usize;
                while !done.load(Ordering::Relaxed) || i < 3 {
                    let url = format!("{root}/groups/identify?id.USER=client-{client}-{i}&test=racetest,checkout-v2");
                    i += 1;
                    match agent.get(&url).call() {
                        Ok(response) => {
                            let status = response.status();
                            let text = response.into_string().unwrap_or_default();
                            let doc: Value = match serde_json::from_str(&text) {
                                Ok(doc) => doc,
                                Err(e) => {
                                    failures.lock().expect("lock").push(format!("{status}: not JSON ({e}): {text}"));
                                    continue;
                                }
                            };
                            let version = doc["data"]["audit"]["version"].as_str().unwrap_or_default().to_string();
                            mine.push((version, doc["data"]["groups"]["racetest"].clone()));
                        }
                        Err(e) => failures.lock().expect("lock").push(format!("{url}: {e}")),
                    }
                }
                answers.lock().expect("lock").extend(mine);
            })
        })
        .collect();
    for n in 1..=EDITS {
        let version = put_test(&server, "racetest", &revision_definition(n));
        revisions.insert(version, n);
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    let elapsed = started.elapsed();
    let failures = failures.lock().expect("lock").clone();
    assert!(failures.is_empty(), "{} requests failed, e.g. {:?}", failures.len(), &failures[..failures.len().min(5)]);
    let answers = answers.lock().expect("lock").clone();
    assert!(answers.len() >= CLIENTS * 3, "{} answers", answers.len());
    let mut seen = HashSet::new();
    for (version, group) in &answers {
        let Some(&n) = revisions.get(version) else { panic!("audit.version {version:?} is no revision of this test run") };
        seen.insert(n);
        let expected_name = if n % 2 == 0 { "even" } else { "odd" };
        let expected = json!({
            "name": expected_name,
            "value": if n % 2 == 0 { 0 } else { 1 },
            "payload": {"stringValue": format!("rev-{n}")},
            "version": version,
        });
        assert_eq!(group, &expected, "the answer claims revision {version} (edit {n})");
    }
    assert!(seen.len() >= 3, "answers saw only revisions {seen:?} in {elapsed:?}");
    eprintln!("{} answers from {} revisions in {elapsed:?}", answers.len(), seen.len());
    // The final state is the last edit.
    let last = identify(&server, "id.USER=x&test=racetest").json();
    assert_eq!(last["data"]["groups"]["racetest"]["payload"]["stringValue"], format!("rev-{EDITS}"));
}

// ---------------------------------------------------------------------------------------------
// Malformed input

/// Method, URL, headers and body.
type RawRequest = (String, String, Vec<(String, String)>, Option<Vec<u8>>);

#[test]
fn malformed_input_is_refused_without_5xx_and_changes_nothing() {
    let server = Server::start_demo();
    let base = server.base().to_string();
    let root = root(&server);
    let key = sdk_key(&server);
    let auth = format!("Bearer {key}");
    let version = dev_version(&server);
    let datafile_etag = server.call("GET", "/sdk/v1/datafile", Some(&key), None).header("etag").expect("etag").to_string();
    let events_before = stored_events(&server);

    // OFREP bodies over 64 KiB: 413 with an OFREP error body.
    let oversized = format!(r#"{{"context": {{"targetingKey": "u_1", "pad": "{}"}}}}"#, "x".repeat(70 * 1024));
    for path in ["/ofrep/v1/evaluate/flags/checkout-v2", "/ofrep/v1/evaluate/flags"] {
        let reply = raw("POST", &format!("{base}{path}"), &[("Authorization", &auth), ("Content-Type", "application/json")], Some(oversized.as_bytes()))
            .expect("an answer to an oversized body");
        assert_eq!(reply.status, 413, "{path}: {}", reply.body);
        let doc = reply.json();
        assert!(doc["errorCode"].is_string() && doc["errorDetails"].is_string(), "{path}: {doc}");
    }

    let long = "a".repeat(30_000);
    let too_long = "b".repeat(100_000);
    let commas = ",".repeat(20_000);
    let mut requests: Vec<RawRequest> = Vec::new();
    let mut get = |url: String| requests.push(("GET".into(), url, Vec::new(), None));
    for query in [
        "id.USER=%ZZ%&ctx.loggedIn=%FF%FE&test=%",
        "id.USER=%00%01%02&ctx.country=%C3%28&prforceGroups=%%%%",
        "id.USER=a&prforceGroups=buttoncolortst99999999999999999999,checkout-v2-99999999999,;;;,%3B",
        "id.USER=a&prforceGroups=checkout-v21;stringValue:%22x%22,checkout-v21;map:{",
        "id.USER=a&test=%E2%82&ctx.plan=%F0%9F%98%80",
        "id.USER=a&&&===&=&id.USER&ctx.=x&id.=y",
        "id.USER=a+b&test=checkout-v2&ctx.loggedIn=%",
        "=&&id.USER",
        "id.USER=a&ctx.loggedIn=true&ctx.loggedIn=%FF",
        "%FF%FE=1&id.USER=a",
    ] {
        get(format!("{root}/groups/identify?{query}"));
    }
    get(format!("{root}/groups/identify?id.USER={long}&ctx.country={long}"));
    get(format!("{root}/groups/identify?id.USER={too_long}"));
    get(format!("{root}/groups/identify?id.USER=a&prforceGroups={commas}"));
    get(format!("{root}/groups/identify?id.USER=a&test={commas}"));
    get(format!("{root}/proctor/matrix/definition/%FF%FE"));
    get(format!("{root}/proctor/matrix/definition/{long}"));
    get(format!("{root}/proctor/matrix/definition/..%2F..%2Fetc%2Fpasswd"));
    get(format!("{root}/proctor/matrix?x=%ZZ"));
    get(format!("{base}/pipet/%FF%FE/groups/identify?id.USER=a"));
    get(format!("{base}/pipet/{long}/groups/identify?id.USER=a"));
    let ofrep_bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"context\"".to_vec(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        format!(r#"{{"context": {}1{}}}"#, r#"{"a":"#.repeat(5_000), "}".repeat(5_000)).into_bytes(),
        br#"{"context": {"targetingKey": 1e999}}"#.to_vec(),
        br#"{"context": {"targetingKey": 12345678901234567890123}}"#.to_vec(),
        br#"{"context": {"targetingKey": "u", "loggedIn": 1e308, "country": -0.0}}"#.to_vec(),
        br#"{"context": {"targetingKey": "\ud800"}}"#.to_vec(),
        br#"{"context": {"targetingKey": "u\u0000"}}"#.to_vec(),
        br#"{"context": {"targetingKey": "u", "targetingKey": "v"}}"#.to_vec(),
    ];
    for body in &ofrep_bodies {
        for path in ["/ofrep/v1/evaluate/flags/checkout-v2", "/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/%FF"] {
            requests.push((
                "POST".into(),
                format!("{base}{path}"),
                vec![("Authorization".into(), auth.clone()), ("Content-Type".into(), "application/json".into())],
                Some(body.clone()),
            ));
        }
        requests.push((
            "POST".into(),
            format!("{base}/sdk/v1/events"),
            vec![("Authorization".into(), auth.clone()), ("Content-Type".into(), "application/json".into())],
            Some(body.clone()),
        ));
    }
    for (name, value) in [
        ("Authorization", "Bearer"),
        ("Authorization", "Basic Zm9vOmJhcg=="),
        ("Authorization", "Bearer    "),
        ("X-API-Key", ""),
        ("If-None-Match", "\"\\\"'; --\""),
        ("If-None-Match", "*, , ,,W/\"x\""),
        ("Last-Event-ID", "%FF%00"),
    ] {
        let mut headers = vec![(name.to_string(), value.to_string())];
        if name != "Authorization" && name != "X-API-Key" {
            headers.push(("Authorization".into(), auth.clone()));
        }
        requests.push(("GET".into(), format!("{base}/sdk/v1/datafile"), headers.clone(), None));
        requests.push(("POST".into(), format!("{base}/ofrep/v1/evaluate/flags"), headers.clone(), Some(b"{}".to_vec())));
        requests.push(("POST".into(), format!("{base}/sdk/v1/events"), headers, Some(b"[]".to_vec())));
    }

    for (method, url, headers, body) in &requests {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let shown: String = url.chars().take(160).collect();
        match raw(method, url, &headers, body.as_deref()) {
            Ok(reply) => {
                assert!(reply.status < 500, "{method} {shown} {headers:?}: {} {}", reply.status, reply.body);
                if url.contains("/groups/identify") && reply.status == 200 {
                    assert_eq!(reply.json()["data"]["audit"]["version"], json!(version), "{shown}");
                }
            }
            Err(e) => panic!("{method} {shown}: no HTTP answer: {e}"),
        }
    }
    // The server is still healthy and nothing changed.
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);
    assert_eq!(dev_version(&server), version);
    let reply = server.call_with("GET", "/sdk/v1/datafile", Some(&key), None, &[("If-None-Match", &datafile_etag)]);
    assert_eq!(reply.status, 304, "the datafile changed");
    let refused = events_before.len();
    let after = stored_events(&server);
    // `[]` is a valid (empty) batch: nothing is stored either way.
    assert_eq!(after.len(), refused, "malformed event batches stored something: {after:?}");
    let metrics = server.call("GET", "/metrics", None, None).body;
    assert!(!metrics.contains("status=\"5"), "a 5xx was counted: {metrics}");
}
