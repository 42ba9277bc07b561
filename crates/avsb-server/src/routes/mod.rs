//! The HTTP API, one module per audience. Each module exposes `router()`.

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
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
    Router::new()
        .merge(pipet::router())
        .merge(ofrep::router())
        .merge(sdk::router())
        .merge(events::router())
        .merge(admin::router())
        .merge(ops::router())
        .fallback(|| async { ApiError::not_found("no such endpoint; see /api/v1/openapi.json").into_response() })
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
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::bad_request("invalid_field", format!("the request body does not fit: {e}"))
        }
        _ => ApiError::bad_request("invalid_json", format!("the request body is not valid JSON: {e}")),
    })
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
