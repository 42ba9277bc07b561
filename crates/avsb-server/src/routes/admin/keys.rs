//! Secrets: an environment's server SDK keys, and the instance's admin tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Owner, ProjectAdmin, Viewer};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{JsonBody, OptionalJsonBody};
use crate::ops::keys::{create_admin_token, revoke_admin_token, TokenScope};
use crate::openapi::{params, responses, schemas};
use crate::store::{AdminTokenInfo, Role, SdkKeyInfo, TokenOwner};
use crate::SharedState;

/// The key and token routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_sdk_keys, create_sdk_key))
        .routes(routes!(revoke_sdk_key, update_sdk_key))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_project_tokens, create_project_token))
        .routes(routes!(revoke_project_token))
}

/// An environment's SDK keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SdkKeyList {
    /// Revoked ones included, oldest first.
    keys: Vec<SdkKeyInfo>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/sdk-keys",
    tag = "admin",
    operation_id = "listSdkKeys",
    summary = r#"List SDK keys"#,
    description = r#"The environment's server SDK keys, revoked ones included; secrets are never shown."#,
    params(
        params::EnvironmentPath
    ),
    responses(
        (status = 200, description = r#"The keys."#, body = SdkKeyList, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 404, response = responses::NotFound),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_sdk_keys(
    State(state): State<SharedState>,
    _access: Viewer,
    Path((project, environment)): Path<(String, String)>,
) -> ApiResult<Json<SdkKeyList>> {
    let snapshot = state.current(&project, &environment)?;
    Ok(Json(SdkKeyList { keys: state.store.list_sdk_keys(snapshot.environment_id).await? }))
}

/// A new SDK key.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct CreateSdkKey {
    /// A label, not empty or blank; default `<environment> key`.
    name: Option<String>,
    /// Record an exposure for each bucket this key's Pipet and OFREP answers hand out (for
    /// applications that evaluate remotely and send no exposures themselves). Default false.
    record_exposures: Option<bool>,
}

/// A change to an SDK key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateSdkKey {
    /// Record an exposure for each bucket this key's Pipet and OFREP answers hand out.
    record_exposures: bool,
}

/// A new SDK key with its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSdkKey {
    /// The key as listed.
    #[serde(flatten)]
    info: SdkKeyInfo,
    /// The secret (`sdk-...`). Shown once.
    key: String,
    /// `/pipet/<key>`: append to the server URL for `PROCTOR_API_ROOT`.
    pipet_root: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/sdk-keys",
    tag = "admin",
    operation_id = "createSdkKey",
    summary = r#"Create an SDK key"#,
    description = r#"Creates a server SDK key for the environment. The secret (`key`) is returned once, never again."#,
    params(
        params::EnvironmentPath
    ),
    request_body(content = CreateSdkKey, content_type = "application/json", description = r#"Optional; an empty body is allowed."#, example = json!({"name": "web backend"})),
    responses(
        (status = 201, description = r#"The key, with its secret and Pipet root."#, body = CreatedSdkKey, content_type = "application/json"),
        (status = 400, description = r#"The body is not a valid request, or `name` is empty (`invalid_field` with `field`). A body that is not JSON (a syntax error, trailing text, or an empty body) is `invalid_json`. Valid JSON that does not fit the request is `invalid_field`: an unknown field or a value of the wrong type answers `the request body does not fit at '<field>': ...` with `field` naming where (`bogus`, `environments[0]`, `comment`); a missing required field answers `the request body does not fit: missing field ...` (no `field`); an array, string, number or null where an object is expected answers `invalid type: the request body must be a JSON object, not an array` (no `field`). Codes: `invalid_json`, `unreadable_body`, `invalid_field`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn create_sdk_key(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    Path((project, environment)): Path<(String, String)>,
    OptionalJsonBody(request): OptionalJsonBody<CreateSdkKey>,
) -> ApiResult<Response> {
    let name = request.name.unwrap_or_else(|| format!("{environment} key"));
    let record = request.record_exposures.unwrap_or(false);
    let (secret, info) = state.create_sdk_key(&project, &environment, &name, record, &access.author()).await?;
    let pipet_root = format!("/pipet/{secret}");
    Ok((StatusCode::CREATED, Json(CreatedSdkKey { info, key: secret, pipet_root })).into_response())
}

fn id_param(text: &str, what: &str) -> ApiResult<i64> {
    text.parse().map_err(|_| ApiError::new(ErrorCode::InvalidField, format!("the {what} id must be an integer")))
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/environments/{environment}/sdk-keys/{key_id}",
    tag = "admin",
    operation_id = "revokeSdkKey",
    summary = r#"Revoke an SDK key"#,
    description = r#"Takes effect at once for every API that accepts the key; open `/sdk/v1/stream` connections made with it end."#,
    params(
        params::EnvironmentPath,
        ("key_id" = String, Path, description = r#"The key's `id`."#, example = json!("3"))
    ),
    responses(
        (status = 204, description = r#"Revoked."#),
        (status = 400, description = r#"The key id is not an integer. Codes: `invalid_field`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, description = r#"The environment does not exist, or has no active key with this id. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json"),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn revoke_sdk_key(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    Path((project, environment, key_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    state.revoke_sdk_key(&project, &environment, id_param(&key_id, "key")?, &access.author()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    patch,
    path = "/api/v1/projects/{project}/environments/{environment}/sdk-keys/{key_id}",
    tag = "admin",
    operation_id = "updateSdkKey",
    summary = r#"Change an SDK key"#,
    description = r#"Turns the key's recording of remote exposures on or off: with `recordExposures`, every bucket its Pipet (`/groups/identify`) and OFREP answers hand out is recorded as an exposure, so applications that evaluate remotely get experiment results."#,
    params(
        params::EnvironmentPath,
        ("key_id" = String, Path, description = r#"The key's `id`."#, example = json!("3"))
    ),
    request_body(content = UpdateSdkKey, content_type = "application/json", example = json!({"recordExposures": true})),
    responses(
        (status = 200, description = r#"The key as listed."#, body = SdkKeyInfo, content_type = "application/json"),
        (status = 400, description = r#"The key id is not an integer, or the body does not fit. Codes: `invalid_json`, `unreadable_body`, `invalid_field`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, description = r#"The environment does not exist, or has no active key with this id. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json"),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn update_sdk_key(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    Path((project, environment, key_id)): Path<(String, String, String)>,
    JsonBody(request): JsonBody<UpdateSdkKey>,
) -> ApiResult<Json<SdkKeyInfo>> {
    let key_id = id_param(&key_id, "key")?;
    let info = state
        .set_sdk_key_recording(&project, &environment, key_id, request.record_exposures, &access.author())
        .await?;
    Ok(Json(info))
}

/// Every admin token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    /// Revoked ones included, oldest first.
    tokens: Vec<AdminTokenInfo>,
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "admin",
    operation_id = "listTokens",
    summary = "List admin tokens",
    description = "Every admin token of the instance, revoked ones included; never the secrets.",
    responses(
        (status = 200, description = "The tokens.", body = TokenList),
        responses::ReadErrors
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_tokens(State(state): State<SharedState>, _owner: Owner) -> ApiResult<Json<TokenList>> {
    Ok(Json(TokenList { tokens: state.store.list_admin_tokens().await? }))
}

/// A new admin token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Who the token is for; recorded as the author of what it changes.
    name: String,
    /// `read` (every GET) or `write` (everything).
    role: Role,
}

/// A new admin token with its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token as listed.
    #[serde(flatten)]
    info: AdminTokenInfo,
    /// The secret (`adm-...`). Shown once.
    token: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "admin",
    operation_id = "createToken",
    summary = "Create an admin token",
    description = "Makes a token with 256 random bits, stores its SHA-256 digest and answers the secret once.",
    request_body(content = CreateToken, content_type = "application/json", example = json!({"name": "ci", "role": "read"})),
    responses(
        (status = 201, description = "The token, with its secret shown this once.", body = CreatedToken),
        (status = 400, description = "Malformed request, or an empty name. Codes: `invalid_json`, `unreadable_body`, `invalid_field`.", body = schemas::BadRequestError),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn create_token(
    State(state): State<SharedState>,
    owner: Owner,
    JsonBody(request): JsonBody<CreateToken>,
) -> ApiResult<Response> {
    let (secret, info) =
        create_admin_token(&*state.store, &request.name, request.role, TokenOwner::Instance, &owner.author()).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token: secret })).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "admin",
    operation_id = "revokeToken",
    summary = "Revoke an admin token",
    description = "The token stops authenticating at once.",
    params(("id" = i64, Path, description = "The token's id (from the list).")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "The id is not an integer. Codes: `invalid_field`.", body = schemas::BadRequestError),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, description = "No active token with this id. Codes: `not_found`.", body = schemas::ApiError),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn revoke_token(State(state): State<SharedState>, owner: Owner, Path(id): Path<String>) -> ApiResult<StatusCode> {
    revoke_admin_token(&*state.store, id_param(&id, "token")?, TokenScope::All, &owner.author()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/tokens",
    tag = "admin",
    operation_id = "listProjectTokens",
    summary = "List a project's service-account tokens",
    description = "The tokens that act for this project only (`read`: a viewer there, `write`: an admin), revoked ones included; never the secrets.",
    params(params::ProjectPath),
    responses(
        (status = 200, description = "The tokens.", body = TokenList),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        responses::ReadErrors
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_project_tokens(State(state): State<SharedState>, access: ProjectAdmin) -> ApiResult<Json<TokenList>> {
    let scope = TokenScope::Project(access.project.id);
    let tokens = state.store.list_admin_tokens().await?.into_iter().filter(|t| scope.covers(t)).collect();
    Ok(Json(TokenList { tokens }))
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/tokens",
    tag = "admin",
    operation_id = "createProjectToken",
    summary = "Create a service-account token for a project",
    description = "A token that acts for this project only: `read` is a viewer there, `write` an admin (it may change protected environments). The secret is answered once. Needs an admin of the project.",
    params(params::ProjectPath),
    request_body(content = CreateToken, content_type = "application/json", example = json!({"name": "deploy", "role": "write"})),
    responses(
        (status = 201, description = "The token, with its secret shown this once.", body = CreatedToken),
        (status = 400, description = "Malformed request, or an empty name. Codes: `invalid_json`, `unreadable_body`, `invalid_field`.", body = schemas::BadRequestError),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn create_project_token(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    JsonBody(request): JsonBody<CreateToken>,
) -> ApiResult<Response> {
    let owner = TokenOwner::Project(access.project.id);
    let (secret, info) = create_admin_token(&*state.store, &request.name, request.role, owner, &access.author()).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token: secret })).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/tokens/{id}",
    tag = "admin",
    operation_id = "revokeProjectToken",
    summary = "Revoke a project's service-account token",
    description = "The token stops authenticating at once.",
    params(params::ProjectPath, ("id" = i64, Path, description = "The token's id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "The id is not an integer. Codes: `invalid_field`.", body = schemas::BadRequestError),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, description = "No active token of this project with this id. Codes: `not_found`.", body = schemas::ApiError),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn revoke_project_token(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    Path((_project, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = TokenScope::Project(access.project.id);
    revoke_admin_token(&*state.store, id_param(&id, "token")?, scope, &access.author()).await?;
    Ok(StatusCode::NO_CONTENT)
}
