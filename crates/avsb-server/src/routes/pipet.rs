//! The Pipet-compatible API (reference §6), one per environment, rooted at
//! `/pipet/{sdk_key}` so that `PROCTOR_API_ROOT` alone names the environment and its key.
//! Envelopes, status codes and messages are Pipet's.

use std::borrow::Cow;

use avsb_core::pipet::{self, IdentifyParams};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::{json, Value};

use crate::registry::EnvSnapshot;
use crate::store::now_millis;
use crate::SharedState;

/// The Pipet routes.
pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/pipet/{sdk_key}/groups/identify", get(identify))
        .route("/pipet/{sdk_key}/proctor/matrix", get(matrix))
        .route("/pipet/{sdk_key}/proctor/matrix/audit", get(audit))
        .route("/pipet/{sdk_key}/proctor/matrix/definition/{test}", get(definition))
        .route("/pipet/{sdk_key}/config/context", any(config_context))
        .route("/pipet/{sdk_key}/config/identifiers", any(config_identifiers))
        .route("/pipet/{sdk_key}/{*rest}", any(unknown))
}

/// A path under `/pipet/` that no route matches, or a method a route does not take: Pipet's
/// envelope, after the key check (an unknown key is a 401 whatever the path).
pub fn unmatched(state: &SharedState, path: &str, status: u16, method: &axum::http::Method) -> Response {
    let rest = path.strip_prefix("/pipet/").unwrap_or("");
    let (sdk_key, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if let Err(response) = environment(state, sdk_key) {
        return response;
    }
    if status == 405 {
        error(405, &format!("Request method '{method}' not supported"))
    } else {
        error(404, &format!("No Pipet endpoint '/{rest}'."))
    }
}

const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache, no-store, max-age=0, must-revalidate");

fn with_headers(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    headers.insert(header::CACHE_CONTROL, NO_CACHE);
    response
}

/// `{"data": <data>, "meta": {"status": 200}}`.
fn envelope(data: &Value) -> Response {
    let mut body = Vec::with_capacity(256);
    body.extend_from_slice(b"{\"data\":");
    if serde_json::to_writer(&mut body, data).is_err() {
        return error(500, "could not render the response");
    }
    body.extend_from_slice(b",\"meta\":{\"status\":200}}");
    with_headers(StatusCode::OK, body)
}

/// `{"data": {}, "meta": {"status": <status>, "error": <message>}}` with that HTTP status.
fn error(status: u16, message: &str) -> Response {
    let body = json!({"data": {}, "meta": {"status": status, "error": message}});
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_headers(status, serde_json::to_vec(&body).unwrap_or_default())
}

// A rejection is a ready response; boxing it would only add an allocation to the error path.
#[allow(clippy::result_large_err)]
fn environment(state: &SharedState, sdk_key: &str) -> Result<std::sync::Arc<EnvSnapshot>, Response> {
    state
        .sdk_environment(sdk_key)
        .map(|(_, slot)| slot.current())
        .ok_or_else(|| error(401, "Unknown or revoked SDK key in the Pipet root (PROCTOR_API_ROOT)."))
}

/// A random number for RANDOM tests (Pipet always enables them).
fn random_seed() -> Option<u64> {
    getrandom::u64().ok()
}

/// Builds Pipet's request from the query string and headers, as the schema says where each
/// value comes from. Repeated parameters: the first wins, as `getParameter` does.
fn identify_params(snapshot: &EnvSnapshot, uri: &Uri, headers: &HeaderMap) -> IdentifyParams {
    let schema = snapshot.matrix.schema();
    let query: Vec<(Cow<'_, str>, Cow<'_, str>)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).collect();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref());
    let prefixed = |prefix: &str, key: &str| {
        query
            .iter()
            .find(|(k, _)| k.len() == prefix.len() + key.len() && k.starts_with(prefix) && k.ends_with(key))
            .map(|(_, v)| v.to_string())
    };
    let header = |name: &str| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut params = IdentifyParams::from_sources(schema, prefixed, header);
    params.tests = param("test").map(str::to_string);
    params.force_groups = param("prforceGroups").map(str::to_string);
    params.now_millis = Some(now_millis());
    params.random_seed = if snapshot.has_random_tests { random_seed() } else { None };
    params
}

async fn identify(State(state): State<SharedState>, Path(sdk_key): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    let snapshot = match environment(&state, &sdk_key) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let params = identify_params(&snapshot, &uri, &headers);
    let mut body = Vec::with_capacity(256 + 96 * snapshot.matrix.len());
    body.extend_from_slice(b"{\"data\":");
    match pipet::identify_to(&snapshot.matrix, &params, &mut body) {
        Ok(()) => {
            body.extend_from_slice(b",\"meta\":{\"status\":200}}");
            with_headers(StatusCode::OK, body)
        }
        Err(e) => error(e.status, &e.message),
    }
}

async fn matrix(State(state): State<SharedState>, Path(sdk_key): Path<String>) -> Response {
    match environment(&state, &sdk_key) {
        Ok(snapshot) => with_headers(StatusCode::OK, snapshot.matrix_json.to_vec()),
        Err(response) => response,
    }
}

async fn audit(State(state): State<SharedState>, Path(sdk_key): Path<String>) -> Response {
    match environment(&state, &sdk_key) {
        Ok(snapshot) => envelope(&snapshot.matrix.audit().to_json()),
        Err(response) => response,
    }
}

async fn definition(
    State(state): State<SharedState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path((sdk_key, test))) = path else {
        return error(400, "The test name in the path is not valid UTF-8.");
    };
    let snapshot = match environment(&state, &sdk_key) {
        Ok(s) => s,
        Err(response) => return response,
    };
    match snapshot.matrix.definition(&test) {
        Some(definition) => envelope(&definition.to_json(false)),
        None => error(404, &format!("'{test}' test definition not found in test matrix.")),
    }
}

async fn config_context(State(state): State<SharedState>, Path(sdk_key): Path<String>) -> Response {
    match environment(&state, &sdk_key) {
        Ok(snapshot) => envelope(&snapshot.matrix.schema().context_config_json()),
        Err(response) => response,
    }
}

async fn config_identifiers(State(state): State<SharedState>, Path(sdk_key): Path<String>) -> Response {
    match environment(&state, &sdk_key) {
        Ok(snapshot) => envelope(&snapshot.matrix.schema().identifiers_config_json()),
        Err(response) => response,
    }
}

async fn unknown(State(state): State<SharedState>, method: axum::http::Method, uri: Uri) -> Response {
    unmatched(&state, uri.path(), 404, &method)
}
