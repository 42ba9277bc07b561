//! Projects, environments and schemas: creating a project with its environments, creating an
//! environment (empty or copied from another), renaming a project or changing its default
//! identifier type, and changing its context schema after checking every environment against it.

use std::collections::BTreeSet;
use std::sync::Arc;

use avsb_core::document::{Audit, MatrixDocument};
use avsb_core::schema::canonical_identifier_type;
use avsb_core::ContextSchema;

use super::edit::RevisionKind;
use super::write::{parse_schema, validate};
use super::{check_key, check_name, WriteError, WriteResult};
use crate::error::ErrorCode;
use crate::registry::EnvSnapshot;
use crate::store::{now_millis, NewProject, Project, Revision, RevisionMeta, StoreError};
use crate::AppState;

/// The schema a project gets when none is given: no context variables, USER identifiers.
pub const DEFAULT_SCHEMA: &str = r#"{"context": {}, "identifiers": {"USER": {"source": "QUERY"}}}"#;

/// The environments a project gets when none are named (Proctor's trunk, qa, production).
pub const DEFAULT_ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

/// What a new project starts with.
#[derive(Debug, Clone)]
pub struct ProjectSpec {
    /// The URL-safe key.
    pub key: String,
    /// A display name.
    pub name: String,
    /// The context schema.
    pub schema: ContextSchema,
    /// The identifier type OFREP's `targetingKey` and SDK contexts of kind `user` map to.
    pub default_identifier_type: String,
    /// The environments in promotion order, each with its first matrix.
    pub environments: Vec<(String, MatrixDocument)>,
}

/// Refuses fields Pipet's configuration does not have (a typo such as `defualtValue` would
/// otherwise be dropped without a word), then reads the schema.
pub fn read_schema(doc: &serde_json::Value) -> WriteResult<ContextSchema> {
    let unknown = |path: String, allowed: &[&str]| {
        WriteError::schema_path(&path, format!("{path} is not a field of the schema (expected one of: {})", allowed.join(", ")))
    };
    if let Some(root) = doc.as_object() {
        const ROOT: &[&str] = &["context", "identifiers"];
        const VARIABLE: &[&str] = &["source", "sourceKey", "type", "defaultValue"];
        const IDENTIFIER: &[&str] = &["source", "sourceKey"];
        for key in root.keys() {
            if !ROOT.contains(&key.as_str()) {
                return Err(unknown(key.clone(), ROOT));
            }
        }
        for (section, allowed) in [("context", VARIABLE), ("identifiers", IDENTIFIER)] {
            for (name, entry) in root.get(section).and_then(serde_json::Value::as_object).into_iter().flatten() {
                for key in entry.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !allowed.contains(&key.as_str()) {
                        return Err(unknown(format!("{section}.{name}.{key}"), allowed));
                    }
                }
            }
        }
    }
    ContextSchema::from_value(doc)
        .map_err(|e| WriteError::schema_path(&e.path, format!("schema is invalid at {}: {}", e.path, e.message)))
}

fn unknown_identifier_type(default_identifier_type: &str) -> WriteError {
    WriteError::field(
        ErrorCode::InvalidField,
        "defaultIdentifierType",
        format!("defaultIdentifierType '{default_identifier_type}' is not an identifier type of the schema"),
    )
}

impl AppState {
    /// Creates a project and its environments, each with a validated first revision.
    pub async fn create_project(&self, spec: ProjectSpec, author: &str) -> WriteResult<Project> {
        check_key("project key", &spec.key)?;
        check_name("name", &spec.name)?;
        let default_type = canonical_identifier_type(&spec.default_identifier_type);
        if !spec.schema.identifiers.contains_key(&default_type) {
            return Err(unknown_identifier_type(&default_type));
        }
        if spec.environments.is_empty() {
            return Err(WriteError::field(
                ErrorCode::InvalidField,
                "environments",
                "environments must name at least one environment",
            ));
        }
        let mut seen = BTreeSet::new();
        for (env, matrix) in &spec.environments {
            check_key("environment key", env)?;
            if !seen.insert(env.as_str()) {
                return Err(WriteError::field(
                    ErrorCode::InvalidField,
                    "environments",
                    format!("environment '{env}' is listed twice"),
                ));
            }
            validate(matrix.clone(), &spec.schema)?;
        }
        let schema_json = serde_json::to_string_pretty(&spec.schema.to_json()).map_err(WriteError::internal)?;
        let project = self
            .store
            .create_project(NewProject {
                key: spec.key.clone(),
                name: spec.name.clone(),
                schema_json,
                default_identifier_type: default_type,
            })
            .await?;
        for (env, matrix) in spec.environments {
            self.create_environment(&project.key, &env, &env, matrix, author, "environment created").await?;
        }
        tracing::info!(project = %project.key, author, "project created");
        Ok(project)
    }

    /// Creates an environment whose first revision holds `matrix` (validated first), after the
    /// project's other environments in promotion order.
    pub async fn create_environment(
        &self,
        project_key: &str,
        key: &str,
        name: &str,
        mut matrix: MatrixDocument,
        author: &str,
        comment: &str,
    ) -> WriteResult<Arc<EnvSnapshot>> {
        check_key("environment key", key)?;
        check_name("name", name)?;
        let (_guard, project) = self.lock_project(project_key).await?;
        let schema = parse_schema(&project)?;
        let id = self.store.reserve_revision_id().await?;
        let now = now_millis();
        matrix.audit = Audit { version: Some(id.to_string()), updated: now, updated_by: Some(author.to_string()) };
        let matrix_json = serde_json::to_string(&matrix.to_json(false)).map_err(WriteError::internal)?;
        let (compiled, _) = validate(matrix, &schema)?;
        let revision = Revision {
            meta: RevisionMeta {
                id,
                environment_id: 0,
                parent: None,
                kind: RevisionKind::Create.as_str().into(),
                test_count: i64::try_from(compiled.len()).unwrap_or(i64::MAX),
                author: author.to_string(),
                comment: comment.to_string(),
                created_at: now,
            },
            matrix_json,
        };
        let env = self.store.create_environment(project.id, key, name, revision.clone()).await?;
        let mut meta = revision.meta;
        meta.environment_id = env.id;
        let snapshot = EnvSnapshot::from_compiled(&project, env.id, &env.key, &meta, compiled)?;
        Ok(self.publish(snapshot))
    }

    /// Protects an environment (only the project's admins write it) or lifts the protection.
    pub async fn set_protected(&self, project_key: &str, environment: &str, protected: bool, actor: &str) -> WriteResult<()> {
        let (_guard, project) = self.lock_project(project_key).await?;
        let env = self
            .store
            .list_environments(project.id)
            .await?
            .into_iter()
            .find(|e| e.key == environment)
            .ok_or_else(|| WriteError::NotFound(format!("environment '{environment}' of project '{project_key}' not found")))?;
        if env.protected != protected {
            self.store.set_protected(env.id, protected).await?;
            let action = if protected { "environment.protect" } else { "environment.unprotect" };
            super::accounts::audit(&*self.store, actor, action, Some(project.id), environment, serde_json::json!({})).await;
        }
        Ok(())
    }

    /// Renames a project or changes its default identifier type (which must be in its schema).
    pub async fn update_project(
        &self,
        project_key: &str,
        name: Option<&str>,
        default_identifier_type: Option<&str>,
    ) -> WriteResult<Project> {
        if let Some(name) = name {
            check_name("name", name)?;
        }
        let (_guard, current) = self.lock_project(project_key).await?;
        let default_type = default_identifier_type
            .map(canonical_identifier_type)
            .unwrap_or_else(|| current.default_identifier_type.clone());
        if !parse_schema(&current)?.identifiers.contains_key(&default_type) {
            return Err(unknown_identifier_type(&default_type));
        }
        let updated = self.store.update_project(current.id, name.unwrap_or(&current.name), &default_type).await?;
        for env in self.store.list_environments(updated.id).await? {
            self.reload_environment(&updated, &env.key).await?;
        }
        Ok(updated)
    }

    /// Replaces a project's schema after checking every environment's matrix against it. `base`
    /// is the schema version the writer saw.
    pub async fn set_schema(&self, project_key: &str, schema: ContextSchema, base: Option<i64>) -> WriteResult<Project> {
        let (_guard, project) = self.lock_project(project_key).await?;
        if let Some(base) = base {
            if base != project.schema_version {
                return Err(WriteError::SchemaConflict {
                    message: format!(
                        "the schema is at version {}, not {base}; reload and retry",
                        project.schema_version
                    ),
                    current: project.schema_version,
                });
            }
        }
        if !schema.identifiers.contains_key(&project.default_identifier_type) {
            return Err(WriteError::refused(
                ErrorCode::InvalidSchema,
                format!(
                    "the schema must keep the project's default identifier type '{}' (change defaultIdentifierType first)",
                    project.default_identifier_type
                ),
            ));
        }
        let environments = self.store.list_environments(project.id).await?;
        let mut problems = Vec::new();
        let mut compiled = Vec::new();
        for env in &environments {
            let current = self.current(&project.key, &env.key)?;
            match validate(current.matrix.to_document(), &schema) {
                Ok((matrix, _)) => compiled.push((Arc::clone(&current), matrix)),
                Err(WriteError::Invalid { diagnostics, .. }) => problems.push((env.key.clone(), diagnostics)),
                Err(other) => return Err(other),
            }
        }
        if !problems.is_empty() {
            let envs = problems.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>().join(", ");
            return Err(WriteError::SchemaInvalid {
                message: format!("the schema would drop tests in: {envs}; nothing was changed"),
                diagnostics: problems,
            });
        }
        // Store the schema as normalised JSON, so what is served is what was checked.
        let normalised = serde_json::to_string_pretty(&schema.to_json()).map_err(WriteError::internal)?;
        if normalised == project.schema_json {
            // Nothing changes: keep the version, so SDKs are not told to refetch.
            return Ok(project);
        }
        let updated =
            self.store.set_schema(project.id, &normalised, project.schema_version).await.map_err(|e| match e {
                StoreError::Conflict { current, .. } => WriteError::SchemaConflict {
                    message: format!("the schema changed meanwhile (now version {current}); reload and retry"),
                    current,
                },
                other => other.into(),
            })?;
        for (current, matrix) in compiled {
            let snapshot = EnvSnapshot::from_compiled(
                &updated,
                current.environment_id,
                &current.environment_key,
                &current.revision,
                matrix,
            )?;
            self.publish(snapshot);
        }
        tracing::info!(project = %updated.key, schema_version = updated.schema_version, "schema changed");
        Ok(updated)
    }
}
