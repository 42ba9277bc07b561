//! The admin API (`/api/v1`, bearer admin token): projects, environments, schemas, matrices,
//! tests, revisions, diffs, rollback, promotion, the kill switch and SDK keys.
//!
//! Every matrix write goes through [`AppState::write_matrix`]: validated by the core first (a
//! write that would drop a test answers 422 with the diagnostics and changes nothing), and
//! checked against `baseRevision` (body) or `If-Match` (header) when given (409 if stale).

use std::collections::BTreeSet;

use avsb_core::document::{Audit, TestDefinition};
use avsb_core::reader::stored_to_consumable;
use avsb_core::{ContextSchema, MatrixDocument};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::keys::{self, SecretKind};
use crate::registry::EnvSnapshot;
use crate::routes::{json_bytes, parse_object, read_body, ApiQuery};
use crate::store::{now_millis, NewProject, Project, Revision, RevisionMeta};
use crate::writes::{validate, WriteMeta};
use crate::{AppState, SharedState};

/// The largest admin request body (a whole matrix of many thousand tests).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// The schema a project gets when none is given: no context variables, USER identifiers.
pub const DEFAULT_SCHEMA: &str = r#"{"context": {}, "identifiers": {"USER": {"source": "QUERY"}}}"#;

/// The environments a project gets when none are named (Proctor's trunk, qa, production).
pub const DEFAULT_ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

/// The admin routes.
pub fn router() -> Router<SharedState> {
    let p = "/api/v1/projects/{project}";
    let e = "/api/v1/projects/{project}/environments/{environment}";
    Router::new()
        .route("/api/v1/projects", get(list_projects).post(create_project))
        .route(p, get(get_project).patch(update_project))
        .route(&format!("{p}/schema"), get(get_schema).put(put_schema))
        .route(&format!("{p}/environments"), get(list_environments).post(create_environment))
        .route(&format!("{p}/diff"), get(diff))
        .route(&format!("{p}/promote"), post(promote))
        .route(&format!("{e}/matrix"), get(get_matrix).put(put_matrix))
        .route(&format!("{e}/tests/{{test}}"), get(get_test).put(put_test).delete(delete_test))
        .route(&format!("{e}/tests/{{test}}/kill"), post(kill))
        .route(&format!("{e}/revisions"), get(list_revisions))
        .route(&format!("{e}/revisions/{{revision}}"), get(get_revision))
        .route(&format!("{e}/rollback"), post(rollback))
        .route(&format!("{e}/sdk-keys"), get(list_sdk_keys).post(create_sdk_key))
        .route(&format!("{e}/sdk-keys/{{key_id}}"), axum::routing::delete(revoke_sdk_key))
        .route(&format!("{e}/events"), get(list_events))
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn check_key(what: &str, key: &str) -> ApiResult<()> {
    let ok = !key.is_empty()
        && key.len() <= 63
        && key.bytes().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && key.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_key",
            format!("{what} '{key}' must be 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit"),
        ))
    }
}

fn non_empty(field: &str, value: Option<&str>) -> ApiResult<()> {
    match value {
        Some(v) if v.trim().is_empty() => {
            Err(ApiError::bad_request("invalid_field", format!("{field} must not be empty")).with("field", field))
        }
        _ => Ok(()),
    }
}

fn check_test_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_test_name",
            format!("test name '{name}' must be 1 to 128 letters, digits, '_', '-' or '.'"),
        ))
    }
}

async fn project(state: &AppState, key: &str) -> ApiResult<Project> {
    state.store.project(key).await?.ok_or_else(|| ApiError::not_found(format!("project '{key}' not found")))
}

/// A revision id given as a JSON string or number.
fn revision_id(value: &Value, field: &str) -> ApiResult<i64> {
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().trim_matches('"').parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| ApiError::bad_request("invalid_field", format!("{field} must be a revision version such as \"12\"")))
}

/// The base revision from the body's `baseRevision` or the `If-Match` header.
fn base_revision(body: Option<&Value>, headers: &HeaderMap) -> ApiResult<Option<i64>> {
    if let Some(value) = body.filter(|v| !v.is_null()) {
        return revision_id(value, "baseRevision").map(Some);
    }
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        Some(tag) => revision_id(&Value::from(tag.trim_start_matches("W/")), "If-Match").map(Some),
        None => Ok(None),
    }
}

/// A write's parsed JSON body and its base revision, once the token is known to have the write role.
trait WriteBody: serde::de::DeserializeOwned {
    /// The body's `baseRevision`, if the request type has one.
    fn base(&self) -> Option<&Value>;
}

async fn write_body<T: WriteBody>(admin: &Admin, headers: &HeaderMap, body: Body) -> ApiResult<(T, Option<i64>)> {
    admin.require_write()?;
    let request: T = parse_object(&read_body(body, MAX_BODY).await?)?;
    let base = base_revision(request.base(), headers)?;
    Ok((request, base))
}

macro_rules! write_body {
    ($($t:ty),*) => {
        $(impl WriteBody for $t {
            fn base(&self) -> Option<&Value> {
                self.base_revision.as_ref()
            }
        })*
    };
}
write_body!(PutMatrix, PutTest, Kill, Rollback, Promote);

fn revision_json(meta: &RevisionMeta) -> Value {
    let audit = Audit { version: Some(meta.id.to_string()), updated: meta.created_at, updated_by: Some(meta.author.clone()) };
    json!({
        "version": meta.id.to_string(),
        "parent": meta.parent.map(|p| p.to_string()),
        "kind": meta.kind,
        "tests": meta.test_count,
        "updated": meta.created_at,
        "updatedDate": audit.updated_date(),
        "updatedBy": meta.author,
        "comment": meta.comment,
    })
}

fn committed_json(committed: &crate::writes::Committed) -> Response {
    (StatusCode::OK, Json(json!({"revision": revision_json(&committed.revision), "warnings": committed.warnings})))
        .into_response()
}

fn project_json(project: &Project, environments: &[Value]) -> Value {
    json!({
        "key": project.key,
        "name": project.name,
        "schemaVersion": project.schema_version,
        "defaultIdentifierType": project.default_identifier_type,
        "createdAt": project.created_at,
        "environments": environments,
    })
}

fn environment_json(snapshot: &EnvSnapshot, name: &str, position: i64) -> Value {
    json!({
        "key": snapshot.environment_key,
        "name": name,
        "position": position,
        "currentRevision": snapshot.revision.id.to_string(),
        "tests": snapshot.matrix.len(),
    })
}

async fn environments_json(state: &AppState, project: &Project) -> ApiResult<Vec<Value>> {
    let environments = state.store.list_environments(project.id).await?;
    environments
        .iter()
        .map(|env| Ok(environment_json(&*state.current(&project.key, &env.key)?, &env.name, env.position)))
        .collect()
}

/// Reads a test definition: the consumable form (as in a matrix), or Proctor's stored
/// `definition.json` form when `format` is `stored` or the document has `specialConstants`.
fn read_definition(name: &str, definition: &Value, format: Option<&str>) -> ApiResult<TestDefinition> {
    if !definition.is_object() {
        return Err(ApiError::bad_request("invalid_field", "definition must be a JSON object (a test definition)"));
    }
    refuse_missing_fields([(&name.to_string(), definition)])?;
    let stored = match format {
        Some("stored") => true,
        Some("consumable") => false,
        None => definition.get("specialConstants").is_some(),
        Some(other) => {
            return Err(ApiError::bad_request("invalid_field", format!("format must be 'consumable' or 'stored', not '{other}'")))
        }
    };
    if stored {
        return stored_to_consumable(definition).map_err(|e| {
            ApiError::unprocessable(
                format!("tests.{name}.{}: {}", e.path, e.message),
                json!([{"test": name, "path": format!("tests.{name}.{}", e.path), "code": "invalid_field", "severity": "error", "message": e.message}]),
            )
        });
    }
    let doc = json!({"audit": {"version": "0", "updated": 0, "updatedBy": ""}, "tests": {name: definition}});
    let (mut matrix, diagnostics) = MatrixDocument::from_json(&doc.to_string())
        .map_err(|e| ApiError::bad_request("invalid_field", e.message))?;
    if !diagnostics.is_empty() {
        let message = diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        return Err(ApiError::unprocessable(message, diagnostics.iter().map(|d| d.to_json()).collect::<Vec<_>>().into()));
    }
    matrix.tests.shift_remove(name).ok_or_else(|| ApiError::bad_request("invalid_field", "definition is empty"))
}

/// Fields Proctor would read as 0 when absent, but which an editor never means to leave out: a
/// bucket's `value`, a range's `bucketValue` and `length`. The admin API refuses them missing.
fn missing_fields(name: &str, definition: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let mut missing = |path: String, what: &str| {
        out.push(
            avsb_core::Diagnostic::error(name, format!("tests.{name}.{path}"), "missing_field", format!("{what} is required"))
                .to_json(),
        );
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

fn refuse_missing_fields<'a>(tests: impl IntoIterator<Item = (&'a String, &'a Value)>) -> ApiResult<()> {
    let diagnostics: Vec<Value> = tests.into_iter().flat_map(|(name, def)| missing_fields(name, def)).collect();
    if diagnostics.is_empty() {
        return Ok(());
    }
    let message = diagnostics
        .iter()
        .map(|d| format!("{}: {}", d["path"].as_str().unwrap_or(""), d["message"].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("; ");
    Err(ApiError::unprocessable(message, Value::from(diagnostics)))
}

/// Compares two definitions, ignoring their versions.
fn same_definition(a: &TestDefinition, b: &TestDefinition) -> bool {
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

fn author(admin: &Admin) -> String {
    admin.token.name.clone()
}

// ---------------------------------------------------------------------------------------------
// Projects and schemas

async fn list_projects(State(state): State<SharedState>, _admin: Admin) -> ApiResult<Json<Value>> {
    let mut out = Vec::new();
    for project in state.store.list_projects().await? {
        let environments = environments_json(&state, &project).await?;
        out.push(project_json(&project, &environments));
    }
    Ok(Json(json!({"projects": out})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateProject {
    key: String,
    name: Option<String>,
    schema: Option<Value>,
    default_identifier_type: Option<String>,
    environments: Option<Vec<String>>,
}

/// Creates a project and its environments (each with an empty first revision).
pub async fn create_project_with(
    state: &AppState,
    key: &str,
    name: &str,
    schema: &ContextSchema,
    default_identifier_type: &str,
    environments: &[(String, MatrixDocument)],
    author: &str,
) -> ApiResult<Project> {
    check_key("project key", key)?;
    if !schema.identifiers.contains_key(default_identifier_type) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("defaultIdentifierType '{default_identifier_type}' is not an identifier type of the schema"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (env, matrix) in environments {
        check_key("environment key", env)?;
        if !seen.insert(env.as_str()) {
            return Err(ApiError::bad_request("invalid_field", format!("environment '{env}' is listed twice")));
        }
        validate(matrix.clone(), schema)?;
    }
    let schema_json = serde_json::to_string_pretty(&schema.to_json()).map_err(ApiError::internal)?;
    let project = state
        .store
        .create_project(NewProject {
            key: key.to_string(),
            name: name.to_string(),
            schema_json,
            default_identifier_type: default_identifier_type.to_string(),
        })
        .await?;
    for (env, matrix) in environments {
        state.create_environment(&project, env, env, matrix.clone(), author, "environment created").await?;
    }
    Ok(project)
}

impl AppState {
    /// Creates an environment whose first revision holds `matrix` (validated first).
    pub async fn create_environment(
        &self,
        project: &Project,
        key: &str,
        name: &str,
        mut matrix: MatrixDocument,
        author: &str,
        comment: &str,
    ) -> ApiResult<std::sync::Arc<EnvSnapshot>> {
        check_key("environment key", key)?;
        let _guard = self.write_locks.lock(project.id).await;
        let schema = crate::writes::parse_schema(project)?;
        let id = self.store.reserve_revision_id().await?;
        let now = now_millis();
        matrix.audit = Audit { version: Some(id.to_string()), updated: now, updated_by: Some(author.to_string()) };
        let matrix_json = serde_json::to_string(&matrix.to_json(false)).map_err(ApiError::internal)?;
        let (compiled, _) = validate(matrix, &schema)?;
        let revision = Revision {
            meta: RevisionMeta {
                id,
                environment_id: 0,
                parent: None,
                kind: "create".into(),
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
        let snapshot = EnvSnapshot::from_compiled(project, &env, &meta, compiled).map_err(ApiError::internal)?;
        let published = self.registry.publish(snapshot);
        self.metrics.revision_published(&published);
        Ok(published)
    }
}

async fn create_project(State(state): State<SharedState>, admin: Admin, body: Body) -> ApiResult<Response> {
    admin.require_write()?;
    let request: CreateProject = parse_object(&read_body(body, MAX_BODY).await?)?;
    let schema = match &request.schema {
        None => ContextSchema::from_json(DEFAULT_SCHEMA).map_err(ApiError::internal)?,
        Some(doc) => crate::writes::check_schema_fields(doc).and_then(|()| ContextSchema::from_value(doc).map_err(|e| {
            ApiError::bad_request("invalid_schema", format!("schema is invalid at {}: {}", e.path, e.message))
                .with("path", e.path.clone())
        }))?,
    };
    let environments: Vec<(String, MatrixDocument)> = request
        .environments
        .unwrap_or_else(|| DEFAULT_ENVIRONMENTS.iter().map(|s| s.to_string()).collect())
        .into_iter()
        .map(|e| (e, MatrixDocument::default()))
        .collect();
    if environments.is_empty() {
        return Err(ApiError::bad_request("invalid_field", "environments must name at least one environment"));
    }
    non_empty("name", request.name.as_deref())?;
    let default_type = request.default_identifier_type.as_deref().unwrap_or("USER");
    let project = create_project_with(
        &state,
        &request.key,
        request.name.as_deref().unwrap_or(&request.key),
        &schema,
        &avsb_core::schema::canonical_identifier_type(default_type),
        &environments,
        &author(&admin),
    )
    .await?;
    let environments = environments_json(&state, &project).await?;
    Ok((StatusCode::CREATED, Json(project_json(&project, &environments))).into_response())
}

async fn get_project(State(state): State<SharedState>, _admin: Admin, Path(key): Path<String>) -> ApiResult<Json<Value>> {
    let project = project(&state, &key).await?;
    let environments = environments_json(&state, &project).await?;
    Ok(Json(project_json(&project, &environments)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateProject {
    name: Option<String>,
    default_identifier_type: Option<String>,
}

async fn update_project(State(state): State<SharedState>, admin: Admin, Path(key): Path<String>, body: Body) -> ApiResult<Json<Value>> {
    admin.require_write()?;
    let request: UpdateProject = parse_object(&read_body(body, MAX_BODY).await?)?;
    non_empty("name", request.name.as_deref())?;
    let current = project(&state, &key).await?;
    let default_type = request
        .default_identifier_type
        .map(|t| avsb_core::schema::canonical_identifier_type(&t))
        .unwrap_or_else(|| current.default_identifier_type.clone());
    let schema = crate::writes::parse_schema(&current)?;
    if !schema.identifiers.contains_key(&default_type) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("defaultIdentifierType '{default_type}' is not an identifier type of the schema"),
        ));
    }
    let updated = state
        .store
        .update_project(current.id, request.name.as_deref().unwrap_or(&current.name), &default_type)
        .await?;
    for env in state.store.list_environments(updated.id).await? {
        state.reload_environment(&updated, &env.key).await?;
    }
    let environments = environments_json(&state, &updated).await?;
    Ok(Json(project_json(&updated, &environments)))
}

async fn get_schema(State(state): State<SharedState>, _admin: Admin, Path(key): Path<String>) -> ApiResult<Response> {
    let project = project(&state, &key).await?;
    let mut response = json_bytes(StatusCode::OK, project.schema_json.clone());
    if let Ok(tag) = format!("\"{}\"", project.schema_version).parse() {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

async fn put_schema(
    State(state): State<SharedState>,
    admin: Admin,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    admin.require_write()?;
    let bytes = read_body(body, MAX_BODY).await?;
    let doc: Value = crate::routes::parse_json(&bytes)?;
    crate::writes::check_schema_fields(&doc)?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::bad_request("invalid_json", "the body is not UTF-8"))?;
    let project = project(&state, &key).await?;
    let base = match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        Some(tag) => Some(tag.trim_start_matches("W/").trim().trim_matches('"').parse::<i64>().map_err(|_| {
            ApiError::bad_request("invalid_field", "If-Match must be a schema version such as \"3\" (see GET .../schema's ETag)")
                .with("field", "If-Match")
        })?),
        None => None,
    };
    let updated = state.write_schema(&project, &text, base).await?;
    let environments = environments_json(&state, &updated).await?;
    Ok(Json(project_json(&updated, &environments)))
}

// ---------------------------------------------------------------------------------------------
// Environments

async fn list_environments(State(state): State<SharedState>, _admin: Admin, Path(key): Path<String>) -> ApiResult<Json<Value>> {
    let project = project(&state, &key).await?;
    Ok(Json(json!({"environments": environments_json(&state, &project).await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateEnvironment {
    key: String,
    name: Option<String>,
    copy_from: Option<String>,
}

async fn create_environment(State(state): State<SharedState>, admin: Admin, Path(key): Path<String>, body: Body) -> ApiResult<Response> {
    admin.require_write()?;
    let request: CreateEnvironment = parse_object(&read_body(body, MAX_BODY).await?)?;
    non_empty("name", request.name.as_deref())?;
    let project = project(&state, &key).await?;
    let matrix = match &request.copy_from {
        Some(source) => state.current(&project.key, source)?.matrix.to_test_matrix(),
        None => MatrixDocument::default(),
    };
    let comment = request.copy_from.as_ref().map_or("environment created".to_string(), |s| format!("environment created from '{s}'"));
    let name = request.name.clone().unwrap_or_else(|| request.key.clone());
    let snapshot = state.create_environment(&project, &request.key, &name, matrix, &author(&admin), &comment).await?;
    let position = state.store.list_environments(project.id).await?.iter().find(|e| e.key == request.key).map_or(0, |e| e.position);
    Ok((StatusCode::CREATED, Json(environment_json(&snapshot, &name, position))).into_response())
}

// ---------------------------------------------------------------------------------------------
// Matrices, tests and revisions

#[derive(Deserialize)]
struct RevisionQuery {
    revision: Option<String>,
}

async fn revision_of(state: &AppState, snapshot: &EnvSnapshot, revision: &str) -> ApiResult<Revision> {
    let id = revision_id(&Value::from(revision), "revision")?;
    let revision = state.store.revision(id).await?;
    revision
        .filter(|r| r.meta.environment_id == snapshot.environment_id)
        .ok_or_else(|| ApiError::not_found(format!("revision {id} of environment '{}' not found", snapshot.environment_key)))
}

async fn get_matrix(
    State(state): State<SharedState>,
    _admin: Admin,
    Path((project, environment)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<RevisionQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let snapshot = state.current(&project, &environment)?;
    let (body, version) = match &query.revision {
        None => (snapshot.matrix_json.to_vec(), snapshot.revision.id),
        Some(revision) => {
            let revision = revision_of(&state, &snapshot, revision).await?;
            (revision.matrix_json.into_bytes(), revision.meta.id)
        }
    };
    let etag = format!("\"{version}\"");
    let mut response = if crate::routes::sdk::not_modified(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        json_bytes(StatusCode::OK, body)
    };
    if let Ok(tag) = etag.parse() {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PutMatrix {
    matrix: Value,
    comment: Option<String>,
    base_revision: Option<Value>,
}

async fn put_matrix(
    State(state): State<SharedState>,
    admin: Admin,
    Path((project_key, environment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (request, base) = write_body::<PutMatrix>(&admin, &headers, body).await?;
    let mut doc = request.matrix;
    let Some(object) = doc.as_object_mut() else {
        return Err(ApiError::bad_request("invalid_field", "matrix must be a test matrix object: {\"tests\": {...}}"));
    };
    object.entry("audit").or_insert_with(|| json!({"version": "0", "updated": 0, "updatedBy": ""}));
    if let Some(tests) = object.get("tests").and_then(Value::as_object) {
        refuse_missing_fields(tests.iter())?;
    }
    let (incoming, diagnostics) =
        MatrixDocument::from_json(&doc.to_string()).map_err(|e| ApiError::bad_request("unreadable_matrix", e.message))?;
    if !diagnostics.is_empty() {
        let message = diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        return Err(ApiError::unprocessable(message, diagnostics.iter().map(|d| d.to_json()).collect::<Vec<_>>().into()));
    }
    for name in incoming.tests.keys() {
        check_test_name(name)?;
    }
    let project = project(&state, &project_key).await?;
    let meta = WriteMeta {
        base,
        author: author(&admin),
        comment: request.comment.unwrap_or_else(|| "matrix replaced".into()),
        kind: "replace",
    };
    let committed = state
        .write_matrix(&project, &environment, meta, |matrix, id| {
            let mut next = incoming.clone();
            for (name, test) in &mut next.tests {
                test.version = next_version(test, matrix.tests.get(name), id);
            }
            matrix.tests = next.tests;
            Ok(())
        })
        .await?;
    Ok(committed_json(&committed))
}

async fn get_test(
    State(state): State<SharedState>,
    _admin: Admin,
    Path((project, environment, test)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<RevisionQuery>,
) -> ApiResult<Json<Value>> {
    let snapshot = state.current(&project, &environment)?;
    let definition = match &query.revision {
        None => snapshot.matrix.definition(&test).map(|d| d.to_json(false)),
        Some(revision) => {
            let revision = revision_of(&state, &snapshot, revision).await?;
            let (matrix, _) = MatrixDocument::from_json(&revision.matrix_json).map_err(ApiError::internal)?;
            matrix.tests.get(&test).map(|d| d.to_json(false))
        }
    };
    definition
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("test '{test}' not found in environment '{environment}'")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PutTest {
    definition: Value,
    comment: Option<String>,
    base_revision: Option<Value>,
    format: Option<String>,
}

async fn put_test(
    State(state): State<SharedState>,
    admin: Admin,
    Path((project_key, environment, test)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (request, base) = write_body::<PutTest>(&admin, &headers, body).await?;
    check_test_name(&test)?;
    let definition = read_definition(&test, &request.definition, request.format.as_deref())?;
    let project = project(&state, &project_key).await?;
    let meta = WriteMeta {
        base,
        author: author(&admin),
        comment: request.comment.unwrap_or_else(|| format!("test '{test}' saved")),
        kind: "edit",
    };
    let committed = state
        .write_matrix(&project, &environment, meta, |matrix, id| {
            let mut definition = definition.clone();
            definition.version = Some(id.to_string());
            matrix.tests.insert(test.clone(), definition);
            Ok(())
        })
        .await?;
    Ok(committed_json(&committed))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WriteQuery {
    comment: Option<String>,
    base_revision: Option<String>,
}

async fn delete_test(
    State(state): State<SharedState>,
    admin: Admin,
    Path((project_key, environment, test)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    admin.require_write()?;
    let base = base_revision(query.base_revision.map(Value::from).as_ref(), &headers)?;
    let project = project(&state, &project_key).await?;
    let meta = WriteMeta {
        base,
        author: author(&admin),
        comment: query.comment.unwrap_or_else(|| format!("test '{test}' deleted")),
        kind: "delete",
    };
    let committed = state
        .write_matrix(&project, &environment, meta, |matrix, _| {
            matrix
                .tests
                .shift_remove(&test)
                .map(|_| ())
                .ok_or_else(|| ApiError::not_found(format!("test '{test}' not found in environment '{environment}'")))
        })
        .await?;
    Ok(committed_json(&committed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kill {
    bucket: Value,
    comment: Option<String>,
    base_revision: Option<Value>,
}

/// Rewrites a test so that everyone with an identifier of its type gets one bucket: no
/// eligibility rule, no dependency, no targets, one allocation of the whole range.
fn kill_test(test: &mut TestDefinition, bucket: &Value, name: &str) -> ApiResult<()> {
    let chosen = test.buckets.iter().find(|b| match bucket {
        Value::String(s) => b.name == *s,
        Value::Number(n) => n.as_i64() == Some(i64::from(b.value)),
        _ => false,
    });
    let Some(chosen) = chosen else {
        let names = test.buckets.iter().map(|b| format!("'{}' ({})", b.name, b.value)).collect::<Vec<_>>().join(", ");
        return Err(ApiError::bad_request(
            "unknown_bucket",
            format!("test '{name}' has no bucket {bucket}; its buckets are {names}"),
        ));
    };
    let value = chosen.value;
    let mut allocation = test.allocations.first().cloned().unwrap_or_default();
    allocation.rule = None;
    allocation.ranges = vec![avsb_core::document::Range { bucket_value: value, length: 1.0 }];
    test.allocations = vec![allocation];
    test.rule = None;
    test.depends_on = None;
    test.targets.clear();
    Ok(())
}

async fn kill(
    State(state): State<SharedState>,
    admin: Admin,
    Path((project_key, environment, test)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (request, base) = write_body::<Kill>(&admin, &headers, body).await?;
    let project = project(&state, &project_key).await?;
    let meta = WriteMeta {
        base,
        author: author(&admin),
        comment: request.comment.unwrap_or_else(|| format!("kill switch: '{test}' serves bucket {} to everyone", request.bucket)),
        kind: "kill",
    };
    let committed = state
        .write_matrix(&project, &environment, meta, |matrix, id| {
            let definition = matrix
                .tests
                .get_mut(&test)
                .ok_or_else(|| ApiError::not_found(format!("test '{test}' not found in environment '{environment}'")))?;
            kill_test(definition, &request.bucket, &test)?;
            definition.version = Some(id.to_string());
            Ok(())
        })
        .await?;
    Ok(committed_json(&committed))
}

#[derive(Deserialize)]
struct Page {
    before: Option<String>,
    limit: Option<u32>,
}

async fn list_revisions(
    State(state): State<SharedState>,
    _admin: Admin,
    Path((project, environment)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let snapshot = state.current(&project, &environment)?;
    let before = page.before.as_deref().map(|b| revision_id(&Value::from(b), "before")).transpose()?;
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let revisions = state.store.list_revisions(snapshot.environment_id, before, limit).await?;
    Ok(Json(json!({
        "current": snapshot.revision.id.to_string(),
        "revisions": revisions.iter().map(revision_json).collect::<Vec<_>>(),
    })))
}

async fn get_revision(
    State(state): State<SharedState>,
    _admin: Admin,
    Path((project, environment, revision)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let snapshot = state.current(&project, &environment)?;
    let revision = revision_of(&state, &snapshot, &revision).await?;
    let matrix: Value = serde_json::from_str(&revision.matrix_json).map_err(ApiError::internal)?;
    Ok(Json(json!({"revision": revision_json(&revision.meta), "matrix": matrix})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Rollback {
    revision: Value,
    comment: Option<String>,
    base_revision: Option<Value>,
}

async fn rollback(
    State(state): State<SharedState>,
    admin: Admin,
    Path((project_key, environment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (request, base) = write_body::<Rollback>(&admin, &headers, body).await?;
    let target = revision_id(&request.revision, "revision")?;
    let snapshot = state.current(&project_key, &environment)?;
    let revision = revision_of(&state, &snapshot, &target.to_string()).await?;
    let (old, _) = MatrixDocument::from_json(&revision.matrix_json).map_err(ApiError::internal)?;
    let project = project(&state, &project_key).await?;
    let meta = WriteMeta {
        base,
        author: author(&admin),
        comment: request.comment.unwrap_or_else(|| format!("rolled back to revision {target}")),
        kind: "rollback",
    };
    let committed = state
        .write_matrix(&project, &environment, meta, |matrix, _| {
            matrix.tests = old.tests.clone();
            Ok(())
        })
        .await?;
    Ok(committed_json(&committed))
}

#[derive(Deserialize)]
struct DiffQuery {
    from: String,
    to: String,
}

async fn diff(
    State(state): State<SharedState>,
    _admin: Admin,
    Path(project_key): Path<String>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> ApiResult<Json<Value>> {
    let project = project(&state, &project_key).await?;
    let environments = state.store.list_environments(project.id).await?;
    let mut load = Vec::new();
    for (field, text) in [("from", &query.from), ("to", &query.to)] {
        let id = revision_id(&Value::from(text.as_str()), field)?;
        let revision = state
            .store
            .revision(id)
            .await?
            .filter(|r| environments.iter().any(|e| e.id == r.meta.environment_id))
            .ok_or_else(|| ApiError::not_found(format!("revision {id} not found in project '{project_key}'")))?;
        let (matrix, _) = MatrixDocument::from_json(&revision.matrix_json).map_err(ApiError::internal)?;
        load.push((revision.meta, matrix));
    }
    let (to_meta, to) = load.pop().ok_or_else(|| ApiError::internal("diff"))?;
    let (from_meta, from) = load.pop().ok_or_else(|| ApiError::internal("diff"))?;
    Ok(Json(diff_json(&from_meta, &from, &to_meta, &to)))
}

/// Test-by-test differences between two matrices, with the top-level fields that changed.
pub fn diff_json(from_meta: &RevisionMeta, from: &MatrixDocument, to_meta: &RevisionMeta, to: &MatrixDocument) -> Value {
    let names: BTreeSet<&String> = from.tests.keys().chain(to.tests.keys()).collect();
    let (mut added, mut removed, mut changed, mut unchanged) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for name in names {
        match (from.tests.get(name), to.tests.get(name)) {
            (None, Some(t)) => added.push(json!({"test": name, "definition": t.to_json(false)})),
            (Some(f), None) => removed.push(json!({"test": name, "definition": f.to_json(false)})),
            (Some(f), Some(t)) if f == t => unchanged += 1,
            (Some(f), Some(t)) => {
                let (fj, tj) = (f.to_json(false), t.to_json(false));
                let fields: Vec<&String> = match (fj.as_object(), tj.as_object()) {
                    (Some(a), Some(b)) => {
                        a.keys().chain(b.keys()).collect::<BTreeSet<_>>().into_iter().filter(|k| a.get(*k) != b.get(*k)).collect()
                    }
                    _ => Vec::new(),
                };
                changed.push(json!({"test": name, "fields": fields, "from": fj, "to": tj}));
            }
            (None, None) => {}
        }
    }
    json!({
        "from": revision_json(from_meta),
        "to": revision_json(to_meta),
        "added": added,
        "removed": removed,
        "changed": changed,
        "unchanged": unchanged,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Promote {
    from: String,
    to: String,
    tests: Vec<String>,
    comment: Option<String>,
    base_revision: Option<Value>,
    source_revision: Option<Value>,
}

/// Copies tests from one environment to a later one (Proctor's trunk → qa → production),
/// each keeping its version (the revision its definition was made at).
async fn promote(
    State(state): State<SharedState>,
    admin: Admin,
    Path(project_key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (request, base) = write_body::<Promote>(&admin, &headers, body).await?;
    if request.tests.is_empty() {
        return Err(ApiError::bad_request("invalid_field", "tests must name at least one test to promote"));
    }
    let project = project(&state, &project_key).await?;
    let environments = state.store.list_environments(project.id).await?;
    let position = |key: &str| {
        environments
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.position)
            .ok_or_else(|| ApiError::not_found(format!("environment '{key}' of project '{project_key}' not found")))
    };
    let (from_position, to_position) = (position(&request.from)?, position(&request.to)?);
    if from_position >= to_position {
        let order = environments.iter().map(|e| e.key.as_str()).collect::<Vec<_>>().join(" → ");
        return Err(ApiError::bad_request(
            "invalid_promotion",
            format!("tests are promoted forward only ({order}); '{}' does not come before '{}'", request.from, request.to),
        ));
    }
    let source = state.current(&project.key, &request.from)?;
    if let Some(expected) = &request.source_revision {
        let expected = revision_id(expected, "sourceRevision")?;
        if expected != source.revision.id {
            return Err(ApiError::conflict(expected, source.revision.id).with("environment", request.from.clone()));
        }
    }
    // A test keeps its version (the revision its definition was made at) wherever it goes, as
    // Proctor's promotion sets the version to the trunk revision of the definition.
    let source_version = source.revision.id.to_string();
    let mut definitions = Vec::new();
    for name in &request.tests {
        let definition = source.matrix.definition(name).ok_or_else(|| {
            ApiError::not_found(format!("test '{name}' not found in environment '{}'", request.from))
        })?;
        definitions.push((name.clone(), definition.clone()));
    }
    let meta = WriteMeta {
        base,
        author: author(&admin),
        comment: request.comment.unwrap_or_else(|| {
            format!("promoted {} from '{}' revision {source_version}", request.tests.join(", "), request.from)
        }),
        kind: "promote",
    };
    let committed = state
        .write_matrix(&project, &request.to, meta, |matrix, _| {
            for (name, definition) in &definitions {
                matrix.tests.insert(name.clone(), definition.clone());
            }
            Ok(())
        })
        .await?;
    Ok(committed_json(&committed))
}

// ---------------------------------------------------------------------------------------------
// SDK keys

async fn list_sdk_keys(
    State(state): State<SharedState>,
    _admin: Admin,
    Path((project, environment)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let snapshot = state.current(&project, &environment)?;
    Ok(Json(json!({"keys": state.store.list_sdk_keys(snapshot.environment_id).await?})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: Option<String>,
}

/// Creates an SDK key for an environment; the secret is returned once.
pub async fn new_sdk_key(state: &AppState, snapshot: &EnvSnapshot, name: &str) -> ApiResult<(String, crate::store::SdkKeyInfo)> {
    let secret = keys::generate(SecretKind::SdkKey).map_err(ApiError::internal)?;
    let info = state.store.create_sdk_key(snapshot.environment_id, name, &secret.digest, &secret.prefix).await?;
    state.reload_keys().await?;
    Ok((secret.secret, info))
}

async fn create_sdk_key(
    State(state): State<SharedState>,
    admin: Admin,
    Path((project, environment)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Response> {
    admin.require_write()?;
    let bytes = read_body(body, MAX_BODY).await?;
    let request: CreateKey = if bytes.iter().all(u8::is_ascii_whitespace) { CreateKey::default() } else { parse_object(&bytes)? };
    non_empty("name", request.name.as_deref())?;
    let snapshot = state.current(&project, &environment)?;
    let name = request.name.unwrap_or_else(|| format!("{environment} key"));
    let (secret, info) = new_sdk_key(&state, &snapshot, &name).await?;
    let mut out = serde_json::to_value(&info).map_err(ApiError::internal)?;
    out["key"] = Value::from(secret);
    out["pipetRoot"] = Value::from(format!("/pipet/{}", out["key"].as_str().unwrap_or_default()));
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn revoke_sdk_key(
    State(state): State<SharedState>,
    admin: Admin,
    Path((project, environment, key_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    admin.require_write()?;
    let snapshot = state.current(&project, &environment)?;
    let key_id: i64 = key_id.parse().map_err(|_| ApiError::bad_request("invalid_field", "the key id must be an integer"))?;
    if !state.store.revoke_sdk_key(snapshot.environment_id, key_id).await? {
        return Err(ApiError::not_found(format!("no active SDK key {key_id} in environment '{environment}'")));
    }
    state.reload_keys().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// Events

#[derive(Deserialize)]
struct EventPage {
    after: Option<i64>,
    limit: Option<u32>,
}

/// Stored events of an environment, oldest first, after an event id.
async fn list_events(
    State(state): State<SharedState>,
    _admin: Admin,
    Path((project, environment)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<EventPage>,
) -> ApiResult<Json<Value>> {
    let snapshot = state.current(&project, &environment)?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let events = state.store.list_events(snapshot.environment_id, page.after.unwrap_or(0), limit).await?;
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            let mut v = serde_json::to_value(&e).unwrap_or(Value::Null);
            for field in ["identifiers", "properties"] {
                if let Some(text) = v.get(field).and_then(Value::as_str) {
                    v[field] = serde_json::from_str(text).unwrap_or(Value::Null);
                }
            }
            v
        })
        .collect();
    Ok(Json(json!({"events": events})))
}
