//! Matrix edits as data. Every change to an environment's matrix is one [`MatrixEdit`]: the
//! admin API, the console and the command line build one and hand it to the single write path
//! ([`super::write`]) or to the preview ([`super::preview`]), which apply it the same way.
//!
//! An edit names what it reads (a revision to roll back to, an environment to promote from);
//! [`MatrixEdit::resolve`] loads that, and [`Resolved::apply`] changes a matrix document with no
//! I/O, so a preview computes exactly what a write would commit.

use std::collections::BTreeSet;
use std::fmt;

use avsb_core::document::{MatrixDocument, Range, Target, TestDefinition};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{check_test_name, WriteError, WriteResult};
use crate::error::ErrorCode;
use crate::registry::EnvSnapshot;
use crate::AppState;

/// A bucket named by its name (`"control"`) or its value (`0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum BucketRef {
    /// The bucket's value.
    Value(i32),
    /// The bucket's name.
    Name(String),
}

impl fmt::Display for BucketRef {
    /// As the request wrote it: a name in quotes, a value bare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BucketRef::Value(v) => write!(f, "{v}"),
            BucketRef::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// One change to one environment's matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixEdit {
    /// Replace every test (an import, or a matrix written by hand). Unchanged tests keep their
    /// versions. With a base revision, any change since the base conflicts.
    ReplaceMatrix {
        /// The new tests, in order.
        tests: IndexMap<String, TestDefinition>,
    },
    /// Add a test or replace its definition.
    PutTest {
        /// The test.
        test: String,
        /// Its new definition.
        definition: Box<TestDefinition>,
    },
    /// Remove a test.
    DeleteTest {
        /// The test.
        test: String,
    },
    /// Give everyone with an identifier of the test's type one bucket: no eligibility rule, no
    /// dependency, no targets, one allocation of the whole range.
    Kill {
        /// The test.
        test: String,
        /// The bucket everyone gets.
        bucket: BucketRef,
    },
    /// Restore every test as it was at an earlier revision of this environment.
    Rollback {
        /// The revision to restore.
        revision: i64,
    },
    /// Restore one test as it was at an earlier revision of this environment (removing it if it
    /// did not exist then).
    RollbackTest {
        /// The test.
        test: String,
        /// The revision to restore it from.
        revision: i64,
    },
    /// Replace the ranges of one allocation.
    SetRanges {
        /// The test.
        test: String,
        /// The allocation's index (0 is the first).
        allocation: usize,
        /// Its new ranges.
        ranges: Vec<Range>,
    },
    /// Replace a test's targets (identifiers that always get a bucket).
    SetTargets {
        /// The test.
        test: String,
        /// The new targets.
        targets: Vec<Target>,
    },
    /// Copy tests from an earlier environment (Proctor's trunk → qa → production), each
    /// keeping its version.
    Promote {
        /// The environment to copy from.
        from: String,
        /// The tests to copy.
        tests: Vec<String>,
        /// The revision of `from` the caller saw; a newer one conflicts.
        source_revision: Option<i64>,
    },
}

/// What an edit touches, for deciding whether a stale base conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole matrix: any change since the base conflicts.
    Matrix,
    /// These tests: only a change to one of them since the base conflicts.
    Tests(BTreeSet<String>),
}

/// What kind of change made a revision (its `kind` in the history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevisionKind {
    /// An environment's first revision.
    Create,
    /// A test added or changed.
    Edit,
    /// A test removed.
    Delete,
    /// The whole matrix replaced.
    Replace,
    /// The environment, or one test, restored from an earlier revision.
    Rollback,
    /// Tests copied from an earlier environment.
    Promote,
    /// The kill switch.
    Kill,
    /// One allocation's ranges changed.
    Ranges,
    /// A test's targets changed.
    Targets,
}

impl RevisionKind {
    /// The kind as stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionKind::Create => "create",
            RevisionKind::Edit => "edit",
            RevisionKind::Delete => "delete",
            RevisionKind::Replace => "replace",
            RevisionKind::Rollback => "rollback",
            RevisionKind::Promote => "promote",
            RevisionKind::Kill => "kill",
            RevisionKind::Ranges => "ranges",
            RevisionKind::Targets => "targets",
        }
    }
}

impl MatrixEdit {
    /// The kind of revision this edit makes.
    pub fn kind(&self) -> RevisionKind {
        match self {
            MatrixEdit::ReplaceMatrix { .. } => RevisionKind::Replace,
            MatrixEdit::PutTest { .. } => RevisionKind::Edit,
            MatrixEdit::DeleteTest { .. } => RevisionKind::Delete,
            MatrixEdit::Kill { .. } => RevisionKind::Kill,
            MatrixEdit::Rollback { .. } | MatrixEdit::RollbackTest { .. } => RevisionKind::Rollback,
            MatrixEdit::SetRanges { .. } => RevisionKind::Ranges,
            MatrixEdit::SetTargets { .. } => RevisionKind::Targets,
            MatrixEdit::Promote { .. } => RevisionKind::Promote,
        }
    }

    /// What the edit touches.
    pub fn scope(&self) -> Scope {
        let one = |test: &String| Scope::Tests([test.clone()].into_iter().collect());
        match self {
            MatrixEdit::ReplaceMatrix { .. } | MatrixEdit::Rollback { .. } => Scope::Matrix,
            MatrixEdit::PutTest { test, .. }
            | MatrixEdit::DeleteTest { test }
            | MatrixEdit::Kill { test, .. }
            | MatrixEdit::RollbackTest { test, .. }
            | MatrixEdit::SetRanges { test, .. }
            | MatrixEdit::SetTargets { test, .. } => one(test),
            MatrixEdit::Promote { tests, .. } => Scope::Tests(tests.iter().cloned().collect()),
        }
    }

    /// Loads what the edit reads (an earlier revision, another environment's tests) and checks
    /// what can be checked before the matrix is touched.
    pub async fn resolve(&self, state: &AppState, target: &EnvSnapshot) -> WriteResult<Resolved> {
        Ok(match self {
            MatrixEdit::ReplaceMatrix { tests } => {
                for name in tests.keys() {
                    check_test_name(name)?;
                }
                Resolved::Replace(tests.clone())
            }
            MatrixEdit::PutTest { test, definition } => {
                check_test_name(test)?;
                Resolved::Put(test.clone(), (**definition).clone())
            }
            MatrixEdit::DeleteTest { test } => Resolved::Delete(test.clone()),
            MatrixEdit::Kill { test, bucket } => Resolved::Kill(test.clone(), bucket.clone()),
            MatrixEdit::Rollback { revision } => {
                let (document, _) = revision_document(state, target, *revision).await?;
                Resolved::Restore(*revision, document.tests)
            }
            MatrixEdit::RollbackTest { test, revision } => {
                let (document, _) = revision_document(state, target, *revision).await?;
                let definition = document.tests.get(test).cloned();
                if definition.is_none() && target.matrix.definition(test).is_none() {
                    return Err(WriteError::NotFound(format!(
                        "test '{test}' is neither in revision {revision} nor in environment '{}'",
                        target.environment_key
                    )));
                }
                Resolved::RestoreTest(test.clone(), *revision, definition)
            }
            MatrixEdit::SetRanges { test, allocation, ranges } => {
                Resolved::Ranges(test.clone(), *allocation, ranges.clone())
            }
            MatrixEdit::SetTargets { test, targets } => Resolved::Targets(test.clone(), targets.clone()),
            MatrixEdit::Promote { from, tests, source_revision } => {
                let (revision, definitions) = promoted_tests(state, target, from, tests, *source_revision).await?;
                Resolved::Copy { from: from.clone(), revision, tests: definitions }
            }
        })
    }
}

/// An edit with everything it reads loaded: applying it needs nothing but the matrix.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// See [`MatrixEdit::ReplaceMatrix`].
    Replace(IndexMap<String, TestDefinition>),
    /// See [`MatrixEdit::PutTest`].
    Put(String, TestDefinition),
    /// See [`MatrixEdit::DeleteTest`].
    Delete(String),
    /// See [`MatrixEdit::Kill`].
    Kill(String, BucketRef),
    /// See [`MatrixEdit::Rollback`]: the revision and its tests.
    Restore(i64, IndexMap<String, TestDefinition>),
    /// See [`MatrixEdit::RollbackTest`]: the definition to restore, or `None` to remove the test.
    RestoreTest(String, i64, Option<TestDefinition>),
    /// See [`MatrixEdit::SetRanges`].
    Ranges(String, usize, Vec<Range>),
    /// See [`MatrixEdit::SetTargets`].
    Targets(String, Vec<Target>),
    /// See [`MatrixEdit::Promote`]: the definitions to copy, with their versions.
    Copy {
        /// The environment they come from.
        from: String,
        /// Its revision they were read at.
        revision: i64,
        /// The definitions.
        tests: Vec<(String, TestDefinition)>,
    },
}

impl Resolved {
    /// The comment recorded when the author gives none.
    pub fn default_comment(&self) -> String {
        match self {
            Resolved::Replace(_) => "matrix replaced".into(),
            Resolved::Put(test, _) => format!("test '{test}' saved"),
            Resolved::Delete(test) => format!("test '{test}' deleted"),
            Resolved::Kill(test, bucket) => format!("kill switch: '{test}' serves bucket {bucket} to everyone"),
            Resolved::Restore(revision, _) => format!("rolled back to revision {revision}"),
            Resolved::RestoreTest(test, revision, _) => format!("rolled back '{test}' to revision {revision}"),
            Resolved::Ranges(test, allocation, _) => format!("ranges of allocation {allocation} of '{test}' changed"),
            Resolved::Targets(test, _) => format!("targets of '{test}' changed"),
            Resolved::Copy { from, revision, tests } => {
                let names = tests.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
                format!("promoted {names} from '{from}' revision {revision}")
            }
        }
    }

    /// Changes `matrix` as the edit says. `revision` is the id the new revision will have: a test
    /// changed here gets it as its version; restored and promoted tests keep theirs.
    pub fn apply(&self, matrix: &mut MatrixDocument, revision: i64, environment: &str) -> WriteResult<()> {
        let version = Some(revision.to_string());
        let missing = |test: &str| WriteError::NotFound(format!("test '{test}' not found in environment '{environment}'"));
        match self {
            Resolved::Replace(tests) => {
                let mut next = tests.clone();
                for (name, test) in &mut next {
                    test.version = next_version(test, matrix.tests.get(name), revision);
                }
                matrix.tests = next;
            }
            Resolved::Put(test, definition) => {
                let mut definition = definition.clone();
                definition.version = version;
                matrix.tests.insert(test.clone(), definition);
            }
            Resolved::Delete(test) => {
                matrix.tests.shift_remove(test).ok_or_else(|| missing(test))?;
            }
            Resolved::Kill(test, bucket) => {
                let definition = matrix.tests.get_mut(test).ok_or_else(|| missing(test))?;
                kill(definition, bucket, test)?;
                definition.version = version;
            }
            Resolved::Restore(_, tests) => matrix.tests = tests.clone(),
            Resolved::RestoreTest(test, _, Some(definition)) => {
                matrix.tests.insert(test.clone(), definition.clone());
            }
            Resolved::RestoreTest(test, _, None) => {
                matrix.tests.shift_remove(test);
            }
            Resolved::Ranges(test, index, ranges) => {
                let definition = matrix.tests.get_mut(test).ok_or_else(|| missing(test))?;
                let count = definition.allocations.len();
                let allocation = definition.allocations.get_mut(*index).ok_or_else(|| {
                    WriteError::field(
                        ErrorCode::InvalidField,
                        "allocation",
                        format!("test '{test}' has {count} allocation(s); there is no allocation {index}"),
                    )
                })?;
                allocation.ranges.clone_from(ranges);
                definition.version = version;
            }
            Resolved::Targets(test, targets) => {
                let definition = matrix.tests.get_mut(test).ok_or_else(|| missing(test))?;
                definition.targets.clone_from(targets);
                definition.version = version;
            }
            Resolved::Copy { tests, .. } => {
                for (name, definition) in tests {
                    matrix.tests.insert(name.clone(), definition.clone());
                }
            }
        }
        Ok(())
    }
}

/// Rewrites a test so that everyone with an identifier of its type gets one bucket.
fn kill(test: &mut TestDefinition, bucket: &BucketRef, name: &str) -> WriteResult<()> {
    let chosen = test.buckets.iter().find(|b| match bucket {
        BucketRef::Name(n) => b.name == *n,
        BucketRef::Value(v) => b.value == *v,
    });
    let Some(chosen) = chosen else {
        let names = test.buckets.iter().map(|b| format!("'{}' ({})", b.name, b.value)).collect::<Vec<_>>().join(", ");
        return Err(WriteError::refused(
            ErrorCode::UnknownBucket,
            format!("test '{name}' has no bucket {bucket}; its buckets are {names}"),
        ));
    };
    let value = chosen.value;
    let mut allocation = test.allocations.first().cloned().unwrap_or_default();
    allocation.rule = None;
    allocation.ranges = vec![Range { bucket_value: value, length: 1.0 }];
    test.allocations = vec![allocation];
    test.rule = None;
    test.depends_on = None;
    test.targets.clear();
    Ok(())
}

/// Compares two definitions, ignoring their versions.
pub fn same_definition(a: &TestDefinition, b: &TestDefinition) -> bool {
    let mut a = a.clone();
    a.version.clone_from(&b.version);
    a == *b
}

/// The version a test gets when a whole matrix is written: unchanged tests keep theirs; a new or
/// changed test keeps the version the document gives it (an import from Proctor carries its own),
/// unless that is missing or merely repeats the old one, when it gets the new revision's id.
fn next_version(test: &TestDefinition, old: Option<&TestDefinition>, revision: i64) -> Option<String> {
    match old {
        Some(old) if same_definition(test, old) => old.version.clone(),
        Some(old) if test.version.is_some() && test.version != old.version => test.version.clone(),
        None if test.version.is_some() => test.version.clone(),
        _ => Some(revision.to_string()),
    }
}

/// An earlier revision of the target's environment, read as a document.
pub async fn revision_document(
    state: &AppState,
    target: &EnvSnapshot,
    revision: i64,
) -> WriteResult<(MatrixDocument, crate::store::RevisionMeta)> {
    let stored = state
        .store
        .revision(revision)
        .await?
        .filter(|r| r.meta.environment_id == target.environment_id)
        .ok_or_else(|| {
            WriteError::NotFound(format!("revision {revision} of environment '{}' not found", target.environment_key))
        })?;
    let (document, _) = MatrixDocument::from_json(&stored.matrix_json).map_err(WriteError::internal)?;
    Ok((document, stored.meta))
}

/// The definitions to promote from `from` into the target environment, checked.
async fn promoted_tests(
    state: &AppState,
    target: &EnvSnapshot,
    from: &str,
    tests: &[String],
    source_revision: Option<i64>,
) -> WriteResult<(i64, Vec<(String, TestDefinition)>)> {
    if tests.is_empty() {
        return Err(WriteError::field(ErrorCode::InvalidField, "tests", "tests must name at least one test to promote"));
    }
    let project = &target.project_key;
    let environments = state.store.list_environments(target.project_id).await?;
    let position = |key: &str| {
        environments
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.position)
            .ok_or_else(|| WriteError::NotFound(format!("environment '{key}' of project '{project}' not found")))
    };
    let (from_position, to_position) = (position(from)?, position(&target.environment_key)?);
    if from_position >= to_position {
        let order = environments.iter().map(|e| e.key.as_str()).collect::<Vec<_>>().join(" → ");
        return Err(WriteError::refused(
            ErrorCode::InvalidPromotion,
            format!(
                "tests are promoted forward only ({order}); '{from}' does not come before '{}'",
                target.environment_key
            ),
        ));
    }
    let source = state.current(project, from)?;
    if let Some(expected) = source_revision {
        if expected != source.revision.id {
            return Err(WriteError::Conflict {
                message: format!(
                    "the promotion was based on revision {expected} of '{from}', but revision {} is current there; reload and retry",
                    source.revision.id
                ),
                base: Some(expected),
                current: Some(source.revision.id),
                changes: Vec::new(),
            });
        }
    }
    let definitions = tests
        .iter()
        .map(|name| {
            source
                .matrix
                .definition(name)
                .map(|d| (name.clone(), d.clone()))
                .ok_or_else(|| WriteError::NotFound(format!("test '{name}' not found in environment '{from}'")))
        })
        .collect::<WriteResult<_>>()?;
    Ok((source.revision.id, definitions))
}
