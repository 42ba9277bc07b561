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
pub mod console;
pub mod demo;
pub mod error;
pub mod extract;
pub mod keys;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod recorder;
pub mod registry;
pub mod results;
pub mod routes;
pub mod store;

use metrics::Metrics;
use ops::write::WriteLocks;
use registry::{EnvSnapshot, Registry, SnapshotError};
use store::{Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A stored revision or schema cannot be served.
    #[error("{0}")]
    Snapshot(#[from] SnapshotError),
    /// An environment points at a revision that is not stored.
    #[error("environment '{project}/{environment}' points at a missing revision")]
    MissingRevision {
        /// The project.
        project: String,
        /// The environment.
        environment: String,
    },
}

/// Tunables with production defaults; tests shorten the intervals.
#[derive(Debug, Clone)]
pub struct Options {
    /// A request head must arrive in full within this (from the connection's start, or from a
    /// request's first byte on a kept-alive connection), or the connection is closed.
    pub header_timeout: Duration,
    /// A kept-alive connection is closed after this long without a request. Longer than a
    /// proxy's upstream keep-alive (nginx: 60 s), so the proxy, not the server, closes first.
    pub idle_timeout: Duration,
    /// A request body must arrive in full within this (from the end of its head).
    pub body_timeout: Duration,
    /// At most this many connections are served at once; `None`: 80% of the process's file
    /// limit, less a reserve ([`listener::default_max_connections`]).
    pub max_connections: Option<usize>,
    /// The largest admin request body, in bytes. The default admits a 10,000-test matrix
    /// pretty-printed (about 13 MB) with room to spare.
    pub max_admin_body: usize,
    /// `/readyz` probes the database at most this often; answers in between repeat the last probe.
    pub readiness_interval: Duration,
    /// How often an idle stream sends a comment line, so proxies and clients keep it open.
    pub heartbeat: Duration,
    /// Whether the console's cookies are `Secure` (the console is served over HTTPS, by a proxy);
    /// without it they are `Secure` when a proxy says the request came over HTTPS.
    pub secure_cookies: bool,
    /// How long a request for experiment results waits for a computation before it answers
    /// with the last results (marked stale) or, the first time, "computing".
    pub results_wait: Duration,
    /// Log every request at info (method, route template, status, duration; never a path or a
    /// query, which may hold secrets) under the target `avsb_server::access`; without it they
    /// are logged at debug.
    pub access_log: bool,
}

impl Options {
    /// The default of [`Options::max_admin_body`]: 32 MiB.
    pub const DEFAULT_MAX_ADMIN_BODY: usize = 32 * 1024 * 1024;

    /// The connection limits these options set.
    pub fn limits(&self) -> listener::Limits {
        listener::Limits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            body_timeout: self.body_timeout,
            max_connections: self
                .max_connections
                .unwrap_or_else(|| listener::default_max_connections(listener::file_limit()))
                .clamp(1, listener::MAX_CONNECTIONS),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            body_timeout: Duration::from_secs(60),
            max_connections: None,
            max_admin_body: Options::DEFAULT_MAX_ADMIN_BODY,
            readiness_interval: Duration::from_secs(5),
            heartbeat: Duration::from_secs(15),
            secure_cookies: false,
            results_wait: Duration::from_secs(2),
            access_log: false,
        }
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
    /// Experiment results already computed.
    pub results_cache: results::ResultsCache,
    /// Exposures of remote evaluation waiting to be stored.
    pub exposure_recorder: recorder::ExposureRecorder,
    /// The last readiness probe of the database.
    pub readiness: routes::ops::Readiness,
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
    pub async fn load(store: Arc<dyn Store>, options: Options) -> Result<SharedState, StartError> {
        let (shutting_down, _) = watch::channel(false);
        let state = Arc::new(AppState {
            store,
            registry: Registry::default(),
            metrics: Metrics::new(),
            write_locks: WriteLocks::default(),
            options,
            shutting_down,
            results_cache: results::ResultsCache::default(),
            exposure_recorder: recorder::ExposureRecorder::default(),
            readiness: routes::ops::Readiness::default(),
        });
        for (project, env) in state.store.all_environments().await? {
            let revision = state
                .store
                .revision(env.current_revision)
                .await?
                .ok_or_else(|| StartError::MissingRevision { project: project.key.clone(), environment: env.key.clone() })?;
            let snapshot = EnvSnapshot::build(&project, &env, &revision)?;
            let snapshot = state.registry.publish(snapshot);
            state.metrics.revision_published(&snapshot);
        }
        let keys = state.store.active_sdk_keys().await?;
        state.registry.set_keys(keys);
        Ok(state)
    }
}

/// The whole HTTP API.
pub fn app(state: SharedState) -> Router {
    routes::router()
        .0
        .merge(console::router())
        .layer(axum::middleware::from_fn(api_headers))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), metrics::track))
        .with_state(state)
}

/// Headers of every API answer (the console sets its own): `X-Content-Type-Options: nosniff`,
/// so no browser reads a JSON answer as a page, and `Cache-Control: no-store` on the admin API
/// and the SDK-key answers (OFREP, events), which carry secrets or per-caller data, unless the
/// route chose its own (the datafile's `no-cache`, revalidated by ETag; Pipet's).
async fn api_headers(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let path = request.uri().path();
    let api = ["/api/", "/sdk/", "/ofrep/", "/pipet/", "/healthz", "/readyz", "/metrics"].iter().any(|p| path.starts_with(p));
    let private = ["/api/", "/ofrep/", "/sdk/"].iter().any(|p| path.starts_with(p));
    let mut response = next.run(request).await;
    if api {
        let headers = response.headers_mut();
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if private && !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    response
}

/// Serves until `shutdown` completes, then stops accepting, ends streams, and waits for
/// in-flight requests (and the events they are storing) to finish. Connections are limited and
/// closed when they stall ([`listener`], with the limits of [`Options`]).
pub async fn run(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = tokio::spawn(flush_exposures_periodically(Arc::clone(&state)));
    let final_state = Arc::clone(&state);
    let limits = state.options.limits();
    let served = listener::serve(listener, app(Arc::clone(&state)), state, limits, shutdown).await;
    flusher.abort();
    if let Err(e) = final_state.flush_exposures().await {
        tracing::error!("the last remote exposures could not be stored: {e}");
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Stores the exposures recorded for remote evaluation every half-second.
async fn flush_exposures_periodically(state: SharedState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = state.flush_exposures().await {
            tracing::error!("remote exposures could not be stored (they are dropped): {e}");
        }
    }
}
