//! `POST /sdk/v1/events`: exposures and tracked events in bulk, with the SDK key.
//!
//! A batch is validated whole before anything is stored: one bad event refuses the batch with a
//! 400 naming its index and field, and nothing is written. A valid batch is committed to the
//! database before the 202 answer.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use serde_json::{json, Map, Value};

use crate::openapi::{responses, schemas};
use crate::auth::SdkClient;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{parse_json, read_body};
use crate::store::{now_millis, BatchOutcome, NewEvent};
use crate::SharedState;

/// The largest batch body.
pub const MAX_BODY: usize = 1024 * 1024;
/// The most events in one batch.
pub const MAX_EVENTS: usize = 1000;
/// The longest identifier, test name, bucket name, version or event key.
pub const MAX_TEXT: usize = 256;
/// The most identifier types on one event.
pub const MAX_IDENTIFIERS: usize = 16;
/// The largest `properties` object, as JSON.
pub const MAX_PROPERTIES_BYTES: usize = 8 * 1024;
/// How far in the future an event time may be (clock skew).
const MAX_FUTURE_MILLIS: i64 = 24 * 3600 * 1000;

/// The event routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(ingest))
}

fn invalid(index: usize, field: &str, message: impl Into<String>) -> ApiError {
    let path = if field.is_empty() { format!("events[{index}]") } else { format!("events[{index}].{field}") };
    ApiError::new(ErrorCode::InvalidEvent, format!("{path}: {}", message.into()))
        .with("index", index)
        .with("field", field)
}

fn text(event: &Map<String, Value>, index: usize, field: &str, required: bool) -> ApiResult<Option<String>> {
    match event.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(invalid(index, field, "is required")),
        Some(Value::String(s)) if s.is_empty() => Err(invalid(index, field, "must not be empty")),
        Some(Value::String(s)) if s.len() > MAX_TEXT => {
            Err(invalid(index, field, format!("is {} bytes long; the limit is {MAX_TEXT}", s.len())))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(index, field, format!("must be a string, not {}", kind(other)))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How an exposure's bucket was reached: hashing into an allocation's ranges (`split`), the
/// test's targets, force groups, or an allocation's `default_to_min_live` (`default`). Only
/// `split` exposures enter an experiment's analysis; an exposure without a reason counts as
/// `split` (SDKs older than the field).
pub const EXPOSURE_REASONS: [&str; 4] = ["split", "targeted", "forced", "default"];
/// The largest allocation index an exposure may name.
const MAX_ALLOCATION: i64 = 10_000;
/// The most dimensions on one exposure.
pub const MAX_DIMENSIONS: usize = 8;
/// The longest dimension name.
const MAX_DIMENSION_NAME: usize = 64;

/// An exposure's `dimensions`: names to text (numbers and booleans are written as text).
fn read_dimensions(event: &Map<String, Value>, index: usize) -> ApiResult<Option<String>> {
    let dims = match event.get("dimensions") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(dims)) => dims,
        Some(other) => return Err(invalid(index, "dimensions", format!("must be an object, not {}", kind(other)))),
    };
    if dims.len() > MAX_DIMENSIONS {
        return Err(invalid(index, "dimensions", format!("has {} entries; the limit is {MAX_DIMENSIONS}", dims.len())));
    }
    let mut out = Map::new();
    for (name, value) in dims {
        let field = format!("dimensions.{name}");
        if name.is_empty() || name.len() > MAX_DIMENSION_NAME {
            return Err(invalid(index, "dimensions", format!("names must be 1 to {MAX_DIMENSION_NAME} bytes long")));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            other => return Err(invalid(index, &field, format!("must be a string, number or boolean, not {}", kind(other)))),
        };
        if text.len() > MAX_TEXT {
            return Err(invalid(index, &field, format!("is {} bytes long; the limit is {MAX_TEXT}", text.len())));
        }
        out.insert(name.clone(), Value::String(text));
    }
    Ok((!out.is_empty()).then(|| Value::Object(out).to_string()))
}

/// Whether `text` is a UUID in its usual form (8-4-4-4-12 hexadecimal digits).
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A batch's `batchId`: a UUID the sender keeps for every retry of the batch.
pub fn read_batch_id(doc: &Value) -> ApiResult<Option<String>> {
    match doc.get("batchId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if is_uuid(id) => Ok(Some(id.to_ascii_lowercase())),
        Some(Value::String(id)) => Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("batchId: '{}' is not a UUID (8-4-4-4-12 hexadecimal digits)", id.chars().take(64).collect::<String>()),
        )
        .with("field", "batchId")),
        Some(other) => Err(ApiError::new(ErrorCode::InvalidBody, format!("batchId: must be a UUID string, not {}", kind(other)))
            .with("field", "batchId")),
    }
}

/// Validates one event into what is stored.
pub fn read_event(index: usize, value: &Value, now: i64) -> ApiResult<NewEvent> {
    let Value::Object(event) = value else {
        return Err(invalid(index, "", format!("must be an object, not {}", kind(value))));
    };
    let event_kind = text(event, index, "kind", true)?.unwrap_or_default();
    if event_kind != "exposure" && event_kind != "track" {
        return Err(invalid(index, "kind", format!("must be 'exposure' or 'track', not '{event_kind}'")));
    }
    let identifiers = match event.get("identifiers") {
        Some(Value::Object(ids)) if ids.is_empty() => return Err(invalid(index, "identifiers", "must name at least one identifier")),
        Some(Value::Object(ids)) if ids.len() > MAX_IDENTIFIERS => {
            return Err(invalid(index, "identifiers", format!("has {} entries; the limit is {MAX_IDENTIFIERS}", ids.len())))
        }
        Some(Value::Object(ids)) => {
            let mut out = Map::new();
            for (type_name, id) in ids {
                let field = format!("identifiers.{type_name}");
                if type_name.is_empty() || type_name.len() > 64 {
                    return Err(invalid(index, "identifiers", "identifier types must be 1 to 64 bytes long"));
                }
                let id = match id {
                    Value::String(s) if s.len() <= MAX_TEXT => s.clone(),
                    Value::String(s) => {
                        return Err(invalid(index, &field, format!("is {} bytes long; the limit is {MAX_TEXT}", s.len())))
                    }
                    Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                    other => return Err(invalid(index, &field, format!("must be a string, not {}", kind(other)))),
                };
                out.insert(type_name.clone(), Value::String(id));
            }
            Value::Object(out).to_string()
        }
        None | Some(Value::Null) => return Err(invalid(index, "identifiers", "is required")),
        Some(other) => return Err(invalid(index, "identifiers", format!("must be an object, not {}", kind(other)))),
    };
    let time = match event.get("time") {
        None | Some(Value::Null) => now,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(t) if t < 0 => return Err(invalid(index, "time", "must not be negative")),
            Some(t) if t > now + MAX_FUTURE_MILLIS => {
                return Err(invalid(index, "time", "is more than a day in the future (epoch milliseconds expected)"))
            }
            Some(t) => t,
            None => return Err(invalid(index, "time", "must be an integer (epoch milliseconds)")),
        },
        Some(other) => return Err(invalid(index, "time", format!("must be epoch milliseconds, not {}", kind(other)))),
    };
    let mut stored = NewEvent {
        kind: event_kind.clone(),
        time,
        identifiers,
        test: None,
        bucket: None,
        bucket_name: None,
        version: None,
        key: None,
        value: None,
        properties: None,
        reason: None,
        allocation: None,
        dimensions: None,
    };
    if event_kind == "exposure" {
        stored.test = text(event, index, "test", true)?;
        stored.bucket = match event.get("bucket") {
            Some(Value::Number(n)) => match n.as_i64().and_then(|v| i32::try_from(v).ok()) {
                Some(v) => Some(v),
                None => return Err(invalid(index, "bucket", "must be a 32-bit integer bucket value")),
            },
            None | Some(Value::Null) => return Err(invalid(index, "bucket", "is required (the bucket value)")),
            Some(other) => return Err(invalid(index, "bucket", format!("must be an integer, not {}", kind(other)))),
        };
        stored.bucket_name = text(event, index, "bucketName", false)?;
        stored.version = match event.get("version") {
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => text(event, index, "version", false)?,
        };
        stored.reason = match text(event, index, "reason", false)? {
            Some(reason) if EXPOSURE_REASONS.contains(&reason.as_str()) => Some(reason),
            Some(reason) => {
                let known = EXPOSURE_REASONS.join("', '");
                return Err(invalid(index, "reason", format!("must be one of '{known}', not '{reason}'")));
            }
            None => None,
        };
        stored.allocation = match event.get("allocation") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) if (0..=MAX_ALLOCATION).contains(&i) => Some(i),
                _ => return Err(invalid(index, "allocation", format!("must be an integer from 0 to {MAX_ALLOCATION}"))),
            },
            Some(other) => return Err(invalid(index, "allocation", format!("must be an integer, not {}", kind(other)))),
        };
        stored.dimensions = read_dimensions(event, index)?;
    } else {
        stored.key = text(event, index, "key", true)?;
        stored.value = match event.get("value") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if v.is_finite() => Some(v),
                _ => return Err(invalid(index, "value", "must be a finite number")),
            },
            Some(other) => return Err(invalid(index, "value", format!("must be a number, not {}", kind(other)))),
        };
        stored.properties = match event.get("properties") {
            None | Some(Value::Null) => None,
            Some(Value::Object(p)) => {
                let text = Value::Object(p.clone()).to_string();
                if text.len() > MAX_PROPERTIES_BYTES {
                    return Err(invalid(
                        index,
                        "properties",
                        format!("is {} bytes as JSON; the limit is {MAX_PROPERTIES_BYTES}", text.len()),
                    ));
                }
                Some(text)
            }
            Some(other) => return Err(invalid(index, "properties", format!("must be an object, not {}", kind(other)))),
        };
    }
    Ok(stored)
}

/// Validates a whole batch (`{"events": [...]}` or a bare array).
pub fn read_batch(doc: &Value, now: i64) -> ApiResult<Vec<NewEvent>> {
    let events = match doc {
        Value::Array(events) => events,
        Value::Object(o) => match o.get("events") {
            Some(Value::Array(events)) => events,
            _ => return Err(ApiError::new(ErrorCode::InvalidBody, "expected {\"events\": [...]} or an array of events")),
        },
        _ => return Err(ApiError::new(ErrorCode::InvalidBody, "expected {\"events\": [...]} or an array of events")),
    };
    if events.len() > MAX_EVENTS {
        return Err(ApiError::new(
            ErrorCode::TooManyEvents,
            format!("the batch has {} events; the limit is {MAX_EVENTS}", events.len()),
        ));
    }
    events.iter().enumerate().map(|(i, e)| read_event(i, e, now)).collect()
}

#[utoipa::path(
    post,
    path = "/sdk/v1/events",
    tag = "events",
    operation_id = "ingestEvents",
    summary = r#"Send exposures and tracked events"#,
    description = r#"A batch of at most 1000 events (body at most 1 MiB), as `{"batchId": "<uuid>", "events": [...]}` or a bare array. The batch is validated whole: one bad event refuses it (400 naming its `index` and `field`) and nothing is stored. A valid batch is stored before the 202. A batch whose `batchId` was stored before (a retry after a lost answer) stores nothing and answers 202 with `duplicate: true` and the count first accepted; send the same `batchId` with every retry of a batch. Exposures may say how the bucket was reached (`reason`: `split`, `targeted`, `forced` or `default`; only `split` exposures, and those without a reason, enter experiment results), which allocation matched (`allocation`, 0-based) and `dimensions` to break results down by (at most 8, text values)."#,
    request_body(content = schemas::EventBatch, content_type = "application/json", example = json!({"batchId": "6f1c2f9e-0d5b-4b8a-9a51-5d1e2c3b4a79", "events": [{"kind": "exposure", "identifiers": {"USER": "user-42"}, "test": "checkout-v2", "bucket": 1, "bucketName": "new", "version": "41", "reason": "split", "allocation": 0, "dimensions": {"device": "mobile"}}, {"kind": "track", "identifiers": {"USER": "user-42"}, "key": "purchase", "value": 49.9, "properties": {"currency": "EUR"}}]})),
    responses(
        (status = 202, description = r#"Stored (or stored before, with `duplicate: true`)."#, body = schemas::Accepted, content_type = "application/json", example = json!({"accepted": 2})),
        (status = 400, description = r#"The batch is refused; nothing was stored. `invalid_event` carries `index` and `field`. Codes: `invalid_json`, `unreadable_body`, `invalid_body`, `too_many_events`, `invalid_event`."#, body = schemas::EventBatchError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("sdkKey" = []), ("sdkApiKey" = []))
)]
async fn ingest(State(state): State<SharedState>, client: SdkClient, body: Body) -> Response {
    let result: ApiResult<BatchOutcome> = async {
        let bytes = read_body(body, MAX_BODY).await?;
        let doc: Value = parse_json(&bytes)?;
        let events = match read_batch(&doc, now_millis()) {
            Ok(events) => events,
            Err(e) => {
                let count = doc.get("events").and_then(Value::as_array).or(doc.as_array()).map_or(1, Vec::len);
                state.metrics.events_rejected(count as u64);
                return Err(e);
            }
        };
        let batch_id = read_batch_id(&doc)?;
        let count = events.len();
        let exposures = events.iter().filter(|e| e.kind == "exposure").count();
        if count == 0 {
            return Ok(BatchOutcome { accepted: 0, duplicate: false });
        }
        let environment_id = client.environment.current().environment_id;
        let outcome = state.store.insert_events(environment_id, Some(client.key.key_id), batch_id, events).await?;
        if !outcome.duplicate {
            state.metrics.events_accepted("exposure", exposures as u64);
            state.metrics.events_accepted("track", (count - exposures) as u64);
        }
        Ok(outcome)
    }
    .await;
    match result {
        Ok(BatchOutcome { accepted, duplicate: false }) => {
            (StatusCode::ACCEPTED, Json(json!({"accepted": accepted}))).into_response()
        }
        Ok(BatchOutcome { accepted, duplicate: true }) => {
            (StatusCode::ACCEPTED, Json(json!({"accepted": accepted, "duplicate": true}))).into_response()
        }
        Err(e) => e.into_response(),
    }
}
