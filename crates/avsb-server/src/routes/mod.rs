//! The HTTP API, one module per audience. Each module exposes `router()`, an
//! [`OpenApiRouter`] that registers a handler and its OpenAPI operation together (utoipa's
//! `routes!`), so the document served at `/api/v1/openapi.json` is generated from the handlers
//! and cannot leave one out.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ErrorCode};
use crate::SharedState;

pub mod admin;
pub mod events;
pub mod ofrep;
pub mod ops;
pub mod pipet;
pub mod sdk;

/// Every route with its documentation.
pub fn documented() -> OpenApiRouter<SharedState> {
    // Only the routes that take bodies pay for reading them ahead; Pipet's GETs stay lean.
    let with_bodies = OpenApiRouter::new()
        .merge(ofrep::router())
        .merge(events::router())
        .merge(admin::router())
        .layer(axum::middleware::from_fn(buffer_small_bodies));
    OpenApiRouter::with_openapi(crate::openapi::base()).merge(pipet::router()).merge(sdk::router()).merge(ops::router()).merge(with_bodies)
}

/// The router and the OpenAPI document it serves.
pub fn router() -> (Router<SharedState>, utoipa::openapi::OpenApi) {
    let (router, openapi) = documented().split_for_parts();
    let router = router.fallback(not_found).method_not_allowed_fallback(method_not_allowed);
    (router, openapi)
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
    ApiError::new(ErrorCode::MethodNotAllowed, format!("{} does not take {method}; see /api/v1/openapi.json", uri.path()))
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
                Err(e) => ApiError::new(ErrorCode::UnreadableBody, format!("the request body could not be read: {e}"))
                    .into_response(),
            }
        }
        _ => next.run(request).await,
    }
}

/// A JSON response from pre-rendered bytes.
pub fn json_bytes(status: axum::http::StatusCode, body: impl Into<Body>) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.into()).into_response()
}
