//! Runs the shared evaluation and validation cases in `spec/eval/*.json` (format in
//! `spec/eval/README.md`). Every case compiles its matrix against its schema, checks which tests
//! were dropped, answers Pipet's `/groups/identify` with `pipet::identify_explained`, and compares
//! the groups, reasons, context, audit, or Pipet's error. All failures are collected and printed
//! together, each with the case name and a readable diff.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use avsb_core::pipet::{self, IdentifyParams};
use avsb_core::{ContextSchema, CompiledMatrix, Severity};
use serde_json::{Map, Value as Json};

const CASE_KEYS: &[&str] = &[
    "name",
    "description",
    "matrix",
    "matrix_file",
    "schema",
    "request",
    "expect",
];
const REQUEST_KEYS: &[&str] = &[
    "identifiers",
    "context",
    "tests",
    "force",
    "full_force",
    "now",
    "seed",
];
const EXPECT_KEYS: &[&str] = &[
    "groups", "reasons", "dropped", "context", "audit", "status", "message",
];

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/eval")
}

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
            for (k, av) in a {
                if !e.contains_key(k) {
                    out.push(format!("  {path}.{k}: unexpected {}", compact(av)));
                }
            }
        }
        (Json::Array(e), Json::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!(
            "  {path}: expected {}, got {}",
            compact(expected),
            compact(actual)
        )),
    }
}

fn check_equal(what: &str, expected: &Json, actual: &Json, problems: &mut Vec<String>) {
    if expected == actual {
        return;
    }
    let mut lines = Vec::new();
    diff(what, expected, actual, &mut lines);
    if lines.is_empty() {
        // Equal after all but for number representation (1 vs 1.0): show both.
        lines.push(format!(
            "  {what}: expected {}, got {}",
            compact(expected),
            compact(actual)
        ));
    }
    problems.push(format!(
        "{what} differs:\n{}\n  (actual {what}: {})",
        lines.join("\n"),
        compact(actual)
    ));
}

fn unknown_keys(obj: &Map<String, Json>, allowed: &[&str], what: &str) -> Option<String> {
    let unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    (!unknown.is_empty()).then(|| format!("unknown {what} keys {unknown:?} (allowed: {allowed:?})"))
}

/// A JSON object of text values, as (key, value) pairs in document order.
fn text_pairs(v: Option<&Json>, what: &str) -> Result<Vec<(String, String)>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let obj = v
        .as_object()
        .ok_or_else(|| format!("request.{what} must be an object"))?;
    obj.iter()
        .map(|(k, v)| match v {
            Json::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!(
                "request.{what}.{k} must be a string (raw request text), found {other}"
            )),
        })
        .collect()
}

fn run_case(case: &Map<String, Json>, dir: &Path) -> Result<(), Vec<String>> {
    let fail = |m: String| vec![m];
    if let Some(m) = unknown_keys(case, CASE_KEYS, "case") {
        return Err(fail(m));
    }

    // The matrix: inline object, inline raw text (comments allowed), or a shared file.
    let matrix_text = match (case.get("matrix"), case.get("matrix_file")) {
        (Some(Json::String(text)), None) => text.clone(),
        (Some(m @ Json::Object(_)), None) => m.to_string(),
        (None, Some(Json::String(file))) => std::fs::read_to_string(dir.join(file))
            .map_err(|e| fail(format!("cannot read matrix_file {file}: {e}")))?,
        _ => {
            return Err(fail(
                "a case needs exactly one of \"matrix\" (object or text) and \"matrix_file\""
                    .into(),
            ))
        }
    };

    let empty = Map::new();
    let request = match case.get("request") {
        None => &empty,
        Some(Json::Object(r)) => r,
        Some(_) => return Err(fail("request must be an object".into())),
    };
    if let Some(m) = unknown_keys(request, REQUEST_KEYS, "request") {
        return Err(fail(m));
    }
    let expect = case
        .get("expect")
        .and_then(Json::as_object)
        .ok_or_else(|| fail("expect must be an object".into()))?;
    if let Some(m) = unknown_keys(expect, EXPECT_KEYS, "expect") {
        return Err(fail(m));
    }

    let identifiers = text_pairs(request.get("identifiers"), "identifiers").map_err(fail)?;
    let context = text_pairs(request.get("context"), "context").map_err(fail)?;

    // The schema: given, or permissive with the identifier types the request uses.
    let schema = match case.get("schema") {
        Some(doc) => ContextSchema::from_value(doc)
            .map_err(|e| fail(format!("schema does not load: {e}")))?,
        None => {
            let mut schema = ContextSchema::permissive();
            for (type_name, _) in &identifiers {
                schema.allow_identifier_type(type_name);
            }
            schema
        }
    };

    let compilation = CompiledMatrix::compile_json(&matrix_text, &schema)
        .map_err(|e| fail(format!("the matrix does not load at all: {e}")))?;

    let mut problems = Vec::new();
    let diagnostics_of = |test: &str| -> String {
        let lines: Vec<String> = compilation
            .diagnostics
            .iter()
            .filter(|d| d.test == test)
            .map(|d| format!("    {d}"))
            .collect();
        if lines.is_empty() {
            "    (no diagnostics)".into()
        } else {
            lines.join("\n")
        }
    };

    if let Some(dropped) = expect.get("dropped") {
        let dropped = dropped
            .as_object()
            .ok_or_else(|| fail("expect.dropped must be an object".into()))?;
        for (test, code) in dropped {
            let code = code
                .as_str()
                .ok_or_else(|| fail(format!("expect.dropped.{test} must be a diagnostic code")))?;
            let found = compilation
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error && d.test == *test && d.code == code);
            if !found {
                problems.push(format!(
                    "test '{test}' should be dropped with [{code}], diagnostics for it:\n{}",
                    diagnostics_of(test)
                ));
            }
        }
        for test in compilation.dropped_tests() {
            if !dropped.contains_key(test) {
                problems.push(format!(
                    "test '{test}' was dropped unexpectedly:\n{}",
                    diagnostics_of(test)
                ));
            }
        }
    }

    let params = IdentifyParams {
        identifiers,
        context,
        tests: match request.get("tests") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(_) => return Err(fail("request.tests must be a string".into())),
        },
        force_groups: match request.get("force") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(_) => return Err(fail("request.force must be a string".into())),
        },
        full_force: match request.get("full_force") {
            None => false,
            Some(Json::Bool(b)) => *b,
            Some(_) => return Err(fail("request.full_force must be a boolean".into())),
        },
        now_millis: match request.get("now") {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| fail("request.now must be an integer".into()))?,
            ),
        },
        random_seed: match request.get("seed") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| fail("request.seed must be a non-negative integer".into()))?,
            ),
        },
    };

    let outcome = pipet::identify_explained(&compilation.matrix, &params);
    // The server's streaming writer must produce exactly the same document.
    let mut streamed = Vec::new();
    match (pipet::identify_to(&compilation.matrix, &params, &mut streamed), &outcome) {
        (Ok(()), Ok((data, _))) => match serde_json::from_slice::<Json>(&streamed) {
            Ok(doc) => check_equal("identify_to", data, &doc, &mut problems),
            Err(e) => problems.push(format!("identify_to wrote invalid JSON ({e}): {}", String::from_utf8_lossy(&streamed))),
        },
        (Err(a), Err(b)) if a == *b => {}
        (a, b) => problems.push(format!("identify_to and identify_explained disagree: {a:?} vs {:?}", b.as_ref().err())),
    }
    if let Some(status) = expect.get("status") {
        let status = status
            .as_u64()
            .ok_or_else(|| fail("expect.status must be a number".into()))?;
        let message = expect.get("message").and_then(Json::as_str);
        match &outcome {
            Err(e) => {
                if u64::from(e.status) != status || message.is_some_and(|m| m != e.message) {
                    problems.push(format!(
                        "error differs:\n  expected {status} {:?}\n  got      {} {:?}",
                        message.unwrap_or("<any message>"),
                        e.status,
                        e.message
                    ));
                }
            }
            Ok((data, _)) => problems.push(format!(
                "expected error {status} {:?}, but the request succeeded with groups {}",
                message.unwrap_or("<any message>"),
                compact(&data["groups"])
            )),
        }
    } else {
        if expect.contains_key("message") {
            return Err(fail("expect.message needs expect.status".into()));
        }
        match &outcome {
            Err(e) => problems.push(format!("unexpected error {} {:?}", e.status, e.message)),
            Ok((data, reasons)) => {
                for key in ["groups", "context", "audit"] {
                    if let Some(expected) = expect.get(key) {
                        check_equal(key, expected, &data[key], &mut problems);
                    }
                }
                if let Some(expected) = expect.get("reasons") {
                    let expected = expected
                        .as_object()
                        .ok_or_else(|| fail("expect.reasons must be an object".into()))?;
                    let actual: BTreeMap<&str, &Json> =
                        reasons.iter().map(|(t, r)| (t.as_str(), r)).collect();
                    for (test, want) in expected {
                        let got = actual.get(test.as_str()).copied();
                        let ok = match (want, got) {
                            (Json::Null, None) => true,
                            (Json::String(code), Some(r)) => {
                                r.get("code") == Some(&Json::String(code.clone()))
                            }
                            (Json::Object(fields), Some(r)) => {
                                fields.iter().all(|(k, v)| r.get(k) == Some(v))
                            }
                            _ => false,
                        };
                        if !ok {
                            problems.push(format!(
                                "reason for '{test}': expected {}, got {}",
                                if want.is_null() {
                                    "not evaluated/reported".to_string()
                                } else {
                                    compact(want)
                                },
                                got.map_or_else(
                                    || "not evaluated/reported".to_string(),
                                    compact
                                )
                            ));
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        if !compilation.diagnostics.is_empty() {
            let all: Vec<String> = compilation
                .diagnostics
                .iter()
                .map(|d| format!("    {d}"))
                .collect();
            problems.push(format!("(all diagnostics:\n{})", all.join("\n")));
        }
        Err(problems)
    }
}

#[test]
fn spec_eval() {
    let dir = spec_dir();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => panic!("cannot read {}: {e}", dir.display()),
    };
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());

    let mut names = HashSet::new();
    let mut failures: Vec<String> = Vec::new();
    let mut passed = 0usize;
    let mut total = 0usize;
    for file in &files {
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let doc: Json = match std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(doc) => doc,
            Err(e) => {
                failures.push(format!("{file_name}: cannot read: {e}"));
                continue;
            }
        };
        let Some(cases) = doc.get("cases").and_then(Json::as_array) else {
            failures.push(format!("{file_name}: no \"cases\" array"));
            continue;
        };
        for (i, case) in cases.iter().enumerate() {
            total += 1;
            let Some(case) = case.as_object() else {
                failures.push(format!("{file_name} case #{i}: not an object"));
                continue;
            };
            let name = case
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string();
            if name.is_empty() {
                failures.push(format!("{file_name} case #{i}: no name"));
                continue;
            }
            if !names.insert(name.clone()) {
                failures.push(format!("{file_name}: case name '{name}' is used twice"));
                continue;
            }
            match run_case(case, &dir) {
                Ok(()) => passed += 1,
                Err(problems) => {
                    let mut text = format!("✗ {file_name} / {name}");
                    if let Some(d) = case.get("description").and_then(Json::as_str) {
                        let _ = write!(text, "\n  ({d})");
                    }
                    for p in problems {
                        let _ = write!(text, "\n  {}", p.replace('\n', "\n  "));
                    }
                    failures.push(text);
                }
            }
        }
    }
    println!(
        "{passed} spec evaluation cases passed (of {total}, in {} files)",
        files.len()
    );
    if !failures.is_empty() {
        let names: Vec<String> = failures
            .iter()
            .filter_map(|f| f.lines().next().map(str::to_string))
            .collect();
        panic!(
            "{} of {total} spec evaluation cases failed:\n\n{}\n\nFailed:\n{}",
            failures.len(),
            failures.join("\n\n"),
            names.join("\n")
        );
    }
}
