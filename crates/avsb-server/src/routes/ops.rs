//! Operations: health, Prometheus metrics, and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::schemas;
use crate::SharedState;

/// The operations routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(metrics)).routes(routes!(openapi))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    operation_id = "healthz",
    summary = r#"Health check"#,
    description = r#"Healthy when the database answers; reports how many environments are loaded."#,
    responses(
        (status = 200, description = r#"Healthy."#, body = schemas::Healthy, content_type = "application/json", example = json!({"status": "ok", "environments": 3})),
        (status = 503, description = r#"The database does not answer."#, body = schemas::Unhealthy, content_type = "application/json")
    ),
    security()
)]
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
