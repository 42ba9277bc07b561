//! The shared evaluation cases in `spec/eval/*.json` (format in `spec/eval/README.md`), read
//! once for every Rust runner: the engine's (`crates/avsb-core/tests/spec_eval.rs`) and the
//! server's (`crates/avsb-server/tests/api/spec_over_http.rs`). Each runner decides how to put a
//! case to its implementation; the reading, the checks of the format (unknown keys, unique
//! names, exactly one matrix) and the way a difference is reported are here.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The repository's `spec/` directory.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec")
}

/// `spec/eval/`, where the case files are and `matrix_file` paths start.
pub fn eval_dir() -> PathBuf {
    dir().join("eval")
}

/// One evaluation case.
#[derive(Debug, Clone)]
pub struct EvalCase {
    /// The file it is in (`pipet.json`).
    pub file: String,
    /// Its name, unique across the files.
    pub name: String,
    /// What it pins, citing its source.
    pub description: Option<String>,
    /// The matrix.
    pub matrix: Matrix,
    /// Pipet's configuration document; absent for the engine's permissive schema.
    pub schema: Option<Value>,
    /// The raw values of one `/groups/identify` call.
    pub request: Request,
    /// What must come out.
    pub expect: Expect,
}

/// A case's matrix.
#[derive(Debug, Clone)]
pub enum Matrix {
    /// A `TestMatrixArtifact` as a JSON object.
    Object(Value),
    /// The raw document text, for the cases about lenient parsing (comments and the like).
    Text(String),
    /// A shared matrix under `spec/eval/` (it may hold comments), with its text.
    File {
        /// The path relative to `spec/eval/`.
        path: String,
        /// What the file holds.
        text: String,
    },
}

impl Matrix {
    /// The document text, whatever form the case gives it in.
    pub fn text(&self) -> String {
        match self {
            Matrix::Object(value) => value.to_string(),
            Matrix::Text(text) | Matrix::File { text, .. } => text.clone(),
        }
    }
}

/// The raw values of one `/groups/identify` call, already taken from where they came from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Identifier type → raw text, in the case's order.
    #[serde(default, deserialize_with = "ordered")]
    pub identifiers: Vec<(String, String)>,
    /// Context variable name → raw text, in the case's order.
    #[serde(default, deserialize_with = "ordered")]
    pub context: Vec<(String, String)>,
    /// The raw `test` parameter (absent: every test).
    pub tests: Option<String>,
    /// The raw `prforceGroups` parameter.
    pub force: Option<String>,
    /// Whether forced payloads and default modes are honoured too (given or not).
    pub full_force: Option<bool>,
    /// The request time in epoch milliseconds.
    pub now: Option<i64>,
    /// The random number for RANDOM tests.
    pub seed: Option<u64>,
}

/// What a case expects: a successful answer's parts, or a refusal.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exactly Pipet's `groups`.
    pub groups: Option<Value>,
    /// The reasons of the listed tests, in the case's order.
    #[serde(default, deserialize_with = "ordered_some")]
    pub reasons: Option<Vec<(String, Option<ExpectedReason>)>>,
    /// Test → diagnostic code: exactly these tests are dropped, each with an error of that code.
    #[serde(default, deserialize_with = "ordered_some")]
    pub dropped: Option<Vec<(String, String)>>,
    /// Exactly Pipet's converted `context`.
    pub context: Option<Value>,
    /// Exactly Pipet's `audit`.
    pub audit: Option<Value>,
    /// A refusal's status.
    pub status: Option<u16>,
    /// A refusal's exact message (only with `status`).
    pub message: Option<String>,
}

/// The expected reason of one test (`null`, not evaluated or not reported, is `None` beside it).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ExpectedReason {
    /// The reason's code.
    Code(String),
    /// Fields the reason must have, with these values.
    Fields(Map<String, Value>),
}

impl ExpectedReason {
    /// Whether a reason (as JSON) is this one.
    pub fn matches(&self, reason: &Value) -> bool {
        match self {
            ExpectedReason::Code(code) => reason.get("code").and_then(Value::as_str) == Some(code),
            ExpectedReason::Fields(fields) => fields.iter().all(|(k, v)| reason.get(k) == Some(v)),
        }
    }
}

impl fmt::Display for ExpectedReason {
    /// As the case writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedReason::Code(code) => write!(f, "{}", Value::String(code.clone())),
            ExpectedReason::Fields(fields) => write!(f, "{}", Value::Object(fields.clone())),
        }
    }
}

/// A JSON object as (key, value) pairs in document order.
fn ordered<'de, D, T>(deserializer: D) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Pairs<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Pairs<T> {
        type Value = Vec<(String, T)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::new();
            while let Some(pair) = map.next_entry()? {
                pairs.push(pair);
            }
            Ok(pairs)
        }
    }
    deserializer.deserialize_map(Pairs(std::marker::PhantomData))
}

fn ordered_some<'de, D, T>(deserializer: D) -> Result<Option<Vec<(String, T)>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    ordered(deserializer).map(Some)
}

/// A case as written, before the checks that span fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    description: Option<String>,
    matrix: Option<Value>,
    matrix_file: Option<String>,
    schema: Option<Value>,
    #[serde(default)]
    request: Request,
    expect: Expect,
}

/// A case file: optional prose and the cases.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(rename = "about")]
    _about: Option<String>,
    cases: Vec<Value>,
}

/// Why the cases could not all be read: one line per file or case, naming it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError(pub Vec<String>);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problems in the spec cases:\n{}", self.0.len(), self.0.join("\n"))
    }
}

impl std::error::Error for LoadError {}

/// Every case of every `spec/eval/*.json`, files in name order and cases in file order.
pub fn eval_cases() -> Result<Vec<EvalCase>, LoadError> {
    let dir = eval_dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| LoadError(vec![format!("cannot read {}: {e}", dir.display())]))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LoadError(vec![format!("no case files in {}", dir.display())]));
    }
    let mut problems = Vec::new();
    let mut cases = Vec::new();
    let mut names = HashSet::new();
    for path in &files {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let doc = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<CaseFile>(&text).map_err(|e| e.to_string()));
        let doc = match doc {
            Ok(doc) => doc,
            Err(e) => {
                problems.push(format!("{file}: cannot read: {e}"));
                continue;
            }
        };
        for (index, value) in doc.cases.into_iter().enumerate() {
            let label = value.get("name").and_then(Value::as_str).map_or_else(|| format!("case #{index}"), str::to_string);
            match read_case(&file, value, &dir) {
                Ok(case) if !names.insert(case.name.clone()) => {
                    problems.push(format!("{file}: case name '{}' is used twice", case.name));
                }
                Ok(case) => cases.push(case),
                Err(e) => problems.push(format!("{file} / {label}: {e}")),
            }
        }
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(LoadError(problems))
    }
}

fn read_case(file: &str, value: Value, dir: &Path) -> Result<EvalCase, String> {
    let raw: RawCase = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if raw.name.is_empty() {
        return Err("no name".into());
    }
    let matrix = match (raw.matrix, raw.matrix_file) {
        (Some(Value::String(text)), None) => Matrix::Text(text),
        (Some(object @ Value::Object(_)), None) => Matrix::Object(object),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(dir.join(&path)).map_err(|e| format!("cannot read matrix_file {path}: {e}"))?;
            Matrix::File { path, text }
        }
        _ => return Err("a case needs exactly one of \"matrix\" (object or text) and \"matrix_file\"".into()),
    };
    if raw.expect.message.is_some() && raw.expect.status.is_none() {
        return Err("expect.message needs expect.status".into());
    }
    Ok(EvalCase {
        file: file.to_string(),
        name: raw.name,
        description: raw.description,
        matrix,
        schema: raw.schema,
        request: raw.request,
        expect: raw.expect,
    })
}

/// Adds to `problems` a readable difference when `actual` is not `expected`: every path where
/// they differ, and the whole actual value.
pub fn check_equal(what: &str, expected: &Value, actual: &Value, problems: &mut Vec<String>) {
    if expected == actual {
        return;
    }
    let mut lines = Vec::new();
    differences(what, expected, actual, &mut lines);
    if lines.is_empty() {
        // Equal but for number representation (1 vs 1.0): show both.
        lines.push(format!("  {what}: expected {expected}, got {actual}"));
    }
    problems.push(format!("{what} differs:\n{}\n  (actual {what}: {actual})", lines.join("\n")));
}

/// Lists every path where `actual` differs from `expected`.
fn differences(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                match a.get(k) {
                    Some(av) => differences(&p, ev, av, out),
                    None => out.push(format!("  {p}: missing; expected {ev}")),
                }
            }
            for (k, av) in a.iter().filter(|(k, _)| !e.contains_key(*k)) {
                out.push(format!("  {path}.{k}: unexpected {av}"));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                differences(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("  {path}: expected {expected}, got {actual}")),
    }
}

/// One failed case as the runners print it: the file and name, the description, the problems.
pub fn describe_failure(case: &EvalCase, problems: &[String]) -> String {
    let mut text = format!("✗ {} / {}", case.file, case.name);
    if let Some(description) = &case.description {
        text.push_str(&format!("\n  ({description})"));
    }
    for problem in problems {
        text.push_str(&format!("\n  {}", problem.replace('\n', "\n  ")));
    }
    text
}

/// Panics with every failure and then their names, if there is any.
pub fn assert_no_failures(what: &str, total: usize, failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    let names: Vec<&str> = failures.iter().filter_map(|f| f.lines().next()).collect();
    panic!("{} of {total} {what} failed:\n\n{}\n\nFailed:\n{}", failures.len(), failures.join("\n\n"), names.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shared_case_reads() {
        let cases = eval_cases().unwrap_or_else(|e| panic!("{e}"));
        assert!(cases.len() > 100, "only {} cases", cases.len());
    }

    #[test]
    fn request_values_keep_the_cases_order() {
        let request: Request = serde_json::from_str(r#"{"context": {"b": "1", "a": "2"}}"#).unwrap();
        assert_eq!(request.context, [("b".to_string(), "1".to_string()), ("a".to_string(), "2".to_string())]);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let value = serde_json::json!({"name": "x", "matrix": {}, "expect": {"grups": {}}});
        let error = read_case("f.json", value, &eval_dir()).unwrap_err();
        assert!(error.contains("grups"), "{error}");
    }

    #[test]
    fn a_case_needs_exactly_one_matrix() {
        let value = serde_json::json!({"name": "x", "matrix": {}, "matrix_file": "m.json", "expect": {}});
        assert!(read_case("f.json", value, &eval_dir()).unwrap_err().contains("exactly one"));
    }

    #[test]
    fn differences_name_each_path() {
        let mut problems = Vec::new();
        check_equal("groups", &serde_json::json!({"a": 1, "b": [1]}), &serde_json::json!({"b": [2], "c": 3}), &mut problems);
        let text = &problems[0];
        for needle in ["groups.a: missing", "groups.b[0]: expected 1, got 2", "groups.c: unexpected 3"] {
            assert!(text.contains(needle), "{text}");
        }
    }
}
