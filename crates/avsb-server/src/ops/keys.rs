//! Secrets as operations: server SDK keys (read access to one environment) and admin tokens.
//! A new secret is returned once and stored as its digest; revoking one takes effect on the
//! request path at once (the registry's key map is reloaded).

use super::{WriteError, WriteResult};
use crate::keys::{self, SecretKind};
use serde_json::json;

use super::accounts::audit;
use crate::store::{AdminTokenInfo, Role, SdkKeyInfo, Store, TokenOwner};
use crate::AppState;

/// The longest name a key or token may have.
pub const MAX_NAME: usize = super::MAX_NAME_BYTES;

fn check_name(name: &str) -> WriteResult<()> {
    super::check_name("name", name)
}

/// Creates an admin token; returns the secret (shown once) and the listing. Tokens are the
/// instance's, not an environment's, so this needs only the store (`avsb token create` calls it
/// without a running server).
pub async fn create_admin_token(
    store: &dyn Store,
    name: &str,
    role: Role,
    owner: TokenOwner,
    actor: &str,
) -> WriteResult<(String, AdminTokenInfo)> {
    check_name(name)?;
    let secret = keys::generate(SecretKind::AdminToken).map_err(WriteError::internal)?;
    let info = store.create_admin_token(name.trim(), role, owner, &secret.digest, &secret.prefix).await?;
    tracing::info!(token = info.id, role = role.as_str(), "admin token created");
    let details = json!({"id": info.id, "role": role.as_str(), "prefix": info.prefix});
    audit(store, actor, "token.create", info.project_id, &info.name, details).await;
    Ok((secret.secret, info))
}

/// Revokes an admin token; it stops authenticating at once. `scope` limits which tokens may be
/// revoked (a project admin revokes only the project's service-account tokens).
pub async fn revoke_admin_token(store: &dyn Store, id: i64, scope: TokenScope, actor: &str) -> WriteResult<()> {
    let token = store
        .list_admin_tokens()
        .await?
        .into_iter()
        .find(|t| t.id == id && t.revoked_at.is_none() && scope.covers(t))
        .ok_or_else(|| WriteError::NotFound(format!("no active admin token with id {id}")))?;
    if !store.revoke_admin_token(id).await? {
        return Err(WriteError::NotFound(format!("no active admin token with id {id}")));
    }
    tracing::info!(token = id, "admin token revoked");
    audit(store, actor, "token.revoke", token.project_id, &token.name, json!({"id": id, "prefix": token.prefix})).await;
    Ok(())
}

/// Which tokens an operation may see or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    /// Every token (an owner).
    All,
    /// One project's service-account tokens.
    Project(i64),
    /// One user's own tokens.
    User(i64),
}

impl TokenScope {
    /// Whether a token is in this scope.
    pub fn covers(self, token: &AdminTokenInfo) -> bool {
        match self {
            TokenScope::All => true,
            TokenScope::Project(id) => token.project_id == Some(id),
            TokenScope::User(id) => token.user_id == Some(id),
        }
    }
}

impl AppState {
    /// Creates an SDK key for an environment; returns the secret (shown once) and the listing.
    pub async fn create_sdk_key(
        &self,
        project: &str,
        environment: &str,
        name: &str,
        record_exposures: bool,
        actor: &str,
    ) -> WriteResult<(String, SdkKeyInfo)> {
        check_name(name)?;
        let snapshot = self.current(project, environment)?;
        let secret = keys::generate(SecretKind::SdkKey).map_err(WriteError::internal)?;
        let (environment_id, digest, prefix) = (snapshot.environment_id, &secret.digest, &secret.prefix);
        let info = self.store.create_sdk_key(environment_id, name.trim(), digest, prefix, record_exposures).await?;
        self.reload_keys().await?;
        tracing::info!(project, environment, key = info.id, "SDK key created");
        let details = json!({"id": info.id, "name": info.name, "prefix": info.prefix, "recordExposures": record_exposures});
        audit(&*self.store, actor, "sdk_key.create", Some(snapshot.project_id), environment, details).await;
        Ok((secret.secret, info))
    }

    /// Revokes an environment's SDK key; streams reading with it end at once.
    pub async fn revoke_sdk_key(&self, project: &str, environment: &str, key_id: i64, actor: &str) -> WriteResult<()> {
        let snapshot = self.current(project, environment)?;
        if !self.store.revoke_sdk_key(snapshot.environment_id, key_id).await? {
            return Err(WriteError::NotFound(format!("no active SDK key {key_id} in environment '{environment}'")));
        }
        self.reload_keys().await?;
        tracing::info!(project, environment, key = key_id, "SDK key revoked");
        audit(&*self.store, actor, "sdk_key.revoke", Some(snapshot.project_id), environment, json!({"id": key_id})).await;
        Ok(())
    }

    /// Turns an SDK key's recording of remote exposures (its Pipet and OFREP answers) on or off.
    pub async fn set_sdk_key_recording(
        &self,
        project: &str,
        environment: &str,
        key_id: i64,
        record_exposures: bool,
        actor: &str,
    ) -> WriteResult<SdkKeyInfo> {
        let snapshot = self.current(project, environment)?;
        if !self.store.set_sdk_key_recording(snapshot.environment_id, key_id, record_exposures).await? {
            return Err(WriteError::NotFound(format!("no active SDK key {key_id} in environment '{environment}'")));
        }
        self.reload_keys().await?;
        let details = json!({"id": key_id, "recordExposures": record_exposures});
        audit(&*self.store, actor, "sdk_key.update", Some(snapshot.project_id), environment, details).await;
        let keys = self.store.list_sdk_keys(snapshot.environment_id).await?;
        keys.into_iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| WriteError::NotFound(format!("no active SDK key {key_id} in environment '{environment}'")))
    }

    /// Re-reads the active SDK keys into the registry.
    pub async fn reload_keys(&self) -> WriteResult<()> {
        let keys = self.store.active_sdk_keys().await?;
        self.registry.set_keys(keys);
        Ok(())
    }
}
