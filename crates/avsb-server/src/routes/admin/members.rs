//! A project's members and their roles, and its audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{ProjectAdmin, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, JsonBody};
use crate::openapi::{params, responses, schemas};
use crate::ops::accounts::set_role;
use crate::store::{AuditEntry, ProjectRole};
use crate::SharedState;

/// The member and audit routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_members))
        .routes(routes!(set_member, remove_member))
        .routes(routes!(list_audit))
}

/// One member of a project.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The username.
    username: String,
    /// The name shown.
    display_name: String,
    /// Their role in the project.
    role: ProjectRole,
}

/// A project's members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberList {
    /// By username. Owners are admins of every project without being listed.
    members: Vec<Member>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/members",
    tag = "admin",
    operation_id = "listMembers",
    summary = "List a project's members",
    description = "Every user with a role in the project. Owners are admins of every project and are not listed.",
    params(params::ProjectPath),
    responses(
        (status = 200, description = "The members.", body = MemberList),
        (status = 404, response = responses::NotFound),
        responses::ReadErrors
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_members(State(state): State<SharedState>, access: Viewer) -> ApiResult<Json<MemberList>> {
    let members = state
        .store
        .project_members(access.project.id)
        .await?
        .into_iter()
        .map(|(user, role)| Member { username: user.username, display_name: user.display_name, role })
        .collect();
    Ok(Json(MemberList { members }))
}

/// A member's role.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMember {
    /// `viewer`, `editor` or `admin`.
    role: ProjectRole,
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/members/{username}",
    tag = "admin",
    operation_id = "setMember",
    summary = "Give a user a role in a project",
    description = "Adds the user to the project, or changes their role: `viewer` reads, `editor` also changes tests outside protected environments, `admin` also changes protected environments, keys, members and settings. Recorded in the audit log.",
    params(params::ProjectPath, ("username" = String, Path, description = "The user.")),
    request_body(content = SetMember, content_type = "application/json", example = json!({"role": "editor"})),
    responses(
        (status = 200, description = "The member.", body = Member),
        (status = 400, description = "Malformed request. Codes: `invalid_json`, `unreadable_body`, `invalid_field`.", body = schemas::BadRequestError),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, description = "No such project or user. Codes: `not_found`.", body = schemas::ApiError),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn set_member(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    Path((_project, username)): Path<(String, String)>,
    JsonBody(request): JsonBody<SetMember>,
) -> ApiResult<Json<Member>> {
    no_such_username(&username)?;
    let (user, _) = state
        .store
        .user_by_username(&username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user '{username}' not found")))?;
    set_role(&*state.store, &access.project, &user, Some(request.role), &access.author()).await?;
    Ok(Json(Member { username: user.username, display_name: user.display_name, role: request.role }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/members/{username}",
    tag = "admin",
    operation_id = "removeMember",
    summary = "Remove a user from a project",
    description = "The user keeps their account but no longer sees the project (unless they are an owner). Recorded in the audit log.",
    params(params::ProjectPath, ("username" = String, Path, description = "The user.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, description = "No such project, user, or membership. Codes: `not_found`.", body = schemas::ApiError),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn remove_member(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    Path((_project, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    no_such_username(&username)?;
    let not_found = || ApiError::not_found(format!("user '{username}' is not a member of project '{}'", access.project.key));
    let (user, _) = state.store.user_by_username(&username).await?.ok_or_else(not_found)?;
    let members = state.store.project_members(access.project.id).await?;
    if !members.iter().any(|(u, _)| u.id == user.id) {
        return Err(not_found());
    }
    set_role(&*state.store, &access.project, &user, None, &access.author()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A name no user can have answers 404 without a lookup (and without echoing it back).
fn no_such_username(username: &str) -> ApiResult<()> {
    crate::ops::accounts::check_username(username).map_err(|_| {
        ApiError::not_found("no such user: a username is 1 to 64 letters, digits, '.', '_', '-' or '@'")
    })
}

/// `?before=&limit=`.
#[derive(Debug, Deserialize)]
struct AuditPage {
    before: Option<i64>,
    limit: Option<u32>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditList {
    /// Newest first.
    #[schema(value_type = Vec<Object>)]
    entries: Vec<AuditEntry>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/audit",
    tag = "admin",
    operation_id = "listAudit",
    summary = "The project's audit log",
    description = "Every change of the project's SDK keys, service-account tokens, members and roles and environment protection, newest first (matrix changes are its revisions). Needs an admin of the project.",
    params(params::ProjectPath, ("before" = Option<i64>, Query, description = "Entries older than this id."), ("limit" = Option<u32>, Query, description = "At most this many (default 100, at most 1000).")),
    responses(
        (status = 200, description = "The entries.", body = AuditList),
        (status = 400, description = "A query string that does not fit. Codes: `invalid_query`.", body = schemas::BadRequestError),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        responses::ReadErrors
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_audit(
    State(state): State<SharedState>,
    access: ProjectAdmin,
    ApiQuery(page): ApiQuery<AuditPage>,
) -> ApiResult<Json<AuditList>> {
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(AuditList { entries: state.store.list_audit(Some(access.project.id), page.before, limit).await? }))
}
