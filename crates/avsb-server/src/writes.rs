//! The one write path for matrices and schemas: lock the project, check the base revision,
//! apply the change, validate with the core, commit with compare-and-set, publish.
//!
//! Two writers never lose each other's change: writes to one project are serialized in this
//! process, and the store's compare-and-set on the current revision catches writers in other
//! processes (a write without an explicit base is then retried on the new current revision; a
//! write with one answers 409).

use std::collections::HashMap;
use std::sync::Arc;

use avsb_core::document::Audit;
use avsb_core::{ContextSchema, CompiledMatrix, Severity, MatrixDocument};
use serde_json::Value;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{ApiError, ApiResult};
use crate::registry::EnvSnapshot;
use crate::store::{now_millis, Environment, Project, Revision, RevisionMeta, StoreError};
use crate::AppState;

/// Who writes, why, and on which revision the change was based.
#[derive(Debug, Clone)]
pub struct WriteMeta {
    /// The revision the writer saw; `None` applies the change to whatever is current.
    pub base: Option<i64>,
    /// The author recorded in the audit.
    pub author: String,
    /// The comment recorded in the audit.
    pub comment: String,
    /// What kind of change (`edit`, `delete`, `replace`, `rollback`, `promote`, `kill`).
    pub kind: &'static str,
}

/// A committed revision and the warnings validation raised.
#[derive(Debug)]
pub struct Committed {
    /// The new revision.
    pub revision: RevisionMeta,
    /// Non-fatal diagnostics.
    pub warnings: Vec<Value>,
    /// The published snapshot.
    pub snapshot: Arc<EnvSnapshot>,
}

/// Per-project write locks.
#[derive(Debug, Default)]
pub struct WriteLocks {
    locks: std::sync::Mutex<HashMap<i64, Arc<Mutex<()>>>>,
}

impl WriteLocks {
    /// Waits for the project's write lock.
    pub async fn lock(&self, project_id: i64) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(locks.entry(project_id).or_default())
        };
        lock.lock_owned().await
    }
}

/// Parses a project's schema.
pub fn parse_schema(project: &Project) -> ApiResult<ContextSchema> {
    ContextSchema::from_json(&project.schema_json)
        .map_err(|e| ApiError::internal(format!("project '{}' has an unusable schema: {e}", project.key)))
}

/// Refuses fields Pipet's configuration does not have (a typo such as `defualtValue` would
/// otherwise be dropped without a word).
pub fn check_schema_fields(doc: &Value) -> ApiResult<()> {
    let unknown = |path: String, allowed: &[&str]| {
        ApiError::bad_request(
            "invalid_schema",
            format!("{path} is not a field of the schema (expected one of: {})", allowed.join(", ")),
        )
        .with("path", path)
    };
    let Some(root) = doc.as_object() else { return Ok(()) };
    const ROOT: &[&str] = &["context", "identifiers"];
    const VARIABLE: &[&str] = &["source", "sourceKey", "type", "defaultValue"];
    const IDENTIFIER: &[&str] = &["source", "sourceKey"];
    for key in root.keys() {
        if !ROOT.contains(&key.as_str()) {
            return Err(unknown(key.clone(), ROOT));
        }
    }
    for (section, allowed) in [("context", VARIABLE), ("identifiers", IDENTIFIER)] {
        for (name, entry) in root.get(section).and_then(Value::as_object).into_iter().flatten() {
            for key in entry.as_object().into_iter().flat_map(|o| o.keys()) {
                if !allowed.contains(&key.as_str()) {
                    return Err(unknown(format!("{section}.{name}.{key}"), allowed));
                }
            }
        }
    }
    Ok(())
}

/// Compiles `matrix` against `schema`; a dropped test refuses the write with the diagnostics.
pub fn validate(matrix: MatrixDocument, schema: &ContextSchema) -> ApiResult<(CompiledMatrix, Vec<Value>)> {
    let compilation = CompiledMatrix::compile(matrix, schema);
    let dropped = compilation.dropped_tests();
    if !dropped.is_empty() {
        let diagnostics: Vec<Value> = compilation.diagnostics.iter().map(|d| d.to_json()).collect();
        let names = dropped.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
        return Err(ApiError::unprocessable(
            format!("the change would drop {} test(s): {names}; nothing was changed", dropped.len()),
            Value::from(diagnostics),
        ));
    }
    let warnings = compilation
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Error)
        .map(|d| d.to_json())
        .collect();
    Ok((compilation.matrix, warnings))
}

impl AppState {
    /// Applies `change` to an environment's current matrix as one new revision.
    /// `change` receives the matrix and the new revision's id (for test versions).
    pub async fn write_matrix(
        &self,
        project: &Project,
        environment_key: &str,
        meta: WriteMeta,
        change: impl Fn(&mut MatrixDocument, i64) -> ApiResult<()>,
    ) -> ApiResult<Committed> {
        let (_guard, project) = self.lock_project(project).await?;
        let schema = parse_schema(&project)?;
        for _attempt in 0..3 {
            let current = self.current(&project.key, environment_key)?;
            let current_id = current.revision.id;
            if let Some(base) = meta.base {
                if base != current_id {
                    return Err(ApiError::conflict(base, current_id));
                }
            }
            let mut matrix = current.matrix.to_test_matrix();
            let id = self.store.reserve_revision_id().await?;
            change(&mut matrix, id)?;
            let now = now_millis();
            matrix.audit = Audit { version: Some(id.to_string()), updated: now, updated_by: Some(meta.author.clone()) };
            let matrix_json = serde_json::to_string(&matrix.to_json(false)).map_err(ApiError::internal)?;
            let (compiled, warnings) = validate(matrix, &schema)?;
            let revision = Revision {
                meta: RevisionMeta {
                    id,
                    environment_id: current.environment_id,
                    parent: Some(current_id),
                    kind: meta.kind.to_string(),
                    test_count: i64::try_from(compiled.len()).unwrap_or(i64::MAX),
                    author: meta.author.clone(),
                    comment: meta.comment.clone(),
                    created_at: now,
                },
                matrix_json,
            };
            match self.store.commit_revision(current_id, revision.clone()).await {
                Ok(()) => {
                    let env = Environment {
                        id: current.environment_id,
                        project_id: project.id,
                        key: current.environment_key.clone(),
                        name: String::new(),
                        position: 0,
                        current_revision: id,
                        created_at: 0,
                    };
                    let snapshot = EnvSnapshot::from_compiled(&project, &env, &revision.meta, compiled)
                        .map_err(ApiError::internal)?;
                    let snapshot = self.registry.publish(snapshot);
                    self.metrics.revision_published(&snapshot);
                    tracing::info!(
                        project = %project.key, environment = %environment_key, revision = id,
                        kind = meta.kind, author = %meta.author, "revision committed"
                    );
                    return Ok(Committed { revision: revision.meta, warnings, snapshot });
                }
                Err(StoreError::Conflict { expected, current }) => {
                    if meta.base.is_some() {
                        return Err(ApiError::conflict(expected, current));
                    }
                    // Another process moved the environment: load its revision and try again.
                    self.reload_environment(&project, environment_key).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "conflict",
            "the environment kept changing under this write; retry",
        ))
    }

    /// Replaces a project's schema after checking every environment's matrix against it.
    pub async fn write_schema(&self, project: &Project, schema_json: &str, base: Option<i64>) -> ApiResult<Project> {
        let (_guard, project) = self.lock_project(project).await?;
        if let Some(base) = base {
            if base != project.schema_version {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "conflict",
                    format!("the schema is at version {}, not {base}; reload and retry", project.schema_version),
                )
                .with("currentSchemaVersion", project.schema_version));
            }
        }
        let schema = ContextSchema::from_json(schema_json).map_err(|e| {
            ApiError::bad_request("invalid_schema", format!("the schema is invalid at {}: {}", e.path, e.message))
                .with("path", e.path.clone())
        })?;
        if !schema.identifiers.contains_key(&project.default_identifier_type) {
            return Err(ApiError::bad_request(
                "invalid_schema",
                format!(
                    "the schema must keep the project's default identifier type '{}' (change defaultIdentifierType first)",
                    project.default_identifier_type
                ),
            ));
        }
        let environments = self.store.list_environments(project.id).await?;
        let mut problems = serde_json::Map::new();
        let mut compiled = Vec::new();
        for env in &environments {
            let current = self.current(&project.key, &env.key)?;
            match validate(current.matrix.to_test_matrix(), &schema) {
                Ok((matrix, _)) => compiled.push((env.clone(), current.revision.clone(), matrix)),
                Err(e) => {
                    problems.insert(env.key.clone(), e.details.get("diagnostics").cloned().unwrap_or(Value::Null));
                }
            }
        }
        if !problems.is_empty() {
            let envs = problems.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(ApiError::unprocessable(
                format!("the schema would drop tests in: {envs}; nothing was changed"),
                Value::Object(problems),
            ));
        }
        // Store the schema as normalised JSON, so what is served is what was checked.
        let normalised = serde_json::to_string_pretty(&schema.to_json()).map_err(ApiError::internal)?;
        if normalised == project.schema_json {
            // Nothing changes: keep the version, so SDKs are not told to refetch.
            return Ok(project);
        }
        let updated = self
            .store
            .set_schema(project.id, &normalised, project.schema_version)
            .await
            .map_err(|e| match e {
                StoreError::Conflict { current, .. } => ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "conflict",
                    format!("the schema changed meanwhile (now version {current}); reload and retry"),
                )
                .with("currentSchemaVersion", current),
                other => other.into(),
            })?;
        for (env, revision, matrix) in compiled {
            let snapshot =
                EnvSnapshot::from_compiled(&updated, &env, &revision, matrix).map_err(ApiError::internal)?;
            let snapshot = self.registry.publish(snapshot);
            self.metrics.revision_published(&snapshot);
        }
        tracing::info!(project = %updated.key, schema_version = updated.schema_version, "schema changed");
        Ok(updated)
    }

    /// Takes the project's write lock and re-reads the project, which may have changed (its
    /// schema) while we waited.
    async fn lock_project(&self, project: &Project) -> ApiResult<(OwnedMutexGuard<()>, Project)> {
        let guard = self.write_locks.lock(project.id).await;
        let project = self
            .store
            .project(&project.key)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("project '{}' not found", project.key)))?;
        Ok((guard, project))
    }

    /// The current snapshot of an environment, or 404.
    pub fn current(&self, project: &str, environment: &str) -> ApiResult<Arc<EnvSnapshot>> {
        self.registry.by_name(project, environment).ok_or_else(|| {
            ApiError::not_found(format!("environment '{environment}' of project '{project}' not found"))
        })
    }

    /// Reads an environment's current revision from the store and publishes it.
    pub async fn reload_environment(&self, project: &Project, environment_key: &str) -> ApiResult<()> {
        let environments = self.store.list_environments(project.id).await?;
        let env = environments
            .into_iter()
            .find(|e| e.key == environment_key)
            .ok_or_else(|| ApiError::not_found(format!("environment '{environment_key}' not found")))?;
        let revision = self
            .store
            .revision(env.current_revision)
            .await?
            .ok_or_else(|| ApiError::internal(format!("revision {} is missing", env.current_revision)))?;
        let snapshot = EnvSnapshot::build(project, &env, &revision).map_err(ApiError::internal)?;
        self.registry.publish(snapshot);
        Ok(())
    }
}
