//! An environment's stored events, for admins.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Viewer;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::openapi::{params, responses, schemas};
use crate::SharedState;

/// The admin event routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

/// `?after=&limit=`.
#[derive(Debug, Deserialize)]
struct EventPage {
    after: Option<i64>,
    limit: Option<u32>,
}

/// A page of stored events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventList {
    /// Oldest first.
    #[schema(value_type = Vec<schemas::StoredEvent>)]
    events: Vec<Value>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/events",
    tag = "admin",
    operation_id = "listEvents",
    summary = r#"List stored events"#,
    description = r#"The environment's stored events, oldest first, after an event id (for paging)."#,
    params(
        params::EnvironmentPath,
        ("after" = Option<i64>, Query, description = r#"Only events with a larger `id`."#),
        ("limit" = Option<i64>, Query, description = r#"At most this many; clamped to 1..1000."#)
    ),
    responses(
        (status = 200, description = r#"A page of events."#, body = EventList, content_type = "application/json"),
        (status = 400, description = r#"The query string is malformed. A query string that does not fit (a non-numeric number, a repeated parameter, a missing required or an unknown parameter) is `invalid_query`. Codes: `invalid_query`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 404, response = responses::NotFound),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn list_events(
    State(state): State<SharedState>,
    _access: Viewer,
    Path((project, environment)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<EventPage>,
) -> ApiResult<Json<EventList>> {
    let snapshot = state.current(&project, &environment)?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let events = state.store.list_events(snapshot.environment_id, page.after.unwrap_or(0), limit).await?;
    let events = events
        .into_iter()
        .map(|e| {
            let mut v = serde_json::to_value(&e).unwrap_or(Value::Null);
            // Identifiers and properties are stored as JSON text; they are served as JSON.
            for field in ["identifiers", "properties"] {
                if let Some(text) = v.get(field).and_then(Value::as_str) {
                    v[field] = serde_json::from_str(text).unwrap_or(Value::Null);
                }
            }
            v
        })
        .collect();
    Ok(Json(EventList { events }))
}
