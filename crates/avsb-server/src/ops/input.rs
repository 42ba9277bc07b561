//! Edits as JSON: the request shapes that name an edit (`{"kind": "setRanges", ...}`), and the
//! readers that turn the documents inside them (test definitions, whole matrices) into the
//! engine's types, refusing what an editor never means: a missing bucket value, range value or
//! length (which Proctor would read as 0), or a test that would not load.

use avsb_core::document::{MatrixDocument, Range, Target, TestDefinition};
use avsb_core::reader::stored_to_consumable;
use avsb_core::Diagnostic;
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};
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
    let diagnostics: Vec<Diagnostic> = tests.into_iter().flat_map(|(name, def)| missing_fields(name, def)).collect();
    if diagnostics.is_empty() {
        return Ok(());
    }
    let message = diagnostics.iter().map(|d| format!("{}: {}", d.path, d.message)).collect::<Vec<_>>().join("; ");
    Err(WriteError::Invalid { message, diagnostics })
}
