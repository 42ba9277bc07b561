//! `/api/v1/projects`: projects and their context schemas.

use avsb_core::document::MatrixDocument;
use avsb_core::schema::canonical_identifier_type;
use avsb_core::ContextSchema;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::ProjectView;
use crate::auth::{Admin, Owner, ProjectAdmin, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, JsonValue, SchemaBase};
use crate::openapi::{params, responses, schemas};
use crate::ops::projects::{read_schema, ProjectSpec, DEFAULT_ENVIRONMENTS, DEFAULT_SCHEMA};
use crate::routes::json_bytes;
use crate::SharedState;

/// The project routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project))
        .routes(routes!(get_schema, put_schema))
}

/// Every project.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectList {
    /// By key.
    pub projects: Vec<ProjectView>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "admin",
    operation_id = "listProjects",
    summary = r#"List projects"#,
    description = r#"Every project with its environments, by key."#,
    responses(
        (status = 200, description = r#"The projects."#, body = ProjectList, content_type = "application/json"),
        responses::ReadErrors
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_projects(State(state): State<SharedState>, admin: Admin) -> ApiResult<Json<ProjectList>> {
    let mut projects = Vec::new();
    for project in state.store.list_projects().await? {
        if admin.principal.role_in(&*state.store, &project).await?.is_some() {
            projects.push(ProjectView::of(&state, &project).await?);
        }
    }
    Ok(Json(ProjectList { projects }))
}

/// A new project.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateProject {
    /// 1 to 63 lower-case letters, digits, `-` or `_`, starting with a letter or digit.
    key: String,
    /// Not empty or blank (400 `invalid_field` with `field`). Defaults to the key.
    name: Option<String>,
    /// The context schema; default: no context variables and `USER` identifiers.
    #[schema(value_type = Option<schemas::ContextSchema>)]
    schema: Option<Value>,
    /// An identifier type of the schema.
    #[schema(default = "USER")]
    default_identifier_type: Option<String>,
    /// Environment keys in promotion order, at least one. Default: development, staging, production.
    environments: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects",
    tag = "admin",
    operation_id = "createProject",
    summary = r#"Create a project"#,
    description = r#"Creates a project and its environments, each with an empty first revision. Without `schema` the project gets no context variables and a `USER` identifier from the query; without `environments` it gets `development`, `staging` and `production` (promotion order). `environments`, when given, must name at least one environment; `name`, when given, must not be empty or blank."#,
    request_body(content = CreateProject, content_type = "application/json", example = json!({"key": "shop", "name": "Shop", "environments": ["development", "production"]})),
    responses(
        (status = 201, description = r#"The project."#, body = ProjectView, content_type = "application/json"),
        (status = 400, description = r#"The body is not a valid request. `invalid_field` also answers an empty or blank `name` (with `field`), `environments: []`, an environment listed twice, and a `defaultIdentifierType` the schema lacks; `invalid_key` a malformed project or environment key; `invalid_schema` an unusable `schema`, including a field Pipet's configuration does not have (a typo such as `defualtValue`), with the `path` of the problem in the schema. A body that is not JSON (a syntax error, trailing text, or an empty body) is `invalid_json`. Valid JSON that does not fit the request is `invalid_field`: an unknown field or a value of the wrong type answers `the request body does not fit at '<field>': ...` with `field` naming where (`bogus`, `environments[0]`, `comment`); a missing required field answers `the request body does not fit: missing field ...` (no `field`); an array, string, number or null where an object is expected answers `invalid type: the request body must be a JSON object, not an array` (no `field`). Codes: `invalid_json`, `unreadable_body`, `invalid_key`, `invalid_field`, `invalid_schema`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 409, description = r#"The project (or a listed environment) already exists. Codes: `already_exists`."#, body = schemas::ApiError, content_type = "application/json"),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn create_project(
    State(state): State<SharedState>,
    owner: Owner,
    JsonBody(request): JsonBody<CreateProject>,
) -> ApiResult<Response> {
    let schema = match &request.schema {
        None => ContextSchema::from_json(DEFAULT_SCHEMA).map_err(ApiError::internal)?,
        Some(doc) => read_schema(doc)?,
    };
    let environments = request
        .environments
        .unwrap_or_else(|| DEFAULT_ENVIRONMENTS.iter().map(|s| s.to_string()).collect())
        .into_iter()
        .map(|e| (e, MatrixDocument::default()))
        .collect();
    let spec = ProjectSpec {
        name: request.name.unwrap_or_else(|| request.key.clone()),
        key: request.key,
        schema,
        default_identifier_type: canonical_identifier_type(request.default_identifier_type.as_deref().unwrap_or("USER")),
        environments,
    };
    let project = state.create_project(spec, &owner.author()).await?;
    Ok((StatusCode::CREATED, Json(ProjectView::of(&state, &project).await?)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}",
    tag = "admin",
    operation_id = "getProject",
    summary = r#"Get a project"#,
    params(
        params::ProjectPath
    ),
    responses(
        (status = 200, description = r#"The project."#, body = ProjectView, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 404, response = responses::NotFound),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn get_project(State(state): State<SharedState>, access: Viewer) -> ApiResult<Json<ProjectView>> {
    Ok(Json(ProjectView::of(&state, &access.project).await?))
}

/// A project's new name or default identifier type.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProject {
    /// Not empty or blank.
    name: Option<String>,
    /// An identifier type of the schema.
    default_identifier_type: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/projects/{project}",
    tag = "admin",
    operation_id = "updateProject",
    summary = r#"Rename a project or change its default identifier type"#,
    description = r#"Fields left out keep their value. `name` must not be empty or blank. `defaultIdentifierType` must be an identifier type of the schema (Proctor's type names are matched ignoring case)."#,
    params(
        params::ProjectPath
    ),
    request_body(content = UpdateProject, content_type = "application/json", example = json!({"defaultIdentifierType": "ACCOUNT"})),
    responses(
        (status = 200, description = r#"The updated project."#, body = ProjectView, content_type = "application/json"),
        (status = 400, description = r#"The body is not a valid request, `name` is empty (`invalid_field` with `field`), or `defaultIdentifierType` is not an identifier type of the schema. A body that is not JSON (a syntax error, trailing text, or an empty body) is `invalid_json`. Valid JSON that does not fit the request is `invalid_field`: an unknown field or a value of the wrong type answers `the request body does not fit at '<field>': ...` with `field` naming where (`bogus`, `environments[0]`, `comment`); a missing required field answers `the request body does not fit: missing field ...` (no `field`); an array, string, number or null where an object is expected answers `invalid type: the request body must be a JSON object, not an array` (no `field`). Codes: `invalid_json`, `unreadable_body`, `invalid_field`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn update_project(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    JsonBody(request): JsonBody<UpdateProject>,
) -> ApiResult<Json<ProjectView>> {
    let key = access.project.key;
    let updated =
        state.update_project(&key, request.name.as_deref(), request.default_identifier_type.as_deref()).await?;
    Ok(Json(ProjectView::of(&state, &updated).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/schema",
    tag = "admin",
    operation_id = "getSchema",
    summary = r#"Get the context schema"#,
    description = r#"The project's context schema in Pipet's configuration format, normalised (canonical type names). The `ETag` is the quoted schema version, for `If-Match` on `PUT`. `If-None-Match` is not honoured."#,
    params(
        params::ProjectPath
    ),
    responses(
        (status = 200, description = r#"The schema."#, body = schemas::ContextSchema, content_type = "application/json", headers(("ETag" = String, description = r#"The quoted schema version (`"3"`)."#))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, response = responses::NotFound),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn get_schema(access: Viewer) -> ApiResult<Response> {
    let project = access.project;
    let mut response = json_bytes(StatusCode::OK, project.schema_json.clone());
    if let Ok(tag) = format!("\"{}\"", project.schema_version).parse() {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/schema",
    tag = "admin",
    operation_id = "putSchema",
    summary = r#"Replace the context schema"#,
    description = r#"Replaces the schema after compiling every environment's current matrix against it; if any test would be dropped, nothing changes (422, `diagnostics` keyed by environment). A field Pipet's configuration does not have is refused (400 `invalid_schema` with its `path`), and so is a schema without the project's `defaultIdentifierType` (change that first). A schema that normalises to the current one changes nothing and keeps `schemaVersion`; any other bumps it. With `If-Match`, the write applies only to that schema version (409 otherwise, with `currentSchemaVersion`)."#,
    params(
        params::ProjectPath,
        ("If-Match" = Option<String>, Header, description = r#"The schema version the write is based on (`"3"`, as in the schema's `ETag`)."#, example = json!("\"3\""))
    ),
    request_body(content = schemas::ContextSchema, content_type = "application/json", description = r#"The schema document itself (strict JSON, no comments)."#, example = json!({"context": {"country": {"source": "QUERY", "type": "String", "defaultValue": "US"}}, "identifiers": {"USER": {"source": "QUERY"}}})),
    responses(
        (status = 200, description = r#"The project with its schema version (unchanged when the schema was)."#, body = ProjectView, content_type = "application/json"),
        (status = 400, description = r#"Not JSON (`invalid_json`); an unusable schema (`invalid_schema`, with the `path` of the problem: `$` for a document that is not an object, `context.<name>.<field>` for an unknown field); a schema that drops the project's default identifier type (`invalid_schema`, no `path`); or a malformed `If-Match` (`invalid_field`). Codes: `invalid_json`, `unreadable_body`, `invalid_schema`, `invalid_field`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        (status = 409, description = r#"The schema changed since the version in `If-Match`, or meanwhile (another process): `currentSchemaVersion` names the current one. Nothing was changed. Codes: `conflict`."#, body = schemas::SchemaConflictError, content_type = "application/json"),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 422, description = r#"The schema would drop tests; `diagnostics` maps each affected environment key to its diagnostics. Nothing was changed. Codes: `invalid_matrix`."#, body = schemas::SchemaUnprocessableError, content_type = "application/json"),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn put_schema(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    SchemaBase(base): SchemaBase,
    JsonValue(doc): JsonValue,
) -> ApiResult<Json<ProjectView>> {
    let schema = read_schema(&doc)?;
    let updated = state.set_schema(&access.project.key, schema, base).await?;
    Ok(Json(ProjectView::of(&state, &updated).await?))
}
