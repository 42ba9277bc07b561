//! The demo project: `development`, `staging` and `production`, each holding Pipet's example
//! tests plus the `checkout-v2` and `ui-theme` flags, an SDK key per environment and a write
//! token, so a Django app can be pointed at a fresh server at once.
//!
//! Secrets are stored hashed like any others. So that the printed lines stay valid across
//! restarts, the demo's own secrets (and only those) are also kept in `demo-secrets.json` in the
//! data directory, readable by its owner only. Keys made through the API are never written down.

use std::path::Path;

use avsb_core::{ContextSchema, MatrixDocument};
use serde::{Deserialize, Serialize};

use crate::keys::{self, SecretKind};
use crate::routes::admin::{create_project_with, new_sdk_key};
use crate::store::Role;
use crate::AppState;

/// The demo project's key.
pub const PROJECT: &str = "demo";
/// Its environments, in promotion order.
pub const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];
/// The demo matrix: Pipet's example tests and two flags.
pub const MATRIX: &str = include_str!("../../../spec/examples/pipet-example-matrix.json");
/// The demo schema (Pipet's configuration format).
pub const SCHEMA: &str = include_str!("../../../spec/examples/pipet-example-context.json");
const SECRETS_FILE: &str = "demo-secrets.json";

/// The demo's secrets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DemoSecrets {
    /// An admin token with the write role.
    pub admin_token: String,
    /// One SDK key per environment, in [`ENVIRONMENTS`] order.
    pub sdk_keys: Vec<(String, String)>,
}

impl DemoSecrets {
    /// The SDK key of an environment.
    pub fn sdk_key(&self, environment: &str) -> Option<&str> {
        self.sdk_keys.iter().find(|(e, _)| e == environment).map(|(_, k)| k.as_str())
    }

    /// The lines to paste into a shell or a `.env` file.
    pub fn env_lines(&self, base_url: &str) -> Vec<String> {
        let mut lines = vec![format!("AVSB_BASE_URL={base_url}")];
        if let Some(key) = self.sdk_key("development") {
            lines.push(format!("AVSB_SDK_KEY={key}"));
        }
        for (env, key) in &self.sdk_keys {
            if env != "development" {
                lines.push(format!("AVSB_SDK_KEY_{}={key}", env.to_uppercase()));
            }
        }
        if let Some(key) = self.sdk_key("development") {
            lines.push(format!("PROCTOR_API_ROOT={base_url}/pipet/{key}"));
        }
        lines.push(format!("OFREP_URL={base_url}"));
        lines.push(format!("AVSB_ADMIN_TOKEN={}", self.admin_token));
        lines
    }
}

/// Creates the demo project unless it exists, and returns its secrets.
pub async fn ensure(state: &AppState, data_dir: &Path) -> anyhow::Result<DemoSecrets> {
    let path = data_dir.join(SECRETS_FILE);
    let exists = state.store.project(PROJECT).await?.is_some();
    if exists {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let secrets: DemoSecrets = serde_json::from_str(&text)?;
            if state.store.admin_token(&keys::digest(&secrets.admin_token)).await?.is_some()
                && secrets.sdk_keys.iter().all(|(_, k)| state.sdk_environment(k).is_some())
            {
                return Ok(secrets);
            }
        }
        tracing::warn!("the demo project exists but its saved secrets are missing or revoked; issuing new ones");
        let secrets = issue(state).await?;
        save(&path, &secrets)?;
        return Ok(secrets);
    }
    let schema = ContextSchema::from_json(SCHEMA).map_err(|e| anyhow::anyhow!("demo schema: {e}"))?;
    let (matrix, diagnostics) = MatrixDocument::from_json(MATRIX).map_err(|e| anyhow::anyhow!("demo matrix: {e}"))?;
    anyhow::ensure!(diagnostics.is_empty(), "demo matrix: {diagnostics:?}");
    let environments: Vec<(String, MatrixDocument)> = ENVIRONMENTS.iter().map(|e| (e.to_string(), matrix.clone())).collect();
    create_project_with(state, PROJECT, "Demo", &schema, "USER", &environments, "demo")
        .await
        .map_err(|e| anyhow::anyhow!("creating the demo project: {}", e.message))?;
    let secrets = issue(state).await?;
    save(&path, &secrets)?;
    tracing::info!("created the demo project '{PROJECT}'");
    Ok(secrets)
}

async fn issue(state: &AppState) -> anyhow::Result<DemoSecrets> {
    let token = keys::generate(SecretKind::AdminToken)?;
    state.store.create_admin_token("demo", Role::Write, &token.digest, &token.prefix).await?;
    let mut sdk_keys = Vec::new();
    for env in ENVIRONMENTS {
        let snapshot = state.current(PROJECT, env).map_err(|e| anyhow::anyhow!(e.message))?;
        let (secret, _) = new_sdk_key(state, &snapshot, "demo").await.map_err(|e| anyhow::anyhow!(e.message))?;
        sdk_keys.push((env.to_string(), secret));
    }
    Ok(DemoSecrets { admin_token: token.secret, sdk_keys })
}

fn save(path: &Path, secrets: &DemoSecrets) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(secrets)?;
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        file.write_all(text.as_bytes())?;
    }
    #[cfg(not(unix))]
    std::fs::write(path, text)?;
    Ok(())
}
