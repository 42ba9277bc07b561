//! Credentials and what they allow: admin tokens (bearer) and console sessions are a
//! [`Principal`] with a role per project; server SDK keys (bearer or `X-API-Key`, or inside the
//! Pipet root) read one environment. A token is presented as `Authorization: Bearer <token>`; a
//! bare `Authorization: <token>` is refused with a message saying so. Extractors put the needed role in a handler's signature
//! ([`Viewer`], [`Editor`], [`ProjectAdmin`], [`Owner`]), so no handler checks one by hand.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::keys;
use crate::registry::{EnvSlot, KeyEntry};
use crate::store::{AdminTokenInfo, Project, ProjectRole, Role, Store, StoreResult, TokenOwner, User};
use crate::{AppState, SharedState};

/// The secret a request presents: `Authorization: Bearer <secret>` (the scheme in any case), or
/// `X-API-Key: <secret>` when there is no `Authorization` header (OFREP's two ways). `Ok(None)`:
/// no secret; `Err`: an `Authorization` header that is not a bearer token, with why, since
/// sending the bare token (`Authorization: <secret>`) or another scheme is a mistake to name,
/// not a credential to guess at.
pub fn credential(headers: &HeaderMap) -> Result<Option<&str>, String> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty()));
    };
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header cannot be read; send 'Authorization: Bearer <token>'".to_string())?
        .trim();
    let (scheme, secret) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        let secret = secret.trim();
        return Ok((!secret.is_empty()).then_some(secret));
    }
    if secret.trim().is_empty() {
        // One word: a bare token (or a scheme alone, which is no credential either).
        return Err("the Authorization header has no scheme: send 'Authorization: Bearer <token>' (or 'X-API-Key: <token>')".into());
    }
    let scheme: String = scheme.chars().take(20).collect();
    Err(format!("the Authorization scheme '{scheme}' is not supported: send 'Authorization: Bearer <token>' (or 'X-API-Key: <token>')"))
}

/// The secret a request presents, if it presents one the right way (see [`credential`]).
pub fn presented_secret(headers: &HeaderMap) -> Option<&str> {
    credential(headers).ok().flatten()
}

impl AppState {
    /// The environment an SDK key reads, if the key is active.
    pub fn sdk_environment(&self, secret: &str) -> Option<(KeyEntry, Arc<EnvSlot>)> {
        self.registry.key(&keys::digest(secret))
    }
}

/// An authenticated SDK request: the key and the environment it reads.
#[derive(Debug, Clone)]
pub struct SdkClient {
    /// The key.
    pub key: KeyEntry,
    /// The environment.
    pub environment: Arc<EnvSlot>,
}

impl FromRequestParts<SharedState> for SdkClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let secret = credential(&parts.headers).map_err(ApiError::unauthorized)?.ok_or_else(|| {
            ApiError::unauthorized("an SDK key is required: send 'Authorization: Bearer <sdk key>'")
        })?;
        let (key, environment) =
            state.sdk_environment(secret).ok_or_else(|| ApiError::unauthorized("unknown or revoked SDK key"))?;
        Ok(SdkClient { key, environment })
    }
}

/// Who is asking, on the admin API or in the console.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An instance token (`avsb token create`): `read` reads everything, `write` is an admin of
    /// every project and may create projects and tokens.
    Instance(AdminTokenInfo),
    /// A project's service-account token: `read` is a viewer there, `write` an admin.
    Service(AdminTokenInfo),
    /// A user's token: the user's roles, capped at viewer for a `read` token.
    UserToken(AdminTokenInfo, User),
    /// A user signed in to the console.
    Session(User),
}

impl Principal {
    /// The author recorded on what this principal changes: a token's name, or a username.
    pub fn author(&self) -> String {
        match self {
            Principal::Instance(t) | Principal::Service(t) => t.name.clone(),
            Principal::UserToken(_, u) | Principal::Session(u) => u.username.clone(),
        }
    }

    /// Whether this principal acts for the whole instance: an instance token with the write role,
    /// or an owner (not through a read-only token). Owners create projects and manage users and
    /// instance tokens.
    pub fn is_owner(&self) -> bool {
        match self {
            Principal::Instance(t) => t.role == Role::Write,
            Principal::Service(_) => false,
            Principal::UserToken(t, u) => u.is_owner && t.role == Role::Write,
            Principal::Session(u) => u.is_owner,
        }
    }

    /// The principal's role in a project, or `None` if it may not see the project at all.
    pub async fn role_in(&self, store: &dyn Store, project: &Project) -> StoreResult<Option<ProjectRole>> {
        let capped = |role: Option<ProjectRole>, token: &AdminTokenInfo| match token.role {
            Role::Read => role.map(|r| r.min(ProjectRole::Viewer)),
            Role::Write => role,
        };
        Ok(match self {
            Principal::Instance(t) => Some(if t.role == Role::Write { ProjectRole::Admin } else { ProjectRole::Viewer }),
            Principal::Service(t) if t.project_id == Some(project.id) => capped(Some(ProjectRole::Admin), t),
            Principal::Service(_) => None,
            Principal::UserToken(t, u) => capped(user_role(store, u, project).await?, t),
            Principal::Session(u) => user_role(store, u, project).await?,
        })
    }
}

async fn user_role(store: &dyn Store, user: &User, project: &Project) -> StoreResult<Option<ProjectRole>> {
    if user.is_owner {
        return Ok(Some(ProjectRole::Admin));
    }
    Ok(store.memberships(user.id).await?.into_iter().find(|(p, _)| *p == project.id).map(|(_, r)| r))
}

/// Who a presented admin token is, or why not.
pub async fn token_principal(state: &AppState, secret: &str) -> Result<Principal, ApiError> {
    let token = state
        .store
        .admin_token(&keys::digest(secret))
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked admin token"))?;
    Ok(match token.owner() {
        TokenOwner::Instance => Principal::Instance(token),
        TokenOwner::Project(_) => Principal::Service(token),
        TokenOwner::User(id) => {
            let user = state
                .store
                .user(id)
                .await?
                .filter(|u| u.disabled_at.is_none())
                .ok_or_else(|| ApiError::unauthorized("the token's user is disabled or gone"))?;
            Principal::UserToken(token, user)
        }
    })
}

/// An authenticated admin request, of any role.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Who.
    pub principal: Principal,
}

impl FromRequestParts<SharedState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let secret = credential(&parts.headers).map_err(ApiError::unauthorized)?.ok_or_else(|| {
            ApiError::unauthorized(
                "an admin token is required: send 'Authorization: Bearer <token>' (create one with `avsb token create`)",
            )
        })?;
        Ok(Admin { principal: token_principal(state, secret).await? })
    }
}

/// An admin request that acts for the whole instance (creating projects, instance tokens): an
/// instance token with the write role or an owner's; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Who.
    pub principal: Principal,
}

impl Owner {
    /// The author recorded on what this request changes.
    pub fn author(&self) -> String {
        self.principal.author()
    }
}

impl FromRequestParts<SharedState> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let Admin { principal } = Admin::from_request_parts(parts, state).await?;
        if !principal.is_owner() {
            let why = match &principal {
                Principal::Instance(t) | Principal::UserToken(t, _) if t.role == Role::Read => {
                    "its token has the read role; this needs a token with the write role for the whole instance (or an owner's)"
                }
                _ => "this needs a token with the write role for the whole instance (or an owner's)",
            };
            return Err(ApiError::forbidden(format!("'{}' may not do this: {why}", principal.author())));
        }
        Ok(Owner { principal })
    }
}

/// A request about one project (`{project}` in the path), by a principal with at least the role
/// `MIN` there. A project the principal may not see answers 404, as if it did not exist; too weak
/// a role answers 403.
#[derive(Debug, Clone)]
pub struct ProjectAccess<const MIN: u8> {
    /// Who.
    pub principal: Principal,
    /// The project.
    pub project: Project,
    /// The principal's role in it.
    pub role: ProjectRole,
}

/// At least a viewer of the project.
pub type Viewer = ProjectAccess<0>;
/// At least an editor: may change tests (protected environments need an admin, which the write
/// path checks).
pub type Editor = ProjectAccess<1>;
/// An admin of the project: keys, members, schema, environments.
pub type ProjectAdmin = ProjectAccess<2>;

impl<const MIN: u8> ProjectAccess<MIN> {
    /// The author recorded on what this request changes.
    pub fn author(&self) -> String {
        self.principal.author()
    }

    fn required() -> ProjectRole {
        ProjectRole::ALL[usize::from(MIN).min(2)]
    }
}

impl<const MIN: u8> FromRequestParts<SharedState> for ProjectAccess<MIN> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let Admin { principal } = Admin::from_request_parts(parts, state).await?;
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("the path names no project"))?;
        let key = params
            .iter()
            .find(|(name, _)| *name == "project")
            .map(|(_, value)| value.to_string())
            .ok_or_else(|| ApiError::not_found("the path names no project"))?;
        let not_found = || ApiError::not_found(format!("project '{key}' not found"));
        let project = state.store.project(&key).await?.ok_or_else(not_found)?;
        let role = principal.role_in(&*state.store, &project).await?.ok_or_else(not_found)?;
        let required = Self::required();
        if role < required {
            let article = |r: ProjectRole| if r == ProjectRole::Viewer { "a" } else { "an" };
            let read_token = matches!(&principal, Principal::Instance(t) | Principal::Service(t) | Principal::UserToken(t, _) if t.role == Role::Read);
            let message = if read_token {
                format!(
                    "'{}' has a token with the read role, which makes it a viewer of project '{key}'; this needs {} {}'s token with the write role",
                    principal.author(),
                    article(required),
                    required.as_str()
                )
            } else {
                format!(
                    "'{}' is {} {} of project '{key}'; this needs {} {}",
                    principal.author(),
                    article(role),
                    role.as_str(),
                    article(required),
                    required.as_str()
                )
            };
            return Err(ApiError::forbidden(message));
        }
        Ok(ProjectAccess { principal, project, role })
    }
}
