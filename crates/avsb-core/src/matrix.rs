//! The test matrix as Proctor writes it (§1): `TestMatrixArtifact`, `ConsumableTestDefinition`,
//! buckets, payloads, allocations and ranges, read leniently as Proctor's Jackson mapper does.
//!
//! Reading never fails because of one test: the document is split into its tests first, and a
//! test that cannot be read becomes a [`Diagnostic`] while the others are kept.

use std::borrow::Cow;

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::diagnostic::Diagnostic;

/// Matrix metadata (`Audit`, §1.3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Audit {
    /// The matrix version (numbers are coerced to text).
    pub version: Option<String>,
    /// Epoch milliseconds of the last change.
    pub updated: i64,
    /// Who changed it last.
    pub updated_by: Option<String>,
}

impl Audit {
    /// `updatedDate`: `yyyy-MM-dd'T'HH:mmZ` in zone US/Central, or `""` when `updated <= 0`.
    pub fn updated_date(&self) -> String {
        crate::uscentral::format_updated_date(self.updated)
    }

    /// The audit as Proctor and Pipet write it.
    pub fn to_json(&self) -> Json {
        serde_json::json!({
            "version": self.version,
            "updated": self.updated,
            "updatedDate": self.updated_date(),
            "updatedBy": self.updated_by,
        })
    }
}

/// A bucket's typed value (§1.7), plus our boolean extension.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `doubleValue`
    DoubleValue(f64),
    /// `doubleArray`
    DoubleArray(Vec<Option<f64>>),
    /// `longValue`
    LongValue(i64),
    /// `longArray`
    LongArray(Vec<Option<i64>>),
    /// `stringValue`
    StringValue(String),
    /// `stringArray`
    StringArray(Vec<Option<String>>),
    /// `map`: string keys to numbers, strings or arrays of them.
    Map(IndexMap<String, Json>),
    /// `json`: any JSON value.
    Json(Json),
    /// `booleanValue` (A vs B extension; exported to Proctor as `json`).
    BooleanValue(bool),
}

/// The payload type names, in Proctor's inference order, then ours.
pub const PAYLOAD_TYPES: [&str; 9] = [
    "doubleValue",
    "doubleArray",
    "longValue",
    "longArray",
    "stringValue",
    "stringArray",
    "map",
    "json",
    "booleanValue",
];

impl Payload {
    /// The payload's type name (its JSON key).
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::DoubleValue(_) => "doubleValue",
            Payload::DoubleArray(_) => "doubleArray",
            Payload::LongValue(_) => "longValue",
            Payload::LongArray(_) => "longArray",
            Payload::StringValue(_) => "stringValue",
            Payload::StringArray(_) => "stringArray",
            Payload::Map(_) => "map",
            Payload::Json(_) => "json",
            Payload::BooleanValue(_) => "booleanValue",
        }
    }

    /// The payload's value as JSON (without the type key).
    pub fn value_json(&self) -> Json {
        fn opt<T: Into<Json> + Clone>(items: &[Option<T>]) -> Json {
            Json::Array(items.iter().map(|i| i.clone().map_or(Json::Null, Into::into)).collect())
        }
        match self {
            Payload::DoubleValue(d) => Json::from(*d),
            Payload::DoubleArray(items) => opt(items),
            Payload::LongValue(n) => Json::from(*n),
            Payload::LongArray(items) => opt(items),
            Payload::StringValue(s) => Json::from(s.as_str()),
            Payload::StringArray(items) => opt(items),
            Payload::Map(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            Payload::Json(value) => value.clone(),
            Payload::BooleanValue(b) => Json::Bool(*b),
        }
    }

    /// Writes [`Payload::value_json`] as JSON text, without building a tree.
    pub fn write_value(&self, out: &mut Vec<u8>) {
        use crate::pipet::write_json;
        match self {
            Payload::DoubleValue(d) => write_json(out, d),
            Payload::DoubleArray(items) => write_json(out, items),
            Payload::LongValue(n) => write_json(out, n),
            Payload::LongArray(items) => write_json(out, items),
            Payload::StringValue(s) => write_json(out, s),
            Payload::StringArray(items) => write_json(out, items),
            Payload::Map(map) => write_json(out, map),
            Payload::Json(value) => write_json(out, value),
            Payload::BooleanValue(b) => write_json(out, b),
        }
    }

    /// `{"<type>": <value>}`, as the matrix and Pipet write it.
    pub fn to_json(&self) -> Json {
        let mut out = serde_json::Map::with_capacity(1);
        out.insert(self.type_name().to_string(), self.value_json());
        Json::Object(out)
    }

    /// The payload in Proctor's own types: a boolean becomes `{"json": true}`.
    pub fn to_proctor(&self) -> Payload {
        match self {
            Payload::BooleanValue(b) => Payload::Json(Json::Bool(*b)),
            other => other.clone(),
        }
    }
}

/// One outcome of a test (`TestBucket`, §1.6).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The bucket's name (`""` when absent).
    pub name: String,
    /// The bucket's value; negative values are conventionally inactive.
    pub value: i32,
    /// A description.
    pub description: Option<String>,
    /// The bucket's payload.
    pub payload: Option<Payload>,
}

/// One part of an allocation's traffic (`Range`, §1.8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The bucket this range assigns.
    pub bucket_value: i32,
    /// Its share of the traffic, in [0, 1].
    pub length: f64,
}

/// A rule plus ranges (`Allocation`, §1.8).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Allocation {
    /// The allocation rule; `None` matches everyone.
    pub rule: Option<String>,
    /// The ranges, in order.
    pub ranges: Vec<Range>,
    /// The webapp's allocation id, e.g. `#A1`.
    pub id: String,
    /// A name.
    pub name: String,
}

/// `dependsOn` (§1.4).
#[derive(Debug, Clone, PartialEq)]
pub struct DependsOn {
    /// The parent test.
    pub test_name: String,
    /// The bucket value the parent must have been assigned.
    pub bucket_value: i32,
}

/// A list of identifiers that always get one bucket (A vs B extension).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The bucket they get.
    pub bucket_value: i32,
    /// The identifiers, of the test's identifier type.
    pub identifiers: Vec<String>,
}

/// One test (`ConsumableTestDefinition`, §1.4) with our optional extensions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestDefinition {
    /// Per-test version (numbers coerced to text).
    pub version: Option<String>,
    /// Hash salt (§2.5).
    pub salt: Option<String>,
    /// Eligibility rule.
    pub rule: Option<String>,
    /// Constants visible to this test's rules, in document order.
    pub constants: IndexMap<String, Json>,
    /// Buckets.
    pub buckets: Vec<Bucket>,
    /// Allocations, first matching wins.
    pub allocations: Vec<Allocation>,
    /// Consumer logging only.
    pub silent: bool,
    /// The identifier type (`USER`, ..., or a custom type declared in the schema).
    pub test_type: String,
    /// A description.
    pub description: Option<String>,
    /// Free tags.
    pub meta_tags: Vec<String>,
    /// The parent test this one depends on.
    pub depends_on: Option<DependsOn>,
    /// Informational.
    pub dynamic: bool,
    /// Evaluate even for requests with `isIncognitoUser=true`.
    pub evaluate_for_incognito_users: bool,
    /// Use the unitless chooser (§2.7).
    pub enable_unitless_allocations: bool,
    /// Computed by Proctor's builder (§2.7).
    pub contains_unitless_allocation: bool,
    /// Consumer logging only.
    pub force_logging: bool,
    /// Payload experiments (kept as written; not used for assignment).
    pub payload_experiment_config: Option<Json>,
    /// Identifiers that always get a bucket (A vs B extension).
    pub targets: Vec<Target>,
}

/// A whole matrix as read: its audit and its tests, in document order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestMatrix {
    /// The audit.
    pub audit: Audit,
    /// Tests by name, in document order.
    pub tests: IndexMap<String, TestDefinition>,
}

/// A document that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DocumentError {
    /// What is wrong.
    pub message: String,
}

/// Parses JSON the way Proctor's lenient mapper does: `//` and `/* */` comments allowed.
pub fn parse_lenient_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let stripped = strip_comments(text);
    serde_json::from_str(&stripped).map_err(|e| format!("not valid JSON: {e}"))
}

/// Replaces comments by spaces (keeping line and column numbers of everything else).
fn strip_comments(text: &str) -> Cow<'_, str> {
    if !text.contains("//") && !text.contains("/*") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    // Jackson's ALLOW_COMMENTS takes C-style comments only, not `#`.
    let mut reader = json_comments::StripComments::with_settings(json_comments::CommentSettings::c_style(), text.as_bytes());
    if std::io::Read::read_to_string(&mut reader, &mut out).is_err() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(out)
}

impl TestMatrix {
    /// Reads a `TestMatrixArtifact`. Tests that cannot be read are returned as diagnostics;
    /// only a document that is not JSON, or lacks `audit` or `tests`, fails whole.
    pub fn from_json(text: &str) -> Result<(TestMatrix, Vec<Diagnostic>), DocumentError> {
        Self::read(text, true)
    }

    /// [`TestMatrix::from_json`] with only the tree reader, to check the fast one against.
    #[cfg(test)]
    pub(crate) fn from_json_slow(text: &str) -> Result<(TestMatrix, Vec<Diagnostic>), DocumentError> {
        Self::read(text, false)
    }

    fn read(text: &str, fast: bool) -> Result<(TestMatrix, Vec<Diagnostic>), DocumentError> {
        #[derive(serde::Deserialize)]
        struct Top<'a> {
            #[serde(borrow)]
            audit: Option<&'a serde_json::value::RawValue>,
            #[serde(borrow)]
            tests: Option<IndexMap<String, &'a serde_json::value::RawValue>>,
        }
        let stripped = strip_comments(text);
        let top: Top<'_> = serde_json::from_str(&stripped)
            .map_err(|e| DocumentError { message: format!("the matrix is not valid JSON: {e}") })?;
        let audit = top.audit.ok_or_else(|| DocumentError { message: "the matrix has no 'audit'".into() })?;
        let tests = top.tests.ok_or_else(|| DocumentError { message: "the matrix has no 'tests'".into() })?;
        let audit: Json = serde_json::from_str(audit.get())
            .map_err(|e| DocumentError { message: format!("audit: {e}") })?;
        let audit = read_audit(&audit).map_err(|e| DocumentError { message: e.to_string() })?;
        let mut matrix = TestMatrix { audit, tests: IndexMap::with_capacity(tests.len()) };
        let mut diagnostics = Vec::new();
        for (name, raw) in tests {
            if let Some(test) = fast.then(|| crate::matrix_fast::read_test(raw.get())).flatten() {
                matrix.tests.insert(name, test);
                continue;
            }
            let json: Json = match serde_json::from_str(raw.get()) {
                Ok(json) => json,
                Err(e) => {
                    diagnostics.push(Diagnostic::error(&name, format!("tests.{name}"), "invalid_field", e.to_string()));
                    continue;
                }
            };
            if json.is_null() {
                // Proctor skips a null definition.
                continue;
            }
            match read_test(&json, false) {
                Ok(test) => {
                    matrix.tests.insert(name, test);
                }
                Err(FieldError { path, message }) => {
                    let path = if path.is_empty() { format!("tests.{name}") } else { format!("tests.{name}.{path}") };
                    diagnostics.push(Diagnostic::error(&name, path, "invalid_field", message));
                }
            }
        }
        Ok((matrix, diagnostics))
    }

    /// The matrix as Proctor writes it (`GET /proctor/matrix`): nulls kept, doubles in plain
    /// notation. With `proctor_only`, our extensions are left out and boolean payloads become
    /// `json`, so Proctor reads the same assignments.
    pub fn to_json(&self, proctor_only: bool) -> Json {
        let tests: serde_json::Map<_, _> =
            self.tests.iter().map(|(name, test)| (name.clone(), test.to_json(proctor_only))).collect();
        serde_json::json!({ "audit": self.audit.to_json(), "tests": tests })
    }
}

/// A field that cannot be read, with its path inside the test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// Dotted path from the test (`allocations[0].ranges[1].length`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Where a field is: built on the stack as reading descends, rendered as text
/// (`allocations[0].ranges[1].length`) only when there is an error to report.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    parent: Option<&'a At<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> At<'a> {
    /// The test itself (or the document, for the audit).
    pub(crate) const ROOT: At<'static> = At { parent: None, step: Step::Root };

    fn key(&'a self, key: &'a str) -> At<'a> {
        At { parent: Some(self), step: Step::Key(key) }
    }

    fn index(&'a self, index: usize) -> At<'a> {
        At { parent: Some(self), step: Step::Index(index) }
    }

    fn render(&self) -> String {
        let mut out = self.parent.map(At::render).unwrap_or_default();
        match self.step {
            Step::Root => {}
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
        out
    }
}

fn field_error(at: &At<'_>, message: impl Into<String>) -> FieldError {
    FieldError { path: at.render(), message: message.into() }
}

/// Lenient scalar readers, as Jackson coerces by default.
mod scalar {
    use super::{field_error, At, FieldError, Json};

    /// A String field: text, or a number/boolean coerced to its text.
    pub fn string(v: &Json, at: &At<'_>) -> Result<Option<String>, FieldError> {
        match v {
            Json::Null => Ok(None),
            Json::String(s) => Ok(Some(s.clone())),
            Json::Number(n) => Ok(Some(n.to_string())),
            Json::Bool(b) => Ok(Some(b.to_string())),
            _ => Err(field_error(at, format!("expected a string, found {}", kind(v)))),
        }
    }

    /// A 32-bit int field: an integer, a decimal truncated, or numeric text; null is 0.
    pub fn int(v: &Json, at: &At<'_>) -> Result<i32, FieldError> {
        let wide = long(v, at)?;
        i32::try_from(wide).map_err(|_| field_error(at, format!("{wide} does not fit a 32-bit int")))
    }

    /// A 64-bit long field.
    pub fn long(v: &Json, at: &At<'_>) -> Result<i64, FieldError> {
        match v {
            Json::Null => Ok(0),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(i)
                } else {
                    let d = n.as_f64().unwrap_or(f64::NAN);
                    if d.is_finite() && d.abs() < 9.2e18 {
                        Ok(d.trunc() as i64)
                    } else {
                        Err(field_error(at, format!("{n} does not fit a 64-bit long")))
                    }
                }
            }
            Json::String(s) => crate::java::parse_long(s.trim())
                .map_err(|_| field_error(at, format!("expected an integer, found \"{s}\""))),
            _ => Err(field_error(at, format!("expected an integer, found {}", kind(v)))),
        }
    }

    /// A double field: a number or numeric text; null is 0.
    pub fn double(v: &Json, at: &At<'_>) -> Result<f64, FieldError> {
        match v {
            Json::Null => Ok(0.0),
            Json::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => crate::java::parse_double(s)
                .map_err(|_| field_error(at, format!("expected a number, found \"{s}\""))),
            _ => Err(field_error(at, format!("expected a number, found {}", kind(v)))),
        }
    }

    /// A boolean field: true/false, "true"/"false", or a number (0 is false); null is false.
    pub fn boolean(v: &Json, at: &At<'_>) -> Result<bool, FieldError> {
        match v {
            Json::Null => Ok(false),
            Json::Bool(b) => Ok(*b),
            Json::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Json::String(s) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(false),
            Json::Number(n) => Ok(n.as_f64() != Some(0.0)),
            _ => Err(field_error(at, format!("expected true or false, found {}", kind(v)))),
        }
    }

    /// The JSON kind, for messages.
    pub fn kind(v: &Json) -> &'static str {
        match v {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

fn object<'a>(v: &'a Json, at: &At<'_>) -> Result<&'a serde_json::Map<String, Json>, FieldError> {
    v.as_object().ok_or_else(|| field_error(at, format!("expected an object, found {}", scalar::kind(v))))
}

/// An array field: absent or null is empty; any other non-array is refused, as Jackson does
/// with its defaults (no single value read as a one-element array).
fn array<'a>(v: Option<&'a Json>, at: &At<'_>) -> Result<&'a [Json], FieldError> {
    match v {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(other) => Err(field_error(at, format!("expected an array, found {}", scalar::kind(other)))),
    }
}

/// Reads each element of an array field with `read`.
fn each<T>(
    v: Option<&Json>,
    at: &At<'_>,
    read: impl Fn(&Json, &At<'_>) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    array(v, at)?.iter().enumerate().map(|(i, item)| read(item, &at.index(i))).collect()
}

fn read_audit(v: &Json) -> Result<Audit, FieldError> {
    let root = At::ROOT;
    let at = root.key("audit");
    let o = object(v, &at)?;
    let mut audit = Audit::default();
    for (key, value) in o {
        let at = at.key(key);
        match key.as_str() {
            "version" => audit.version = scalar::string(value, &at)?,
            "updated" => audit.updated = scalar::long(value, &at)?,
            "updatedBy" => audit.updated_by = scalar::string(value, &at)?,
            _ => {} // updatedDate is output only; unknown keys are ignored.
        }
    }
    Ok(audit)
}

/// Reads one test. `stored` accepts the stored `TestDefinition`'s `subrule` alias.
fn read_test(v: &Json, stored: bool) -> Result<TestDefinition, FieldError> {
    let root = At::ROOT;
    let o = object(v, &root)?;
    let mut test = TestDefinition::default();
    let mut test_type = None;
    for (key, value) in o {
        let at = root.key(key);
        let at = &at;
        match key.as_str() {
            "version" => test.version = scalar::string(value, at)?,
            "salt" => test.salt = scalar::string(value, at)?,
            "rule" => test.rule = scalar::string(value, at)?,
            "subrule" if stored => test.rule = scalar::string(value, at)?,
            // A null object is the same as an absent one.
            "constants" if !value.is_null() => {
                test.constants = object(value, at)?.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            }
            "buckets" => test.buckets = each(Some(value), at, read_bucket)?,
            "allocations" => test.allocations = each(Some(value), at, read_allocation)?,
            "silent" => test.silent = scalar::boolean(value, at)?,
            "testType" => test_type = scalar::string(value, at)?,
            "description" => test.description = scalar::string(value, at)?,
            "metaTags" => test.meta_tags = each(Some(value), at, |t, at| scalar::string(t, at).map(Option::unwrap_or_default))?,
            "dependsOn" if !value.is_null() => {
                let d = object(value, at)?;
                let name_at = at.key("testName");
                let parent = scalar::string(d.get("testName").unwrap_or(&Json::Null), &name_at)?
                    .ok_or_else(|| field_error(&name_at, "missing"))?;
                let bucket_value = scalar::int(d.get("bucketValue").unwrap_or(&Json::Null), &at.key("bucketValue"))?;
                test.depends_on = Some(DependsOn { test_name: parent, bucket_value });
            }
            "dynamic" => test.dynamic = scalar::boolean(value, at)?,
            "evaluateForIncognitoUsers" => test.evaluate_for_incognito_users = scalar::boolean(value, at)?,
            "enableUnitlessAllocations" => test.enable_unitless_allocations = scalar::boolean(value, at)?,
            "containsUnitlessAllocation" => test.contains_unitless_allocation = scalar::boolean(value, at)?,
            "forceLogging" => test.force_logging = scalar::boolean(value, at)?,
            "payloadExperimentConfig" if !value.is_null() => {
                object(value, at)?;
                test.payload_experiment_config = Some(value.clone());
            }
            "targets" => test.targets = each(Some(value), at, read_target)?,
            _ => {} // Unknown properties are ignored, as Proctor's lenient mapper does.
        }
    }
    test.test_type =
        test_type.ok_or_else(|| field_error(&root.key("testType"), "missing: every test needs a test type"))?;
    Ok(test)
}

fn read_bucket(v: &Json, at: &At<'_>) -> Result<Bucket, FieldError> {
    let o = object(v, at)?;
    let field = |key: &str| o.get(key).unwrap_or(&Json::Null);
    Ok(Bucket {
        name: scalar::string(field("name"), &at.key("name"))?.unwrap_or_default(),
        value: scalar::int(field("value"), &at.key("value"))?,
        description: scalar::string(field("description"), &at.key("description"))?,
        payload: read_payload(field("payload"), &at.key("payload"))?,
    })
}

fn read_payload(v: &Json, at: &At<'_>) -> Result<Option<Payload>, FieldError> {
    if v.is_null() {
        return Ok(None);
    }
    let o = object(v, at)?;
    let mut found: Option<Payload> = None;
    for type_name in PAYLOAD_TYPES {
        let Some(value) = o.get(type_name).filter(|v| !v.is_null()) else { continue };
        let payload = read_payload_value_at(type_name, value, &at.key(type_name))?;
        if let Some(first) = &found {
            return Err(field_error(
                at,
                format!("a payload has exactly one type, found both '{}' and '{type_name}'", first.type_name()),
            ));
        }
        found = Some(payload);
    }
    found.map(Some).ok_or_else(|| field_error(at, format!("a payload needs one of {}", PAYLOAD_TYPES.join(", "))))
}

/// Reads a bucket's `payload` object (`Ok(None)` for null).
pub(crate) fn read_payload_json(v: &Json) -> Result<Option<Payload>, FieldError> {
    read_payload(v, &At::ROOT)
}

/// Reads one payload value of a named type (also used for forced payloads).
pub(crate) fn read_payload_value(type_name: &str, value: &Json) -> Result<Payload, FieldError> {
    read_payload_value_at(type_name, value, &At::ROOT)
}

fn read_payload_value_at(type_name: &str, value: &Json, at: &At<'_>) -> Result<Payload, FieldError> {
    fn items<T>(
        value: &Json,
        at: &At<'_>,
        read: impl Fn(&Json, &At<'_>) -> Result<T, FieldError>,
    ) -> Result<Vec<Option<T>>, FieldError> {
        each(Some(value), at, |item, at| if item.is_null() { Ok(None) } else { read(item, at).map(Some) })
    }
    Ok(match type_name {
        "doubleValue" => Payload::DoubleValue(scalar::double(value, at)?),
        "doubleArray" => Payload::DoubleArray(items(value, at, scalar::double)?),
        "longValue" => Payload::LongValue(scalar::long(value, at)?),
        "longArray" => Payload::LongArray(items(value, at, scalar::long)?),
        "stringValue" => Payload::StringValue(scalar::string(value, at)?.unwrap_or_default()),
        "stringArray" => Payload::StringArray(items(value, at, |v, at| Ok(scalar::string(v, at)?.unwrap_or_default()))?),
        "map" => Payload::Map(object(value, at)?.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        "json" => Payload::Json(value.clone()),
        "booleanValue" => Payload::BooleanValue(match value {
            Json::Bool(b) => *b,
            other => return Err(field_error(at, format!("expected true or false, found {}", scalar::kind(other)))),
        }),
        other => return Err(field_error(at, format!("unknown payload type '{other}'"))),
    })
}

fn read_allocation(v: &Json, at: &At<'_>) -> Result<Allocation, FieldError> {
    let o = object(v, at)?;
    let field = |key: &str| o.get(key).unwrap_or(&Json::Null);
    let ranges = each(o.get("ranges"), &at.key("ranges"), |r, at| {
        let ro = object(r, at)?;
        Ok(Range {
            bucket_value: scalar::int(ro.get("bucketValue").unwrap_or(&Json::Null), &at.key("bucketValue"))?,
            length: scalar::double(ro.get("length").unwrap_or(&Json::Null), &at.key("length"))?,
        })
    })?;
    Ok(Allocation {
        rule: scalar::string(field("rule"), &at.key("rule"))?,
        ranges,
        id: scalar::string(field("id"), &at.key("id"))?.unwrap_or_default(),
        name: scalar::string(field("name"), &at.key("name"))?.unwrap_or_default(),
    })
}

fn read_target(v: &Json, at: &At<'_>) -> Result<Target, FieldError> {
    let o = object(v, at)?;
    let bucket_value = scalar::int(o.get("bucketValue").unwrap_or(&Json::Null), &at.key("bucketValue"))?;
    let identifiers = each(o.get("identifiers"), &at.key("identifiers"), |id, at| match id {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        other => Err(field_error(at, format!("expected a string, found {}", scalar::kind(other)))),
    })?;
    Ok(Target { bucket_value, identifiers })
}

/// Proctor's `PlainNumericSerializer`: `DecimalFormat("0.0")` with at most 10 fraction digits.
pub fn plain_double(d: f64) -> Json {
    if !d.is_finite() {
        return Json::String(crate::java::double_to_string(d));
    }
    let rounded = format!("{d:.10}");
    let trimmed = rounded.trim_end_matches('0');
    let text = if trimmed.ends_with('.') { format!("{trimmed}0") } else { trimmed.to_string() };
    let text = if text == "-0.0" { "-0.0".to_string() } else { text };
    serde_json::from_str(&text).unwrap_or(Json::Null)
}

impl TestDefinition {
    /// The test as Proctor writes it. With `proctor_only`, extensions are dropped and boolean
    /// payloads exported as `json`.
    pub fn to_json(&self, proctor_only: bool) -> Json {
        let buckets: Vec<Json> = self
            .buckets
            .iter()
            .map(|b| {
                let mut o = serde_json::Map::new();
                o.insert("name".into(), b.name.clone().into());
                o.insert("value".into(), b.value.into());
                if let Some(d) = &b.description {
                    o.insert("description".into(), d.clone().into());
                }
                if let Some(p) = &b.payload {
                    let p = if proctor_only { p.to_proctor() } else { p.clone() };
                    let value = match &p {
                        Payload::DoubleValue(d) => plain_double(*d),
                        Payload::DoubleArray(items) => {
                            Json::Array(items.iter().map(|d| d.map_or(Json::Null, plain_double)).collect())
                        }
                        other => other.value_json(),
                    };
                    o.insert("payload".into(), serde_json::json!({ p.type_name(): value }));
                }
                Json::Object(o)
            })
            .collect();
        let allocations: Vec<Json> = self
            .allocations
            .iter()
            .map(|a| {
                serde_json::json!({
                    "id": a.id,
                    "name": a.name,
                    "rule": a.rule,
                    "ranges": a.ranges.iter().map(|r| serde_json::json!({
                        "bucketValue": r.bucket_value,
                        "length": plain_double(r.length),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut o = serde_json::json!({
            "version": self.version,
            "salt": self.salt,
            "rule": self.rule,
            "constants": self.constants,
            "buckets": buckets,
            "allocations": allocations,
            "silent": self.silent,
            "testType": self.test_type,
            "description": self.description,
            "metaTags": self.meta_tags,
            "dependsOn": self.depends_on.as_ref().map(|d| serde_json::json!({"testName": d.test_name, "bucketValue": d.bucket_value})),
            "dynamic": self.dynamic,
            "evaluateForIncognitoUsers": self.evaluate_for_incognito_users,
            "enableUnitlessAllocations": self.enable_unitless_allocations,
            "containsUnitlessAllocation": self.contains_unitless_allocation,
            "forceLogging": self.force_logging,
            "payloadExperimentConfig": self.payload_experiment_config,
        });
        if !proctor_only && !self.targets.is_empty() {
            if let Some(obj) = o.as_object_mut() {
                obj.insert(
                    "targets".into(),
                    self.targets
                        .iter()
                        .map(|t| serde_json::json!({"bucketValue": t.bucket_value, "identifiers": t.identifiers}))
                        .collect(),
                );
            }
        }
        o
    }
}

/// Reads a stored single-test `TestDefinition` (§1.5) and converts it to the consumable form:
/// `specialConstants` overlay `constants`, `__COUNTRIES` becomes a rule clause, rules are
/// normalised to `${...}`, and `containsUnitlessAllocation` is computed.
pub fn read_stored_test(text: &str) -> Result<TestDefinition, FieldError> {
    let json: Json = parse_lenient_json(text).map_err(|e| field_error(&At::ROOT, e))?;
    stored_to_consumable(&json)
}

/// Converts a parsed stored `TestDefinition` to the consumable form (§1.5).
pub fn stored_to_consumable(json: &Json) -> Result<TestDefinition, FieldError> {
    let mut test = read_test(json, true)?;
    let special = match json.get("specialConstants") {
        None | Some(Json::Null) => serde_json::Map::new(),
        Some(v) => object(v, &At::ROOT.key("specialConstants"))?.clone(),
    };
    for (k, v) in &special {
        test.constants.insert(k.clone(), v.clone());
    }
    let countries = special.contains_key("__COUNTRIES").then(|| "proctor:contains(__COUNTRIES, country)".to_string());
    let rule_body = test.rule.as_deref().map(remove_el_braces).filter(|r| !r.trim().is_empty());
    let clauses: Vec<String> = countries.into_iter().chain(rule_body).collect();
    test.rule = if clauses.is_empty() { None } else { Some(format!("${{{}}}", clauses.join(" && "))) };
    for allocation in &mut test.allocations {
        allocation.rule = match allocation.rule.as_deref() {
            Some(rule) if !rule.trim().is_empty() => Some(format!("${{{}}}", remove_el_braces(rule))),
            _ => None,
        };
    }
    test.contains_unitless_allocation = test.enable_unitless_allocations
        && test.allocations.iter().any(|a| a.rule.as_deref().is_some_and(is_unitless_rule));
    Ok(test)
}

/// `ProctorUtils.removeElExpressionBraces`: trims, then strips one outer `${` ... `}`.
pub fn remove_el_braces(rule: &str) -> String {
    let t = rule.trim();
    match t.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner.trim().to_string(),
        None => t.to_string(),
    }
}

/// Whether an allocation rule is "unitless" (§2.7): it mentions `missingExperimentalUnit`, not
/// negated with `!` and not compared with `== false`.
pub fn is_unitless_rule(rule: &str) -> bool {
    const NAME: &str = "missingExperimentalUnit";
    let compact: String = rule.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains(NAME)
        && !compact.contains(&format!("!{NAME}"))
        && !compact.contains(&format!("{NAME}==false"))
        && !compact.contains(&format!("false=={NAME}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_leniently() {
        let (m, d) = TestMatrix::from_json(
            r#"{ // a comment
              "audit": {"version": 7, "updated": "12", "updatedBy": "me", "updatedDate": "ignored", "extra": 1},
              /* block */ "tests": {"t": {"version": 2, "salt": "t", "testType": "USER", "unknown": [1],
                "buckets": [{"name": null, "value": "1", "payload": {"longValue": 2.9, "stringValue": null}}],
                "allocations": [{"ranges": [{"bucketValue": 1, "length": "1"}]}]}},
              "other": true }"#,
        )
        .unwrap();
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(m.audit.version.as_deref(), Some("7"));
        assert_eq!(m.audit.updated, 12);
        let t = &m.tests["t"];
        assert_eq!(t.version.as_deref(), Some("2"));
        assert_eq!(t.buckets[0].name, "");
        assert_eq!(t.buckets[0].value, 1);
        assert_eq!(t.buckets[0].payload, Some(Payload::LongValue(2)));
        assert_eq!(t.allocations[0].ranges[0].length, 1.0);
    }

    #[test]
    fn a_bad_test_is_a_diagnostic_and_the_others_stay() {
        let (m, d) = TestMatrix::from_json(
            r#"{"audit": {}, "tests": {
              "good": {"testType": "USER", "buckets": [], "allocations": []},
              "two": {"testType": "USER", "buckets": [{"value": 0, "payload": {"longValue": 1, "stringValue": "x"}}]},
              "bad": {"testType": "USER", "allocations": [{"ranges": [{"bucketValue": 0, "length": "half"}]}]}
            }}"#,
        )
        .unwrap();
        assert_eq!(m.tests.keys().collect::<Vec<_>>(), ["good"]);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].test, "two");
        assert_eq!(d[0].path, "tests.two.buckets[0].payload");
        assert!(d[0].message.contains("exactly one type"), "{}", d[0].message);
        assert_eq!(d[1].path, "tests.bad.allocations[0].ranges[0].length");
    }

    #[test]
    fn unreadable_documents_fail_whole() {
        assert!(TestMatrix::from_json("{").is_err());
        assert_eq!(TestMatrix::from_json(r#"{"tests": {}}"#).unwrap_err().message, "the matrix has no 'audit'");
        assert_eq!(TestMatrix::from_json(r#"{"audit": {}}"#).unwrap_err().message, "the matrix has no 'tests'");
    }

    #[test]
    fn lengths_are_correctly_rounded() {
        let (m, _) = TestMatrix::from_json(
            r#"{"audit": {}, "tests": {"t": {"testType": "USER", "allocations": [{"ranges": [
              {"bucketValue": 0, "length": 0.3333333333}, {"bucketValue": 1, "length": 0.1000000000000000055511151231257827}]}]}}}"#,
        )
        .unwrap();
        let r = &m.tests["t"].allocations[0].ranges;
        assert_eq!(r[0].length.to_bits(), "0.3333333333".parse::<f64>().unwrap().to_bits());
        assert_eq!(r[1].length.to_bits(), 0.1f64.to_bits());
    }

    #[test]
    fn plain_doubles_like_proctor() {
        assert_eq!(plain_double(1.0).to_string(), "1.0");
        assert_eq!(plain_double(0.5).to_string(), "0.5");
        assert_eq!(plain_double(1.0 / 3.0).to_string(), "0.3333333333");
        assert_eq!(plain_double(1e-12).to_string(), "0.0");
    }

    #[test]
    fn stored_definition_converts() {
        let t = read_stored_test(
            r#"{"testType": "USER", "salt": "s", "subrule": " ${lang == 'en'} ",
                "constants": {"A": 1, "B": 2}, "specialConstants": {"B": 3, "__COUNTRIES": ["US"]},
                "buckets": [{"name": "a", "value": 0}],
                "allocations": [{"rule": "  ", "ranges": [{"bucketValue": 0, "length": 1}]},
                                {"rule": "x > 1", "ranges": []}]}"#,
        )
        .unwrap();
        assert_eq!(t.rule.as_deref(), Some("${proctor:contains(__COUNTRIES, country) && lang == 'en'}"));
        assert_eq!(t.constants["B"], 3);
        assert_eq!(t.constants.keys().collect::<Vec<_>>(), ["A", "B", "__COUNTRIES"]);
        assert_eq!(t.allocations[0].rule, None);
        assert_eq!(t.allocations[1].rule.as_deref(), Some("${x > 1}"));
    }

    #[test]
    fn boolean_payloads_export_as_json() {
        let (m, _) = TestMatrix::from_json(
            r#"{"audit": {}, "tests": {"f": {"testType": "USER", "targets": [{"bucketValue": 1, "identifiers": ["u"]}],
              "buckets": [{"name": "off", "value": 0, "payload": {"booleanValue": false}}, {"name": "on", "value": 1, "payload": {"booleanValue": true}}],
              "allocations": [{"ranges": [{"bucketValue": 1, "length": 1}]}]}}}"#,
        )
        .unwrap();
        let proctor = m.to_json(true);
        assert_eq!(proctor["tests"]["f"]["buckets"][1]["payload"], serde_json::json!({"json": true}));
        assert!(proctor["tests"]["f"].get("targets").is_none());
        let ours = m.to_json(false);
        assert_eq!(ours["tests"]["f"]["buckets"][0]["payload"], serde_json::json!({"booleanValue": false}));
        let (back, d) = TestMatrix::from_json(&ours.to_string()).unwrap();
        assert!(d.is_empty());
        assert_eq!(back, m);
    }
}
