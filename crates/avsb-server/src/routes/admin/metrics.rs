//! A project's metrics: what experiments measure, from the events `track()` sends.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Editor, Viewer};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::openapi::{params, responses, schemas};
use crate::ops::metrics::Metric;
use crate::results::metric::MetricDefinition;
use crate::SharedState;

/// The metric routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_metrics, create_metric))
        .routes(routes!(get_metric, update_metric, delete_metric))
}

/// A project's metrics.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricList {
    /// By key.
    metrics: Vec<Metric>,
}

/// A new metric: its key and its definition.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMetric {
    /// 1 to 63 lower-case letters, digits, `-` or `_` (`purchase-rate`).
    key: String,
    /// The definition.
    #[serde(flatten)]
    definition: MetricDefinition,
}

const METRIC_EXAMPLE: &str = r#"{"key": "revenue", "name": "Revenue per user", "event": "purchase", "type": "mean", "direction": "higher", "windowHours": 72, "capping": {"type": "percentile", "value": 0.99}}"#;

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/metrics",
    tag = "results",
    operation_id = "listMetrics",
    summary = "List a project's metrics",
    params(params::ProjectPath),
    responses(
        (status = 200, description = "The metrics, by key.", body = MetricList),
        (status = 404, response = responses::NotFound),
        responses::ReadErrors
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_metrics(State(state): State<SharedState>, access: Viewer) -> ApiResult<Json<MetricList>> {
    Ok(Json(MetricList { metrics: state.metrics(&access.project.key).await? }))
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/metrics",
    tag = "results",
    operation_id = "createMetric",
    summary = "Create a metric",
    description = "A metric counts one event key: `conversion` (the share of units with at least one such event after their first exposure), `mean` (summed values per unit, units without events counting 0), `count` (events per unit) or `ratio` (summed values over a `denominator` event's count or sum, analysed with the delta method). Optional: `direction` (`higher` or `lower` is better), `windowHours` after the first exposure, `guardrail`, `capping` (`absolute` or `percentile`). Recorded in the audit log.",
    params(params::ProjectPath),
    request_body(content = CreateMetric, content_type = "application/json", example = json!(serde_json::from_str::<serde_json::Value>(METRIC_EXAMPLE).unwrap_or_default())),
    responses(
        (status = 201, description = "The metric.", body = Metric),
        (status = 400, description = "The definition is not valid; `field` names where (`name`, `event`, `denominator`, `windowHours`, `capping.value`...). Codes: `invalid_json`, `unreadable_body`, `invalid_field`, `invalid_key`.", body = schemas::BadRequestError),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        (status = 409, description = "The project has a metric with this key. Codes: `already_exists`.", body = schemas::ApiError),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn create_metric(
    State(state): State<SharedState>,
    access: Editor,
    JsonBody(request): JsonBody<CreateMetric>,
) -> ApiResult<(StatusCode, Json<Metric>)> {
    let metric = state.create_metric(&access.project.key, &request.key, &request.definition, &access.author()).await?;
    Ok((StatusCode::CREATED, Json(metric)))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/metrics/{metric}",
    tag = "results",
    operation_id = "getMetric",
    summary = "Read a metric",
    params(params::ProjectPath, ("metric" = String, Path, description = "The metric's key.")),
    responses(
        (status = 200, description = "The metric.", body = Metric),
        (status = 404, response = responses::NotFound),
        responses::ReadErrors
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn get_metric(
    State(state): State<SharedState>,
    access: Viewer,
    Path((_project, metric)): Path<(String, String)>,
) -> ApiResult<Json<Metric>> {
    Ok(Json(state.metric(&access.project.key, &metric).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/metrics/{metric}",
    tag = "results",
    operation_id = "updateMetric",
    summary = "Change a metric",
    description = "Replaces the definition (the key stays). Results computed after the change use it. Recorded in the audit log.",
    params(params::ProjectPath, ("metric" = String, Path, description = "The metric's key.")),
    request_body(content = MetricDefinition, content_type = "application/json"),
    responses(
        (status = 200, description = "The metric.", body = Metric),
        (status = 400, description = "The definition is not valid; `field` names where. Codes: `invalid_json`, `unreadable_body`, `invalid_field`.", body = schemas::BadRequestError),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn update_metric(
    State(state): State<SharedState>,
    access: Editor,
    Path((_project, metric)): Path<(String, String)>,
    JsonBody(definition): JsonBody<MetricDefinition>,
) -> ApiResult<Json<Metric>> {
    Ok(Json(state.update_metric(&access.project.key, &metric, &definition, &access.author()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/metrics/{metric}",
    tag = "results",
    operation_id = "deleteMetric",
    summary = "Delete a metric",
    description = "The definition goes; the events stay. Recorded in the audit log.",
    params(params::ProjectPath, ("metric" = String, Path, description = "The metric's key.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, response = responses::NotFound),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn delete_metric(
    State(state): State<SharedState>,
    access: Editor,
    Path((_project, metric)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.delete_metric(&access.project.key, &metric, &access.author()).await?;
    Ok(StatusCode::NO_CONTENT)
}
