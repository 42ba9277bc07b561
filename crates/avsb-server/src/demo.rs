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

use crate::keys;
use crate::ops::accounts;
use crate::ops::projects::ProjectSpec;
use crate::ops::WriteError;
use crate::store::{Role, StoreError, TokenOwner};
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
    /// The password of the console user [`CONSOLE_USER`] (an owner).
    #[serde(default)]
    pub console_password: String,
}

/// The demo's console user.
pub const CONSOLE_USER: &str = "admin";

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
        lines.push(format!("AVSB_CONSOLE_URL={base_url}/"));
        lines.push(format!("AVSB_CONSOLE_USER={CONSOLE_USER}"));
        lines.push(format!("AVSB_CONSOLE_PASSWORD={}", self.console_password));
        lines
    }
}

/// Why the demo could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// An operation (creating the project or a key) failed.
    #[error("{0}")]
    Write(#[from] WriteError),
    /// The secrets file could not be read or written.
    #[error("{SECRETS_FILE}: {source}")]
    Secrets {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The secrets file is not what the demo wrote.
    #[error("{SECRETS_FILE}: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// The embedded demo matrix or schema does not read (a build defect).
    #[error("the embedded demo project is unusable: {0}")]
    Embedded(String),
}

impl From<StoreError> for DemoError {
    fn from(e: StoreError) -> Self {
        DemoError::Write(e.into())
    }
}

/// Creates the demo project unless it exists, and returns its secrets.
pub async fn ensure(state: &AppState, data_dir: &Path) -> Result<DemoSecrets, DemoError> {
    let path = data_dir.join(SECRETS_FILE);
    let exists = state.store.project(PROJECT).await?.is_some();
    if exists {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut secrets: DemoSecrets = serde_json::from_str(&text)?;
            if state.store.admin_token(&keys::digest(&secrets.admin_token)).await?.is_some()
                && secrets.sdk_keys.iter().all(|(_, k)| state.sdk_environment(k).is_some())
            {
                if ensure_console_user(state, &mut secrets).await? {
                    save(&path, &secrets)?;
                }
                return Ok(secrets);
            }
        }
        tracing::warn!("the demo project exists but its saved secrets are missing or revoked; issuing new ones");
        let secrets = issue(state).await?;
        save(&path, &secrets)?;
        return Ok(secrets);
    }
    let schema = ContextSchema::from_json(SCHEMA).map_err(|e| DemoError::Embedded(format!("schema: {e}")))?;
    let (matrix, diagnostics) = MatrixDocument::from_json(MATRIX).map_err(|e| DemoError::Embedded(format!("matrix: {e}")))?;
    if !diagnostics.is_empty() {
        return Err(DemoError::Embedded(format!("matrix: {diagnostics:?}")));
    }
    let spec = ProjectSpec {
        key: PROJECT.into(),
        name: "Demo".into(),
        schema,
        default_identifier_type: "USER".into(),
        environments: ENVIRONMENTS.iter().map(|e| (e.to_string(), matrix.clone())).collect(),
    };
    state.create_project(spec, "demo").await?;
    let secrets = issue(state).await?;
    save(&path, &secrets)?;
    seed_results(state).await?;
    tracing::info!("created the demo project '{PROJECT}'");
    Ok(secrets)
}

/// The environment whose `checkout-v2` gets simulated results.
pub const RESULTS_ENVIRONMENT: &str = "production";
/// Simulated visitors of the demo experiment.
const SIMULATED_UNITS: u64 = 4000;

/// A small deterministic generator (xorshift64*): the demo's numbers are the same every time.
struct Simulation(u64);

impl Simulation {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Gives the demo two metrics and a simulated run of `checkout-v2` in production, so the
/// console's Results tab and `avsb results` show something on the first start: 4,000
/// visitors bucketed by the real matrix; the new checkout converts 13% of them against 10%.
async fn seed_results(state: &AppState) -> Result<(), DemoError> {
    use crate::results::metric::{Capping, Direction, MetricDefinition, MetricType};
    let metric = |name: &str, description: &str, metric_type, capping| MetricDefinition {
        name: name.into(),
        description: description.into(),
        event: "purchase".into(),
        metric_type,
        denominator: None,
        direction: Direction::Higher,
        window_hours: Some(72.0),
        guardrail: false,
        capping,
    };
    let conversion = metric("Purchase rate", "Visitors who bought within 3 days.", MetricType::Conversion, None);
    let revenue =
        metric("Revenue per visitor", "Purchases' value within 3 days, capped at the 99th percentile.", MetricType::Mean, Some(Capping::Percentile(0.99)));
    state.create_metric(PROJECT, "purchase-rate", &conversion, "demo").await?;
    state.create_metric(PROJECT, "revenue", &revenue, "demo").await?;

    let snapshot = state.current(PROJECT, RESULTS_ENVIRONMENT)?;
    let matrix = &snapshot.matrix;
    let slot = matrix.identifier_slot("USER").ok_or_else(|| DemoError::Embedded("no USER identifier".into()))?;
    let now = crate::store::now_millis();
    let mut random = Simulation(0x5EED_CAFE);
    let mut events = Vec::new();
    for i in 0..SIMULATED_UNITS {
        let user = format!("visitor-{i}");
        let mut request = matrix.request();
        request.identifiers[slot] = Some(std::borrow::Cow::Borrowed(user.as_str()));
        let Some(assignment) = matrix.evaluate_test("checkout-v2", &request) else { continue };
        let (Some(bucket), Some((reason, allocation))) = (assignment.bucket, assignment.reason.exposure()) else { continue };
        let (test, version) = ("checkout-v2", assignment.version);
        let mut exposure = crate::store::NewEvent::exposure(now, "USER", &user, test, bucket, version, reason, allocation);
        let device = if random.next() < 0.6 { "mobile" } else { "desktop" };
        exposure.dimensions = Some(serde_json::json!({ "device": device }).to_string());
        let identifiers = exposure.identifiers.clone();
        events.push(exposure);
        let rate = if bucket.value == 1 { 0.13 } else { 0.10 };
        if random.next() < rate {
            let value = (20.0 + 180.0 * random.next() * random.next()).round();
            events.push(crate::store::NewEvent {
                kind: "track".into(),
                time: now + 1,
                identifiers,
                test: None,
                bucket: None,
                bucket_name: None,
                version: None,
                key: Some("purchase".into()),
                value: Some(value),
                properties: None,
                reason: None,
                allocation: None,
                dimensions: None,
            });
        }
    }
    let environment_id = snapshot.environment_id;
    for batch in events.chunks(1000) {
        state.store.insert_events(environment_id, None, None, batch.to_vec()).await?;
    }
    Ok(())
}

async fn issue(state: &AppState) -> Result<DemoSecrets, DemoError> {
    let (admin_token, _) =
        crate::ops::keys::create_admin_token(&*state.store, "demo", Role::Write, TokenOwner::Instance, "demo").await?;
    let mut sdk_keys = Vec::new();
    for env in ENVIRONMENTS {
        let (secret, _) = state.create_sdk_key(PROJECT, env, "demo", false, "demo").await?;
        sdk_keys.push((env.to_string(), secret));
    }
    let mut secrets = DemoSecrets { admin_token, sdk_keys, console_password: String::new() };
    ensure_console_user(state, &mut secrets).await?;
    Ok(secrets)
}

/// Makes sure the console user exists with the saved password (creating it, or setting a new
/// password when the saved one is missing, as in a data directory from before the console);
/// true if the secrets changed.
async fn ensure_console_user(state: &AppState, secrets: &mut DemoSecrets) -> Result<bool, DemoError> {
    let store = &*state.store;
    let existing = store.user_by_username(CONSOLE_USER).await?;
    if existing.is_some() && !secrets.console_password.is_empty() {
        return Ok(false);
    }
    let password = accounts::random_password()?;
    match existing {
        Some((user, _)) => accounts::set_password(store, &user, &password, "demo").await?,
        None => {
            accounts::create_user(store, CONSOLE_USER, "Demo admin", &password, true, "demo").await?;
        }
    }
    secrets.console_password = password;
    Ok(true)
}

fn save(path: &Path, secrets: &DemoSecrets) -> Result<(), DemoError> {
    let text = serde_json::to_string_pretty(secrets)?;
    let write = || -> std::io::Result<()> {
        #[cfg(unix)]
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
            file.write_all(text.as_bytes())?;
        }
        #[cfg(not(unix))]
        std::fs::write(path, &text)?;
        Ok(())
    };
    write().map_err(|source| DemoError::Secrets { source })
}
