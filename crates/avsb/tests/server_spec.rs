//! Runs the shared evaluation cases in `spec/eval/*.json` (format in `spec/eval/README.md`)
//! against ONE real `avsb serve` process, over HTTP, the way an application would meet them:
//!
//! 1. each case gets its own project (`spec-<i>`, one `production` environment) created with the
//!    case's schema (Pipet's configuration), and an SDK key;
//! 2. the case's matrix is written with `PUT .../matrix`. The server refuses a write that would
//!    drop tests (422 with the diagnostics), so when the case expects `dropped` tests the refusal
//!    must name exactly those tests with the expected codes; the matrix is then written without
//!    them, which leaves the server with what the engine keeps;
//! 3. `GET /pipet/<key>/groups/identify` is called with the case's request, each value put where
//!    the schema says (`id.<sourceKey>`, `ctx.<sourceKey>` or a header), and the answer's
//!    `groups`, `context`, or HTTP status and `meta.error` are compared with the case.
//!
//! `reasons` are not part of Pipet's answer and `audit` is the server's own, so neither is
//! compared. A test written without a version gets the revision's id from the server (admin
//! API); the expected `"version": null` of such a test is read as that id.
//!
//! Cases that cannot be put over HTTP are skipped, counted and listed with the reason. The
//! engine's own runner (`crates/avsb-core/tests/spec_eval.rs`) still runs every case.
//!
//! Run with `cargo test -p avsb --test server_spec -- --nocapture`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use avsb_core::schema::{canonical_identifier_type, Source, PROCTOR_TEST_TYPES};
use avsb_core::ContextSchema;
use common::Server;
use serde_json::{json, Map, Value as Json};

/// No-schema cases (the engine's permissive mode) are run with a schema built from the case:
/// Proctor's identifier types plus those the request uses, and each context value the request
/// carries declared as a QUERY `String` (the permissive mode keeps every value as a String). The
/// server validates rules strictly against it, so a case whose rules use a variable the request
/// lacks is refused at write time (`unknown_variable`) and skipped; everything else behaves as
/// the permissive schema does. `false` skips every no-schema case instead.
const SYNTHESIZE_SCHEMA_FOR_NO_SCHEMA_CASES: bool = true;

/// The fewest cases that must run, a little below the measured count (189 of 210, 105 of them
/// no-schema cases; 84 without them). Guards against a change that silently skips cases.
const MIN_RAN: usize = if SYNTHESIZE_SCHEMA_FOR_NO_SCHEMA_CASES { 185 } else { 80 };

/// Cases where the server answers differently from the engine for a real reason. Each is run;
/// if it fails it is reported but does not fail the suite, and if it passes the suite fails so
/// that the entry is removed. (case name, why)
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

const CASE_KEYS: &[&str] = &["name", "description", "matrix", "matrix_file", "schema", "request", "expect"];
const REQUEST_KEYS: &[&str] = &["identifiers", "context", "tests", "force", "full_force", "now", "seed"];
const EXPECT_KEYS: &[&str] = &["groups", "reasons", "dropped", "context", "audit", "status", "message"];

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/eval")
}

/// What became of one case.
enum Outcome {
    Passed,
    Skipped(String),
    Failed(Vec<String>),
}

use Outcome::{Failed, Passed, Skipped};

fn compact(v: &Json) -> String {
    v.to_string()
}

/// Lists every path where `actual` differs from `expected`.
fn diff(path: &str, expected: &Json, actual: &Json, out: &mut Vec<String>) {
    match (expected, actual) {
        (Json::Object(e), Json::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                match a.get(k) {
                    Some(av) => diff(&p, ev, av, out),
                    None => out.push(format!("  {p}: missing; expected {}", compact(ev))),
                }
            }
            for (k, av) in a.iter().filter(|(k, _)| !e.contains_key(*k)) {
                out.push(format!("  {path}.{k}: unexpected {}", compact(av)));
            }
        }
        (Json::Array(e), Json::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("  {path}: expected {}, got {}", compact(expected), compact(actual))),
    }
}

fn check_equal(what: &str, expected: &Json, actual: &Json, problems: &mut Vec<String>) {
    if expected == actual {
        return;
    }
    let mut lines = Vec::new();
    diff(what, expected, actual, &mut lines);
    if lines.is_empty() {
        // Equal but for number representation (1 vs 1.0): show both.
        lines.push(format!("  {what}: expected {}, got {}", compact(expected), compact(actual)));
    }
    problems.push(format!("{what} differs:\n{}\n  (actual {what}: {})", lines.join("\n"), compact(actual)));
}

fn unknown_keys(obj: &Map<String, Json>, allowed: &[&str], what: &str) -> Option<String> {
    let unknown: Vec<&str> = obj.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
    (!unknown.is_empty()).then(|| format!("unknown {what} keys {unknown:?} (allowed: {allowed:?})"))
}

/// A JSON object of text values, as (key, value) pairs in document order.
fn text_pairs(v: Option<&Json>, what: &str) -> Result<Vec<(String, String)>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let obj = v.as_object().ok_or_else(|| format!("request.{what} must be an object"))?;
    obj.iter()
        .map(|(k, v)| match v {
            Json::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!("request.{what}.{k} must be a string (raw request text), found {other}")),
        })
        .collect()
}

fn optional_text(request: &Map<String, Json>, key: &str) -> Result<Option<String>, String> {
    match request.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("request.{key} must be a string")),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// Percent-encodes a query component (everything but RFC 3986's unreserved characters).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A GET with exactly the given headers (and `Host`): unlike ureq, no `User-Agent` unless the
/// case sends one, since a schema may read that header. Returns the status and the body.
fn raw_get(base: &str, path_and_query: &str, headers: &[(String, String)]) -> Result<(u16, String), String> {
    let rest = base.strip_prefix("http://").ok_or_else(|| format!("base URL {base} is not http://"))?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let mut stream = TcpStream::connect(authority).map_err(|e| format!("connect {authority}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut request = format!("GET {prefix}{path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n").into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of the response head")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
        })
    });
    if chunked {
        body = dechunk(&body)?;
    }
    String::from_utf8(body).map(|b| (status, b)).map_err(|e| format!("body is not UTF-8: {e}"))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk size line")?;
        let line = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {line:?}: {e}"))?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

/// Whether a text can travel as a header value unchanged.
fn header_safe(value: &str) -> bool {
    value.trim() == value && !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0 || b.is_ascii_control())
}

// ---------------------------------------------------------------------------------------------
// One case

/// The schema of a no-schema case: see [`SYNTHESIZE_SCHEMA_FOR_NO_SCHEMA_CASES`].
fn synthesized_schema(identifiers: &[(String, String)], context: &[(String, String)]) -> Json {
    let mut ids = Map::new();
    let request_types = identifiers.iter().map(|(t, _)| canonical_identifier_type(t));
    for ty in PROCTOR_TEST_TYPES.iter().map(|t| (*t).to_string()).chain(request_types) {
        if ty != "RANDOM" {
            ids.entry(ty).or_insert_with(|| json!({"source": "QUERY"}));
        }
    }
    let ctx: Map<String, Json> =
        context.iter().map(|(name, _)| (name.clone(), json!({"source": "QUERY", "type": "String"}))).collect();
    json!({"context": ctx, "identifiers": ids})
}

/// Tests with an error diagnostic in a 422 refusal: test → codes.
fn refused_tests(body: &Json) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in body["error"]["diagnostics"].as_array().into_iter().flatten() {
        if d.get("severity").and_then(Json::as_str).unwrap_or("error") != "error" {
            continue;
        }
        let test = d["test"].as_str().unwrap_or("").to_string();
        out.entry(test).or_default().insert(d["code"].as_str().unwrap_or("?").to_string());
    }
    out
}

fn show_refused(refused: &BTreeMap<String, BTreeSet<String>>) -> String {
    refused
        .iter()
        .map(|(t, codes)| format!("'{t}' [{}]", codes.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn error_message(body: &str) -> String {
    serde_json::from_str::<Json>(body)
        .ok()
        .and_then(|j| j["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string())
}

fn run_case(server: &Server, index: usize, case: &Map<String, Json>, dir: &Path) -> Outcome {
    let fail = |m: String| Failed(vec![m]);
    if let Some(m) = unknown_keys(case, CASE_KEYS, "case") {
        return fail(m);
    }
    let name = case.get("name").and_then(Json::as_str).unwrap_or_default();
    let empty = Map::new();
    let request = match case.get("request") {
        None => &empty,
        Some(Json::Object(r)) => r,
        Some(_) => return fail("request must be an object".into()),
    };
    if let Some(m) = unknown_keys(request, REQUEST_KEYS, "request") {
        return fail(m);
    }
    let Some(expect) = case.get("expect").and_then(Json::as_object) else {
        return fail("expect must be an object".into());
    };
    if let Some(m) = unknown_keys(expect, EXPECT_KEYS, "expect") {
        return fail(m);
    }

    // What cannot be said over HTTP.
    for (key, why) in [
        ("now", "request.now: the server uses the real time"),
        ("seed", "request.seed: the server draws its own random number"),
        ("full_force", "request.full_force: Pipet's API has only Pipet's force groups"),
    ] {
        if request.contains_key(key) {
            return Skipped(why.into());
        }
    }
    let identifiers = match text_pairs(request.get("identifiers"), "identifiers") {
        Ok(v) => v,
        Err(m) => return fail(m),
    };
    let context = match text_pairs(request.get("context"), "context") {
        Ok(v) => v,
        Err(m) => return fail(m),
    };
    if identifiers.iter().any(|(t, _)| canonical_identifier_type(t) == "RANDOM") {
        return Skipped("a RANDOM identifier: no schema can configure one, so no request can carry it".into());
    }
    let (tests_param, force_param) = match (optional_text(request, "tests"), optional_text(request, "force")) {
        (Ok(t), Ok(f)) => (t, f),
        (Err(m), _) | (_, Err(m)) => return fail(m),
    };

    // The matrix, as a JSON object.
    let matrix = match (case.get("matrix"), case.get("matrix_file")) {
        (Some(Json::String(_)), None) => {
            return Skipped("raw-text matrix (lenient parsing): the admin API takes a JSON object".into())
        }
        (Some(m @ Json::Object(_)), None) => m.clone(),
        // Shared fixtures whose only non-JSON is a comment header; the comments are not what
        // these cases test, so they are removed here as Proctor's lenient loader would.
        (None, Some(Json::String(file))) => {
            let parsed = std::fs::read_to_string(dir.join(file))
                .map_err(|e| e.to_string())
                .and_then(|text| avsb_core::json::parse_lenient_json::<Json>(&text));
            match parsed {
                Ok(m @ Json::Object(_)) => m,
                Ok(_) => return fail(format!("matrix_file {file} is not a JSON object")),
                Err(e) => return fail(format!("cannot read matrix_file {file}: {e}")),
            }
        }
        _ => return fail("a case needs exactly one of \"matrix\" (object or text) and \"matrix_file\"".into()),
    };
    if !matrix.get("tests").is_some_and(Json::is_object) {
        return Skipped("the matrix has no \"tests\" object".into());
    }

    let synthesized = !case.contains_key("schema");
    let schema_doc = match case.get("schema") {
        Some(doc) => doc.clone(),
        None if SYNTHESIZE_SCHEMA_FOR_NO_SCHEMA_CASES => synthesized_schema(&identifiers, &context),
        None => return Skipped("no schema (the engine's permissive mode)".into()),
    };
    let no_schema = |why: String| Skipped(format!("no schema, and the synthesized one does not fit: {why}"));

    // Where each request value goes.
    // A schema that does not load here: let the server say whether it refuses it too.
    let schema = ContextSchema::from_value(&schema_doc).unwrap_or_default();
    let mut query: Vec<(String, String)> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut place = |source: Source, key: String, value: &str| -> Result<(), String> {
        let list = match source {
            Source::Query => &mut query,
            Source::Header => &mut headers,
        };
        let clash = |k: &String| if source == Source::Header { k.eq_ignore_ascii_case(&key) } else { *k == key };
        if list.iter().any(|(k, _)| clash(k)) {
            return Err(format!("two request values would share the parameter or header '{key}'"));
        }
        if source == Source::Header && !header_safe(value) {
            return Err(format!("header value {value:?} cannot travel unchanged"));
        }
        list.push((key, value.to_string()));
        Ok(())
    };
    for (ty, value) in &identifiers {
        let placed = match schema.identifiers.get(&canonical_identifier_type(ty)) {
            Some(config) => match config.source {
                Source::Query => place(Source::Query, format!("id.{}", config.source_key), value),
                Source::Header => place(Source::Header, config.source_key.clone(), value),
            },
            // Unconfigured: Pipet ignores it; send it anyway to check that the server does.
            None => place(Source::Query, format!("id.{ty}"), value),
        };
        if let Err(why) = placed {
            return Skipped(why);
        }
    }
    for (var, value) in &context {
        let placed = match schema.variables.get(var) {
            Some(config) => match config.source {
                Source::Query => place(Source::Query, format!("ctx.{}", config.source_key), value),
                Source::Header => place(Source::Header, config.source_key.clone(), value),
            },
            None => place(Source::Query, format!("ctx.{var}"), value),
        };
        if let Err(why) = placed {
            return Skipped(why);
        }
    }
    if let Some(t) = &tests_param {
        query.push(("test".into(), t.clone()));
    }
    if let Some(f) = &force_param {
        query.push(("prforceGroups".into(), f.clone()));
    }

    // The project, its key and the matrix.
    let project = format!("spec-{index}");
    let mut create = json!({"key": project, "schema": schema_doc, "environments": ["production"]});
    if !schema.identifiers.contains_key("USER") {
        if let Some(first) = schema.identifiers.keys().next() {
            create["defaultIdentifierType"] = Json::from(first.clone());
        }
    }
    let reply = server.admin("POST", "/projects", Some(&create.to_string()));
    match reply.status {
        201 => {}
        400 => return Skipped(format!("the server refuses the schema: {}", error_message(&reply.body))),
        s => return fail(format!("POST /projects answered {s}: {}", reply.body)),
    }
    let env = format!("/projects/{project}/environments/production");
    let reply = server.admin("POST", &format!("{env}/sdk-keys"), Some("{}"));
    if reply.status != 201 {
        return fail(format!("POST {env}/sdk-keys answered {}: {}", reply.status, reply.body));
    }
    let sdk_key = reply.json()["key"].as_str().unwrap_or_default().to_string();

    let mut problems = Vec::new();
    let put = |matrix: &Json| {
        let body = json!({"matrix": matrix, "comment": name});
        server.admin("PUT", &format!("{env}/matrix"), Some(&body.to_string()))
    };
    let expected_dropped: BTreeMap<String, String> = match expect.get("dropped") {
        None => BTreeMap::new(),
        Some(Json::Object(d)) => d.iter().map(|(t, c)| (t.clone(), c.as_str().unwrap_or("").to_string())).collect(),
        Some(_) => return fail("expect.dropped must be an object".into()),
    };
    let mut written = matrix.clone();
    let mut reply = put(&written);
    if reply.status == 422 {
        let refused = refused_tests(&reply.json());
        let extra: Vec<&String> = refused.keys().filter(|t| !expected_dropped.contains_key(*t)).collect();
        if !extra.is_empty() {
            return if synthesized {
                no_schema(format!("the server refuses test {}", show_refused(&refused)))
            } else if expected_dropped.is_empty() {
                Skipped(format!("the server refuses the matrix: {}", show_refused(&refused)))
            } else {
                fail(format!(
                    "the server refuses more tests than expected: expected {expected_dropped:?}, refused {}",
                    show_refused(&refused)
                ))
            };
        }
        for (test, code) in &expected_dropped {
            match refused.get(test) {
                Some(codes) if codes.contains(code) => {}
                Some(codes) => problems.push(format!("test '{test}' should be refused with [{code}], got {codes:?}")),
                None => problems.push(format!(
                    "test '{test}' should be refused with [{code}]; the refusal names only {}",
                    show_refused(&refused)
                )),
            }
        }
        // Write what the engine keeps.
        if let Some(tests) = written.get_mut("tests").and_then(Json::as_object_mut) {
            tests.retain(|t, _| !expected_dropped.contains_key(t));
        }
        reply = put(&written);
    } else if reply.status == 200 && !expected_dropped.is_empty() {
        problems.push(format!(
            "the server accepted a matrix that drops {:?}; expected a 422 naming them",
            expected_dropped.keys().collect::<Vec<_>>()
        ));
        // It now serves those tests; the rest of the case would compare against them.
        return Failed(problems);
    }
    match reply.status {
        200 => {}
        400 => return Skipped(format!("the server refuses the matrix: {}", error_message(&reply.body))),
        422 => {
            let refused = refused_tests(&reply.json());
            return if synthesized {
                no_schema(format!("the server refuses test {}", show_refused(&refused)))
            } else {
                problems.push(format!("the matrix without the dropped tests is refused: {}", show_refused(&refused)));
                Failed(problems)
            };
        }
        s => {
            problems.push(format!("PUT matrix answered {s}: {}", reply.body));
            return Failed(problems);
        }
    }
    let revision = reply.json()["revision"]["version"].clone();

    // The server always draws a random number, where the engine without a seed leaves RANDOM
    // tests unassigned.
    let written_tests = written.get("tests").and_then(Json::as_object).cloned().unwrap_or_default();
    if written_tests.values().any(|t| t.get("testType").and_then(Json::as_str) == Some("RANDOM")) {
        return Skipped("a RANDOM test without request.seed: the server always draws a random number".into());
    }

    // The request.
    let query_text: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    let path = format!("/pipet/{sdk_key}/groups/identify?{}", query_text.join("&"));
    let (status, body) = match raw_get(server.base(), &path, &headers) {
        Ok(r) => r,
        Err(e) => return fail(format!("GET {path}: {e}")),
    };
    let request_line = format!(
        "GET /pipet/<key>/groups/identify?{}{}",
        query_text.join("&"),
        headers.iter().map(|(k, v)| format!(" [{k}: {v}]")).collect::<String>()
    );
    let answer: Json = match serde_json::from_str(&body) {
        Ok(j) => j,
        Err(e) => return fail(format!("{request_line}\n  answered {status} with a body that is not JSON ({e}): {body}")),
    };
    if let Some(want_status) = expect.get("status") {
        let want_message = expect.get("message").and_then(Json::as_str);
        let got_message = answer["meta"]["error"].as_str();
        let status_ok = want_status.as_u64() == Some(u64::from(status)) && answer["meta"]["status"] == *want_status;
        if !status_ok || want_message.is_some_and(|m| Some(m) != got_message) {
            problems.push(format!(
                "error differs:\n  expected {want_status} {:?}\n  got      {status} {:?} (body {body})",
                want_message.unwrap_or("<any message>"),
                got_message.unwrap_or("<none>")
            ));
        }
    } else if status != 200 {
        problems.push(format!("unexpected answer {status}: {body}"));
    } else {
        let data = &answer["data"];
        if let Some(expected) = expect.get("groups") {
            let mut expected = expected.clone();
            // Tests written without a version carry the revision's id on the server.
            if let Some(groups) = expected.as_object_mut() {
                for (test, group) in groups.iter_mut() {
                    let unversioned = written_tests.get(test).is_some_and(|t| t.get("version").is_none_or(Json::is_null));
                    if unversioned && group.get("version").is_some_and(Json::is_null) {
                        group["version"] = revision.clone();
                    }
                }
            }
            check_equal("groups", &expected, &data["groups"], &mut problems);
        }
        if let Some(expected) = expect.get("context") {
            check_equal("context", expected, &data["context"], &mut problems);
        }
    }
    if problems.is_empty() {
        Passed
    } else {
        problems.insert(0, format!("request: {request_line}"));
        if synthesized {
            problems.push(format!("(synthesized schema: {})", compact(&schema_doc)));
        }
        Failed(problems)
    }
}

#[test]
fn spec_cases_over_http() {
    let started = Instant::now();
    let dir = spec_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());

    let server = Server::start_demo();
    let mut total = 0usize;
    let mut ran = 0usize;
    let mut ran_synthesized = 0usize;
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut known: Vec<String> = Vec::new();
    let mut seen_known = BTreeSet::new();
    for file in &files {
        let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let doc: Json = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("{file_name}: cannot read: {e}"));
        let cases = doc.get("cases").and_then(Json::as_array).unwrap_or_else(|| panic!("{file_name}: no \"cases\" array"));
        for case in cases {
            total += 1;
            let Some(case) = case.as_object() else {
                failures.push(format!("✗ {file_name} case #{total}: not an object"));
                continue;
            };
            let name = case.get("name").and_then(Json::as_str).unwrap_or("").to_string();
            let known_why = KNOWN_DIFFERENCES.iter().find(|(n, _)| *n == name).map(|(_, why)| *why);
            if known_why.is_some() {
                seen_known.insert(name.clone());
            }
            match run_case(&server, total, case, &dir) {
                Passed => {
                    ran += 1;
                    if !case.contains_key("schema") {
                        ran_synthesized += 1;
                    }
                    if known_why.is_some() {
                        failures.push(format!(
                            "✗ {file_name} / {name}\n  is listed in KNOWN_DIFFERENCES but now passes: remove it"
                        ));
                    }
                }
                Skipped(why) => skipped.entry(why).or_default().push(name),
                Failed(problems) => {
                    let mut text = format!("✗ {file_name} / {name}");
                    if let Some(d) = case.get("description").and_then(Json::as_str) {
                        let _ = write!(text, "\n  ({d})");
                    }
                    for p in problems {
                        let _ = write!(text, "\n  {}", p.replace('\n', "\n  "));
                    }
                    match known_why {
                        Some(why) => {
                            ran += 1;
                            known.push(format!("{text}\n  known difference: {why}"));
                        }
                        None => failures.push(text),
                    }
                }
            }
        }
    }
    for (name, _) in KNOWN_DIFFERENCES {
        if !seen_known.contains(*name) {
            failures.push(format!("KNOWN_DIFFERENCES names '{name}', which is no case"));
        }
    }
    let skipped_count: usize = skipped.values().map(Vec::len).sum();

    println!("\nSpec cases over HTTP against one server ({:.1} s):", started.elapsed().as_secs_f64());
    println!(
        "  {total} cases: {ran} ran ({ran_synthesized} of them no-schema cases with a synthesized schema), \
         {} known differences, {} failed, {skipped_count} skipped",
        known.len(),
        failures.len()
    );
    for (why, names) in &skipped {
        println!("  skipped {} — {why}:\n    {}", names.len(), names.join(", "));
    }
    for k in &known {
        println!("\n(known difference, not a failure)\n{k}");
    }
    if !failures.is_empty() {
        let names: Vec<String> = failures.iter().filter_map(|f| f.lines().next().map(str::to_string)).collect();
        panic!(
            "{} of {total} spec cases failed over HTTP:\n\n{}\n\nFailed:\n{}",
            failures.len(),
            failures.join("\n\n"),
            names.join("\n")
        );
    }
    assert!(ran >= MIN_RAN, "only {ran} of {total} spec cases ran over HTTP (at least {MIN_RAN} expected)");
}
