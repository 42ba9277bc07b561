//! Evaluate: what every test of an environment gives one identifier with one context, and why,
//! as the engine decides it for the SDKs (targets, dependency, the test's rule, which allocation,
//! which range). The form is a GET form, so a result is a link to share.
//!
//! The request is built and evaluated by the engine's own entry point (`pipet::with_request`,
//! which the Python SDK's `explain` and Pipet's `/groups/identify` use too); this page only
//! checks each context value first so that a bad one is named beside its field, and puts the
//! engine's reasons into words.

use std::collections::HashMap;

use askama::Template;
use avsb_core::document::TestDefinition;
use avsb_core::pipet::{self, IdentifyParams};
use avsb_core::schema::ContextVariable;
use avsb_core::{ContextType, Reason};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::bars;
use super::format::{percent, url_component};
use super::pages::{environments, project_access};
use super::{render_status, ConsoleError, Layout, PageResult, Signed};
use crate::store::now_millis;
use crate::SharedState;

#[derive(Template)]
#[template(path = "evaluate.html")]
struct EvaluatePage {
    layout: Layout,
    project: String,
    environments: Vec<(String, String)>,
    env: String,
    env_name: String,
    revision: i64,
    types: Vec<String>,
    id_type: String,
    id: String,
    fields: Vec<ContextField>,
    errors: Vec<(String, String)>,
    /// Whether an evaluation was asked for (and made, when there are no errors).
    asked: bool,
    results: Vec<ResultRow>,
    assigned: usize,
}

/// One context variable's input.
struct ContextField {
    name: String,
    /// The input's id (`ctx-<index>`: variable names may hold any character).
    input_id: String,
    /// `number`, `boolean` or `text`.
    input: &'static str,
    /// `1` for whole numbers, `any` for decimals.
    step: &'static str,
    value: String,
    hint: String,
    error: Option<String>,
}

/// One test's result.
struct ResultRow {
    test: String,
    href: String,
    test_type: String,
    /// Bucket swatch (trusted SVG), name and value; `None` when the test gives no bucket.
    bucket: Option<(String, String, i32)>,
    payload: String,
    /// The reason in words, in parts; the rules among them are marked as code.
    reason: Vec<(String, bool)>,
    /// OpenFeature's reason code (`SPLIT`, `TARGETING_MATCH`, ...), as the SDKs report it.
    code: &'static str,
}

impl EvaluatePage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }
}

/// The kind of input for a context type.
fn input_of(ty: ContextType) -> (&'static str, &'static str) {
    match ty {
        ContextType::Byte | ContextType::Short | ContextType::Integer | ContextType::Long => ("number", "1"),
        ContextType::Float | ContextType::Double => ("number", "any"),
        ContextType::Boolean => ("boolean", ""),
        _ => ("text", ""),
    }
}

/// A context type in plain words.
fn type_words(ty: ContextType) -> &'static str {
    match ty {
        ContextType::Byte => "whole number from -128 to 127",
        ContextType::Short => "whole number from -32768 to 32767",
        ContextType::Integer => "whole number",
        ContextType::Long => "whole number (long)",
        ContextType::Float | ContextType::Double => "number",
        ContextType::Boolean => "true or false",
        ContextType::Character => "one character",
        ContextType::String => "text",
        ContextType::UserAgent => "user agent",
        ContextType::ReleaseVersion => "release version, such as 1.2.3",
    }
}

/// The hint beside a context input: its type, and what an empty input means.
fn hint_of(var: &ContextVariable) -> String {
    let default = match var.default_value.as_deref() {
        Some("") => "empty: the default, an empty text".to_string(),
        Some(d) => format!("empty: the default, {d}"),
        None => "required: no default".to_string(),
    };
    format!("{}; {default}", type_words(var.ty))
}

/// Checks one context value as the engine will convert it; the message names the field.
fn check_value(name: &str, var: &ContextVariable, raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return match var.default_value {
            Some(_) => Ok(()),
            None => Err(format!("Enter {name}: the schema gives it no default")),
        };
    }
    // The engine's detail names Java exceptions: the type in words says more.
    var.ty.convert(raw).map(|_| ()).map_err(|_| format!("{name} must be a {}, not '{raw}'", type_words(var.ty)))
}

/// Sets a rule off in a reason (a control character: no rule or name holds one).
const CODE: char = '\u{1}';

/// A reason's text in parts, each marked as code (a rule) or not.
fn parts(text: &str) -> Vec<(String, bool)> {
    text.split(CODE).enumerate().filter(|(_, t)| !t.is_empty()).map(|(i, t)| (t.to_string(), i % 2 == 1)).collect()
}

/// Why a test gave what it gave, in words, from the engine's reason.
fn reason_words(reason: &Reason, definition: Option<&TestDefinition>, bucket: Option<&str>, parents: &HashMap<&str, Option<String>>) -> String {
    // Rules are set off by CODE marks, so the page shows them as code.
    let rule_of = |r: Option<&str>| r.map(str::trim).filter(|r| !r.is_empty()).map(|r| format!("{CODE}{r}{CODE}"));
    let test_rule = definition.and_then(|d| rule_of(d.rule.as_deref()));
    let eligible = test_rule.as_ref().map_or(String::new(), |r| format!("The test's rule {r} is true. "));
    match reason {
        Reason::Forced => "Forced by force groups.".into(),
        Reason::Targeted => "The identifier is listed in the test's targets.".into(),
        Reason::Allocation(i) | Reason::MinLive(i) => {
            let allocation = definition.and_then(|d| d.allocations.get(*i));
            let which = match allocation.and_then(|a| rule_of(a.rule.as_deref())) {
                Some(rule) => format!("Allocation {} matched: its rule {rule} is true", i + 1),
                None if *i == 0 => "Allocation 1 (everyone) applies".to_string(),
                None => format!("Allocation {} (everyone else) applies: the rules before it are false", i + 1),
            };
            let bucket = bucket.unwrap_or("no bucket");
            if matches!(reason, Reason::MinLive(_)) {
                return format!("{eligible}{which}; the test gives its smallest live bucket, {bucket}.");
            }
            let value = definition.and_then(|d| d.buckets.iter().find(|b| b.name == bucket)).map(|b| b.value);
            let share: f64 = allocation
                .map(|a| a.ranges.iter().filter(|r| Some(r.bucket_value) == value).map(|r| r.length).sum())
                .unwrap_or(0.0);
            let random = definition.is_some_and(|d| d.test_type.eq_ignore_ascii_case("RANDOM"));
            let how = if random { "a random draw falls" } else { "the identifier's hash falls" };
            if share >= 1.0 {
                return format!("{eligible}{which}; everyone in it gets {bucket}.");
            }
            format!("{eligible}{which}; {how} in the range of {bucket} ({} of the allocation).", percent(share))
        }
        Reason::NotEligible => match (test_rule, definition) {
            (Some(rule), Some(d)) if d.allocations.last().is_some_and(|a| rule_of(a.rule.as_deref()).is_none()) => {
                format!("Not eligible: the test's rule {rule} is false.")
            }
            (Some(rule), _) => format!("Not eligible: the test's rule {rule} is false, or no allocation's rule is true."),
            (None, _) => "Not eligible: no allocation's rule is true.".into(),
        },
        Reason::NoIdentifier => match definition.map(|d| d.test_type.to_uppercase()) {
            Some(t) if t == "RANDOM" => "A RANDOM test: the SDK draws a number, and none was drawn.".into(),
            Some(t) => format!("No bucket: the test hashes {t} identifiers, and this evaluation gives none."),
            None => "No identifier of the test's type.".into(),
        },
        Reason::DependencyNotMet => match definition.and_then(|d| d.depends_on.as_ref()) {
            Some(p) => {
                let got = parents.get(p.test_name.as_str()).cloned().flatten().map_or_else(|| "no bucket".to_string(), |b| format!("bucket {b}"));
                format!("Depends on {} having bucket value {}; it gave {got}.", p.test_name, p.bucket_value)
            }
            None => "The test it depends on did not give the bucket it needs.".into(),
        },
        Reason::RuleError(failure) => format!("A rule failed ({}): {}. Only this test is left without a bucket.", failure.rule, failure.message),
        Reason::Incognito => "The request is incognito and the test does not evaluate for incognito users.".into(),
        Reason::Fallback => "No bucket: the test falls back to the application's default.".into(),
    }
}

/// `GET /projects/{project}/evaluate?env=&type=&id=&ctx.<variable>=`.
pub async fn evaluate(
    State(state): State<SharedState>,
    signed: Signed,
    Path(key): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let (project, _) = project_access(&state, &signed, &key).await?;
    let envs = environments(&state, &project).await?;
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let env_key = get("env").unwrap_or_default();
    let (env, snapshot) = if env_key.is_empty() { envs.last() } else { envs.iter().find(|(e, _)| e.key == env_key) }
        .ok_or_else(|| ConsoleError::NotFound(format!("There is no environment '{env_key}' in project '{}'.", project.key)))?;
    let schema = crate::ops::write::parse_schema(&project)?;
    let mut types: Vec<String> = schema.identifiers.keys().cloned().collect();
    if types.is_empty() {
        types = snapshot.matrix.identifier_types().to_vec();
    }
    let id_type = get("type")
        .map(str::to_string)
        .filter(|t| types.contains(t))
        .or_else(|| types.iter().find(|t| **t == project.default_identifier_type).cloned())
        .or_else(|| types.first().cloned())
        .unwrap_or_default();
    let id = get("id").map(str::to_string);
    let asked = id.is_some();
    let mut errors: Vec<(String, String)> = Vec::new();
    if id.as_deref().is_some_and(|i| i.trim().is_empty()) {
        errors.push(("id".into(), "Enter an identifier".into()));
    }
    let fields: Vec<ContextField> = schema
        .variables
        .iter()
        .enumerate()
        .map(|(i, (name, var))| {
            let value = get(&format!("ctx.{name}")).unwrap_or_default().trim().to_string();
            let (input, step) = input_of(var.ty);
            let error = if asked { check_value(name, var, &value).err() } else { None };
            let input_id = format!("ctx-{i}");
            if let Some(e) = &error {
                errors.push((input_id.clone(), e.clone()));
            }
            ContextField { name: name.clone(), input_id, input, step, value, hint: hint_of(var), error }
        })
        .collect();
    let mut results = Vec::new();
    if asked && errors.is_empty() {
        let params = IdentifyParams {
            identifiers: vec![(id_type.clone(), id.clone().unwrap_or_default().trim().to_string())],
            context: fields.iter().filter(|f| !f.value.is_empty()).map(|f| (f.name.clone(), f.value.clone())).collect(),
            now_millis: Some(now_millis()),
            // As the SDKs do: RANDOM tests draw anew on every evaluation.
            random_seed: if snapshot.has_random_tests { getrandom::u64().ok() } else { None },
            ..IdentifyParams::default()
        };
        let matrix = &snapshot.matrix;
        let evaluated = pipet::with_request(matrix, &params, |request, _| {
            let evaluation = matrix.evaluate(request);
            let given: HashMap<&str, Option<String>> =
                evaluation.results.iter().map(|a| (a.test, a.bucket.map(|b| format!("{} ({})", b.name, b.value)))).collect();
            evaluation
                .results
                .iter()
                .map(|a| {
                    let definition = matrix.definition(a.test);
                    ResultRow {
                        test: a.test.to_string(),
                        href: format!("/projects/{}/tests/{}", url_component(&project.key), url_component(a.test)),
                        test_type: definition.map_or(String::new(), |d| d.test_type.to_uppercase()),
                        bucket: a.bucket.map(|b| (bars::swatch(b.value), b.name.clone(), b.value)),
                        payload: a.payload.as_ref().map_or(String::new(), |p| p.value_json().to_string()),
                        reason: parts(&reason_words(&a.reason, definition, a.bucket.map(|b| b.name.as_str()), &given)),
                        code: matrix.openfeature_reason(a),
                    }
                })
                .collect::<Vec<_>>()
        });
        match evaluated {
            Ok(rows) => results = rows,
            Err(e) => errors.push(("id".into(), e.message)),
        }
    }
    let assigned = results.iter().filter(|r| r.bucket.is_some()).count();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = EvaluatePage {
        layout: Layout::new(format!("Evaluate · {}", env.name), &signed).in_project(&project, "evaluate").with_errors(!errors.is_empty()),
        project: project.key.clone(),
        environments: envs.iter().map(|(e, _)| (e.key.clone(), e.name.clone())).collect(),
        env: env.key.clone(),
        env_name: env.name.clone(),
        revision: snapshot.revision.id,
        types,
        id_type,
        id: id.unwrap_or_default(),
        fields,
        errors,
        asked,
        results,
        assigned,
    };
    render_status(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use avsb_core::ContextSchema;

    fn schema() -> ContextSchema {
        ContextSchema::from_json(
            r#"{"context": {"age": {"source": "QUERY", "type": "int"}, "pro": {"source": "QUERY", "type": "boolean", "defaultValue": false}},
                "identifiers": {"USER": {"source": "QUERY"}}}"#,
        )
        .expect("a schema")
    }

    fn definition(rule: Option<&str>, allocation_rules: &[Option<&str>]) -> TestDefinition {
        let allocations: Vec<String> = allocation_rules
            .iter()
            .map(|r| {
                let rule = r.map_or("null".to_string(), |r| format!("\"{r}\""));
                format!(r#"{{"rule": {rule}, "ranges": [{{"bucketValue": 0, "length": 0.25}}, {{"bucketValue": 1, "length": 0.75}}]}}"#)
            })
            .collect();
        let rule = rule.map_or("null".to_string(), |r| format!("\"{r}\""));
        let json = format!(
            r#"{{"audit": {{"version": "1", "updated": 0, "updatedBy": "t"}}, "tests": {{"t": {{"testType": "USER", "salt": "t", "rule": {rule},
               "buckets": [{{"name": "control", "value": 0}}, {{"name": "new", "value": 1}}], "allocations": [{}]}}}}}}"#,
            allocations.join(",")
        );
        MatrixDocument::from_json(&json).expect("a document").0.tests.swap_remove("t").expect("the test")
    }

    use avsb_core::MatrixDocument;

    fn words(reason: &Reason, d: &TestDefinition, bucket: Option<&str>) -> String {
        reason_words(reason, Some(d), bucket, &HashMap::new()).replace(CODE, "`")
    }

    #[test]
    fn a_bad_context_value_is_named_with_its_type() {
        let schema = schema();
        let age = &schema.variables["age"];
        assert!(check_value("age", age, "41").is_ok());
        let message = check_value("age", age, "forty").expect_err("not a number");
        assert_eq!(message, "age must be a whole number, not 'forty'");
        assert_eq!(check_value("age", age, "").expect_err("no default"), "Enter age: the schema gives it no default");
        assert!(check_value("pro", &schema.variables["pro"], "").is_ok(), "an empty value takes the default");
    }

    #[test]
    fn inputs_follow_the_context_type() {
        assert_eq!(input_of(ContextType::Integer), ("number", "1"));
        assert_eq!(input_of(ContextType::Double), ("number", "any"));
        assert_eq!(input_of(ContextType::Boolean).0, "boolean");
        assert_eq!(input_of(ContextType::String).0, "text");
    }

    #[test]
    fn a_reason_says_which_allocation_and_range() {
        let d = definition(Some("${pro}"), &[Some("${age > 40}"), None]);
        assert_eq!(
            words(&Reason::Allocation(0), &d, Some("new")),
            "The test's rule `${pro}` is true. Allocation 1 matched: its rule `${age > 40}` is true; the identifier's hash falls in the range of new (75% of the allocation)."
        );
        assert_eq!(
            words(&Reason::Allocation(1), &d, Some("control")),
            "The test's rule `${pro}` is true. Allocation 2 (everyone else) applies: the rules before it are false; the identifier's hash falls in the range of control (25% of the allocation)."
        );
    }

    #[test]
    fn not_eligible_blames_the_test_rule_when_an_allocation_takes_everyone_else() {
        let catch_all = definition(Some("${pro}"), &[Some("${age > 40}"), None]);
        assert_eq!(words(&Reason::NotEligible, &catch_all, None), "Not eligible: the test's rule `${pro}` is false.");
        let all_ruled = definition(Some("${pro}"), &[Some("${age > 40}")]);
        assert_eq!(
            words(&Reason::NotEligible, &all_ruled, None),
            "Not eligible: the test's rule `${pro}` is false, or no allocation's rule is true."
        );
        let no_rule = definition(None, &[Some("${age > 40}")]);
        assert_eq!(words(&Reason::NotEligible, &no_rule, None), "Not eligible: no allocation's rule is true.");
    }

    #[test]
    fn rules_are_set_off_as_code() {
        assert_eq!(
            parts("The test's rule \u{1}${a}\u{1} is true."),
            vec![("The test's rule ".to_string(), false), ("${a}".to_string(), true), (" is true.".to_string(), false)]
        );
    }
}
