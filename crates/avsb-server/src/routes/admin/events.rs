//! An environment's stored events, for admins: filtered by kind, test, key and time, paged, and
//! exported as JSON, NDJSON or CSV.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Viewer;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::ApiQuery;
use crate::openapi::{params, responses, schemas};
use crate::store::{EventFilter, StoredEvent};
use crate::SharedState;

/// The most events of one JSON page.
const JSON_PAGE: u32 = 1000;
/// The most events of one NDJSON or CSV export.
const EXPORT_PAGE: u32 = 100_000;

/// The admin event routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

/// `?after=&limit=&kind=&test=&key=&from=&to=&format=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventQuery {
    /// Only events with a larger `id` (paging: the last `id` of the previous page).
    after: Option<i64>,
    /// At most this many: 1 to 1000 for JSON (default 100), to 100,000 for `ndjson` and `csv`
    /// (default 100,000).
    limit: Option<u32>,
    /// `exposure` or `track`.
    kind: Option<String>,
    /// Exposures of this test.
    test: Option<String>,
    /// Tracked events with this key.
    key: Option<String>,
    /// Events that happened at or after this time, epoch milliseconds.
    from: Option<i64>,
    /// Events that happened before this time, epoch milliseconds.
    to: Option<i64>,
    /// `json` (default), `ndjson` (one event per line) or `csv` (a header line, then one row per
    /// event; identifiers, dimensions and properties as JSON text).
    format: Option<String>,
}

/// A page of stored events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventList {
    /// Oldest first.
    #[schema(value_type = Vec<schemas::StoredEvent>)]
    events: Vec<Value>,
}

/// One stored event as JSON: identifiers, dimensions and properties (stored as JSON text)
/// served as JSON.
fn event_json(event: &StoredEvent) -> Value {
    let mut v = serde_json::to_value(event).unwrap_or(Value::Null);
    for field in ["identifiers", "dimensions", "properties"] {
        if let Some(text) = v.get(field).and_then(Value::as_str) {
            v[field] = serde_json::from_str(text).unwrap_or(Value::Null);
        }
    }
    v
}

/// The CSV columns of an export.
const CSV_COLUMNS: [&str; 16] = [
    "id", "receivedAt", "sdkKeyId", "kind", "time", "identifiers", "test", "bucket", "bucketName", "version", "reason",
    "allocation", "dimensions", "key", "value", "properties",
];

fn csv_body(events: &[StoredEvent]) -> Result<Vec<u8>, ApiError> {
    let fail = |e: csv::Error| ApiError::new(ErrorCode::Internal, format!("the CSV export failed: {e}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS).map_err(fail)?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let number = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    for stored in events {
        let e = &stored.event;
        writer
            .write_record([
                stored.id.to_string(),
                stored.received_at.to_string(),
                number(stored.sdk_key_id),
                e.kind.clone(),
                e.time.to_string(),
                e.identifiers.clone(),
                text(&e.test),
                number(e.bucket.map(i64::from)),
                text(&e.bucket_name),
                text(&e.version),
                text(&e.reason),
                number(e.allocation),
                text(&e.dimensions),
                text(&e.key),
                e.value.map(|v| v.to_string()).unwrap_or_default(),
                text(&e.properties),
            ])
            .map_err(fail)?;
    }
    writer.into_inner().map_err(|e| ApiError::new(ErrorCode::Internal, format!("the CSV export failed: {e}")))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/events",
    tag = "admin",
    operation_id = "listEvents",
    summary = r#"List or export stored events"#,
    description = r#"The environment's stored events, oldest first, after an event id (for paging), filtered by `kind`, `test`, `key` and a time range. `format=ndjson` or `format=csv` exports up to 100,000 events per request (page on with `after`, the last `id`)."#,
    params(params::EnvironmentPath, EventQuery),
    responses(
        (status = 200, description = r#"A page of events: JSON (`{"events": [...]}`), NDJSON (`application/x-ndjson`) or CSV (`text/csv`)."#, body = EventList, content_type = "application/json"),
        (status = 400, description = r#"The query string is malformed. A query string that does not fit (a non-numeric number, a repeated parameter, a missing required or an unknown parameter), an unknown `kind` or `format` is `invalid_query`. Codes: `invalid_query`."#, body = schemas::BadRequestError, content_type = "application/json"),
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
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<Response> {
    let snapshot = state.current(&project, &environment)?;
    let invalid = |field: &str, message: String| ApiError::new(ErrorCode::InvalidQuery, message).with("field", field);
    if let Some(kind) = query.kind.as_deref().filter(|k| !matches!(*k, "exposure" | "track")) {
        return Err(invalid("kind", format!("kind must be 'exposure' or 'track', not '{kind}'")));
    }
    let format = query.format.as_deref().unwrap_or("json");
    let limit = match format {
        "json" => query.limit.unwrap_or(100).clamp(1, JSON_PAGE),
        "ndjson" | "csv" => query.limit.unwrap_or(EXPORT_PAGE).clamp(1, EXPORT_PAGE),
        other => return Err(invalid("format", format!("format must be 'json', 'ndjson' or 'csv', not '{other}'"))),
    };
    let filter = EventFilter { kind: query.kind, test: query.test, key: query.key, from: query.from, to: query.to };
    let events = state.store.list_events(snapshot.environment_id, &filter, query.after.unwrap_or(0), limit).await?;
    let attachment = |extension: &str| format!("attachment; filename=\"{project}-{environment}-events.{extension}\"");
    Ok(match format {
        "ndjson" => {
            let mut body = Vec::new();
            for event in &events {
                body.extend_from_slice(event_json(event).to_string().as_bytes());
                body.push(b'\n');
            }
            ([(header::CONTENT_TYPE, "application/x-ndjson".to_string()), (header::CONTENT_DISPOSITION, attachment("ndjson"))], body)
                .into_response()
        }
        "csv" => {
            let body = csv_body(&events)?;
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, attachment("csv"))], body)
                .into_response()
        }
        _ => Json(EventList { events: events.iter().map(event_json).collect() }).into_response(),
    })
}
