//! The A vs B server: stores projects, environments and audited matrix revisions; answers
//! Pipet-compatible and OFREP evaluation requests; feeds SDKs a datafile and a change stream;
//! collects events.
//!
//! `run(listener, state, shutdown)` is the whole server, so tests drive the very code that
//! production runs. The request path reads in-memory snapshots only ([`registry`]); the store
//! is touched by admin writes, SDK-key changes and events.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub mod auth;
pub mod demo;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod registry;
pub mod routes;
pub mod store;
pub mod writes;

use metrics::Metrics;
use registry::{EnvSnapshot, Registry};
use store::Store;
use writes::WriteLocks;

/// Tunables with production defaults; tests shorten the intervals.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often an idle stream sends a comment line, so proxies and clients keep it open.
    pub heartbeat: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { heartbeat: Duration::from_secs(15) }
    }
}

/// Everything a handler can reach.
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Current snapshots and SDK keys, read lock-free by the request path.
    pub registry: Registry,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Serializes writes per project.
    pub write_locks: WriteLocks,
    /// Tunables.
    pub options: Options,
    /// Flips to true when the server begins to shut down (streams end then).
    pub shutting_down: watch::Sender<bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("options", &self.options).finish_non_exhaustive()
    }
}

/// The state handlers share.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// Loads every environment's current revision and every active SDK key from the store.
    pub async fn load(store: Arc<dyn Store>, options: Options) -> anyhow::Result<SharedState> {
        let (shutting_down, _) = watch::channel(false);
        let state = Arc::new(AppState {
            store,
            registry: Registry::default(),
            metrics: Metrics::new(),
            write_locks: WriteLocks::default(),
            options,
            shutting_down,
        });
        for (project, env) in state.store.all_environments().await? {
            let revision = state
                .store
                .revision(env.current_revision)
                .await?
                .ok_or_else(|| anyhow::anyhow!("environment '{}/{}' points at a missing revision", project.key, env.key))?;
            let snapshot = EnvSnapshot::build(&project, &env, &revision)?;
            let snapshot = state.registry.publish(snapshot);
            state.metrics.revision_published(&snapshot);
        }
        state.reload_keys().await?;
        Ok(state)
    }

    /// Re-reads the active SDK keys (after a key is created or revoked).
    pub async fn reload_keys(&self) -> store::StoreResult<()> {
        let keys = self.store.active_sdk_keys().await?;
        self.registry.set_keys(keys);
        Ok(())
    }
}

/// The whole HTTP API.
pub fn app(state: SharedState) -> Router {
    routes::router(Arc::clone(&state))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), metrics::track))
        .with_state(state)
}

/// Serves until `shutdown` completes, then stops accepting, ends streams, and waits for
/// in-flight requests (and the events they are storing) to finish.
pub async fn run(listener: TcpListener, state: SharedState, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let signal_state = Arc::clone(&state);
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        signal_state.shutting_down.send_replace(true);
    };
    axum::serve(listener, app(state)).with_graceful_shutdown(graceful).await?;
    tracing::info!("stopped");
    Ok(())
}
