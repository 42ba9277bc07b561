//! Operations: health, Prometheus metrics, and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::SharedState;

/// The OpenAPI document of every route.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// The operations routes.
pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
}

/// Healthy when the database answers and every environment is loaded.
async fn healthz(State(state): State<SharedState>) -> Response {
    match state.store.list_projects().await {
        Ok(_) => {
            let environments = state.registry.snapshots().len();
            (StatusCode::OK, Json(json!({"status": "ok", "environments": environments}))).into_response()
        }
        Err(e) => {
            tracing::error!("health check: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "reason": "the database does not answer"})))
                .into_response()
        }
    }
}

async fn metrics(State(state): State<SharedState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.encode(),
    )
        .into_response()
}

async fn openapi() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
