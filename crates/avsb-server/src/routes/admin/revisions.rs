//! Revisions: an environment's history, one revision with its matrix, rolling the whole
//! environment back, and the test-by-test difference between any two revisions of a project.

use avsb_core::MatrixDocument;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::{CommittedView, RevisionView};
use crate::auth::{Editor, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Based, HasBaseRevision};
use crate::openapi::{params, responses, schemas};
use crate::ops::diff::{matrix_changes, ChangeKind, TestChange};
use crate::ops::edit::MatrixEdit;
use crate::ops::input::RevisionId;
use crate::ops::WriteMeta;
use crate::SharedState;

/// The revision routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_revisions))
        .routes(routes!(get_revision))
        .routes(routes!(rollback))
        .routes(routes!(diff))
}

/// `?before=&limit=`.
#[derive(Debug, Deserialize)]
struct Page {
    before: Option<String>,
    limit: Option<u32>,
}

/// A page of an environment's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevisionList {
    /// The revision served now.
    current: String,
    /// Newest first.
    revisions: Vec<RevisionView>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/revisions",
    tag = "admin",
    operation_id = "listRevisions",
    summary = r#"List revisions"#,
    description = r#"The environment's revisions, newest first, without their matrices."#,
    params(
        params::EnvironmentPath,
        ("before" = Option<String>, Query, description = r#"Only revisions older than this revision version (for paging)."#, example = json!("40")),
        ("limit" = Option<i64>, Query, description = r#"At most this many; clamped to 1..500."#)
    ),
    responses(
        (status = 200, description = r#"The current revision version and a page of revisions."#, body = RevisionList, content_type = "application/json"),
        (status = 400, description = r#"`before` is not a revision version (`invalid_field`). A query string that does not fit (a non-numeric number, a repeated parameter, a missing required or an unknown parameter) is `invalid_query`. Codes: `invalid_field`, `invalid_query`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 404, response = responses::NotFound),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_revisions(
    State(state): State<SharedState>,
    _access: Viewer,
    Path((project, environment)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<RevisionList>> {
    let snapshot = state.current(&project, &environment)?;
    let before = page.before.as_deref().map(|b| super::revision_param_named(b, "before")).transpose()?;
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let revisions = state.store.list_revisions(snapshot.environment_id, before, limit).await?;
    Ok(Json(RevisionList {
        current: snapshot.revision.id.to_string(),
        revisions: revisions.iter().map(RevisionView::from).collect(),
    }))
}

/// A revision with its matrix.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevisionWithMatrix {
    /// Its audit.
    revision: RevisionView,
    /// Its matrix, as stored.
    #[schema(value_type = schemas::TestMatrixArtifact)]
    matrix: Value,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/revisions/{revision}",
    tag = "admin",
    operation_id = "getRevision",
    summary = r#"Get one revision with its matrix"#,
    params(
        params::EnvironmentPath,
        ("revision" = String, Path, description = r#"A revision version of this environment."#, example = json!("41"))
    ),
    responses(
        (status = 200, description = r#"The revision and its matrix."#, body = RevisionWithMatrix, content_type = "application/json"),
        (status = 400, description = r#"The revision is not a revision version. Codes: `invalid_field`."#, body = schemas::BadRequestError, content_type = "application/json"),
        responses::ReadErrors,
        (status = 404, description = r#"The environment, or the revision in it, does not exist. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json")
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn get_revision(
    State(state): State<SharedState>,
    _access: Viewer,
    Path((project, environment, revision)): Path<(String, String, String)>,
) -> ApiResult<Json<RevisionWithMatrix>> {
    let snapshot = state.current(&project, &environment)?;
    let revision = super::stored_revision(&state, &snapshot, &revision).await?;
    let matrix: Value = serde_json::from_str(&revision.matrix_json).map_err(ApiError::internal)?;
    Ok(Json(RevisionWithMatrix { revision: RevisionView::from(&revision.meta), matrix }))
}

/// A rollback of the whole environment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rollback {
    /// The earlier revision of this environment whose tests to restore.
    revision: RevisionId,
    /// Recorded in the revision's audit.
    comment: Option<String>,
    /// The revision the rollback was based on: any change since conflicts.
    base_revision: Option<RevisionId>,
}

impl HasBaseRevision for Rollback {
    fn base_revision(&self) -> Option<i64> {
        self.base_revision.map(|r| r.0)
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/rollback",
    tag = "admin",
    operation_id = "rollback",
    summary = r#"Roll back to an earlier revision"#,
    description = r#"Writes a new revision whose tests are those of `revision` (an earlier revision of this environment), validated against the current schema. The write is based on `baseRevision` (body) or `If-Match` (header) when given: a stale base answers 409 and changes nothing. The new matrix is validated first: a change that would drop a test answers 422 with the diagnostics and changes nothing."#,
    params(
        params::IfMatch,
        params::EnvironmentPath
    ),
    request_body(content = Rollback, content_type = "application/json", example = json!({"revision": "38", "comment": "back to Monday"})),
    responses(
        (status = 200, description = r#"The change is committed as a new revision and served at once."#, body = CommittedView, content_type = "application/json"),
        (status = 400, description = r#"Malformed request, or `revision`/`baseRevision`/`If-Match` is not a revision version (`invalid_field`). A body that is not JSON (a syntax error, trailing text, or an empty body) is `invalid_json`. Valid JSON that does not fit the request is `invalid_field`: an unknown field or a value of the wrong type answers `the request body does not fit at '<field>': ...` with `field` naming where (`bogus`, `environments[0]`, `comment`); a missing required field answers `the request body does not fit: missing field ...` (no `field`); an array, string, number or null where an object is expected answers `invalid type: the request body must be a JSON object, not an array` (no `field`). Codes: `invalid_json`, `unreadable_body`, `invalid_field`."#, body = schemas::BadRequestError, content_type = "application/json"),
        responses::WriteErrors,
        (status = 404, description = r#"The project, the environment or the revision does not exist. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json")
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn rollback(
    State(state): State<SharedState>,
    access: Editor,
    Path((project, environment)): Path<(String, String)>,
    Based { body: request, base }: Based<Rollback>,
) -> ApiResult<Json<CommittedView>> {
    let edit = MatrixEdit::Rollback { revision: request.revision.0 };
    let meta = WriteMeta { base, author: access.author(), comment: request.comment, role: access.role };
    let committed = state.write(&project, &environment, &edit, meta).await?;
    Ok(Json(CommittedView::from(&committed)))
}

/// `?from=&to=`.
#[derive(Debug, Deserialize)]
struct DiffQuery {
    from: String,
    to: String,
}

/// A test added or removed between two revisions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DiffEntry {
    /// The test.
    test: String,
    /// Its definition.
    #[schema(value_type = schemas::ConsumableTestDefinition)]
    definition: Value,
}

/// Test-by-test differences between two revisions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Diff)]
pub struct DiffView {
    /// The older side.
    from: RevisionView,
    /// The newer side.
    to: RevisionView,
    /// Tests only in `to`.
    added: Vec<DiffEntry>,
    /// Tests only in `from`.
    removed: Vec<DiffEntry>,
    /// Tests in both with different definitions (versions aside): the fields that differ, both
    /// definitions, every differing value by path, and who would change bucket.
    changed: Vec<TestChange>,
    /// How many tests are the same in both.
    unchanged: usize,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/diff",
    tag = "admin",
    operation_id = "diffRevisions",
    summary = r#"Compare two revisions"#,
    description = r#"Test-by-test differences between two revisions of any environments of the project (e.g. the current revisions of `staging` and `production`)."#,
    params(
        params::ProjectPath,
        ("from" = String, Query, description = r#"The older revision version."#, example = json!("12")),
        ("to" = String, Query, description = r#"The newer revision version."#, example = json!("15"))
    ),
    responses(
        (status = 200, description = r#"The differences."#, body = DiffView, content_type = "application/json"),
        (status = 400, description = r#"`from` or `to` is not a revision version (`invalid_field`). A query string that does not fit (a non-numeric number, a repeated parameter, a missing required or an unknown parameter) is `invalid_query`. Codes: `invalid_field`, `invalid_query`."#, body = schemas::BadRequestError, content_type = "application/json"),
        responses::ReadErrors,
        (status = 404, description = r#"The project, or a revision of it, does not exist. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json")
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn diff(
    State(state): State<SharedState>,
    access: Viewer,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> ApiResult<Json<DiffView>> {
    let project = &access.project;
    let project_key = &project.key;
    let environments = state.store.list_environments(project.id).await?;
    let mut sides = Vec::new();
    for (field, text) in [("from", &query.from), ("to", &query.to)] {
        let id = super::revision_param_named(text, field)?;
        let revision = state
            .store
            .revision(id)
            .await?
            .filter(|r| environments.iter().any(|e| e.id == r.meta.environment_id))
            .ok_or_else(|| ApiError::not_found(format!("revision {id} not found in project '{project_key}'")))?;
        let (matrix, _) = MatrixDocument::from_json(&revision.matrix_json).map_err(ApiError::internal)?;
        sides.push((revision.meta, matrix));
    }
    let [(from_meta, from), (to_meta, to)]: [_; 2] =
        sides.try_into().map_err(|_| ApiError::internal("a diff has two sides"))?;
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for change in matrix_changes(&from, &to) {
        match change.change {
            ChangeKind::Added => {
                added.push(DiffEntry { test: change.test, definition: change.to.unwrap_or(Value::Null) })
            }
            ChangeKind::Removed => {
                removed.push(DiffEntry { test: change.test, definition: change.from.unwrap_or(Value::Null) })
            }
            ChangeKind::Changed => changed.push(change),
        }
    }
    let total = from.tests.keys().chain(to.tests.keys()).collect::<std::collections::BTreeSet<_>>().len();
    let unchanged = total - added.len() - removed.len() - changed.len();
    Ok(Json(DiffView {
        from: RevisionView::from(&from_meta),
        to: RevisionView::from(&to_meta),
        added,
        removed,
        changed,
        unchanged,
    }))
}
