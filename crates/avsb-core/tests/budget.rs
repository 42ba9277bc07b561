//! The evaluation budget (issue 15) from the outside: no rule of `spec/` — the shared cases,
//! Proctor's own tests among them — comes near the limits (the most, one compiling a pattern
//! taken from the request, takes 2% of an evaluation's; every other stays within the free
//! allowance of each evaluation), and a request whose rules together pass the request's limit
//! still answers, with the cheap tests assigned.

use std::borrow::Cow;

use avsb_core::pipet::{self, IdentifyParams};
use avsb_core::rule::budget::{FREE_STEPS_PER_EVALUATION, MAX_STEPS_PER_EVALUATION, MAX_STEPS_PER_REQUEST};
use avsb_core::rule::{compile, Budget, CompileEnv, EvalEnv, VariableInfo, VariableLookup};
use avsb_core::{CompiledMatrix, ContextSchema, MatrixDocument, Reason, Value};
use indexmap::IndexMap;
use serde_json::{json, Value as Json};

/// Cases that exceed the budget on purpose.
fn is_budget_case(name: &str) -> bool {
    name.starts_with("budget-")
}

/// Resolves rule variables to a compiled matrix's slots, as its own compilation did.
struct Slots<'m>(&'m CompiledMatrix);

impl VariableLookup for Slots<'_> {
    fn lookup(&mut self, name: &str) -> Option<VariableInfo> {
        let slot = self.0.variable_slot(name)?;
        Some(VariableInfo { slot, ty: self.0.variables()[slot].ty })
    }
}

/// The most steps one rule evaluation of the spec takes, and where; apart, the most of a rule
/// that matches no pattern (compiling a pattern taken from the request costs some 20,000 steps,
/// about 20 µs).
#[derive(Default)]
struct Most {
    steps: u64,
    at: String,
    without_patterns: u64,
    without_patterns_at: String,
    rules: usize,
}

impl Most {
    fn record(&mut self, steps: u64, rule: &str, at: impl Fn() -> String) {
        self.rules += 1;
        if steps > self.steps {
            self.steps = steps;
            self.at = at();
        }
        if !rule.contains("matches") && steps > self.without_patterns {
            self.without_patterns = steps;
            self.without_patterns_at = at();
        }
    }
}

fn schema_of(case: &avsb_spec::EvalCase) -> ContextSchema {
    match &case.schema {
        Some(doc) => ContextSchema::from_value(doc).unwrap(),
        None => {
            let mut schema = ContextSchema::permissive();
            for (type_name, _) in &case.request.identifiers {
                schema.allow_identifier_type(type_name);
            }
            schema
        }
    }
}

#[test]
fn every_rule_of_the_spec_stays_far_below_the_budget() {
    let mut most = Most::default();
    let mut problems = Vec::new();
    let cases = avsb_spec::eval_cases().unwrap();
    for case in &cases {
        let budget_case = is_budget_case(&case.name);
        let schema = schema_of(case);
        let Ok(compilation) = CompiledMatrix::compile_json(&case.matrix.text(), &schema) else { continue };
        if !budget_case {
            for d in compilation.diagnostics.iter().filter(|d| d.code == "rule_too_costly") {
                problems.push(format!("{}: {d}", case.name));
            }
        }
        let Ok((document, _)) = MatrixDocument::from_json(&case.matrix.text()) else { continue };
        let request = &case.request;
        let params = IdentifyParams {
            identifiers: request.identifiers.clone(),
            context: request.context.clone(),
            tests: request.tests.clone(),
            force_groups: request.force.clone(),
            full_force: request.full_force.unwrap_or(false),
            now_millis: request.now,
            random_seed: request.seed,
        };
        if let Ok((_, reasons)) = pipet::identify_explained(&compilation.matrix, &params) {
            for (test, reason) in &reasons {
                let message = reason["message"].as_str().unwrap_or_default();
                if !budget_case && message.contains("budget") {
                    problems.push(format!("{}: test {test} failed on the budget: {message}", case.name));
                }
            }
        }
        // Every rule of every test that loads, evaluated with the case's request, one by one.
        let matrix = &compilation.matrix;
        let _ = pipet::with_request(matrix, &params, |request, _| {
            for (name, test) in &document.tests {
                if matrix.definition(name).is_none() {
                    continue;
                }
                let constants: IndexMap<String, Value> =
                    test.constants.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect();
                let rules = std::iter::once(test.rule.as_deref()).chain(test.allocations.iter().map(|a| a.rule.as_deref()));
                for rule in rules.flatten() {
                    let mut slots = Slots(matrix);
                    let Ok(compiled) = compile(Some(rule), &mut CompileEnv { constants: &constants, variables: &mut slots }) else {
                        continue;
                    };
                    let env = EvalEnv {
                        context: &request.context,
                        missing_experimental_unit: false,
                        now_millis: request.now_millis,
                        budget: Budget::new(),
                    };
                    let _ = compiled.rule.evaluate(&env);
                    if !budget_case {
                        most.record(env.budget.evaluation_steps(), rule, || format!("{} / {name}: {rule}", case.name));
                    }
                }
            }
        });
    }
    // The rule-language cases.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/rules/cases.json");
    let doc: Json = serde_json::from_str(&std::fs::read_to_string(dir).unwrap()).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let Some(rule) = case["rule"].as_str() else { continue };
        let constants: IndexMap<String, Value> = case["constants"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            .unwrap_or_default();
        let names: Vec<String> = case["schema"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        struct Names<'n>(&'n [String]);
        impl VariableLookup for Names<'_> {
            fn lookup(&mut self, name: &str) -> Option<VariableInfo> {
                Some(VariableInfo { slot: self.0.iter().position(|n| n == name)?, ty: None })
            }
        }
        let compiled = compile(Some(rule), &mut CompileEnv { constants: &constants, variables: &mut Names(&names) });
        if let Err(d) = &compiled {
            if d.code == "rule_too_costly" {
                problems.push(format!("rule case {}: {}", case["name"], d.message));
            }
            continue;
        }
        let context: Vec<Option<Value>> = names
            .iter()
            .map(|n| match &case["context"][n] {
                Json::Null => None,
                Json::String(s) => Some(Value::string(s.as_str())),
                other => Some(Value::from_json(other)),
            })
            .collect();
        let env = EvalEnv { context: &context, missing_experimental_unit: false, now_millis: case["now"].as_i64(), budget: Budget::new() };
        if let Ok(c) = compiled {
            let _ = c.rule.evaluate(&env);
            most.record(env.budget.evaluation_steps(), rule, || format!("rule case {}: {rule}", case["name"]));
        }
    }
    println!(
        "{} rules of spec/ evaluated; the most steps one took: {} ({}), {:.3}% of the limit of one evaluation; \
         without a regular expression: {} ({})",
        most.rules,
        most.steps,
        most.at,
        most.steps as f64 * 100.0 / MAX_STEPS_PER_EVALUATION as f64,
        most.without_patterns,
        most.without_patterns_at,
    );
    assert!(most.rules > 900, "only {} rules evaluated", most.rules);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(most.steps * 25 < MAX_STEPS_PER_EVALUATION, "{} steps: {}", most.steps, most.at);
    assert!(
        most.without_patterns < FREE_STEPS_PER_EVALUATION,
        "a spec rule draws on the request's budget: {} ({})",
        most.without_patterns,
        most.without_patterns_at
    );
}

/// A test whose rule takes about 810,000 steps for a 450-letter value: it makes two strings of
/// 202,500 bytes and reads each again.
fn expensive_rule() -> String {
    let square = "fn:length(fn:replace(country, 'a', country))";
    format!("${{{square} + {square} > 0}}")
}

fn one_bucket_test(name: &str, rule: Option<&str>) -> Json {
    json!({
        "salt": name, "testType": "USER", "rule": rule,
        "buckets": [{"name": "on", "value": 1}],
        "allocations": [{"rule": null, "ranges": [{"bucketValue": 1, "length": 1.0}]}],
    })
}

#[test]
fn a_request_stops_at_its_own_limit_but_cheap_tests_still_answer() {
    let mut tests = serde_json::Map::new();
    for i in 0..12 {
        tests.insert(format!("hog{i:02}"), one_bucket_test(&format!("hog{i:02}"), Some(&expensive_rule())));
        tests.insert(format!("hog{i:02}-cheap"), one_bucket_test(&format!("hog{i:02}-cheap"), Some("${fn:length(country) > 3}")));
    }
    let doc = json!({"audit": {"version": 1, "updated": 0, "updatedBy": "t"}, "tests": tests});
    let schema = ContextSchema::from_value(&json!({
        "context": {"country": {"source": "QUERY", "type": "String"}},
        "identifiers": {"USER": {"source": "QUERY"}},
    }))
    .unwrap();
    let compilation = CompiledMatrix::compile_json(&doc.to_string(), &schema).unwrap();
    assert!(compilation.dropped_tests().is_empty(), "{:?}", compilation.diagnostics);
    let matrix = &compilation.matrix;
    let mut request = matrix.request();
    request.identifiers[matrix.identifier_slot("USER").unwrap()] = Some(Cow::Borrowed("u1"));
    request.context[matrix.variable_slot("country").unwrap()] = Some(Value::string("a".repeat(450)));
    let started = std::time::Instant::now();
    let evaluation = matrix.evaluate(&request);
    let elapsed = started.elapsed();

    let (mut assigned_hogs, mut stopped_hogs) = (0, 0);
    for a in &evaluation.results {
        if a.test.ends_with("-cheap") {
            assert!(a.bucket.is_some(), "{}: {:?}", a.test, a.reason);
            continue;
        }
        match &a.reason {
            Reason::Allocation(_) => assigned_hogs += 1,
            Reason::RuleError(f) => {
                assert!(f.message.contains(&MAX_STEPS_PER_REQUEST.to_string()), "{}", f.message);
                stopped_hogs += 1;
            }
            other => panic!("{}: {other:?}", a.test),
        }
    }
    // Each expensive evaluation takes about 810,000 of the request's 5,242,880 steps.
    assert_eq!(assigned_hogs + stopped_hogs, 12);
    assert!((5..=7).contains(&assigned_hogs), "{assigned_hogs} expensive tests assigned");
    println!("{assigned_hogs} of 12 expensive tests assigned, {stopped_hogs} stopped, in {elapsed:?} (debug build)");

    // One test evaluated alone has a budget of its own.
    let alone = matrix.evaluate_test("hog11", &request).unwrap();
    assert!(alone.bucket.is_some(), "{:?}", alone.reason);
}
