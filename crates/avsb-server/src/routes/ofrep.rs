//! OFREP, the OpenFeature Remote Evaluation Protocol (docs/openfeature.md §2): single and bulk
//! evaluation with the server SDK key as bearer token.
//!
//! A flag is a test. `targetingKey` is an identifier of the project's default identifier type;
//! an attribute named like a configured identifier type is that identifier; attributes named
//! like context variables are converted by the schema; other attributes are ignored, as Pipet
//! ignores unconfigured parameters. The value is the bucket's payload (omitted when the bucket
//! has none or the context gets no bucket, so the caller's default applies) and the variant is
//! the bucket's name.

use std::borrow::Cow;

use avsb_core::compile::CompiledMatrix;
use avsb_core::schema::canonical_identifier_type;
use avsb_core::{Assignment, Reason, Request, Value as CoreValue};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::openapi::{responses, schemas};
use crate::auth::presented_secret;
use crate::registry::{EnvSnapshot, KeyEntry};
use crate::extract::read_body;
use crate::store::now_millis;
use crate::SharedState;

/// The largest evaluation request accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The OFREP routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(evaluate_one)).routes(routes!(evaluate_all))
}

fn reply(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(body).unwrap_or_default()).into_response()
}

fn failure(status: StatusCode, key: Option<&str>, code: &str, details: &str) -> Response {
    let mut body = json!({"errorCode": code, "errorDetails": details});
    if let Some(key) = key {
        body["key"] = Value::from(key);
    }
    reply(status, &body)
}

// A rejection is a ready response; boxing it would only add an allocation to the error path.
#[allow(clippy::result_large_err)]
fn authenticate(state: &SharedState, headers: &HeaderMap) -> Result<(KeyEntry, std::sync::Arc<EnvSnapshot>), Response> {
    let secret = presented_secret(headers).ok_or_else(|| {
        reply(StatusCode::UNAUTHORIZED, &json!({"errorDetails": "an SDK key is required: 'Authorization: Bearer <sdk key>'"}))
    })?;
    state
        .sdk_environment(secret)
        .map(|(key, slot)| (key, slot.current()))
        .ok_or_else(|| reply(StatusCode::UNAUTHORIZED, &json!({"errorDetails": "unknown or revoked SDK key"})))
}

/// A context that cannot be used: the OFREP error code and a sentence.
struct ContextError {
    code: &'static str,
    details: String,
}

/// Reads `{"context": {...}}` (the body and the context are both optional) into a request.
fn read_context<'m>(snapshot: &'m EnvSnapshot, body: &[u8]) -> Result<(Request<'m>, bool), ContextError> {
    let matrix: &CompiledMatrix = &snapshot.matrix;
    let parse_error = |details: String| ContextError { code: "PARSE_ERROR", details };
    let doc: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| parse_error(format!("the body is not valid JSON: {e}")))?
    };
    let Value::Object(doc) = doc else {
        return Err(parse_error("the body must be a JSON object: {\"context\": {...}}".into()));
    };
    let context = match doc.get("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(_) => {
            return Err(ContextError { code: "INVALID_CONTEXT", details: "'context' must be a JSON object".into() })
        }
    };
    let mut request = matrix.request();
    let mut has_targeting_key = false;
    let schema = matrix.schema();
    if let Some(key) = context.get("targetingKey") {
        let key = scalar_text(key).ok_or_else(|| ContextError {
            code: "INVALID_CONTEXT",
            details: "'targetingKey' must be a string".into(),
        })?;
        if let Some(slot) = matrix.identifier_slot(&snapshot.default_identifier_type) {
            request.identifiers[slot] = Some(Cow::Owned(key));
        }
        has_targeting_key = true;
    }
    for (name, value) in &context {
        if name == "targetingKey" {
            continue;
        }
        let type_name = canonical_identifier_type(name);
        if schema.identifiers.contains_key(&type_name) {
            if let (Some(slot), Some(text)) = (matrix.identifier_slot(&type_name), scalar_text(value)) {
                if request.identifiers[slot].is_none() {
                    request.identifiers[slot] = Some(Cow::Owned(text));
                }
            }
            continue;
        }
        let Some(var) = schema.variables.get(name) else { continue };
        let text = scalar_text(value).ok_or_else(|| ContextError {
            code: "INVALID_CONTEXT",
            details: format!("context attribute '{name}' must be a string, number or boolean"),
        })?;
        let converted = var.ty.convert(&text).map_err(|detail| ContextError {
            code: "INVALID_CONTEXT",
            details: format!(
                "context attribute '{name}': could not convert '{text}' to type '{}': {detail}",
                var.ty.canonical_name()
            ),
        })?;
        if let Some(slot) = matrix.variable_slot(name) {
            request.context[slot] = Some(converted);
        }
    }
    // Variables the context lacks take their schema defaults, as Pipet's do; without a
    // default they stay null (OFREP contexts are often partial).
    for (name, var) in &schema.variables {
        let Some(slot) = matrix.variable_slot(name) else { continue };
        if request.context[slot].is_none() {
            if let Some(default) = &var.default_value {
                request.context[slot] = var.ty.convert(default).ok().map(|v: CoreValue| v);
            }
        }
    }
    request.now_millis = Some(now_millis());
    request.random_seed = if snapshot.has_random_tests { getrandom::u64().ok() } else { None };
    Ok((request, has_targeting_key))
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One flag's OFREP result: success (200) or failure (status, code, details).
fn result(
    snapshot: &EnvSnapshot,
    assignment: &Assignment<'_>,
    has_targeting_key: bool,
) -> Result<Value, (StatusCode, &'static str, String)> {
    let matrix = &snapshot.matrix;
    match &assignment.reason {
        Reason::NoIdentifier => {
            let test_type = matrix.definition(assignment.test).map_or("", |d| d.test_type.as_str());
            let details = if has_targeting_key {
                format!("flag '{}' hashes identifiers of type {test_type}; the context has none", assignment.test)
            } else {
                format!(
                    "flag '{}' needs a targetingKey (or a '{test_type}' attribute) to assign a bucket",
                    assignment.test
                )
            };
            return Err((StatusCode::BAD_REQUEST, "TARGETING_KEY_MISSING", details));
        }
        Reason::RuleError(failure) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "GENERAL",
                format!("flag '{}': {} failed: {}", assignment.test, failure.rule, failure.message),
            ));
        }
        _ => {}
    }
    let mut out = Map::new();
    out.insert("key".into(), Value::from(assignment.test));
    out.insert("reason".into(), Value::from(matrix.openfeature_reason(assignment)));
    out.insert("variant".into(), assignment.bucket.map_or(Value::Null, |b| Value::from(b.name.clone())));
    if let Some(payload) = &assignment.payload {
        out.insert("value".into(), payload.value_json());
    }
    let mut metadata = Map::new();
    if let Some(bucket) = assignment.bucket {
        metadata.insert("bucketValue".into(), Value::from(bucket.value));
    }
    if let Some(version) = assignment.version {
        metadata.insert("testVersion".into(), Value::from(version));
    }
    metadata.insert("matrixVersion".into(), Value::from(snapshot.revision.id.to_string()));
    out.insert("metadata".into(), Value::Object(metadata));
    Ok(Value::Object(out))
}

#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags/{key}",
    tag = "ofrep",
    operation_id = "ofrepEvaluateFlag",
    summary = r#"Evaluate one flag (OFREP)"#,
    description = r#"A flag is a test. `targetingKey` is an identifier of the project's default identifier type; an attribute named like an identifier type is that identifier; attributes named like context variables are converted by the schema (missing ones take their defaults); other attributes are ignored. `value` is the bucket's payload, omitted when there is none (use the code default)."#,
    params(
        ("key" = String, Path, description = r#"The flag (test) name."#)
    ),
    request_body(content = schemas::OfrepEvaluationRequest, content_type = "application/json", description = r#"Optional; an empty body is an empty context (at most 64 KiB)."#, example = json!({"context": {"targetingKey": "user-42", "country": "US"}})),
    responses(
        (status = 200, description = r#"The evaluation."#, body = schemas::OfrepEvaluationSuccess, content_type = "application/json", example = json!({"key": "checkout-v2", "reason": "SPLIT", "variant": "new", "value": true, "metadata": {"bucketValue": 1, "testVersion": "41", "matrixVersion": "44"}})),
        (status = 400, description = r#"`PARSE_ERROR` (body not JSON or not an object), `INVALID_CONTEXT` (a context that cannot be converted), `TARGETING_KEY_MISSING` (no identifier of the flag's type), `GENERAL` (a rule failed to evaluate)."#, body = schemas::OfrepEvaluationFailure, content_type = "application/json"),
        (status = 401, response = responses::OfrepUnauthorized),
        (status = 404, description = r#"No such flag."#, body = schemas::OfrepEvaluationFailure, content_type = "application/json", example = json!({"key": "nope", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "flag 'nope' not found"})),
        (status = 413, description = r#"The body exceeds 64 KiB (`errorCode` `PARSE_ERROR`)."#, body = schemas::OfrepEvaluationFailure, content_type = "application/json")
    ),
    security(("sdkKey" = []), ("sdkApiKey" = []))
)]
async fn evaluate_one(State(state): State<SharedState>, Path(key): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let (sdk_key, snapshot) = match authenticate(&state, &headers) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let body = match read_body(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return failure(e.status(), Some(&key), "PARSE_ERROR", &e.message),
    };
    let (request, has_targeting_key) = match read_context(&snapshot, &body) {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::BAD_REQUEST, Some(&key), e.code, &e.details),
    };
    match snapshot.matrix.evaluate_test(&key, &request) {
        None => failure(StatusCode::NOT_FOUND, Some(&key), "FLAG_NOT_FOUND", &format!("flag '{key}' not found")),
        Some(assignment) => match result(&snapshot, &assignment, has_targeting_key) {
            Ok(value) => {
                if sdk_key.record_exposures {
                    let (environment, matrix) = (snapshot.environment_id, &snapshot.matrix);
                    let recorder = &state.exposure_recorder;
                    recorder.record_one(environment, sdk_key.key_id, matrix, &assignment, &request, now_millis());
                }
                reply(StatusCode::OK, &value)
            }
            Err((status, code, details)) => failure(status, Some(&key), code, &details),
        },
    }
}

#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags",
    tag = "ofrep",
    operation_id = "ofrepEvaluateFlags",
    summary = r#"Evaluate every flag (OFREP bulk)"#,
    description = r#"Evaluates every flag for one context; per-flag failures are items of `flags`. The `ETag` depends on the matrix, the schema and the exact request body; send it back as `If-None-Match` to get 304 while nothing changed."#,
    params(
        ("If-None-Match" = Option<String>, Header, description = r#"Entity tags from earlier answers (comma-separated, or `*`); a match answers 304."#)
    ),
    request_body(content = schemas::OfrepEvaluationRequest, content_type = "application/json", description = r#"Optional; an empty body is an empty context (at most 64 KiB)."#),
    responses(
        (status = 200, description = r#"Every flag's evaluation."#, body = schemas::OfrepBulkEvaluationSuccess, content_type = "application/json", headers(("ETag" = String, description = r#"Depends on the matrix, the schema and the request body."#))),
        (status = 304, description = r#"Unchanged since the `If-None-Match` entity tag; no body."#, headers(("ETag" = String, description = r#"Depends on the matrix, the schema and the request body."#))),
        (status = 400, description = r#"`PARSE_ERROR` or `INVALID_CONTEXT`: the whole request fails."#, body = schemas::OfrepBulkEvaluationFailure, content_type = "application/json"),
        (status = 401, response = responses::OfrepUnauthorized),
        (status = 413, description = r#"The body exceeds 64 KiB (`errorCode` `PARSE_ERROR`)."#, body = schemas::OfrepBulkEvaluationFailure, content_type = "application/json")
    ),
    security(("sdkKey" = []), ("sdkApiKey" = []))
)]
async fn evaluate_all(State(state): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    let (sdk_key, snapshot) = match authenticate(&state, &headers) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let body = match read_body(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return failure(e.status(), None, "PARSE_ERROR", &e.message),
    };
    // The answer depends only on the matrix, the schema and the request body.
    let mut hasher = Sha256::new();
    hasher.update(snapshot.etag.as_bytes());
    hasher.update(&body);
    let digest = hasher.finalize();
    let etag = format!("\"{}\"", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>());
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    let (request, has_targeting_key) = match read_context(&snapshot, &body) {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::BAD_REQUEST, None, e.code, &e.details),
    };
    let evaluation = snapshot.matrix.evaluate(&request);
    if sdk_key.record_exposures {
        let (environment, matrix) = (snapshot.environment_id, &snapshot.matrix);
        state.exposure_recorder.record(environment, sdk_key.key_id, matrix, &evaluation, &request, now_millis());
    }
    let flags: Vec<Value> = evaluation
        .results
        .iter()
        .map(|assignment| match result(&snapshot, assignment, has_targeting_key) {
            Ok(value) => value,
            Err((_, code, details)) => json!({"key": assignment.test, "errorCode": code, "errorDetails": details}),
        })
        .collect();
    let body = json!({"flags": flags, "metadata": {"matrixVersion": snapshot.revision.id.to_string()}});
    let mut response = reply(StatusCode::OK, &body);
    response.headers_mut().insert(header::ETAG, etag_value);
    response
}
