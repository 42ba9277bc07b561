//! The server's operations, apart from HTTP: every state-changing operation (matrix edits,
//! projects, environments, schemas, SDK keys, admin tokens) and the read-side computations the
//! console and the command line share (diffs, previews). The admin API, the demo and (later)
//! the console call these; none of them writes to the store or the registry by itself.
//!
//! A matrix changes only through [`write`]: an [`edit::MatrixEdit`] is applied by one function
//! that takes the project lock, checks the base revision, validates with the engine, commits
//! with compare-and-set and publishes the snapshot.

use avsb_core::Diagnostic;
use serde::Serialize;

use crate::error::ErrorCode;
use crate::store::StoreError;

pub mod accounts;
pub mod diff;
pub mod edit;
pub mod input;
pub mod keys;
pub mod metrics;
pub mod preview;
pub mod projects;
pub mod write;

pub use edit::{BucketRef, MatrixEdit};
pub use write::{Committed, WriteMeta};

/// Why an operation changed nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The write was based on a revision that is no longer current and the change it makes
    /// overlaps what changed since (or it replaces the whole matrix).
    #[error("{message}")]
    Conflict {
        /// What happened, for people.
        message: String,
        /// The revision the write was based on, if it named one.
        base: Option<i64>,
        /// The environment's current revision.
        current: Option<i64>,
        /// The revisions since the base that changed what this write changes.
        changes: Vec<ConflictingChange>,
    },
    /// A schema write was based on a schema version that is no longer current.
    #[error("{message}")]
    SchemaConflict {
        /// What happened, for people.
        message: String,
        /// The schema version now.
        current: i64,
    },
    /// The change would drop tests; the engine's diagnostics say which and why.
    #[error("{message}")]
    Invalid {
        /// A summary naming the tests.
        message: String,
        /// One diagnostic per problem.
        diagnostics: Vec<Diagnostic>,
    },
    /// A schema change would drop tests in some environments.
    #[error("{message}")]
    SchemaInvalid {
        /// A summary naming the environments.
        message: String,
        /// Per environment, its diagnostics.
        diagnostics: Vec<(String, Vec<Diagnostic>)>,
    },
    /// The request cannot be applied as asked (an unknown bucket, a bad key, a promotion
    /// backwards); `code` says which kind.
    #[error("{message}")]
    Refused {
        /// The error code the API answers with.
        code: ErrorCode,
        /// What is wrong, for people.
        message: String,
        /// Where: `("field", "environments")` in the request body, or `("path", "context.x.type")`
        /// in a schema document.
        at: Option<(&'static str, String)>,
    },
    /// A project, environment, test, revision, key or token does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A unique key is taken.
    #[error("{0} already exists")]
    Duplicate(String),
    /// The database failed.
    #[error("storage failure: {0}")]
    Store(String),
}

impl WriteError {
    /// A refusal with a code and no field.
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> WriteError {
        WriteError::Refused { code, message: message.into(), at: None }
    }

    /// A refusal naming the request field at fault.
    pub fn field(code: ErrorCode, field: &str, message: impl Into<String>) -> WriteError {
        WriteError::Refused { code, message: message.into(), at: Some(("field", field.to_string())) }
    }

    /// A refusal naming the place in a schema document at fault.
    pub fn schema_path(path: &str, message: impl Into<String>) -> WriteError {
        WriteError::Refused { code: ErrorCode::InvalidSchema, message: message.into(), at: Some(("path", path.to_string())) }
    }

    /// A plain conflict on the environment's current revision.
    pub fn stale(base: i64, current: i64) -> WriteError {
        WriteError::Conflict {
            message: format!("the write was based on revision {base}, but revision {current} is current; reload and retry"),
            base: Some(base),
            current: Some(current),
            changes: Vec::new(),
        }
    }

    /// An unexpected failure (a stored document that no longer reads, a serialisation error).
    pub fn internal(message: impl std::fmt::Display) -> WriteError {
        WriteError::Store(message.to_string())
    }
}

impl From<crate::registry::SnapshotError> for WriteError {
    fn from(e: crate::registry::SnapshotError) -> Self {
        WriteError::Store(e.0)
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { expected, current } => WriteError::stale(expected, current),
            StoreError::Duplicate(what) => WriteError::Duplicate(what),
            StoreError::NotFound(what) => WriteError::NotFound(format!("{what} not found")),
            StoreError::Backend(message) => WriteError::Store(message),
        }
    }
}

/// A revision since a write's base that changed a test the write also changes.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictingChange {
    /// The test.
    pub test: String,
    /// The revision that changed it (as text, like every version).
    pub revision: String,
    /// Who made that revision.
    pub author: String,
    /// Its comment.
    pub comment: String,
    /// When, epoch milliseconds.
    pub created_at: i64,
}

/// A result of an operation.
pub type WriteResult<T> = Result<T, WriteError>;

/// Checks a project or environment key: 1 to 63 lower-case letters, digits, `-` or `_`.
pub fn check_key(what: &str, key: &str) -> WriteResult<()> {
    let ok = !key.is_empty()
        && key.len() <= 63
        && key.bytes().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && key.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
    if ok {
        Ok(())
    } else {
        let shown: String = key.chars().take(70).collect();
        Err(WriteError::refused(
            ErrorCode::InvalidKey,
            format!("{what} '{shown}' must be 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit"),
        ))
    }
}

/// Checks a test name: 1 to 128 letters, digits, `_`, `-` or `.`, not starting with `.` (a test
/// is also a path: `test-definitions/<name>/definition.json` in Proctor's layout, a segment of
/// the API's URLs; `.` and `..` would name another directory, and `.x` a hidden one).
pub fn check_test_name(name: &str) -> WriteResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.');
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(140).collect();
        Err(WriteError::refused(
            ErrorCode::InvalidTestName,
            format!("test name '{shown}' must be 1 to 128 letters, digits, '_', '-' or '.', not starting with '.'"),
        ))
    }
}

/// The longest name of a project, environment, SDK key or admin token, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// The longest comment of a revision, in bytes.
pub const MAX_COMMENT_BYTES: usize = 2000;

/// Checks a display name (`field` in the request): not empty or blank, at most
/// [`MAX_NAME_BYTES`] bytes.
pub fn check_name(field: &str, name: &str) -> WriteResult<()> {
    if name.trim().is_empty() {
        return Err(WriteError::field(ErrorCode::InvalidField, field, format!("{field} must not be empty")));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(WriteError::field(
            ErrorCode::InvalidField,
            field,
            format!("{field} is {} bytes long; the limit is {MAX_NAME_BYTES}", name.len()),
        ));
    }
    Ok(())
}

/// Checks a revision's comment: at most [`MAX_COMMENT_BYTES`] bytes.
pub fn check_comment(comment: Option<&str>) -> WriteResult<()> {
    match comment {
        Some(comment) if comment.len() > MAX_COMMENT_BYTES => Err(WriteError::field(
            ErrorCode::InvalidField,
            "comment",
            format!("comment is {} bytes long; the limit is {MAX_COMMENT_BYTES}", comment.len()),
        )),
        _ => Ok(()),
    }
}
