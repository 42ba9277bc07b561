//! Runs the shared evaluation cases in `spec/eval/*.json` (format in `spec/eval/README.md`, read
//! by `avsb-spec`) against one server, through its HTTP API, the way an application would meet
//! them:
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
//! Every request goes through the app's router with `oneshot`, so a case's request carries
//! exactly its own headers (no `User-Agent` unless the case sends one, since a schema may read
//! that header).
//!
//! `reasons` are not part of Pipet's answer and `audit` is the server's own, so neither is
//! compared. A test written without a version gets the revision's id from the server (admin
//! API); the expected `"version": null` of such a test is read as that id.
//!
//! Cases that cannot be put over HTTP are skipped, counted and listed with the reason. The
//! engine's own runner (`crates/avsb-core/tests/spec_eval.rs`) still runs every case.
//!
//! Run with `cargo test -p avsb-server --test api spec_over_http -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use avsb_core::schema::{canonical_identifier_type, Source, PROCTOR_TEST_TYPES};
use avsb_core::ContextSchema;
use avsb_server::Options;
use avsb_spec::{check_equal, EvalCase, Matrix};
use axum::http::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value as Json};

use crate::common::Demo;

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

/// What became of one case.
enum Outcome {
    Passed,
    Skipped(String),
    Failed(Vec<String>),
}

use Outcome::{Failed, Passed, Skipped};

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

/// Whether a name and text can travel as a header unchanged.
fn header_safe(name: &str, value: &str) -> bool {
    HeaderName::from_bytes(name.as_bytes()).is_ok()
        && HeaderValue::from_str(value).is_ok()
        && value.trim() == value
        && !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0 || b.is_ascii_control())
}

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

async fn run_case(demo: &Demo, index: usize, case: &EvalCase) -> Outcome {
    let fail = |m: String| Failed(vec![m]);
    let request = &case.request;
    let expect = &case.expect;

    // What cannot be said over HTTP.
    for (given, why) in [
        (request.now.is_some(), "request.now: the server uses the real time"),
        (request.seed.is_some(), "request.seed: the server draws its own random number"),
        (request.full_force.is_some(), "request.full_force: Pipet's API has only Pipet's force groups"),
    ] {
        if given {
            return Skipped(why.into());
        }
    }
    let (identifiers, context) = (&request.identifiers, &request.context);
    if identifiers.iter().any(|(t, _)| canonical_identifier_type(t) == "RANDOM") {
        return Skipped("a RANDOM identifier: no schema can configure one, so no request can carry it".into());
    }

    // The matrix, as a JSON object.
    let matrix = match &case.matrix {
        Matrix::Text(_) => return Skipped("raw-text matrix (lenient parsing): the admin API takes a JSON object".into()),
        Matrix::Object(m) => m.clone(),
        // Shared fixtures whose only non-JSON is a comment header; the comments are not what
        // these cases test, so they are removed here as Proctor's lenient loader would.
        Matrix::File { path, text } => match avsb_core::json::parse_lenient_json::<Json>(text) {
            Ok(m @ Json::Object(_)) => m,
            Ok(_) => return fail(format!("matrix_file {path} is not a JSON object")),
            Err(e) => return fail(format!("cannot read matrix_file {path}: {e}")),
        },
    };
    if !matrix.get("tests").is_some_and(Json::is_object) {
        return Skipped("the matrix has no \"tests\" object".into());
    }

    let synthesized = case.schema.is_none();
    let schema_doc = match &case.schema {
        Some(doc) => doc.clone(),
        None if SYNTHESIZE_SCHEMA_FOR_NO_SCHEMA_CASES => synthesized_schema(identifiers, context),
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
        if source == Source::Header && !header_safe(&key, value) {
            return Err(format!("header {key}: {value:?} cannot travel unchanged"));
        }
        list.push((key, value.to_string()));
        Ok(())
    };
    for (ty, value) in identifiers {
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
    for (var, value) in context {
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
    if let Some(t) = &request.tests {
        query.push(("test".into(), t.clone()));
    }
    if let Some(f) = &request.force {
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
    let reply = demo.admin("POST", "/projects", Some(&create.to_string())).await;
    match reply.status {
        201 => {}
        400 => return Skipped(format!("the server refuses the schema: {}", error_message(&reply.body))),
        s => return fail(format!("POST /projects answered {s}: {}", reply.body)),
    }
    let env = format!("/projects/{project}/environments/production");
    let reply = demo.admin("POST", &format!("{env}/sdk-keys"), Some("{}")).await;
    if reply.status != 201 {
        return fail(format!("POST {env}/sdk-keys answered {}: {}", reply.status, reply.body));
    }
    let sdk_key = reply.json()["key"].as_str().unwrap_or_default().to_string();

    let mut problems = Vec::new();
    let put = |matrix: &Json| {
        let body = json!({"matrix": matrix, "comment": case.name}).to_string();
        let path = format!("{env}/matrix");
        async move { demo.admin("PUT", &path, Some(&body)).await }
    };
    let expected_dropped: BTreeMap<String, String> = expect.dropped.iter().flatten().cloned().collect();
    let mut written = matrix.clone();
    let mut reply = put(&written).await;
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
        reply = put(&written).await;
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
    let header_pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = demo.call("GET", &path, None, None, &header_pairs).await;
    let (status, body) = (answer.status, answer.body);
    let request_line = format!(
        "GET /pipet/<key>/groups/identify?{}{}",
        query_text.join("&"),
        headers.iter().map(|(k, v)| format!(" [{k}: {v}]")).collect::<String>()
    );
    let answer: Json = match serde_json::from_str(&body) {
        Ok(j) => j,
        Err(e) => return fail(format!("{request_line}\n  answered {status} with a body that is not JSON ({e}): {body}")),
    };
    if let Some(want_status) = expect.status {
        let want_message = expect.message.as_deref();
        let got_message = answer["meta"]["error"].as_str();
        let status_ok = want_status == status && answer["meta"]["status"] == json!(want_status);
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
        if let Some(expected) = &expect.groups {
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
        if let Some(expected) = &expect.context {
            check_equal("context", expected, &data["context"], &mut problems);
        }
    }
    if problems.is_empty() {
        Passed
    } else {
        problems.insert(0, format!("request: {request_line}"));
        if synthesized {
            problems.push(format!("(synthesized schema: {schema_doc})"));
        }
        Failed(problems)
    }
}

#[tokio::test]
async fn the_shared_evaluation_cases_hold_over_http() {
    let started = Instant::now();
    let cases = avsb_spec::eval_cases().unwrap_or_else(|e| panic!("{e}"));
    let demo = Demo::start(Options::default()).await;
    let total = cases.len();
    let mut ran = 0usize;
    let mut ran_synthesized = 0usize;
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut known: Vec<String> = Vec::new();
    let mut seen_known = BTreeSet::new();
    for (index, case) in cases.iter().enumerate() {
        let known_why = KNOWN_DIFFERENCES.iter().find(|(n, _)| *n == case.name).map(|(_, why)| *why);
        if known_why.is_some() {
            seen_known.insert(case.name.clone());
        }
        match run_case(&demo, index + 1, case).await {
            Passed => {
                ran += 1;
                if case.schema.is_none() {
                    ran_synthesized += 1;
                }
                if known_why.is_some() {
                    failures.push(format!(
                        "✗ {} / {}\n  is listed in KNOWN_DIFFERENCES but now passes: remove it",
                        case.file, case.name
                    ));
                }
            }
            Skipped(why) => skipped.entry(why).or_default().push(case.name.clone()),
            Failed(problems) => {
                let text = avsb_spec::describe_failure(case, &problems);
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
    avsb_spec::assert_no_failures("spec cases over HTTP", total, &failures);
    assert!(ran >= MIN_RAN, "only {ran} of {total} spec cases ran over HTTP (at least {MIN_RAN} expected)");
}
