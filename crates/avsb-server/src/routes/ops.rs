//! Operations: liveness and readiness, Prometheus metrics, and the OpenAPI document.
//!
//! `/healthz` says the process serves requests and never touches the database, so it cannot
//! queue behind the database's lock (under a flood of events, say) and get the process
//! restarted for being busy. `/readyz` says the server can do its work: the database answers a
//! read and takes a small real write (so a full disk shows), and every stored environment is
//! served from memory. It probes at most every `readiness_interval` and repeats the last answer
//! in between, so a probe every second costs the database nothing.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::schemas;
use crate::store::now_millis;
use crate::{AppState, SharedState};

/// The operations routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics)).routes(routes!(openapi))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    operation_id = "healthz",
    summary = r#"Liveness"#,
    description = r#"The process is alive and answers requests. Answered from memory: it never waits for the database (use `/readyz` for that), so a busy database does not make a liveness probe fail. Reports how many environments are served."#,
    responses(
        (status = 200, description = r#"Alive."#, body = schemas::Healthy, content_type = "application/json", example = json!({"status": "ok", "environments": 3}))
    ),
    security()
)]
async fn healthz(State(state): State<SharedState>) -> Response {
    let environments = state.registry.snapshots().len();
    (StatusCode::OK, Json(json!({"status": "ok", "environments": environments}))).into_response()
}

/// How long each step of a readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The setting the readiness probe writes (the time of the probe).
const PROBE_SETTING: &str = "readiness_probe";

/// Whether the server can do its work, as `/readyz` answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessReport {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Why not, when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The database answered a read.
    pub database_readable: bool,
    /// The database took a write.
    pub database_writable: bool,
    /// Environments in the database (absent when it could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environments_stored: Option<usize>,
    /// Environments served from memory (their snapshots are loaded).
    pub environments_served: usize,
    /// When the database was probed, epoch milliseconds.
    pub checked_at: i64,
}

impl ReadinessReport {
    fn ready(&self) -> bool {
        self.reason.is_none()
    }
}

/// The last readiness probe, shared by the requests that arrive before the next is due.
#[derive(Debug, Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, ReadinessReport)>>,
}

impl Readiness {
    /// The last report if it is younger than `interval`, else a new probe's. Concurrent callers
    /// wait for one probe rather than each running their own.
    pub async fn check(&self, state: &AppState) -> ReadinessReport {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref() {
            if at.elapsed() < state.options.readiness_interval {
                return report.clone();
            }
        }
        let report = probe(state).await;
        if let Some(reason) = &report.reason {
            tracing::warn!("not ready: {reason}");
        }
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

/// Reads and writes the database, and compares the environments stored with those served.
async fn probe(state: &AppState) -> ReadinessReport {
    let mut report = ReadinessReport {
        status: "unavailable",
        reason: None,
        database_readable: false,
        database_writable: false,
        environments_stored: None,
        environments_served: 0,
        checked_at: now_millis(),
    };
    let seconds = PROBE_TIMEOUT.as_secs();
    match tokio::time::timeout(PROBE_TIMEOUT, state.store.all_environments()).await {
        Ok(Ok(environments)) => {
            report.database_readable = true;
            report.environments_stored = Some(environments.len());
        }
        Ok(Err(e)) => report.reason = Some(format!("the database cannot be read: {e}")),
        Err(_) => report.reason = Some(format!("the database did not answer a read within {seconds} s")),
    }
    if report.database_readable {
        let now = report.checked_at.to_string();
        match tokio::time::timeout(PROBE_TIMEOUT, state.store.set_setting(PROBE_SETTING, Some(&now))).await {
            Ok(Ok(())) => report.database_writable = true,
            Ok(Err(e)) => report.reason = Some(format!("the database cannot be written: {e}")),
            Err(_) => report.reason = Some(format!("the database did not take a write within {seconds} s")),
        }
    }
    report.environments_served = state.registry.snapshots().len();
    if let (None, Some(stored)) = (&report.reason, report.environments_stored) {
        if report.environments_served < stored {
            // An environment being created is stored a moment before it is served.
            tokio::time::sleep(Duration::from_millis(100)).await;
            report.environments_served = state.registry.snapshots().len();
        }
        if report.environments_served < stored {
            report.reason =
                Some(format!("{} of the {stored} stored environments are served", report.environments_served));
        }
    }
    if report.ready() {
        report.status = "ready";
    }
    report
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    operation_id = "readyz",
    summary = r#"Readiness"#,
    description = r#"The server can do its work: the database answers a read and takes a small real write (a full disk or a read-only file fails it), and every stored environment's matrix is loaded and served. The database is probed at most every few seconds (`--readiness-interval-secs`, default 5); answers in between repeat the last probe (`checkedAt`). Each step gives up after 2 s. While the server shuts down, it answers 503 at once."#,
    responses(
        (status = 200, description = r#"Ready."#, body = ReadinessReport, content_type = "application/json", example = json!({"status": "ready", "databaseReadable": true, "databaseWritable": true, "environmentsStored": 3, "environmentsServed": 3, "checkedAt": 1767225600000_i64})),
        (status = 503, description = r#"Not ready; `reason` says why."#, body = ReadinessReport, content_type = "application/json", example = json!({"status": "unavailable", "reason": "the database cannot be written: database or disk is full", "databaseReadable": true, "databaseWritable": false, "environmentsStored": 3, "environmentsServed": 3, "checkedAt": 1767225600000_i64}))
    ),
    security()
)]
async fn readyz(State(state): State<SharedState>) -> Response {
    if *state.shutting_down.borrow() {
        let report = ReadinessReport {
            status: "unavailable",
            reason: Some("the server is shutting down".into()),
            database_readable: false,
            database_writable: false,
            environments_stored: None,
            environments_served: state.registry.snapshots().len(),
            checked_at: now_millis(),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(report)).into_response();
    }
    let report = state.readiness.check(&state).await;
    let status = if report.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    operation_id = "metrics",
    summary = r#"Prometheus metrics"#,
    description = r#"OpenMetrics text: requests by route template, evaluations, events, stream clients, published revisions."#,
    responses(
        (status = 200, description = r#"The metrics."#, body = String, content_type = "application/openmetrics-text")
    ),
    security()
)]
async fn metrics(State(state): State<SharedState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.encode(),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "ops",
    operation_id = "openapi",
    summary = r#"This document"#,
    responses(
        (status = 200, description = r#"The OpenAPI document."#, body = Object, content_type = "application/json")
    ),
    security()
)]
async fn openapi() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], crate::openapi::document()).into_response()
}
