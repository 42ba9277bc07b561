//! Edits as JSON: the request shapes that name an edit (`{"kind": "setRanges", ...}`), and the
//! readers that turn the documents inside them (test definitions, whole matrices) into the
//! engine's types, refusing what an editor never means: a missing bucket value, range value or
//! length (which Proctor would read as 0), or a test that would not load.

use avsb_core::document::{MatrixDocument, Range, Target, TestDefinition};
use avsb_core::reader::stored_to_consumable;
use avsb_core::Diagnostic;
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::edit::{BucketRef, MatrixEdit};
use super::{WriteError, WriteResult};
use crate::error::ErrorCode;

/// A revision id, written as a JSON string (`"12"`, as versions are) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(value_type = String, example = "12")]
pub struct RevisionId(pub i64);

impl<'de> Deserialize<'de> for RevisionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RevisionId, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(i64),
            Text(String),
        }
        let parsed = match Either::deserialize(d)? {
            Either::Number(n) => Some(n),
            Either::Text(s) => parse_revision(&s),
        };
        parsed.map(RevisionId).ok_or_else(|| serde::de::Error::custom("a revision is a version such as \"12\""))
    }
}

/// Parses a revision given as text: `12`, `"12"` (an entity tag), `W/"12"`.
pub fn parse_revision(text: &str) -> Option<i64> {
    text.trim().trim_start_matches("W/").trim_matches('"').parse().ok()
}

/// A range as an edit writes it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RangeInput {
    /// The bucket the range assigns.
    pub bucket_value: i32,
    /// Its share of the allocation's traffic, in [0, 1].
    pub length: f64,
}

/// A target as an edit writes it.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetInput {
    /// The bucket these identifiers get.
    pub bucket_value: i32,
    /// The identifiers, of the test's identifier type.
    pub identifiers: Vec<String>,
}

/// Any edit, named by its `kind`: what `POST .../preview` takes.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum EditRequest {
    /// Add a test or replace its definition.
    PutTest {
        /// The test.
        test: String,
        /// Its definition (see `PUT .../tests/{test}`).
        #[schema(value_type = Object)]
        definition: Value,
        /// `consumable` (default) or `stored`.
        format: Option<String>,
    },
    /// Remove a test.
    DeleteTest {
        /// The test.
        test: String,
    },
    /// The kill switch.
    Kill {
        /// The test.
        test: String,
        /// The bucket everyone gets, by name or value.
        bucket: BucketRef,
    },
    /// Restore the whole environment from a revision.
    Rollback {
        /// The revision.
        revision: RevisionId,
    },
    /// Restore one test from a revision.
    RollbackTest {
        /// The test.
        test: String,
        /// The revision.
        revision: RevisionId,
    },
    /// Replace one allocation's ranges.
    SetRanges {
        /// The test.
        test: String,
        /// The allocation's index.
        allocation: usize,
        /// The new ranges.
        ranges: Vec<RangeInput>,
    },
    /// Replace a test's targets.
    SetTargets {
        /// The test.
        test: String,
        /// The new targets.
        targets: Vec<TargetInput>,
    },
    /// Copy tests from an earlier environment.
    Promote {
        /// The environment to copy from.
        from: String,
        /// The tests.
        tests: Vec<String>,
        /// The revision of `from` the caller saw.
        source_revision: Option<RevisionId>,
    },
    /// Replace the whole matrix.
    ReplaceMatrix {
        /// A `TestMatrixArtifact` (`audit` may be left out).
        #[schema(value_type = Object)]
        matrix: Value,
    },
}

impl EditRequest {
    /// The edit this request names, its documents read and checked.
    pub fn into_edit(self) -> WriteResult<MatrixEdit> {
        Ok(match self {
            EditRequest::PutTest { test, definition, format } => {
                let definition = read_definition(&test, &definition, format.as_deref())?;
                MatrixEdit::PutTest { test, definition: Box::new(definition) }
            }
            EditRequest::DeleteTest { test } => MatrixEdit::DeleteTest { test },
            EditRequest::Kill { test, bucket } => MatrixEdit::Kill { test, bucket },
            EditRequest::Rollback { revision } => MatrixEdit::Rollback { revision: revision.0 },
            EditRequest::RollbackTest { test, revision } => MatrixEdit::RollbackTest { test, revision: revision.0 },
            EditRequest::SetRanges { test, allocation, ranges } => {
                MatrixEdit::SetRanges { test, allocation, ranges: ranges_of(&ranges) }
            }
            EditRequest::SetTargets { test, targets } => MatrixEdit::SetTargets { test, targets: targets_of(targets) },
            EditRequest::Promote { from, tests, source_revision } => {
                MatrixEdit::Promote { from, tests, source_revision: source_revision.map(|r| r.0) }
            }
            EditRequest::ReplaceMatrix { matrix } => MatrixEdit::ReplaceMatrix { tests: read_matrix(matrix)? },
        })
    }
}

/// The engine's ranges.
pub fn ranges_of(ranges: &[RangeInput]) -> Vec<Range> {
    ranges.iter().map(|r| Range { bucket_value: r.bucket_value, length: r.length }).collect()
}

/// The engine's targets.
pub fn targets_of(targets: Vec<TargetInput>) -> Vec<Target> {
    targets.into_iter().map(|t| Target { bucket_value: t.bucket_value, identifiers: t.identifiers }).collect()
}

/// Reads a test definition: the consumable form (as in a matrix), or Proctor's stored
/// `definition.json` form when `format` is `stored` or the document has `specialConstants`.
pub fn read_definition(name: &str, definition: &Value, format: Option<&str>) -> WriteResult<TestDefinition> {
    if !definition.is_object() {
        return Err(WriteError::field(
            ErrorCode::InvalidField,
            "definition",
            "definition must be a JSON object (a test definition)",
        ));
    }
    refuse_missing_fields([(name, definition)])?;
    let stored = match format {
        Some("stored") => true,
        Some("consumable") => false,
        None => definition.get("specialConstants").is_some(),
        Some(other) => {
            return Err(WriteError::field(
                ErrorCode::InvalidField,
                "format",
                format!("format must be 'consumable' or 'stored', not '{other}'"),
            ))
        }
    };
    if stored {
        return stored_to_consumable(definition).map_err(|e| {
            let path = format!("tests.{name}.{}", e.path);
            WriteError::Invalid {
                message: format!("{path}: {}", e.message),
                diagnostics: vec![Diagnostic::error(name, path, "invalid_field", e.message)],
            }
        });
    }
    let doc = json!({"audit": {"version": "0", "updated": 0, "updatedBy": ""}, "tests": {name: definition}});
    let (mut matrix, diagnostics) = MatrixDocument::from_json(&doc.to_string())
        .map_err(|e| WriteError::field(ErrorCode::InvalidField, "definition", e.message))?;
    refuse_unreadable(diagnostics)?;
    matrix
        .tests
        .shift_remove(name)
        .ok_or_else(|| WriteError::field(ErrorCode::InvalidField, "definition", "definition is empty"))
}

/// Reads a whole matrix document given as JSON text (`audit` may be left out), without building
/// a tree of the whole document: the engine's reader reads each test from the text, and the
/// checks for missing fields look at the parts they need (a `serde_json::Value` of a large
/// matrix costs ten times its text).
pub fn read_matrix_text(text: &str) -> WriteResult<IndexMap<String, TestDefinition>> {
    if !text.trim_start().starts_with('{') {
        return Err(not_a_matrix());
    }
    let top: TopShape<'_> = serde_json::from_str(text).map_err(|_| not_a_matrix())?;
    if let Some(tests) = top.tests.and_then(|raw| serde_json::from_str::<IndexMap<String, &RawValue>>(raw.get()).ok()) {
        refuse_missing_diagnostics(tests.iter().flat_map(|(name, raw)| missing_fields_raw(name, raw)).collect())?;
    }
    let with_audit;
    let text = if top.audit.0 {
        text
    } else {
        // Spliced in front of the document's own fields, as `read_matrix` inserts it.
        let rest = text.trim_start().strip_prefix('{').unwrap_or_default();
        let separator = if rest.trim_start().starts_with('}') { "" } else { "," };
        with_audit = format!(r#"{{"audit":{{"version":"0","updated":0,"updatedBy":""}}{separator}{rest}"#);
        &with_audit
    };
    let (incoming, diagnostics) =
        MatrixDocument::from_json(text).map_err(|e| WriteError::refused(ErrorCode::UnreadableMatrix, e.message))?;
    refuse_unreadable(diagnostics)?;
    Ok(incoming.tests)
}

fn not_a_matrix() -> WriteError {
    WriteError::field(ErrorCode::InvalidField, "matrix", "matrix must be a test matrix object: {\"tests\": {...}}")
}

/// Whether a field is there at all (even as `null`).
#[derive(Debug, Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Present, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// The top of a matrix document, its tests left as text.
#[derive(Deserialize)]
struct TopShape<'a> {
    #[serde(default)]
    audit: Present,
    #[serde(borrow)]
    tests: Option<&'a RawValue>,
}

/// The fields of a test that [`missing_fields`] looks at, left as text.
#[derive(Deserialize)]
struct TestShape<'a> {
    #[serde(borrow)]
    buckets: Option<&'a RawValue>,
    #[serde(borrow)]
    allocations: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct BucketShape<'a> {
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AllocationShape<'a> {
    #[serde(borrow)]
    ranges: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RangeShape<'a> {
    #[serde(borrow)]
    bucket_value: Option<&'a RawValue>,
    #[serde(borrow)]
    length: Option<&'a RawValue>,
}

/// [`missing_fields`] of a test given as text: the same checks, where the parts have the
/// expected types (anything else is the engine's to refuse).
fn missing_fields_raw(name: &str, raw: &RawValue) -> Vec<Diagnostic> {
    fn object<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
        raw.get().starts_with('{').then(|| serde_json::from_str(raw.get()).ok()).flatten()
    }
    fn array(raw: Option<&RawValue>) -> Vec<&RawValue> {
        raw.and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or_default()
    }
    let present = |field: Option<&RawValue>| field.is_some_and(|f| f.get() != "null");
    let mut out = Vec::new();
    let mut missing = |path: String, what: &str| {
        out.push(Diagnostic::error(name, format!("tests.{name}.{path}"), "missing_field", format!("{what} is required")));
    };
    let Some(test) = object::<TestShape<'_>>(raw) else { return out };
    for (i, bucket) in array(test.buckets).into_iter().enumerate() {
        if let Some(bucket) = object::<BucketShape<'_>>(bucket) {
            if !present(bucket.value) {
                missing(format!("buckets[{i}].value"), "the bucket's value");
            }
        }
    }
    for (i, allocation) in array(test.allocations).into_iter().enumerate() {
        let Some(allocation) = object::<AllocationShape<'_>>(allocation) else { continue };
        for (j, range) in array(allocation.ranges).into_iter().enumerate() {
            let Some(range) = object::<RangeShape<'_>>(range) else { continue };
            if !present(range.bucket_value) {
                missing(format!("allocations[{i}].ranges[{j}].bucketValue"), "the range's bucketValue");
            }
            if !present(range.length) {
                missing(format!("allocations[{i}].ranges[{j}].length"), "the range's length");
            }
        }
    }
    out
}

/// Reads a whole matrix document given as JSON (`audit` may be left out).
pub fn read_matrix(mut doc: Value) -> WriteResult<IndexMap<String, TestDefinition>> {
    let Some(object) = doc.as_object_mut() else {
        return Err(WriteError::field(
            ErrorCode::InvalidField,
            "matrix",
            "matrix must be a test matrix object: {\"tests\": {...}}",
        ));
    };
    object.entry("audit").or_insert_with(|| json!({"version": "0", "updated": 0, "updatedBy": ""}));
    if let Some(tests) = object.get("tests").and_then(Value::as_object) {
        refuse_missing_fields(tests.iter().map(|(k, v)| (k.as_str(), v)))?;
    }
    let (incoming, diagnostics) = MatrixDocument::from_json(&doc.to_string())
        .map_err(|e| WriteError::refused(ErrorCode::UnreadableMatrix, e.message))?;
    refuse_unreadable(diagnostics)?;
    Ok(incoming.tests)
}

fn refuse_unreadable(diagnostics: Vec<Diagnostic>) -> WriteResult<()> {
    if diagnostics.is_empty() {
        return Ok(());
    }
    let message = diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    Err(WriteError::Invalid { message, diagnostics })
}

/// Fields Proctor would read as 0 when absent, but which an editor never means to leave out: a
/// bucket's `value`, a range's `bucketValue` and `length`.
fn missing_fields(name: &str, definition: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut missing = |path: String, what: &str| {
        out.push(Diagnostic::error(name, format!("tests.{name}.{path}"), "missing_field", format!("{what} is required")));
    };
    let present = |v: &Value, key: &str| v.get(key).is_some_and(|f| !f.is_null());
    for (i, bucket) in definition.get("buckets").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if bucket.is_object() && !present(bucket, "value") {
            missing(format!("buckets[{i}].value"), "the bucket's value");
        }
    }
    for (i, allocation) in definition.get("allocations").and_then(Value::as_array).into_iter().flatten().enumerate() {
        for (j, range) in allocation.get("ranges").and_then(Value::as_array).into_iter().flatten().enumerate() {
            if !range.is_object() {
                continue;
            }
            if !present(range, "bucketValue") {
                missing(format!("allocations[{i}].ranges[{j}].bucketValue"), "the range's bucketValue");
            }
            if !present(range, "length") {
                missing(format!("allocations[{i}].ranges[{j}].length"), "the range's length");
            }
        }
    }
    out
}

fn refuse_missing_fields<'a>(tests: impl IntoIterator<Item = (&'a str, &'a Value)>) -> WriteResult<()> {
    refuse_missing_diagnostics(tests.into_iter().flat_map(|(name, def)| missing_fields(name, def)).collect())
}

fn refuse_missing_diagnostics(diagnostics: Vec<Diagnostic>) -> WriteResult<()> {
    if diagnostics.is_empty() {
        return Ok(());
    }
    let message = diagnostics.iter().map(|d| format!("{}: {}", d.path, d.message)).collect::<Vec<_>>().join("; ");
    Err(WriteError::Invalid { message, diagnostics })
}
