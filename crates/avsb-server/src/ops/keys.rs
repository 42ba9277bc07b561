//! Secrets as operations: server SDK keys (read access to one environment) and admin tokens.
//! A new secret is returned once and stored as its digest; revoking one takes effect on the
//! request path at once (the registry's key map is reloaded).

use super::{WriteError, WriteResult};
use crate::error::ErrorCode;
use crate::keys::{self, SecretKind};
use crate::store::{AdminTokenInfo, Role, SdkKeyInfo, Store};
use crate::AppState;

/// The longest name a key or token may have.
pub const MAX_NAME: usize = 200;

fn check_name(name: &str) -> WriteResult<()> {
    if name.trim().is_empty() {
        return Err(WriteError::field(ErrorCode::InvalidField, "name", "name must not be empty"));
    }
    if name.len() > MAX_NAME {
        return Err(WriteError::field(
            ErrorCode::InvalidField,
            "name",
            format!("name is {} bytes long; the limit is {MAX_NAME}", name.len()),
        ));
    }
    Ok(())
}

/// Creates an admin token; returns the secret (shown once) and the listing. Tokens are the
/// instance's, not an environment's, so this needs only the store (`avsb token create` calls it
/// without a running server).
pub async fn create_admin_token(store: &dyn Store, name: &str, role: Role) -> WriteResult<(String, AdminTokenInfo)> {
    check_name(name)?;
    let secret = keys::generate(SecretKind::AdminToken).map_err(WriteError::internal)?;
    let info = store.create_admin_token(name.trim(), role, &secret.digest, &secret.prefix).await?;
    tracing::info!(token = info.id, role = role.as_str(), "admin token created");
    Ok((secret.secret, info))
}

/// Revokes an admin token; it stops authenticating at once.
pub async fn revoke_admin_token(store: &dyn Store, id: i64) -> WriteResult<()> {
    if !store.revoke_admin_token(id).await? {
        return Err(WriteError::NotFound(format!("no active admin token with id {id}")));
    }
    tracing::info!(token = id, "admin token revoked");
    Ok(())
}

impl AppState {
    /// Creates an SDK key for an environment; returns the secret (shown once) and the listing.
    pub async fn create_sdk_key(&self, project: &str, environment: &str, name: &str) -> WriteResult<(String, SdkKeyInfo)> {
        check_name(name)?;
        let snapshot = self.current(project, environment)?;
        let secret = keys::generate(SecretKind::SdkKey).map_err(WriteError::internal)?;
        let info = self.store.create_sdk_key(snapshot.environment_id, name.trim(), &secret.digest, &secret.prefix).await?;
        self.reload_keys().await?;
        tracing::info!(project, environment, key = info.id, "SDK key created");
        Ok((secret.secret, info))
    }

    /// Revokes an environment's SDK key; streams reading with it end at once.
    pub async fn revoke_sdk_key(&self, project: &str, environment: &str, key_id: i64) -> WriteResult<()> {
        let snapshot = self.current(project, environment)?;
        if !self.store.revoke_sdk_key(snapshot.environment_id, key_id).await? {
            return Err(WriteError::NotFound(format!("no active SDK key {key_id} in environment '{environment}'")));
        }
        self.reload_keys().await?;
        tracing::info!(project, environment, key = key_id, "SDK key revoked");
        Ok(())
    }

    /// Re-reads the active SDK keys into the registry.
    pub async fn reload_keys(&self) -> WriteResult<()> {
        let keys = self.store.active_sdk_keys().await?;
        self.registry.set_keys(keys);
        Ok(())
    }
}
