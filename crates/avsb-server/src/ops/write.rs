//! The one write path for matrices: lock the project, check the base revision, apply the edit,
//! validate with the engine, commit with compare-and-set, publish. Nothing else writes a
//! revision.
//!
//! Two writers never lose each other's change: writes to one project are serialized in this
//! process, and the store's compare-and-set on the current revision catches writers in other
//! processes. A write that names a stale base revision conflicts only when what it changes
//! overlaps what changed since: an edit of one test conflicts if that test changed, an edit of
//! the whole matrix conflicts on any change.

use std::collections::HashMap;
use std::sync::Arc;

use avsb_core::document::{Audit, MatrixDocument};
use avsb_core::{CompiledMatrix, ContextSchema, Diagnostic, Severity};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::edit::{revision_document, MatrixEdit, Resolved, Scope};
use super::{ConflictingChange, WriteError, WriteResult};
use crate::registry::EnvSnapshot;
use crate::error::ErrorCode;
use crate::store::{now_millis, Project, ProjectRole, Revision, RevisionMeta, StoreError};
use crate::AppState;

/// Who writes, why, and on which revision the change was based.
#[derive(Debug, Clone)]
pub struct WriteMeta {
    /// The revision the writer saw; `None` applies the change to whatever is current.
    pub base: Option<i64>,
    /// The author recorded in the audit.
    pub author: String,
    /// The comment recorded in the audit; `None` records the edit's default comment.
    pub comment: Option<String>,
    /// The writer's role in the project: a protected environment takes writes from admins only.
    pub role: ProjectRole,
}

/// A committed revision and the warnings validation raised.
#[derive(Debug)]
pub struct Committed {
    /// The new revision.
    pub revision: RevisionMeta,
    /// Non-fatal diagnostics.
    pub warnings: Vec<Diagnostic>,
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

/// Parses a project's stored schema.
pub fn parse_schema(project: &Project) -> WriteResult<ContextSchema> {
    ContextSchema::from_json(&project.schema_json)
        .map_err(|e| WriteError::internal(format!("project '{}' has an unusable schema: {e}", project.key)))
}

/// Compiles `matrix` against `schema`; a dropped test refuses the write with the diagnostics.
/// Returns the compiled matrix and the warnings.
pub fn validate(matrix: MatrixDocument, schema: &ContextSchema) -> WriteResult<(CompiledMatrix, Vec<Diagnostic>)> {
    let compilation = CompiledMatrix::compile(matrix, schema);
    let dropped = compilation.dropped_tests();
    if !dropped.is_empty() {
        let names = dropped.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
        return Err(WriteError::Invalid {
            message: format!("the change would drop {} test(s): {names}; nothing was changed", dropped.len()),
            diagnostics: compilation.diagnostics,
        });
    }
    let warnings = compilation.diagnostics.into_iter().filter(|d| d.severity != Severity::Error).collect();
    Ok((compilation.matrix, warnings))
}

impl AppState {
    /// Applies `edit` to an environment's current matrix as one new revision: the only way a
    /// revision is written after an environment is created.
    pub async fn write(
        &self,
        project_key: &str,
        environment_key: &str,
        edit: &MatrixEdit,
        meta: WriteMeta,
    ) -> WriteResult<Committed> {
        super::check_comment(meta.comment.as_deref())?;
        let (_guard, project) = self.lock_project(project_key).await?;
        self.check_protection(&project, environment_key, meta.role).await?;
        let schema = Arc::new(parse_schema(&project)?);
        let mut current = self.current(&project.key, environment_key)?;
        let resolved = Arc::new(edit.resolve(self, &current).await?);
        let comment = meta.comment.clone().unwrap_or_else(|| resolved.default_comment());
        for _attempt in 0..3 {
            if let Some(base) = meta.base {
                self.check_base(&current, base, &edit.scope()).await?;
            }
            let id = self.store.reserve_revision_id().await?;
            // Applying, rendering and compiling a matrix of thousands of tests takes long enough
            // to hold up every request on an async worker: it runs on the blocking pool.
            let (compiled, warnings, matrix_json) = {
                let (current, resolved, schema) = (Arc::clone(&current), Arc::clone(&resolved), Arc::clone(&schema));
                let author = meta.author.clone();
                tokio::task::spawn_blocking(move || prepare(&current, &resolved, &schema, id, &author))
                    .await
                    .map_err(WriteError::internal)??
            };
            let revision = Revision {
                meta: RevisionMeta {
                    id,
                    environment_id: current.environment_id,
                    parent: Some(current.revision.id),
                    kind: edit.kind().as_str().to_string(),
                    test_count: i64::try_from(compiled.len()).unwrap_or(i64::MAX),
                    author: meta.author.clone(),
                    comment: comment.clone(),
                    created_at: compiled.audit().updated,
                },
                matrix_json,
            };
            match self.store.commit_revision(current.revision.id, revision.clone()).await {
                Ok(()) => {
                    let snapshot = {
                        let (project, environment_id) = (project.clone(), current.environment_id);
                        let (environment_key, meta) = (current.environment_key.clone(), revision.meta.clone());
                        // The compiled matrix holds exactly the document stored (nothing was
                        // dropped), so the stored text is what the snapshot serves.
                        let rendered = revision.matrix_json.into_bytes();
                        tokio::task::spawn_blocking(move || {
                            EnvSnapshot::from_rendered(&project, environment_id, &environment_key, &meta, compiled, rendered)
                        })
                        .await
                        .map_err(WriteError::internal)??
                    };
                    let snapshot = self.publish(snapshot);
                    tracing::info!(
                        project = %project.key, environment = %current.environment_key, revision = id,
                        kind = revision.meta.kind, author = %meta.author, "revision committed"
                    );
                    return Ok(Committed { revision: revision.meta, warnings, snapshot });
                }
                Err(StoreError::Conflict { .. }) => {
                    // Another process moved the environment: load its revision and try again (the
                    // base check above decides whether this write may still go ahead).
                    current = self.reload_environment(&project, environment_key).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(WriteError::Conflict {
            message: "the environment kept changing under this write; retry".into(),
            base: meta.base,
            current: Some(current.revision.id),
            changes: Vec::new(),
        })
    }

    /// Whether a write based on `base` may go ahead on `current`: yes if nothing it touches
    /// changed since; otherwise a conflict naming the revisions that changed it.
    pub(crate) async fn check_base(&self, current: &EnvSnapshot, base: i64, scope: &Scope) -> WriteResult<()> {
        if base == current.revision.id {
            return Ok(());
        }
        let tests = match scope {
            Scope::Matrix => return Err(WriteError::stale(base, current.revision.id)),
            Scope::Tests(tests) => tests,
        };
        let Ok((base_document, _)) = revision_document(self, current, base).await else {
            return Err(WriteError::stale(base, current.revision.id));
        };
        let changed: Vec<&String> =
            tests.iter().filter(|t| base_document.tests.get(*t) != current.matrix.definition(t)).collect();
        if changed.is_empty() {
            return Ok(());
        }
        let changes = self.changes_since(current, base, &base_document, &changed).await?;
        let described = changes
            .iter()
            .map(|c| format!("'{}' in revision {} by {}", c.test, c.revision, c.author))
            .collect::<Vec<_>>()
            .join(", ");
        let names = changed.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
        Err(WriteError::Conflict {
            message: format!(
                "the write was based on revision {base}, but revision {} is current and {names} changed since ({described}); reload and retry",
                current.revision.id
            ),
            base: Some(base),
            current: Some(current.revision.id),
            changes,
        })
    }

    /// The revisions after `base` (up to the current one) that changed each of `tests`.
    async fn changes_since(
        &self,
        current: &EnvSnapshot,
        base: i64,
        base_document: &MatrixDocument,
        tests: &[&String],
    ) -> WriteResult<Vec<ConflictingChange>> {
        // Newest first, at most 200 back: a conflict report, not an audit.
        let mut metas = self.store.list_revisions(current.environment_id, None, 200).await?;
        metas.retain(|m| m.id > base);
        metas.reverse();
        let mut previous: Vec<_> = tests.iter().map(|t| base_document.tests.get(*t).cloned()).collect();
        let mut out = Vec::new();
        for meta in metas {
            let Ok((document, _)) = revision_document(self, current, meta.id).await else { continue };
            for (i, test) in tests.iter().enumerate() {
                let now = document.tests.get(*test).cloned();
                if now != previous[i] {
                    out.push(ConflictingChange {
                        test: (*test).clone(),
                        revision: meta.id.to_string(),
                        author: meta.author.clone(),
                        comment: meta.comment.clone(),
                        created_at: meta.created_at,
                    });
                    previous[i] = now;
                }
            }
        }
        Ok(out)
    }

    /// Refuses a writer weaker than an admin on a protected environment.
    pub(crate) async fn check_protection(&self, project: &Project, environment: &str, role: ProjectRole) -> WriteResult<()> {
        let protected = self.store.list_environments(project.id).await?.iter().any(|e| e.key == environment && e.protected);
        if protected && role < ProjectRole::Admin {
            return Err(WriteError::refused(
                ErrorCode::Forbidden,
                format!("environment '{environment}' is protected: only the admins of project '{}' may change it", project.key),
            ));
        }
        Ok(())
    }

    /// Takes the project's write lock and reads the project, which may have changed (its
    /// schema) while we waited.
    pub(crate) async fn lock_project(&self, project_key: &str) -> WriteResult<(OwnedMutexGuard<()>, Project)> {
        let project = self.project(project_key).await?;
        let guard = self.write_locks.lock(project.id).await;
        let project = self.project(project_key).await?;
        Ok((guard, project))
    }

    /// A project by key, or not found.
    pub async fn project(&self, key: &str) -> WriteResult<Project> {
        self.store.project(key).await?.ok_or_else(|| WriteError::NotFound(format!("project '{key}' not found")))
    }

    /// The current snapshot of an environment, or not found.
    pub fn current(&self, project: &str, environment: &str) -> WriteResult<Arc<EnvSnapshot>> {
        self.registry.by_name(project, environment).ok_or_else(|| {
            WriteError::NotFound(format!("environment '{environment}' of project '{project}' not found"))
        })
    }

    /// Reads an environment's current revision from the store and publishes it.
    pub async fn reload_environment(&self, project: &Project, environment_key: &str) -> WriteResult<Arc<EnvSnapshot>> {
        let environments = self.store.list_environments(project.id).await?;
        let env = environments
            .into_iter()
            .find(|e| e.key == environment_key)
            .ok_or_else(|| WriteError::NotFound(format!("environment '{environment_key}' not found")))?;
        let revision = self
            .store
            .revision(env.current_revision)
            .await?
            .ok_or_else(|| WriteError::internal(format!("revision {} is missing", env.current_revision)))?;
        let snapshot = EnvSnapshot::build(project, &env, &revision)?;
        Ok(self.publish(snapshot))
    }

    /// Makes a snapshot current and counts it.
    pub(crate) fn publish(&self, snapshot: EnvSnapshot) -> Arc<EnvSnapshot> {
        let snapshot = self.registry.publish(snapshot);
        self.metrics.revision_published(&snapshot);
        snapshot
    }
}

/// The matrix an edit makes of the current one, stamped with the new revision's audit and
/// validated: the compiled matrix, the warnings, and the document as stored.
pub(crate) fn prepare(
    current: &EnvSnapshot,
    resolved: &Resolved,
    schema: &ContextSchema,
    id: i64,
    author: &str,
) -> WriteResult<(CompiledMatrix, Vec<Diagnostic>, String)> {
    let mut matrix = current.matrix.to_document();
    resolved.apply(&mut matrix, id, &current.environment_key)?;
    matrix.audit = Audit { version: Some(id.to_string()), updated: now_millis(), updated_by: Some(author.to_string()) };
    let matrix_json = crate::registry::document_json(&matrix).map_err(WriteError::internal)?;
    let matrix_json = String::from_utf8(matrix_json).map_err(WriteError::internal)?;
    let (compiled, warnings) = validate(matrix, schema)?;
    Ok((compiled, warnings, matrix_json))
}
