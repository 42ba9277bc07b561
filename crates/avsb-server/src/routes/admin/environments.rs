//! `/api/v1/projects/{project}/environments`: environments and their matrices.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::{CommittedView, EnvironmentView, ProjectView};
use crate::auth::{Editor, ProjectAdmin, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{if_match, parse_object, parse_off_workers, read_body, ApiQuery, JsonBody};
use crate::openapi::{params, responses, schemas};
use crate::ops::edit::MatrixEdit;
use crate::ops::input::{read_matrix_text, RevisionId};
use crate::ops::WriteMeta;
use crate::routes::json_bytes;
use crate::SharedState;

/// The environment routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_environments, create_environment))
        .routes(routes!(get_matrix, put_matrix))
        .routes(routes!(update_environment))
}

/// A project's environments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnvironmentList {
    /// In promotion order.
    pub environments: Vec<EnvironmentView>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments",
    tag = "admin",
    operation_id = "listEnvironments",
    summary = r#"List a project's environments"#,
    description = r#"In promotion order."#,
    params(
        params::ProjectPath
    ),
    responses(
        (status = 200, description = r#"The environments."#, body = EnvironmentList, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 404, response = responses::NotFound),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_environments(
    State(state): State<SharedState>,
    access: Viewer,
) -> ApiResult<Json<EnvironmentList>> {
    Ok(Json(EnvironmentList { environments: ProjectView::of(&state, &access.project).await?.environments }))
}

/// A new environment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateEnvironment {
    /// 1 to 63 lower-case letters, digits, `-` or `_`.
    key: String,
    /// Not empty or blank (400 `invalid_field` with `field`). Defaults to the key.
    name: Option<String>,
    /// An environment whose current tests the new one starts with.
    copy_from: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments",
    tag = "admin",
    operation_id = "createEnvironment",
    summary = r#"Create an environment"#,
    description = r#"Adds an environment after the existing ones in promotion order. Its first revision is empty, or a copy of `copyFrom`'s current matrix. `name`, when given, must not be empty or blank."#,
    params(
        params::ProjectPath
    ),
    request_body(content = CreateEnvironment, content_type = "application/json", example = json!({"key": "qa", "name": "QA", "copyFrom": "development"})),
    responses(
        (status = 201, description = r#"The environment."#, body = EnvironmentView, content_type = "application/json"),
        (status = 400, description = r#"The body is not a valid request, `name` is empty (`invalid_field` with `field`), or the key is malformed (`invalid_key`). A body that is not JSON (a syntax error, trailing text, or an empty body) is `invalid_json`. Valid JSON that does not fit the request is `invalid_field`: an unknown field or a value of the wrong type answers `the request body does not fit at '<field>': ...` with `field` naming where (`bogus`, `environments[0]`, `comment`); a missing required field answers `the request body does not fit: missing field ...` (no `field`); an array, string, number or null where an object is expected answers `invalid type: the request body must be a JSON object, not an array` (no `field`). Codes: `invalid_json`, `unreadable_body`, `invalid_field`, `invalid_key`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, description = r#"The project, or the `copyFrom` environment, does not exist. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json"),
        (status = 409, description = r#"An environment with this key already exists. Codes: `already_exists`."#, body = schemas::ApiError, content_type = "application/json"),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn create_environment(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    JsonBody(request): JsonBody<CreateEnvironment>,
) -> ApiResult<Response> {
    let project = &access.project;
    let matrix = match &request.copy_from {
        Some(source) => state.current(&project.key, source)?.matrix.to_document(),
        None => avsb_core::MatrixDocument::default(),
    };
    let comment = request
        .copy_from
        .as_ref()
        .map_or("environment created".to_string(), |s| format!("environment created from '{s}'"));
    let name = request.name.clone().unwrap_or_else(|| request.key.clone());
    state.create_environment(&project.key, &request.key, &name, matrix, &access.author(), &comment).await?;
    let view = ProjectView::of(&state, project)
        .await?
        .environments
        .into_iter()
        .find(|e| e.key == request.key)
        .ok_or_else(|| ApiError::internal(format!("environment '{}' vanished after its creation", request.key)))?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// An environment's settings.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEnvironment {
    /// Whether only the project's admins may change it.
    protected: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/projects/{project}/environments/{environment}",
    tag = "admin",
    operation_id = "updateEnvironment",
    summary = "Protect an environment, or lift the protection",
    description = "A protected environment (production, say) takes matrix writes only from the project's admins; editors get 403. Recorded in the audit log. Needs an admin of the project.",
    params(params::EnvironmentPath),
    request_body(content = UpdateEnvironment, content_type = "application/json", example = json!({"protected": true})),
    responses(
        (status = 200, description = "The environment.", body = EnvironmentView),
        (status = 400, description = "Malformed request. Codes: `invalid_json`, `unreadable_body`, `invalid_field`.", body = schemas::BadRequestError),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn update_environment(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    Path((_project, environment)): Path<(String, String)>,
    JsonBody(request): JsonBody<UpdateEnvironment>,
) -> ApiResult<Json<EnvironmentView>> {
    if let Some(protected) = request.protected {
        state.set_protected(&access.project.key, &environment, protected, &access.author()).await?;
    }
    ProjectView::of(&state, &access.project)
        .await?
        .environments
        .into_iter()
        .find(|e| e.key == environment)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("environment '{environment}' not found")))
}

/// `?revision=`: a revision of the environment instead of its current one.
#[derive(Debug, Deserialize)]
pub(super) struct RevisionQuery {
    pub(super) revision: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/matrix",
    tag = "admin",
    operation_id = "getMatrix",
    summary = r#"Get an environment's matrix"#,
    description = r#"The environment's matrix (`TestMatrixArtifact`) at its current revision, or at `revision`. The `ETag` is the quoted revision version, usable as `If-Match` on writes; send it as `If-None-Match` to get 304 while that revision is still the one asked for."#,
    params(
        params::EnvironmentPath,
        ("If-None-Match" = Option<String>, Header, description = r#"Entity tags from earlier answers (comma-separated, or `*`); a match answers 304."#),
        ("revision" = Option<String>, Query, description = r#"A revision version of this environment; default: the current one."#, example = json!("41"))
    ),
    responses(
        (status = 200, description = r#"The matrix."#, body = schemas::TestMatrixArtifact, content_type = "application/json", headers(("ETag" = String, description = r#"The quoted revision version (`"41"`)."#))),
        (status = 304, description = r#"`If-None-Match` names the revision's entity tag (or is `*`); no body."#, headers(("ETag" = String, description = r#"The quoted revision version (`"41"`)."#))),
        (status = 400, description = r#"`revision` is not a revision version (`invalid_field`). A query string that does not fit (a non-numeric number, a repeated parameter, a missing required or an unknown parameter) is `invalid_query`. Codes: `invalid_field`, `invalid_query`."#, body = schemas::BadRequestError, content_type = "application/json"),
        responses::ReadErrors,
        (status = 404, description = r#"The environment, or the revision in it, does not exist. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json")
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn get_matrix(
    State(state): State<SharedState>,
    _access: Viewer,
    Path((project, environment)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<RevisionQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let snapshot = state.current(&project, &environment)?;
    let (body, version) = match &query.revision {
        None => (snapshot.matrix_json.to_vec(), snapshot.revision.id),
        Some(text) => {
            let revision = super::stored_revision(&state, &snapshot, text).await?;
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

/// A whole new matrix for an environment. The matrix is a slice of the request's text: the
/// engine reads it test by test (a tree of a large matrix costs ten times its text).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PutMatrix<'a> {
    /// The new matrix (a `TestMatrixArtifact`); `audit` may be left out and is replaced by the
    /// server's.
    #[serde(borrow)]
    #[schema(value_type = schemas::TestMatrixArtifact)]
    matrix: &'a RawValue,
    /// Recorded in the revision's audit.
    comment: Option<String>,
    /// The revision the matrix was based on: any change since conflicts.
    base_revision: Option<RevisionId>,
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/environments/{environment}/matrix",
    tag = "admin",
    operation_id = "putMatrix",
    summary = r#"Replace an environment's matrix"#,
    description = r#"Replaces every test. `matrix.audit` is optional (the server writes its own). Tests equal to the current ones keep their `version`; a new or changed test keeps the `version` the document gives it when that differs from the current one, else gets the new revision's version. Every bucket needs its `value` and every range its `bucketValue` and `length` (Proctor would read them as 0): a missing one answers 422 with diagnostics of code `missing_field`. The write is based on `baseRevision` (body) or `If-Match` (header) when given: a stale base answers 409 and changes nothing. The new matrix is validated first: a change that would drop a test answers 422 with the diagnostics and changes nothing."#,
    params(
        params::IfMatch,
        params::EnvironmentPath
    ),
    request_body(content = PutMatrix, content_type = "application/json"),
    responses(
        (status = 200, description = r#"The change is committed as a new revision and served at once."#, body = CommittedView, content_type = "application/json"),
        (status = 400, description = r#"Malformed request: `matrix` is not an object, or `baseRevision`/`If-Match` is not a revision version (`invalid_field`); the document is not a matrix at all (no `tests`, `tests` not an object, an unreadable `audit`: `unreadable_matrix`); a test name is malformed (`invalid_test_name`). A readable matrix whose tests do not load is the 422 (`invalid_matrix`). A body that is not JSON (a syntax error, trailing text, or an empty body) is `invalid_json`. Valid JSON that does not fit the request is `invalid_field`: an unknown field or a value of the wrong type answers `the request body does not fit at '<field>': ...` with `field` naming where (`bogus`, `environments[0]`, `comment`); a missing required field answers `the request body does not fit: missing field ...` (no `field`); an array, string, number or null where an object is expected answers `invalid type: the request body must be a JSON object, not an array` (no `field`). Codes: `invalid_json`, `unreadable_body`, `invalid_field`, `unreadable_matrix`, `invalid_test_name`."#, body = schemas::BadRequestError, content_type = "application/json"),
        responses::WriteErrors,
        (status = 404, response = responses::NotFound)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn put_matrix(
    State(state): State<SharedState>,
    access: Editor,
    Path((project, environment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<CommittedView>> {
    let bytes = read_body(body, state.options.max_admin_body).await?;
    // A large body is parsed and read on the blocking pool; the body is freed when it is read.
    let (tests, comment, base) = parse_off_workers(bytes, |bytes| {
        let request: PutMatrix<'_> = parse_object(bytes)?;
        let tests = read_matrix_text(request.matrix.get())?;
        Ok((tests, request.comment, request.base_revision.map(|r| r.0)))
    })
    .await?;
    let base = match base {
        Some(base) => Some(base),
        None => if_match(&headers)?,
    };
    let edit = MatrixEdit::ReplaceMatrix { tests };
    let meta = WriteMeta { base, author: access.author(), comment, role: access.role };
    let committed = state.write(&project, &environment, &edit, meta).await?;
    Ok(Json(CommittedView::from(&committed)))
}
