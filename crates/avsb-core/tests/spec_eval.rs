//! Runs the shared evaluation and validation cases in `spec/eval/*.json` (format in
//! `spec/eval/README.md`, read by `avsb-spec`). Every case compiles its matrix against its
//! schema, checks which tests were dropped, answers Pipet's `/groups/identify` with
//! `pipet::identify_explained`, and compares the groups, reasons, context, audit, or Pipet's
//! error. All failures are collected and printed together, each with the case name and a
//! readable diff.

use std::collections::BTreeMap;

use avsb_core::pipet::{self, IdentifyParams};
use avsb_core::{CompiledMatrix, ContextSchema, Severity};
use avsb_spec::{check_equal, EvalCase};
use serde_json::Value as Json;

fn run_case(case: &EvalCase) -> Result<(), Vec<String>> {
    let fail = |m: String| vec![m];
    let request = &case.request;
    let expect = &case.expect;

    // The schema: given, or permissive with the identifier types the request uses.
    let schema = match &case.schema {
        Some(doc) => ContextSchema::from_value(doc).map_err(|e| fail(format!("schema does not load: {e}")))?,
        None => {
            let mut schema = ContextSchema::permissive();
            for (type_name, _) in &request.identifiers {
                schema.allow_identifier_type(type_name);
            }
            schema
        }
    };

    let compilation = CompiledMatrix::compile_json(&case.matrix.text(), &schema)
        .map_err(|e| fail(format!("the matrix does not load at all: {e}")))?;

    let mut problems = Vec::new();
    let diagnostics_of = |test: &str| -> String {
        let lines: Vec<String> =
            compilation.diagnostics.iter().filter(|d| d.test == test).map(|d| format!("    {d}")).collect();
        if lines.is_empty() {
            "    (no diagnostics)".into()
        } else {
            lines.join("\n")
        }
    };

    if let Some(dropped) = &expect.dropped {
        for (test, code) in dropped {
            let found = compilation
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error && d.test == *test && d.code == code);
            if !found {
                problems.push(format!("test '{test}' should be dropped with [{code}], diagnostics for it:\n{}", diagnostics_of(test)));
            }
        }
        for test in compilation.dropped_tests() {
            if !dropped.iter().any(|(t, _)| t == test) {
                problems.push(format!("test '{test}' was dropped unexpectedly:\n{}", diagnostics_of(test)));
            }
        }
    }

    let params = IdentifyParams {
        identifiers: request.identifiers.clone(),
        context: request.context.clone(),
        tests: request.tests.clone(),
        force_groups: request.force.clone(),
        full_force: request.full_force.unwrap_or(false),
        now_millis: request.now,
        random_seed: request.seed,
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
    if let Some(status) = expect.status {
        let message = expect.message.as_deref();
        match &outcome {
            Err(e) => {
                if e.status != status || message.is_some_and(|m| m != e.message) {
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
                data["groups"]
            )),
        }
    } else {
        match &outcome {
            Err(e) => problems.push(format!("unexpected error {} {:?}", e.status, e.message)),
            Ok((data, reasons)) => {
                for (key, expected) in [("groups", &expect.groups), ("context", &expect.context), ("audit", &expect.audit)] {
                    if let Some(expected) = expected {
                        check_equal(key, expected, &data[key], &mut problems);
                    }
                }
                let actual: BTreeMap<&str, &Json> = reasons.iter().map(|(t, r)| (t.as_str(), r)).collect();
                for (test, want) in expect.reasons.iter().flatten() {
                    let got = actual.get(test.as_str()).copied();
                    let ok = match (want, got) {
                        (None, None) => true,
                        (Some(want), Some(reason)) => want.matches(reason),
                        _ => false,
                    };
                    if !ok {
                        let not_reported = || "not evaluated/reported".to_string();
                        problems.push(format!(
                            "reason for '{test}': expected {}, got {}",
                            want.as_ref().map_or_else(not_reported, ToString::to_string),
                            got.map_or_else(not_reported, Json::to_string)
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        if !compilation.diagnostics.is_empty() {
            let all: Vec<String> = compilation.diagnostics.iter().map(|d| format!("    {d}")).collect();
            problems.push(format!("(all diagnostics:\n{})", all.join("\n")));
        }
        Err(problems)
    }
}

#[test]
fn spec_eval() {
    let cases = avsb_spec::eval_cases().unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(problems) = run_case(case) {
            failures.push(avsb_spec::describe_failure(case, &problems));
        }
    }
    let files: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.file.as_str()).collect();
    println!("{} spec evaluation cases passed (of {}, in {} files)", cases.len() - failures.len(), cases.len(), files.len());
    avsb_spec::assert_no_failures("spec evaluation cases", cases.len(), &failures);
}
