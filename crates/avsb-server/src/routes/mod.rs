//! The HTTP API, one module per audience. Each module exposes `router()`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};
use crate::SharedState;

pub mod admin;
pub mod events;
pub mod ofrep;
pub mod ops;
pub mod pipet;
pub mod sdk;

/// Every route.
pub fn router(_state: SharedState) -> Router<SharedState> {
    // Only the routes that take bodies pay for reading them ahead; Pipet's GETs stay lean.
    let with_bodies = Router::new()
        .merge(ofrep::router())
        .merge(events::router())
        .merge(admin::router())
        .layer(axum::middleware::from_fn(buffer_small_bodies));
    Router::new()
        .merge(pipet::router())
        .merge(sdk::router())
        .merge(ops::router())
        .merge(with_bodies)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found(State(state): State<SharedState>, method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/pipet/") {
        return pipet::unmatched(&state, uri.path(), 404, &method);
    }
    ApiError::not_found(format!("no endpoint {}; see /api/v1/openapi.json", uri.path())).into_response()
}

async fn method_not_allowed(State(state): State<SharedState>, method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/pipet/") {
        return pipet::unmatched(&state, uri.path(), 405, &method);
    }
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}; see /api/v1/openapi.json", uri.path()),
    )
    .into_response()
}

/// Bodies up to this size are read in full before any handler runs.
const BUFFERED_BODY: u64 = 64 * 1024;

/// Reads small request bodies before routing, so that a request refused early (a bad key, a
/// malformed path) still has its body consumed: otherwise the connection is closed under a
/// client that is still writing it, and the client sees a broken pipe instead of the answer.
pub async fn buffer_small_bodies(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let length = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match length {
        Some(n) if n > 0 && n <= BUFFERED_BODY => {
            let (parts, body) = request.into_parts();
            match axum::body::to_bytes(body, BUFFERED_BODY as usize).await {
                Ok(bytes) => next.run(axum::extract::Request::from_parts(parts, Body::from(bytes))).await,
                Err(e) => ApiError::bad_request("unreadable_body", format!("the request body could not be read: {e}"))
                    .into_response(),
            }
        }
        _ => next.run(request).await,
    }
}

/// Reads a request body of at most `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the request body exceeds {limit} bytes"))
        } else {
            ApiError::bad_request("unreadable_body", format!("the request body could not be read: {e}"))
        }
    })
}

/// Parses a JSON body, naming the line and column of a syntax error, or the field that does not
/// fit the expected shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid_json", "the request body is empty; a JSON document is expected"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if field != "." => {
                ApiError::bad_request("invalid_field", format!("the request body does not fit at '{field}': {inner}"))
                    .with("field", field)
            }
            serde_json::error::Category::Data => {
                ApiError::bad_request("invalid_field", format!("the request body does not fit: {inner}"))
            }
            _ => ApiError::bad_request("invalid_json", format!("the request body is not valid JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Like [`parse_json`] for a body that must be a JSON object (serde would also read an array
/// into a struct, by position).
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => parse_json(bytes),
        Some(_) => {
            // Valid JSON of another kind is a shape error; anything else, a syntax error.
            let found = match parse_json::<serde_json::Value>(bytes)? {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Bool(_) => "a boolean",
                _ => "null",
            };
            Err(ApiError::bad_request(
                "invalid_field",
                format!("invalid type: the request body must be a JSON object, not {found}"),
            ))
        }
    }
}

/// Query parameters, refused in the API's error shape when they do not fit.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded_like(query).map(ApiQuery)
    }
}

fn serde_urlencoded_like<T: DeserializeOwned>(query: &str) -> ApiResult<T> {
    axum::extract::Query::<T>::try_from_uri(&format!("/?{query}").parse().map_err(|_| {
        ApiError::bad_request("invalid_query", "the query string cannot be read")
    })?)
    .map(|q| q.0)
    .map_err(|e| ApiError::bad_request("invalid_query", format!("the query string does not fit: {}", e.body_text())))
}

/// A JSON response from pre-rendered bytes.
pub fn json_bytes(status: StatusCode, body: impl Into<Body>) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.into()).into_response()
}
