//! What an edit would do, without doing it: the same resolution and application as the write
//! path ([`super::write`]), then the engine's verdict and a test-by-test diff with the share of
//! units that would change bucket. The console's review screen and `avsb flag` show this before
//! every write; the admin API serves it.

use avsb_core::{CompiledMatrix, Diagnostic};
use serde::Serialize;
use serde_json::Value;

use super::diff::{matrix_changes, TestChange};
use super::edit::{MatrixEdit, RevisionKind};
use super::write::parse_schema;
use super::WriteResult;
use crate::AppState;

/// The outcome of a proposed edit.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// The environment.
    pub environment: String,
    /// The revision the edit was applied to (the current one); send it as `baseRevision` to
    /// write exactly this.
    pub base_revision: String,
    /// The kind of revision the write would make.
    pub kind: RevisionKind,
    /// The comment recorded when none is given.
    pub default_comment: String,
    /// Whether the write would be accepted (no test dropped).
    pub valid: bool,
    /// The engine's diagnostics of the changed matrix: errors (which would refuse the write)
    /// and warnings.
    #[schema(value_type = Vec<Object>)]
    pub diagnostics: Vec<Value>,
    /// The tests that would change.
    pub tests: Vec<TestChange>,
}

impl AppState {
    /// Applies `edit` to a copy of the environment's current matrix and reports the result. A
    /// stale `base` conflicts exactly as the write would.
    pub async fn preview(
        &self,
        project_key: &str,
        environment_key: &str,
        edit: &MatrixEdit,
        base: Option<i64>,
    ) -> WriteResult<Preview> {
        let project = self.project(project_key).await?;
        let schema = parse_schema(&project)?;
        let current = self.current(&project.key, environment_key)?;
        let resolved = edit.resolve(self, &current).await?;
        if let Some(base) = base {
            self.check_base(&current, base, &edit.scope()).await?;
        }
        let before = current.matrix.to_document();
        let mut after = before.clone();
        // Versions are left out of the diff, so the id given here does not show.
        resolved.apply(&mut after, current.revision.id, &current.environment_key)?;
        let compilation = CompiledMatrix::compile(after.clone(), &schema);
        let valid = compilation.dropped_tests().is_empty();
        Ok(Preview {
            environment: current.environment_key.clone(),
            base_revision: current.revision.id.to_string(),
            kind: edit.kind(),
            default_comment: resolved.default_comment(),
            valid,
            diagnostics: compilation.diagnostics.iter().map(Diagnostic::to_json).collect(),
            tests: matrix_changes(&before, &after),
        })
    }
}
