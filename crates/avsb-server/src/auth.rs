//! Credentials: admin tokens (bearer, read or write role) for the admin API, and server SDK keys
//! (bearer or `X-API-Key`, or inside the Pipet root) for everything an application calls.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::keys;
use crate::registry::{EnvSlot, KeyEntry};
use crate::store::{AdminTokenInfo, Role};
use crate::{AppState, SharedState};

/// The secret a request presents: `Authorization: Bearer <secret>` or `X-API-Key: <secret>`.
pub fn presented_secret(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        let secret = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value)
            .trim();
        return (!secret.is_empty()).then_some(secret);
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty())
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
        let secret = presented_secret(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("an SDK key is required: send 'Authorization: Bearer <sdk key>'")
        })?;
        let (key, environment) =
            state.sdk_environment(secret).ok_or_else(|| ApiError::unauthorized("unknown or revoked SDK key"))?;
        Ok(SdkClient { key, environment })
    }
}

/// An authenticated admin request.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The token used.
    pub token: AdminTokenInfo,
}

/// An authenticated admin request whose token may write: the extractor refuses read-only
/// tokens with 403, so no handler checks the role by hand.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The token used.
    pub token: AdminTokenInfo,
}

impl Writer {
    /// The author recorded on what this request changes.
    pub fn author(&self) -> String {
        self.token.name.clone()
    }
}

impl FromRequestParts<SharedState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let admin = Admin::from_request_parts(parts, state).await?;
        match admin.token.role {
            Role::Write => Ok(Writer { token: admin.token }),
            Role::Read => Err(ApiError::forbidden(format!(
                "token '{}' has the read role; this needs a token with the write role",
                admin.token.name
            ))),
        }
    }
}

impl FromRequestParts<SharedState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let secret = presented_secret(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized(
                "an admin token is required: send 'Authorization: Bearer <token>' (create one with `avsb token create`)",
            )
        })?;
        let token = state
            .store
            .admin_token(&keys::digest(secret))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown or revoked admin token"))?;
        Ok(Admin { token })
    }
}
