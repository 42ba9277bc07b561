//! A test's experiment results in an environment, and their daily series.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Viewer;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::openapi::{params, responses, schemas};
use crate::results::{DailyResults, Results, ResultsAnswer, ResultsQuery};
use crate::SharedState;

/// The first computation of a large experiment's results is under way.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Computing {
    /// Always true.
    computing: bool,
    /// When the computation started, epoch milliseconds.
    started_at: i64,
}

fn computing(started_at: i64) -> Response {
    let body = Computing { computing: true, started_at };
    (StatusCode::ACCEPTED, [(axum::http::header::RETRY_AFTER, "2")], Json(body)).into_response()
}

/// The results of a test, rendered by `render`, or 202 while the first computation runs.
async fn answer(
    state: &SharedState,
    (project, environment, test): (&str, &str, &str),
    query: &ResultsQuery,
    render: impl FnOnce(std::sync::Arc<Results>) -> Response,
) -> ApiResult<Response> {
    Ok(match state.results_answer(project, environment, test, query).await? {
        ResultsAnswer::Ready(results) => render(results),
        ResultsAnswer::Computing { started_at } => computing(started_at),
    })
}

/// The results routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(get_results)).routes(routes!(get_daily_results))
}

const DESCRIPTION: &str = r#"Computed from the exposures and tracked events the server stores. The population: units of the test's identifier type, entering at their first exposure in the phase; only exposures reached by hashing count (`reason` `split`, or none), and units exposed to more than one bucket are left out (`excluded` counts both). Per metric and variant: `units`, the metric's `value` and its sufficient `statistics`; per non-control variant, `lift` with `ciLow`/`ciHigh`, and `pValue` (frequentist; `adjustedPValue` with a correction) or `chanceToWin` and `risk` (Bayesian), as GrowthBook's gbstats 0.8.0 computes them. `srm.pValue` is the smallest chi-square p-value of the sample-ratio checks, one per ranges window and allocation with the ranges then in force; `srm.warning` when below 0.001. The default phase starts at the last change of the test's ranges (`phases` lists the others). Results are cached until an event arrives, the matrix or a metric changes; `asOf` says when they were computed. A request waits up to 2 s for a computation; a large experiment's first computation then answers 202 (`Retry-After`), and a recomputation answers the last results with `stale: true` while it runs."#;

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/tests/{test}/results",
    tag = "results",
    operation_id = "getResults",
    summary = "A test's experiment results",
    description = DESCRIPTION,
    params(params::TestPath, ResultsQuery),
    responses(
        (status = 200, description = "The results.", body = Results),
        (status = 202, description = "The first computation is under way; ask again.", body = Computing),
        (status = 400, description = "A query parameter is not valid; `field` names it. Codes: `invalid_query`.", body = schemas::BadRequestError),
        (status = 404, description = "No such project, environment or test. Codes: `not_found`.", body = schemas::ApiError),
        responses::ReadErrors
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn get_results(
    State(state): State<SharedState>,
    _access: Viewer,
    Path((project, environment, test)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<ResultsQuery>,
) -> ApiResult<Response> {
    answer(&state, (&project, &environment, &test), &query, |results| Json(results).into_response()).await
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/tests/{test}/results/daily",
    tag = "results",
    operation_id = "getDailyResults",
    summary = "A test's results day by day",
    description = "Per metric, per UTC day of the phase: the units exposed by the end of the day and each variant's value and lift with its interval on those units (their metric values as of the analysis). For charts. Takes the same parameters as the results.",
    params(params::TestPath, ResultsQuery),
    responses(
        (status = 200, description = "The series.", body = DailyResults),
        (status = 202, description = "The first computation is under way; ask again.", body = Computing),
        (status = 400, description = "A query parameter is not valid; `field` names it. Codes: `invalid_query`.", body = schemas::BadRequestError),
        (status = 404, description = "No such project, environment or test. Codes: `not_found`.", body = schemas::ApiError),
        responses::ReadErrors
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn get_daily_results(
    State(state): State<SharedState>,
    _access: Viewer,
    Path((project, environment, test)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<ResultsQuery>,
) -> ApiResult<Response> {
    answer(&state, (&project, &environment, &test), &query, |results| Json(results.daily.clone()).into_response()).await
}
