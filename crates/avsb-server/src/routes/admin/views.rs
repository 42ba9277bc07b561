//! The admin API's JSON answers: what a project, an environment and a revision look like on the
//! wire. Handlers build these from the store's rows and the registry's snapshots.

use avsb_core::document::Audit;
use avsb_core::Diagnostic;
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiResult;
use crate::ops::edit::RevisionKind;
use crate::ops::Committed;
use crate::store::{Project, RevisionMeta};
use crate::AppState;

/// A project with its environments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Project)]
pub struct ProjectView {
    /// URL-safe key.
    pub key: String,
    /// A display name.
    pub name: String,
    /// Incremented on every schema change.
    pub schema_version: i64,
    /// The identifier type of OFREP's `targetingKey`.
    pub default_identifier_type: String,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// In promotion order.
    pub environments: Vec<EnvironmentView>,
}

/// One environment of a project.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Environment)]
pub struct EnvironmentView {
    /// URL-safe key.
    pub key: String,
    /// A display name.
    pub name: String,
    /// Promotion order: tests move to higher positions.
    pub position: i64,
    /// The revision version served now.
    pub current_revision: String,
    /// How many tests its matrix holds.
    pub tests: usize,
    /// Whether only the project's admins may change it.
    pub protected: bool,
}

/// A revision's audit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Revision)]
pub struct RevisionView {
    /// The revision version (also the matrix's `audit.version`).
    pub version: String,
    /// The revision it replaced; null for an environment's first.
    #[schema(required = true)]
    pub parent: Option<String>,
    /// What made it.
    #[schema(value_type = RevisionKind)]
    pub kind: String,
    /// How many tests its matrix holds.
    pub tests: i64,
    /// Epoch milliseconds.
    pub updated: i64,
    /// `yyyy-MM-dd'T'HH:mmZ` in US/Central, as Proctor's audit.
    pub updated_date: String,
    /// Who made it (the admin token's name).
    pub updated_by: String,
    /// Why.
    pub comment: String,
}

impl From<&RevisionMeta> for RevisionView {
    fn from(meta: &RevisionMeta) -> Self {
        let audit = Audit { version: Some(meta.id.to_string()), updated: meta.created_at, updated_by: None };
        RevisionView {
            version: meta.id.to_string(),
            parent: meta.parent.map(|p| p.to_string()),
            kind: meta.kind.clone(),
            tests: meta.test_count,
            updated: meta.created_at,
            updated_date: audit.updated_date(),
            updated_by: meta.author.clone(),
            comment: meta.comment.clone(),
        }
    }
}

/// A committed write: its revision and the warnings validation raised.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Committed)]
pub struct CommittedView {
    /// The new revision.
    pub revision: RevisionView,
    /// Diagnostics of severity `warning`: the tests were kept.
    #[schema(value_type = Vec<crate::openapi::schemas::Diagnostic>)]
    pub warnings: Vec<Value>,
}

impl From<&Committed> for CommittedView {
    fn from(committed: &Committed) -> Self {
        CommittedView {
            revision: RevisionView::from(&committed.revision),
            warnings: committed.warnings.iter().map(Diagnostic::to_json).collect(),
        }
    }
}

impl ProjectView {
    /// A project with its environments as the registry serves them now.
    pub async fn of(state: &AppState, project: &Project) -> ApiResult<ProjectView> {
        let mut environments = Vec::new();
        for env in state.store.list_environments(project.id).await? {
            let snapshot = state.current(&project.key, &env.key)?;
            environments.push(EnvironmentView {
                key: env.key.clone(),
                name: env.name.clone(),
                position: env.position,
                current_revision: snapshot.revision.id.to_string(),
                tests: snapshot.matrix.len(),
                protected: env.protected,
            });
        }
        Ok(ProjectView {
            key: project.key.clone(),
            name: project.name.clone(),
            schema_version: project.schema_version,
            default_identifier_type: project.default_identifier_type.clone(),
            created_at: project.created_at,
            environments,
        })
    }
}
