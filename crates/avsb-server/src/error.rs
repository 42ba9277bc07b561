//! The one error shape of the admin, SDK and event APIs:
//! `{"error": {"code": "...", "message": "...", ...details}}` with a matching status.
//! (The Pipet and OFREP APIs answer in their own formats; see their modules.)

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::store::StoreError;

/// An API error: status, stable code, message and optional details.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code (`invalid_json`, `conflict`, ...).
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// Extra fields merged into the error object (`diagnostics`, `currentRevision`, `index`...).
    pub details: Map<String, Value>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), details: Map::new() }
    }

    /// Adds a detail field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401: no or unknown credentials.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: credentials without the needed role.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 409: the write was based on a revision that is no longer current.
    pub fn conflict(expected: i64, current: i64) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the write was based on revision {expected}, but revision {current} is current; reload and retry"),
        )
        .with("baseRevision", expected.to_string())
        .with("currentRevision", current.to_string())
    }

    /// 422: the change would drop tests; `diagnostics` says which and why.
    pub fn unprocessable(message: impl Into<String>, diagnostics: Value) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_matrix", message).with("diagnostics", diagnostics)
    }

    /// 500, logged; the message shown is generic.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {error}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { expected, current } => ApiError::conflict(expected, current),
            StoreError::Duplicate(what) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", format!("{what} already exists"))
            }
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Backend(message) => ApiError::internal(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = Map::new();
        error.insert("code".into(), Value::from(self.code));
        error.insert("message".into(), Value::from(self.message));
        error.extend(self.details);
        (self.status, axum::Json(json!({ "error": error }))).into_response()
    }
}

/// A result whose error is an [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;
